"""Our own gateway over real HTTP: the Flask app of ``make_node`` (SQLite, real redis-server,
libvirt's test driver) served by werkzeug on 127.0.0.1 in a thread, its job queues worked in
the main thread (RQ's worker installs signal handlers) while the suite runs in another."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tests.conformance.servers import serving
from tests.gateway.conftest import PASSWORD, Node, NodeFactory, make_node  # noqa: F401

T = TypeVar("T")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the conformance suite tests the protocol, not the store."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


@dataclass
class LiveNimbo:
    url: str
    user: str
    password: str
    node: Node

    def run(self, call: Callable[[], T]) -> T:
        """``call()`` in another thread while this one works the job queues."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(call)
            while True:
                self.node.run_jobs()
                try:
                    return answer.result(timeout=0.05)
                except TimeoutError:
                    continue

    def basic(self) -> dict[str, str]:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}


@pytest.fixture
def live_nimbo(request: pytest.FixtureRequest) -> Iterator[LiveNimbo]:
    make: NodeFactory = request.getfixturevalue("make_node")
    node = make()
    with serving(node.app) as url:
        yield LiveNimbo(url, "root", PASSWORD, node)
