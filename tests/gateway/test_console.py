"""A compute's serial console through the OCCI API: ``GET /compute/<id>/console``, read by the
worker of the compute's host (an RQ job on that host's queue) while the request waits.

The guest's part is played by writing the console log file its domain XML names (libvirt test
hosts) or by ``ex_set_console_log`` (memory hosts). Requests that wait for a worker run through
:meth:`Node.while_working`, which works the queues in this thread meanwhile.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from werkzeug.test import TestResponse

from backends.base import DEFAULT_CONSOLE_BYTES, domain_name
from backends.memory import MemoryDriver
from gateway.errors import BackendError, ServiceUnavailable
from gateway.services import entities
from gateway.services.entities import CONSOLE_MAX_BYTES
from occi.infrastructure import CONSOLE_ATTRIBUTE
from tests.backends.conftest import write_console
from tests.gateway.conftest import (
    INFRA,
    Node,
    NodeFactory,
    category,
    compute_categories,
    entity_id,
    host_file_uri,
    path_of,
    text_plain,
)

pytestmark = [pytest.mark.libvirt, pytest.mark.redis]

GUEST_OUTPUT = b"SeaBIOS\r\nnimbo-appliance: init starting\r\nNIMBO-REPORT-BEGIN\r\nh\xc3\xa9\r\n"


@pytest.fixture
def running(node: Node) -> str:
    location = node.create_compute(user="alice")
    node.run_jobs()
    return location


def console_of(node: Node, location: str, *, user: str = "root") -> str:
    """The console location the compute's rendering advertises."""
    attributes = node.get_json(location, user=user)["attributes"]
    console: str = attributes[CONSOLE_ATTRIBUTE]
    return console


def read(
    node: Node, console: str, *, user: str = "root", hosts: list[str] | None = None, query: str = ""
) -> TestResponse:
    """GET the console while this thread works the queues of ``hosts`` (default: all)."""
    return node.while_working(lambda: node.get(console + query, user=user), hosts=hosts)


