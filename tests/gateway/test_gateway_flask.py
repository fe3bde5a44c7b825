"""GatewayFlask: Flask's answer to "is this hook a coroutine function?" remembered per
function, without keeping per-request callbacks alive or changing what async views do."""

from __future__ import annotations

import gc
import inspect
from typing import Any

import pytest
from flask import Flask, after_this_request

from gateway.app import GatewayFlask


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every function ``inspect.iscoroutinefunction`` is asked about."""
    seen: list[Any] = []
    real = inspect.iscoroutinefunction

    def counting(func: Any) -> bool:
        seen.append(func)
        return real(func)

    monkeypatch.setattr(inspect, "iscoroutinefunction", counting)
    return seen


def _app() -> tuple[GatewayFlask, list[str]]:
    app = GatewayFlask(__name__)
    calls: list[str] = []

    @app.before_request
    def before() -> None:
        calls.append("before")

    @app.after_request
    def after(response: Any) -> Any:
        calls.append("after")
        return response

    @app.route("/")
    def index() -> str:
        @after_this_request
        def once(response: Any) -> Any:
            calls.append("once")
            return response

        return "ok"

    return app, calls


def test_hooks_and_views_are_asked_about_once(asked: list[Any]) -> None:
    app, calls = _app()
    client = app.test_client()
    for _ in range(5):
        assert client.get("/").data == b"ok"
    assert calls == ["before", "once", "after"] * 5  # every hook still runs, in order
    names = [getattr(f, "__name__", "") for f in asked]
    assert names.count("before") == names.count("after") == names.count("index") == 1
    assert names.count("once") == 5  # a new function each request: asked each time


def test_per_request_callbacks_are_not_kept() -> None:
    app, _ = _app()
    client = app.test_client()
    client.get("/")
    gc.collect()
    remembered = {getattr(f, "__name__", "") for f in app._synchronous}
    assert "once" not in remembered
    assert {"before", "after", "index"} <= remembered


def test_async_views_go_to_flask_as_before() -> None:
    async def view() -> str:
        return "ok"

    for app in (Flask(__name__), GatewayFlask(__name__)):
        try:
            expected: Any = Flask.ensure_sync(app, view)
        except RuntimeError as exc:  # no asgiref here: Flask says to install flask[async]
            with pytest.raises(RuntimeError, match=str(exc)[:30]):
                app.ensure_sync(view)
            with pytest.raises(RuntimeError):  # and not remembered as synchronous
                app.ensure_sync(view)
        else:
            assert app.ensure_sync(view) is not view
            assert type(app.ensure_sync(view)) is type(expected)


def test_objects_without_weak_references_still_work() -> None:
    app = GatewayFlask(__name__)
    hook = len  # a builtin: weak references to it are refused
    assert app.ensure_sync(hook) is hook
    assert app.ensure_sync(hook) is hook
