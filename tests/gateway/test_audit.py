"""The audit log through the whole gateway (SQLite and PostgreSQL, real Redis): what OCCI and
CDMI writes and refused logins record, the admin query (filters, pagination, 404 for others),
the CLI, and that nothing is lost: Redis down, the store down during a flush, the flusher
thread and its last flush."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from click.testing import CliRunner
from sqlalchemy import func, select

from gateway.audit import PENDING, AuditLog, Entry, describe
from gateway.cli import main
from gateway.errors import ServiceUnavailable
from gateway.store.db import Store
from gateway.store.models import AuditRecord
from tests.gateway.cdmi_client import Cdmi
from tests.gateway.conftest import (
    INFRA,
    PASSWORD,
    Node,
    NodeFactory,
    category,
    entity_id,
    path_of,
    text_plain,
)

pytestmark = pytest.mark.redis

HOST = {"host-a": "memory://audit-host?cores=16&memory_mib=32768"}
TAGS = "http://example.com/occi/tags#"


@pytest.fixture
def anode(make_node: NodeFactory) -> Node:
    return make_node(HOST)


def audit(node: Node, **params: str) -> dict[str, Any]:
    """``GET /admin/audit?<params>`` as the admin."""
    response = node.client.get("/admin/audit", query_string=params, headers=_basic("root"),
                               environ_overrides={"REMOTE_ADDR": "::1"})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"] == "application/json"
    document: dict[str, Any] = response.get_json()
    return document


def records(node: Node, **params: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = audit(node, **params)["records"]
    return found


def _basic(user: str, password: str = PASSWORD) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def pick(found: list[dict[str, Any]], *fields: str) -> list[tuple[Any, ...]]:
    """The records oldest first, as tuples of ``fields``."""
    return [tuple(r[f] for f in fields) for r in reversed(found)]


# --- what is recorded -------------------------------------------------------------------


def test_occi_writes_are_recorded_with_action_entity_outcome_and_operation(anode: Node) -> None:
    compute = anode.create_compute(user="alice")
    storage = anode.create_storage(user="alice")
    anode.run_jobs()
    assert anode.action(compute, "stop", user="alice").status_code == 200
    link = anode.create("storagelink", text_plain(
        [category("storagelink", INFRA, "kind")],
        {"occi.core.source": path_of(compute), "occi.core.target": path_of(storage)}),
        user="alice")
    assert anode.request("DELETE", path_of(link), user="alice").status_code == 200
    update = text_plain([category("compute", INFRA, "kind")], {"occi.core.title": "renamed"})
    assert anode.post_text(path_of(compute), update, user="alice").status_code == 200
    assert anode.post_text("/-/", f'Category: web; scheme="{TAGS}"; class="mixin"; '
                                  'location="/web/"\r\n', user="alice").status_code == 200
    assert anode.request("POST", "/web/", user="alice", headers={
        "X-OCCI-Location": path_of(compute), "Content-Type": "text/occi"}).status_code == 200
    assert anode.request("DELETE", path_of(compute), user="bob").status_code == 404
    assert anode.request("DELETE", path_of(compute), user="alice").status_code == 200
    anode.get(path_of(compute), user="alice")  # reads are not recorded

    found = records(anode)
    cid, sid, lid = entity_id(compute), entity_id(storage), entity_id(link)
    assert pick(found, "user", "method", "action", "kind", "entity", "status") == [
        ("alice", "POST", "create", "compute", cid, 201),
        ("alice", "POST", "create", "storage", sid, 201),
        ("alice", "POST", "stop", "compute", cid, 200),
        ("alice", "POST", "link", "storagelink", lid, 201),
        ("alice", "DELETE", "unlink", "storagelink", lid, 200),
        ("alice", "POST", "update", "compute", cid, 200),
        ("alice", "POST", "mixin-add", "category", "", 200),
        ("alice", "POST", "associate", "mixin", "/web/", 200),
        ("bob", "DELETE", "delete", "compute", cid, 404),
        ("alice", "DELETE", "delete", "compute", cid, 200),
    ]
    by_action = {(r["action"], r["user"]): r for r in found}
    for action in ("create", "stop", "link", "delete"):
        assert len(by_action[(action, "alice")]["operations"]) == 1, by_action[(action, "alice")]
    assert by_action[("delete", "bob")]["operations"] == []
    assert {r["source"] for r in found} == {"local"}
    assert {r["address"] for r in found} == {"127.0.0.1"}
    times = [datetime.fromisoformat(r["time"]) for r in found]
    assert times == sorted(times, reverse=True)
    assert datetime.now(UTC) - times[-1] < timedelta(minutes=5)


def test_cdmi_writes_are_recorded_including_move_and_copy(anode: Node) -> None:
    c = Cdmi(anode)
    c.mkdir("box/")
    assert c.put("box/a.txt", {"value": "one"}).status_code == 201
    assert c.put("box/a.txt", {"value": "two"}).status_code == 204
    assert c.put("box/b.txt", {"move": "/cdmi/box/a.txt"}).status_code == 201
    assert c.put("box/c.txt", {"copy": "/cdmi/box/b.txt"}).status_code == 201
    plain = c.request("POST", "box/", data=b"raw", headers={"Content-Type": "text/plain"})
    assert plain.status_code == 201
    assert c.request("DELETE", "box/c.txt").status_code == 204

    found = records(anode)
    created = path_of(plain.headers["Location"])
    assert pick(found, "user", "action", "kind", "entity", "status", "detail") == [
        ("alice", "create", "container", "/cdmi/box/", 201, ""),
        ("alice", "create", "dataobject", "/cdmi/box/a.txt", 201, ""),
        ("alice", "update", "dataobject", "/cdmi/box/a.txt", 204, ""),
        ("alice", "move", "dataobject", "/cdmi/box/b.txt", 201, "from /cdmi/box/a.txt"),
        ("alice", "copy", "dataobject", "/cdmi/box/c.txt", 201, "from /cdmi/box/b.txt"),
        ("alice", "create", "dataobject", created, 201, ""),
        ("alice", "delete", "dataobject", "/cdmi/box/c.txt", 204, ""),
    ]


def test_refused_logins_are_recorded_with_the_name_tried_never_the_password(
    anode: Node, redis_url: str
) -> None:
    secret = "guess-Xy9-not-the-password"
    refused = anode.client.get("/compute/", headers=_basic("alice", secret))
    assert refused.status_code == 401
    unknown = anode.client.post("/compute/", headers=_basic("nobody", secret))
    assert unknown.status_code == 401
    assert anode.client.get("/compute/").status_code == 401  # no credentials: a challenge only
    token = anode.client.get("/compute/", headers={"X-Auth-Token": "tok-" + secret})
    assert token.status_code == 401
    with redis.Redis.from_url(redis_url) as client:
        pending = b"".join(client.lrange(PENDING, 0, -1)).decode()
    assert secret not in pending

    found = records(anode, action="authenticate")
    assert pick(found, "user", "source", "method", "path", "status") == [
        ("alice", "", "GET", "/compute/", 401),
        ("nobody", "", "POST", "/compute/", 401),
        ("", "", "GET", "/compute/", 401),
    ]
    assert secret not in json.dumps(found)
    with anode.store.session() as session:
        stored = [json.dumps(vars(r), default=str) for r in session.scalars(select(AuditRecord))]
    assert stored and secret not in "".join(stored)


def test_a_token_issued_names_who_got_it(make_node: NodeFactory) -> None:
    node = make_node(HOST, auth_methods="local,token")
    issued = node.client.post("/auth/tokens", headers=_basic("alice"))
    assert issued.status_code == 201
    refused = node.client.post("/auth/tokens", headers=_basic("bob", "not-his"))
    assert refused.status_code == 401
    found = records(node)
    assert pick(found, "user", "source", "path", "action", "status") == [
        ("alice", "local", "/auth/tokens", "create", 201),
        ("bob", "", "/auth/tokens", "authenticate", 401),
    ]
    assert issued.get_json()["token"] not in json.dumps(found)


def test_the_kind_of_each_write_is_told_from_its_url() -> None:
    def said(method: str, path: str, status: int = 200, location: str | None = None,
             action: str | None = None) -> tuple[str, str, str]:
        return describe(method, path, status=status, location=location, query_action=action,
                        cdmi_root="/cdmi/")

    assert said("POST", "/", 201, "http://h/network/n1") == ("create", "network", "n1")
    assert said("POST", "/networkinterface/", 201, "http://h/networkinterface/l1") == (
        "link", "networkinterface", "l1")
    assert said("PUT", "/compute/c1", 201) == ("create", "compute", "c1")
    assert said("PUT", "/compute/c1") == ("update", "compute", "c1")
    assert said("POST", "/compute/", action="start") == ("start", "compute", "/compute/")
    assert said("DELETE", "/compute/") == ("delete", "compute", "/compute/")
    assert said("DELETE", "/web/") == ("dissociate", "mixin", "/web/")
    assert said("DELETE", "/.well-known/org/ogf/occi/-/") == ("mixin-remove", "category", "")
    assert said("PUT", "/admin/quotas/alice") == ("update", "admin", "/admin/quotas/alice")
    assert said("POST", "/auth/tokens", 201) == ("create", "auth", "/auth/tokens")
    assert said("DELETE", "/cdmi/cdmi_objectid/0000abcd") == ("delete", "object", "0000abcd")
    assert said("PUT", "/cdmi/") == ("update", "container", "/cdmi/")


# --- the admin query --------------------------------------------------------------------


def many(node: Node, count: int, user: str) -> None:
    for i in range(count):
        body = f'Category: t{user}{i}; scheme="{TAGS}"; class="mixin"; location="/t{user}{i}/"'
        assert node.post_text("/-/", body + "\r\n", user=user).status_code == 200


def test_records_page_newest_first_with_filters(anode: Node) -> None:
    many(anode, 5, "alice")
    many(anode, 2, "bob")
    everything = records(anode)
    assert [r["user"] for r in everything] == ["bob"] * 2 + ["alice"] * 5

    seen: list[dict[str, Any]] = []
    document = audit(anode, user="alice", limit="2")
    while True:
        assert len(document["records"]) <= 2
        seen += document["records"]
        if document["next"] is None:
            break
        link = urlsplit(document["next"])
        assert link.path == "/admin/audit" and "user=alice" in link.query
        response = anode.client.get(f"{link.path}?{link.query}", headers=_basic("root"))
        document = response.get_json()
    assert [r["id"] for r in seen] == [r["id"] for r in everything if r["user"] == "alice"]

    assert records(anode, action="mixin-add", user="bob") == everything[:2]
    assert records(anode, action="delete") == []
    middle = datetime.fromisoformat(everything[3]["time"])
    newer = records(anode, since=middle.isoformat())
    assert [r["id"] for r in newer] == [r["id"] for r in everything[:4]]
    older = records(anode, until=middle.isoformat())
    assert [r["id"] for r in older] == [r["id"] for r in everything[4:]]
    assert records(anode, since="1h") == everything
    assert records(anode, until="1h") == []


def test_an_entity_is_found_by_id_or_path(anode: Node) -> None:
    compute = anode.create_compute(user="alice")
    anode.create_compute(user="alice")
    cid = entity_id(compute)
    assert [r["entity"] for r in records(anode, entity=cid)] == [cid]
    Cdmi(anode).mkdir("box/")
    assert [r["action"] for r in records(anode, entity="/cdmi/box/")] == ["create"]


def test_only_admins_see_the_audit_log_others_get_a_plain_404(anode: Node) -> None:
    many(anode, 1, "alice")
    for method in ("GET", "POST", "DELETE"):
        hidden = anode.request(method, "/admin/audit", user="alice")
        absent = anode.request(method, "/admin/nothing", user="alice")
        assert hidden.status_code == absent.status_code == 404
        assert hidden.get_data(as_text=True) == absent.get_data(as_text=True).replace(
            "/admin/nothing", "/admin/audit")
        assert dict(hidden.headers) == {**dict(absent.headers),
                                        "Content-Length": hidden.headers["Content-Length"]}
    assert anode.request("POST", "/admin/audit", user="root").status_code == 405
    assert anode.request("GET", "/admin/audit", user=None).status_code == 401


@pytest.mark.parametrize(("params", "status", "message"), [
    ({"since": "yesterday"}, 400, "'yesterday' is no time"),
    ({"limit": "0"}, 400, "limit must be a whole number from 1"),
    ({"limit": "many"}, 400, "limit must be a whole number from 1"),
    ({"limit": "100000"}, 413, "above the largest page"),
    ({"cursor": "not-ours"}, 400, "cursor is not one this server gave out"),
    ({"who": "alice"}, 400, "unknown parameter(s) who"),
])
def test_bad_queries_are_4xx_saying_what_is_wrong(
    anode: Node, params: dict[str, str], status: int, message: str
) -> None:
    response = anode.client.get("/admin/audit", query_string=params, headers=_basic("root"))
    assert response.status_code == status
    assert message in response.get_data(as_text=True)


def test_the_cli_prints_the_log_as_a_table(anode: Node) -> None:
    many(anode, 3, "alice")
    many(anode, 1, "bob")
    env = {"NIMBO_DATA_DIR": str(anode.config.data_dir),
           "NIMBO_DATABASE_URL": anode.config.database_url,
           "NIMBO_REDIS_URL": anode.config.redis_url}
    result = CliRunner().invoke(main, ["audit", "--user", "alice", "--limit", "2"], env=env,
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["TIME", "USER", "ADDRESS", "ACTION", "KIND", "ENTITY", "STATUS",
                                "OPERATIONS"]
    assert [line.split()[1:4] for line in lines[1:3]] == [["alice", "127.0.0.1", "mixin-add"]] * 2
    assert lines[3].startswith("(more records match")
    everything = CliRunner().invoke(main, ["audit", "--since", "1h"], env=env)
    assert len(everything.output.splitlines()) == 1 + 4
    bad = CliRunner().invoke(main, ["audit", "--since", "soon"], env=env)
    assert bad.exit_code != 0 and "'soon' is no time" in bad.output


def test_admin_commands_are_recorded_done_or_refused(anode: Node) -> None:
    env = {"NIMBO_DATA_DIR": str(anode.config.data_dir),
           "NIMBO_DATABASE_URL": anode.config.database_url}
    secret = "carol-Pw-9876543"

    def nimbo(*args: str, stdin: str = "") -> int:
        return CliRunner().invoke(main, list(args), env=env, input=stdin).exit_code

    assert nimbo("users", "add", "carol", stdin=secret + "\n") == 0
    assert nimbo("users", "add", "carol", stdin=secret + "\n") == 1  # exists already
    assert nimbo("users", "passwd", "carol", stdin=secret + "2\n") == 0
    assert nimbo("users", "admin", "carol", "--on") == 0
    assert nimbo("users", "disable", "nobody") == 1
    assert nimbo("quota", "set", "--group", "physics", "cores=8", "memory=16") == 0
    assert nimbo("users", "list") == 0  # reads are not recorded

    found = [r for r in records(anode) if r["method"] == "CLI"]
    assert pick(found, "path", "action", "kind", "entity", "status", "detail") == [
        ("nimbo users add", "create", "user", "carol", 0, "admin=False"),
        ("nimbo users add", "create", "user", "carol", 1, "admin=False"),
        ("nimbo users passwd", "passwd", "user", "carol", 0, ""),
        ("nimbo users admin", "admin", "user", "carol", 0, "on=True"),
        ("nimbo users disable", "disable", "user", "nobody", 1, ""),
        ("nimbo quota set", "set", "quota", "group:physics", 0, "limits=cores=8,memory=16"),
    ]
    assert {(r["source"], r["address"]) for r in found} == {("cli", "local")}
    assert all(r["user"] for r in found)  # the operating-system user who ran it
    assert secret not in json.dumps(found)


# --- nothing lost -----------------------------------------------------------------------


def test_with_redis_down_records_go_straight_to_the_store(
    make_node: NodeFactory, tmp_path: Path
) -> None:
    node = make_node(HOST, redis=f"unix://{tmp_path / 'no-redis.sock'}")
    many(node, 2, "alice")
    with node.store.session() as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 2
    document = audit(node)
    assert "the newest records may be missing" in document["warning"]
    assert [r["action"] for r in document["records"]] == ["mixin-add"] * 2


def entry(n: int) -> Entry:
    return Entry(at=datetime.now(UTC), method="POST", path=f"/t{n}/", action="create",
                 status=201, principal="alice")


def test_a_batch_the_store_refuses_goes_back_in_order(anode: Node, tmp_path: Path) -> None:
    connection = anode.connection
    broken = Store(f"sqlite:///{tmp_path / 'no-schema.sqlite3'}")  # no audit_log table
    failing = AuditLog(broken, connection, anode.config)
    working = AuditLog(anode.store, connection, anode.config)
    for n in range(7):
        working.record(entry(n))

    with pytest.raises(ServiceUnavailable, match="no such table"):
        failing.flush(batch=3)
    assert [json.loads(raw)["path"] for raw in connection.lrange(PENDING, 0, -1)] == [
        f"/t{n}/" for n in range(7)]

    assert working.flush(batch=3) == 7
    assert connection.llen(PENDING) == 0
    with anode.store.session() as session:
        paths = list(session.scalars(select(AuditRecord.path).order_by(AuditRecord.id)))
    assert paths == [f"/t{n}/" for n in range(7)]
    broken.dispose()


def test_the_flusher_moves_records_and_flushes_the_rest_when_stopped(anode: Node) -> None:
    log = AuditLog(anode.store, anode.connection, anode.config.replace(audit_flush_seconds=1))
    log.start()
    try:
        log.record(entry(1))
        deadline = time.monotonic() + 10
        while anode.connection.llen(PENDING) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert anode.connection.llen(PENDING) == 0
        log.record(entry(2))
    finally:
        log.stop()
    assert anode.connection.llen(PENDING) == 0
    with anode.store.session() as session:
        paths = list(session.scalars(select(AuditRecord.path).order_by(AuditRecord.id)))
    assert paths == ["/t1/", "/t2/"]


def test_old_records_are_pruned_after_the_retention(anode: Node) -> None:
    log = AuditLog(anode.store, anode.connection, anode.config.replace(audit_retention_days=30))
    old = entry(1)
    old.at = datetime.now(UTC) - timedelta(days=31)
    log.record(old)
    log.record(entry(2))
    assert log.flush() == 2
    with anode.store.session() as session:
        assert list(session.scalars(select(AuditRecord.path))) == ["/t2/"]