def wait_briefly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that does not answer is given up on after 1 s (not 10) in these tests. (When
    the wait becomes a setting in gateway.defaults, pass it to ``make_node`` instead.)"""
    monkeypatch.setattr(entities, "CONSOLE_WAIT_SECONDS", 1)


# --- reading ------------------------------------------------------------------------------


def test_console_shows_what_the_guest_printed(node: Node, running: str) -> None:
    console = console_of(node, running, user="alice")
    assert console == f"{path_of(running)}/console"
    write_console(node.driver(), entity_id(running), GUEST_OUTPUT)

    response = read(node, console, user="alice")

    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.get_data() == GUEST_OUTPUT


def test_every_rendering_advertises_the_console(node: Node, running: str) -> None:
    expected = f"/compute/{entity_id(running)}/console"
    plain = node.get(running, headers={"Accept": "text/plain"}).get_data(as_text=True)
    assert f'X-OCCI-Attribute: {CONSOLE_ATTRIBUTE}="{expected}"' in plain.splitlines()
    occi = node.get(running, headers={"Accept": "text/occi"}).headers.get_all("X-OCCI-Attribute")
    assert f'{CONSOLE_ATTRIBUTE}="{expected}"' in ", ".join(occi)
    qi = node.get("/-/", headers={"Accept": "text/plain"}).get_data(as_text=True)
    assert f"{CONSOLE_ATTRIBUTE}{{immutable}}" in qi


def test_bytes_asks_for_the_end_of_the_log(node: Node, running: str) -> None:
    console = console_of(node, running)
    log = b"".join(b"line %06d\n" % n for n in range(120_000))  # 1.3 MiB
    write_console(node.driver(), entity_id(running), log)

    assert read(node, console, query="?bytes=12").get_data() == b"line 119999\n"
    assert read(node, console).get_data() == log[-DEFAULT_CONSOLE_BYTES:]
    most = read(node, console, query=f"?bytes={10 * CONSOLE_MAX_BYTES}")
    assert most.status_code == 200
    assert most.get_data() == log[-CONSOLE_MAX_BYTES:]  # capped, not refused


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "", "1e3"])
def test_bad_bytes_is_400(node: Node, running: str, value: str) -> None:
    response = node.get(f"{path_of(running)}/console?bytes={value}")
    assert response.status_code == 400
    assert "bytes" in response.get_data(as_text=True)


def test_console_of_a_compute_not_provisioned_yet_is_empty(node: Node) -> None:
    location = node.create_compute()
    assert read(node, console_of(node, location)).get_data() == b""


def test_console_of_a_memory_host(make_node: NodeFactory) -> None:
    node = make_node({"host-m": "memory://host-m"})
    location = node.create_compute()
    node.run_jobs()
    driver = node.driver("host-m")
    assert isinstance(driver, MemoryDriver)
    driver.ex_set_console_log(entity_id(location), "memory guest says hello\n")

    response = read(node, console_of(node, location))

    assert response.get_data(as_text=True) == "memory guest says hello\n"


# --- who may read it ----------------------------------------------------------------------


def test_console_follows_the_computes_visibility(node: Node, running: str) -> None:
    console = f"{path_of(running)}/console"
    assert read(node, console, user="alice").status_code == 200  # the owner
    assert read(node, console, user="root").status_code == 200  # an admin
    foreign = node.get(console, user="bob")
    assert foreign.status_code == 404
    assert foreign.get_data(as_text=True) == node.get(running, user="bob").get_data(as_text=True)
    assert node.get(console, user=None).status_code == 401


def test_unknown_compute_or_other_kind_is_404(node: Node) -> None:
    assert node.get("/compute/6a1f3c52-0b8e-4f4b-a7f7-3e9f2a1d0c11/console").status_code == 404
    storage = node.create_storage()
    assert node.get(f"/compute/{entity_id(storage)}/console").status_code == 404
    assert node.get(f"{path_of(storage)}/console").status_code == 404


def test_deleted_compute_has_no_console(node: Node, running: str) -> None:
    assert node.request("DELETE", running).status_code == 200
    assert node.get(f"{path_of(running)}/console").status_code == 404  # deleting: gone already


def test_console_is_read_only(node: Node, running: str) -> None:
    for method in ("POST", "PUT", "DELETE"):
        response = node.request(method, f"{path_of(running)}/console")
        assert response.status_code == 405, method
        assert response.headers["Allow"] == "GET, HEAD"


def test_console_attribute_is_the_servers(node: Node, running: str) -> None:
    body = text_plain(
        [category("compute", INFRA, "kind")],
        {CONSOLE_ATTRIBUTE: "/elsewhere", "occi.core.title": "renamed"},
    )
    assert node.post_text(running, body).status_code == 200
    assert console_of(node, running) == f"{path_of(running)}/console"
    row = node.row(running)
    assert row is not None and CONSOLE_ATTRIBUTE not in (row.attributes or {})
    created = node.create("compute", text_plain(compute_categories(), {CONSOLE_ATTRIBUTE: "/x"}))
    assert console_of(node, created) == f"{path_of(created)}/console"


# --- the host's worker --------------------------------------------------------------------


def test_console_is_read_by_the_worker_of_the_computes_host(
    make_node: NodeFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_briefly(monkeypatch)
    node = make_node({"host-a": host_file_uri("host-a"), "host-b": host_file_uri("host-b")})
    node.disable_host("host-a")
    location = node.create_compute()
    node.run_jobs()
    row = node.row(location)
    assert row is not None and row.host == "host-b"
    write_console(node.driver("host-b"), entity_id(location), b"on host-b\n")
    console = console_of(node, location)

    elsewhere = read(node, console, hosts=["host-a"])  # host-b's worker is down
    assert elsewhere.status_code == 503
    assert read(node, console, hosts=["host-b"]).get_data() == b"on host-b\n"


def test_worker_that_does_not_answer_is_503_with_retry_after(
    node: Node, running: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    wait_briefly(monkeypatch)

    response = node.get(f"{path_of(running)}/console")  # nobody works the queue

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert "host-a did not answer within 1 s" in response.get_data(as_text=True)


def test_unreadable_console_is_503_naming_the_cause(node: Node, running: str) -> None:
    log = node.config.data_path / "consoles" / f"{domain_name(entity_id(running))}.console.log"
    log.mkdir(parents=True)  # a directory where the log file should be

    response = read(node, f"{path_of(running)}/console")

    assert response.status_code == 503
    assert "cannot read" in response.get_data(as_text=True)
    assert response.headers["Retry-After"]


# --- JobQueue.call, which the console read is made of -------------------------------------


def touch(path: str) -> str:
    """A job with an effect to look for."""
    Path(path).touch()
    return f"touched {Path(path).name}"


def explode() -> None:
    raise RuntimeError("a bug in a job")


def test_call_answers_what_the_job_returned(node: Node, tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    answer = node.while_working(lambda: node.nimbo.queue.call("host-a", touch, str(mark), wait=5))
    assert answer == "touched ran" and mark.exists()


def test_call_of_a_failing_job_is_a_backend_error(node: Node) -> None:
    with pytest.raises(BackendError, match="explode failed on the worker of host host-a"):
        node.while_working(lambda: node.nimbo.queue.call("host-a", explode, wait=5))


def test_call_nobody_answers_is_dropped_after_its_wait(node: Node, tmp_path: Path) -> None:
    mark = tmp_path / "ran"
    with pytest.raises(ServiceUnavailable) as raised:
        node.nimbo.queue.call("host-a", touch, str(mark), wait=1)
    assert raised.value.retry_after == 1
    time.sleep(1.2)  # past the job's time to live in the queue
    node.run_jobs()
    assert not mark.exists()  # a worker coming late does not run it any more
