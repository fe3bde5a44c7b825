"""The framework: outcomes, skips, fixtures, cleanup order, exceptions, interruption, redaction
and the command line, on a toy suite against a toy WSGI endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from conformance.framework import (
    Context,
    LeftBehind,
    Level,
    Outcome,
    Runner,
    Settings,
    Suite,
)
from conformance.http import Client, Credentials
from tests.conformance.servers import serving

LOG: list[str] = []


@Request.application
def toy(request: Request) -> Response:
    LOG.append(f"{request.method} {request.path}")
    if request.path == "/boom":
        return Response("broken", status=500, headers={"X-Why": "because"})
    return Response("hello", status=200 if request.method != "DELETE" else 204)


@pytest.fixture
def url() -> Iterator[str]:
    LOG.clear()
    with serving(toy) as base:
        yield base


def toy_suite() -> Suite:
    suite = Suite("toy", title="Toy")

    @suite.fixture("thing", writes=True)
    def thing(ctx: Context) -> str:
        return ctx.created(ctx.client.url("/things/one"))

    @suite.fixture("broken")
    def broken(ctx: Context) -> str:
        ctx.expect_status(ctx.client.get("/boom"), 200)
        return "never"

    @suite.check("TOY-1", clause="Toy §1", level=Level.MUST, title="passes", group="a")
    def passes(ctx: Context) -> None:
        ctx.expect_status(ctx.client.get("/"), 200)

    @suite.check("TOY-2", clause="Toy §2", level=Level.SHOULD, title="fails", group="a")
    def fails(ctx: Context) -> None:
        ctx.expect_status(ctx.client.get("/boom"), 200)

    @suite.check("TOY-3", clause="Toy §3", level=Level.MUST, title="needs broken", group="b")
    def needs_broken(ctx: Context) -> None:
        ctx.need("broken")

    @suite.check("TOY-4", clause="Toy §4", level=Level.MAY, title="raises", group="b")
    def raises(ctx: Context) -> None:
        ctx.client.get("/")
        int("not a number")

    @suite.check("TOY-5", clause="Toy §5", level=Level.MUST, title="creates", group="c",
                 writes=True, per_rendering=True)
    def creates(ctx: Context) -> None:
        ctx.need("thing")
        ctx.created(ctx.client.url(f"/things/{ctx.rendering}"))

    return suite


def run(url: str, **settings: Any) -> Any:
    client = Client(url, Credentials(user="u", password="secret"))
    return Runner(toy_suite(), Settings(base_url=url, renderings=("x", "y"), **settings),
                  client).run()


def test_outcomes_fixtures_and_cleanup_order(url: str) -> None:
    report = run(url)

    outcomes = {r.name: r.outcome for r in report.results}
    assert outcomes == {"TOY-1": Outcome.PASSED, "TOY-2": Outcome.FAILED,
                        "TOY-3": Outcome.SKIPPED, "TOY-4": Outcome.FAILED,
                        "TOY-5 [x]": Outcome.PASSED, "TOY-5 [y]": Outcome.PASSED}
    by_name = {r.name: r for r in report.results}
    assert "expected 200, got 500" in by_name["TOY-2"].message
    assert by_name["TOY-2"].evidence[0].response.headers["X-Why"] == "because"
    assert "precondition 'broken' failed" in by_name["TOY-3"].message
    assert "unexpected ValueError" in by_name["TOY-4"].message
    assert by_name["TOY-4"].evidence  # the last exchange before the exception
    assert report.conformant and report.exit_status == 0  # SHOULD/MAY failures only
    deletes = [line for line in LOG if line.startswith("DELETE")]
    assert deletes == ["DELETE /things/y", "DELETE /things/x", "DELETE /things/one"]


def test_credentials_are_redacted_in_evidence(url: str) -> None:
    report = run(url)
    failed = next(r for r in report.results if r.check.id == "TOY-2")
    assert failed.evidence[0].request.headers["Authorization"] == "<redacted>"
    assert "secret" not in json.dumps(failed.evidence[0].as_dict())


def test_read_only_skips_writers_and_creates_nothing(url: str) -> None:
    report = run(url, read_only=True)
    writers = [r for r in report.results if r.check.writes]
    assert writers and all(r.outcome is Outcome.SKIPPED for r in writers)
    assert all("--read-only" in r.message for r in writers)
    assert not [line for line in LOG if line.startswith("DELETE")]


def test_a_failed_must_fails_the_run(url: str) -> None:
    suite = toy_suite()
    suite.checks[1] = suite.checks[1].__class__(**{**suite.checks[1].__dict__,
                                                  "level": Level.MUST})
    report = Runner(suite, Settings(base_url=url), Client(url)).run()
    assert not report.conformant and report.exit_status == 1


def test_ctrl_c_stops_the_run_and_still_cleans_up(url: str) -> None:
    suite = toy_suite()

    @suite.check("TOY-9", clause="Toy §9", level=Level.MUST, title="interrupted", group="c")
    def interrupted(ctx: Context) -> None:
        raise KeyboardInterrupt

    @suite.check("TOY-10", clause="Toy §10", level=Level.MUST, title="never run", group="c")
    def never(ctx: Context) -> None:
        raise AssertionError("ran after Ctrl-C")

    report = Runner(suite, Settings(base_url=url, renderings=("x",)), Client(url)).run()
    assert report.interrupted and report.exit_status == 130
    assert "TOY-10" not in [r.check.id for r in report.results]
    assert "DELETE /things/x" in LOG


def test_a_check_runs_in_the_renderings_that_express_it(url: str) -> None:
    suite = Suite("r", title="R")
    seen: list[str | None] = []

    @suite.check("R-1", clause="c", level=Level.MUST, title="t", group="g",
                 per_rendering=True, renderings=("y", "z"))
    def some(ctx: Context) -> None:
        seen.append(ctx.rendering)

    @suite.check("R-2", clause="c", level=Level.MUST, title="t", group="g",
                 per_rendering=True, renderings=("z",))
    def fallback(ctx: Context) -> None:
        seen.append(ctx.rendering)

    report = Runner(suite, Settings(base_url=url, renderings=("x", "y")), Client(url)).run()
    assert [r.name for r in report.results] == ["R-1 [y]", "R-2 [z]"]
    assert seen == ["y", "z"]  # no run rendering expresses it, so its own first one
    with pytest.raises(ValueError, match="per_rendering"):
        suite.check("R-3", clause="c", level=Level.MUST, title="t", group="g",
                    renderings=("x",))(lambda ctx: None)


def test_what_the_server_keeps_is_reported_as_left_behind(url: str) -> None:
    suite = Suite("k", title="K")

    @suite.check("K-1", clause="c", level=Level.MUST, title="t", group="g", writes=True)
    def keeps(ctx: Context) -> None:
        def refuse() -> None:
            raise LeftBehind("the server refuses (403)")

        ctx.on_cleanup("remove template T", refuse)
        ctx.created(ctx.client.url("/things/k"))

    report = Runner(suite, Settings(base_url=url), Client(url)).run()
    assert report.left_behind == ["remove template T: the server refuses (403)"]
    assert report.cleanup_errors == [] and "DELETE /things/k" in LOG


def test_duplicate_ids_are_refused() -> None:
    suite = Suite("dup", title="Dup")
    suite.check("A-1", clause="c", level=Level.MUST, title="t", group="g")(lambda ctx: None)
    with pytest.raises(ValueError, match="duplicate"):
        suite.check("A-1", clause="c", level=Level.MUST, title="t", group="g")(lambda ctx: None)


def test_command_line_lists_the_occi_checks() -> None:
    answer = subprocess.run([sys.executable, "-m", "conformance.cli", "occi", "http://x/",
                             "--list"], capture_output=True, text=True, check=False)
    assert answer.returncode == 0, answer.stderr
    assert "OCCI-HTTP-QI-001" in answer.stdout


def test_command_line_refuses_two_kinds_of_credentials() -> None:
    answer = subprocess.run([sys.executable, "-m", "conformance.cli", "occi", "http://x/",
                             "--user", "u", "--token", "t"], capture_output=True, text=True,
                            check=False)
    assert answer.returncode != 0
    assert "one of" in answer.stderr


def test_unreachable_endpoint_fails_checks_without_crashing(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    answer = subprocess.run([sys.executable, "-m", "conformance.cli", "occi",
                             "http://127.0.0.1:9/", "--read-only", "--timeout", "1",
                             "--json", str(out)], capture_output=True, text=True, check=False)
    assert answer.returncode == 1, answer.stderr
    document = json.loads(out.read_text())
    assert document["conformant"] is False
    assert any("request failed" in r["message"] for r in document["results"])
