"""Quotas per user and per group through the whole gateway (SQLite and PostgreSQL): every
resource refused at its limit with a message naming limit, use and request; nothing written on
a refusal; resizes and CDMI overwrites that grow; group sums; deletes that free; the CLI."""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner, Result
from sqlalchemy import func, select

from backends.blobfs import STAGING_DIR
from gateway.cli import main
from gateway.config import Config
from gateway.errors import ConfigurationError, InvalidRequest
from gateway.services.quotas import Quotas, limits_setting, parse_limit
from gateway.services.tenancy import GROUP_ATTRIBUTE
from gateway.store.db import Store
from gateway.store.models import QuotaLimit, User
from occi.http.views import UNREAD_BODY_DRAIN
from tests.gateway.cdmi_client import CONTAINER, VERSION, Cdmi
from tests.gateway.conftest import (
    IMAGE,
    INFRA,
    OS_SCHEME,
    PASSWORD,
    Node,
    NodeFactory,
    basic,
    category,
    compute_categories,
    path_of,
    text_plain,
)
from tests.gateway.served import gunicorn, read_answer
from tests.gateway.test_cdmi import snapshot_of

pytestmark = pytest.mark.redis

HOST = {"host-a": "memory://quota-host?cores=64&memory_mib=131072"}


def sized(cores: int = 1, memory: float = 1.0) -> str:
    return text_plain(compute_categories(),
                      {"occi.compute.cores": cores, "occi.compute.memory": memory})


def storage(size: float) -> str:
    return text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": size})


def network(address: str) -> str:
    return text_plain([category("network", INFRA, "kind"),
                       category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
                      {"occi.network.address": address})


def with_nic(net: str) -> str:
    link = (f'<{path_of(net)}>; rel="{INFRA}network"; '
            f'category="{INFRA}networkinterface"')
    return text_plain(compute_categories(), links=[link])


def set_limits(node: Node, scope: str, name: str, **limits: float | None) -> None:
    with node.store.session(write=True) as session:
        for resource, maximum in limits.items():
            session.merge(QuotaLimit(scope=scope, name=name, resource=resource, maximum=maximum))


def refused(response: Any, message: str) -> None:
    text = response.get_data(as_text=True)
    assert response.status_code == 409, text
    assert message in text, text


def entities(node: Node) -> int:
    return node.count_entities()


@pytest.fixture
def qnode(make_node: NodeFactory) -> Node:
    return make_node(HOST)


# --- each resource at its limit ---------------------------------------------------------

# resource, limit, (kind, body) held first, (kind, body) then asked, message
CASES: list[tuple[str, float, tuple[str, str], tuple[str, str], str]] = [
    ("instances", 1, ("compute", sized()), ("compute", sized()),
     "quota exceeded: instances for user alice: limit 1, in use 1, this request 1"),
    ("cores", 3, ("compute", sized(cores=2)), ("compute", sized(cores=2)),
     "quota exceeded: cores for user alice: limit 3, in use 2, this request 2"),
    ("memory", 3, ("compute", sized(memory=2)), ("compute", sized(memory=1.5)),
     "quota exceeded: memory (GiB) for user alice: limit 3, in use 2, this request 1.5"),
    ("storage", 5, ("storage", storage(3)), ("storage", storage(2.5)),
     "quota exceeded: storage (GiB) for user alice: limit 5, in use 3, this request 2.5"),
]


@pytest.mark.parametrize(("resource", "limit", "held", "asked", "message"), CASES,
                         ids=[case[0] for case in CASES])
def test_each_entity_resource_is_refused_at_its_limit(
    qnode: Node, resource: str, limit: float, held: tuple[str, str], asked: tuple[str, str],
    message: str,
) -> None:
    set_limits(qnode, "user", "alice", **{resource: limit})
    qnode.create(held[0], held[1], user="alice")
    before = entities(qnode)

    refused(qnode.post_text(f"/{asked[0]}/", asked[1], user="alice"), message)

    assert entities(qnode) == before
    qnode.create(asked[0], asked[1], user="bob")  # bob has no such limit


def test_a_request_that_fits_exactly_passes(qnode: Node) -> None:
    set_limits(qnode, "user", "alice", cores=3, memory=3)
    qnode.create("compute", sized(cores=2, memory=2), user="alice")
    qnode.create("compute", sized(cores=1, memory=1), user="alice")
    refused(qnode.post_text("/compute/", sized(cores=1, memory=0.5), user="alice"),
            "cores for user alice: limit 3, in use 3, this request 1")


def test_a_batch_counts_whole(qnode: Node) -> None:
    set_limits(qnode, "user", "alice", instances=2)
    document = {"resources": [
        {"kind": f"{INFRA}compute",
         "mixins": [f"{OS_SCHEME}{IMAGE}"],
         "attributes": {"occi.compute.cores": 1, "occi.compute.memory": 1.0}}
        for _ in range(3)
    ]}
    response = qnode.post_json("/compute/", document, user="alice")
    refused(response, "instances for user alice: limit 2, in use 0, this request 3")
    assert entities(qnode) == 0


def test_public_addresses_count_leases_on_admin_networks_only(qnode: Node) -> None:
    public = qnode.create("network", network("192.0.2.0/24"), user="root")
    private = qnode.create("network", network("10.9.0.0/24"), user="alice")
    set_limits(qnode, "user", "root", public_addresses=1)
    set_limits(qnode, "user", "alice", public_addresses=0)
    qnode.create("compute", with_nic(public), user="root")
    before = entities(qnode)

    refused(qnode.post_text("/compute/", with_nic(public), user="root"),
            "quota exceeded: public_addresses for user root: limit 1, in use 1, this request 1")

    assert entities(qnode) == before
    # alice's own network is not public: her limit of 0 does not stop her
    qnode.create("compute", with_nic(private), user="alice")


def test_an_interface_link_made_later_is_counted_too(qnode: Node) -> None:
    public = qnode.create("network", network("192.0.2.0/24"), user="root")
    compute = qnode.create("compute", sized(), user="root")
    set_limits(qnode, "user", "root", public_addresses=0)
    body = text_plain([category("networkinterface", INFRA, "kind")],
                      {"occi.core.source": path_of(compute), "occi.core.target": path_of(public)})

    refused(qnode.post_text("/networkinterface/", body),
            "public_addresses for user root: limit 0, in use 0, this request 1")


# --- growth of what exists ----------------------------------------------------------------


def test_a_storage_resize_over_the_limit_is_refused_and_changes_nothing(qnode: Node) -> None:
    set_limits(qnode, "user", "alice", storage=4)
    volume = qnode.create("storage", storage(2), user="alice")
    grow = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 5})

    refused(qnode.post_text(path_of(volume), grow, user="alice"),
            "storage (GiB) for user alice: limit 4, in use 2, this request 3")

    row = qnode.row(volume)
    assert row is not None and row.attributes["occi.storage.size"] == 2
    fits = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 4})
    assert qnode.post_text(path_of(volume), fits, user="alice").status_code == 200


def test_a_compute_resize_over_the_limit_is_refused(qnode: Node) -> None:
    set_limits(qnode, "user", "alice", cores=2)
    compute = qnode.create("compute", sized(cores=1), user="alice")
    bigger = text_plain([category("compute", INFRA, "kind")], {"occi.compute.cores": 3})

    refused(qnode.post_text(path_of(compute), bigger, user="alice"),
            "cores for user alice: limit 2, in use 1, this request 2")

    row = qnode.row(compute)
    assert row is not None and row.cores == 1


def test_shrinking_passes_under_a_lowered_limit(qnode: Node) -> None:
    compute = qnode.create("compute", sized(cores=4), user="alice")
    set_limits(qnode, "user", "alice", cores=2)
    smaller = text_plain([category("compute", INFRA, "kind")], {"occi.compute.cores": 3})
    assert qnode.post_text(path_of(compute), smaller, user="alice").status_code == 200
    refused(qnode.post_text("/compute/", sized(cores=1), user="alice"),
            "cores for user alice: limit 2, in use 3, this request 1")


# --- groups -------------------------------------------------------------------------------


@pytest.fixture
def physics(qnode: Node) -> Node:
    """alice and bob are members of the group physics."""
    with qnode.store.session(write=True) as session:
        for name in ("alice", "bob"):
            user = session.get(User, name)
            assert user is not None
            user.groups = ["physics"]
    return qnode


def grouped(cores: int, group: str | None = "physics") -> str:
    attributes: dict[str, Any] = {"occi.compute.cores": cores, "occi.compute.memory": 1.0}
    if group:
        attributes[GROUP_ATTRIBUTE] = group
    return text_plain(compute_categories(), attributes)


def test_a_group_quota_caps_the_sum_over_its_members(physics: Node) -> None:
    set_limits(physics, "group", "physics", cores=3)
    mine = physics.create("compute", grouped(2), user="alice")
    before = entities(physics)

    refused(physics.post_text("/compute/", grouped(2), user="bob"),
            "quota exceeded: cores for group physics: limit 3, in use 2, this request 2")

    assert entities(physics) == before
    physics.create("compute", grouped(2, group=None), user="bob")  # private: not the group's
    physics.create("compute", grouped(1), user="bob")
    refused(physics.post_text("/compute/", grouped(1), user="alice"),
            "cores for group physics: limit 3, in use 3, this request 1")
    assert physics.request("DELETE", path_of(mine), user="alice").status_code == 200
    physics.run_jobs()
    physics.create("compute", grouped(2), user="bob")


def test_group_defaults_apply_to_every_group(make_node: NodeFactory) -> None:
    node = make_node(HOST, quota_group_defaults={"instances": 1})
    with node.store.session(write=True) as session:
        for name in ("alice", "bob"):
            user = session.get(User, name)
            assert user is not None
            user.groups = ["physics", "chemistry"]
    node.create("compute", grouped(1), user="alice")
    node.create("compute", grouped(1, group="chemistry"), user="alice")
    refused(node.post_text("/compute/", grouped(1), user="bob"),
            "instances for group physics: limit 1, in use 1, this request 1")


def test_moving_an_entity_into_a_group_counts_all_it_holds(physics: Node) -> None:
    set_limits(physics, "group", "physics", cores=3)
    physics.create("compute", grouped(2), user="alice")
    private = physics.create("compute", grouped(2, group=None), user="bob")
    regroup = text_plain([category("compute", INFRA, "kind")], {GROUP_ATTRIBUTE: "physics"})

    refused(physics.post_text(path_of(private), regroup, user="bob"),
            "cores for group physics: limit 3, in use 2, this request 2")

    row = physics.row(private)
    assert row is not None and row.group is None


def test_a_group_byte_quota_spans_its_members_containers(physics: Node) -> None:
    set_limits(physics, "group", "physics", cdmi_bytes=100)
    alice, bob = Cdmi(physics, "alice"), Cdmi(physics, "bob")
    alice.mkdir("a/", {"metadata": {GROUP_ATTRIBUTE: "physics"}})
    bob.mkdir("b/", {"metadata": {GROUP_ATTRIBUTE: "physics"}})
    assert alice.put("a/x", {"value": "x" * 60}).status_code == 201
    before = snapshot_of(physics)

    refused(bob.put("b/y", {"value": "y" * 41}),
            "quota exceeded: cdmi_bytes for group physics: limit 100, in use 60, this request 41")

    assert snapshot_of(physics) == before
    bob.mkdir("mine/")
    assert bob.put("mine/y", {"value": "y" * 41}).status_code == 201  # not the group's


def test_moving_a_cdmi_object_into_a_group_counts_its_bytes(physics: Node) -> None:
    set_limits(physics, "group", "physics", cdmi_bytes=100)
    alice, bob = Cdmi(physics, "alice"), Cdmi(physics, "bob")
    alice.mkdir("a/", {"metadata": {GROUP_ATTRIBUTE: "physics"}})
    assert alice.put("a/x", {"value": "x" * 60}).status_code == 201
    bob.mkdir("mine/")
    assert bob.put("mine/y", {"value": "y" * 41}).status_code == 201  # private
    before = snapshot_of(physics)

    refused(bob.put("mine/y", {"metadata": {GROUP_ATTRIBUTE: "physics"}}),
            "quota exceeded: cdmi_bytes for group physics: limit 100, in use 60, this request 41")

    assert snapshot_of(physics) == before  # still private
    assert bob.put("mine/z", {"value": "z" * 40}).status_code == 201
    assert bob.put("mine/z", {"metadata": {GROUP_ATTRIBUTE: "physics"}}).status_code == 204


# --- freeing, defaults, overrides, admins -------------------------------------------------


def test_deleting_frees_quota_once_carried_out(qnode: Node) -> None:
    set_limits(qnode, "user", "alice", instances=1, cores=1)
    compute = qnode.create("compute", sized(), user="alice")
    qnode.run_jobs()
    assert qnode.request("DELETE", path_of(compute), user="alice").status_code == 200

    refused(qnode.post_text("/compute/", sized(), user="alice"),  # still on the host
            "instances for user alice: limit 1, in use 1, this request 1")
    qnode.run_jobs()

    qnode.create("compute", sized(), user="alice")


def test_defaults_apply_to_everyone_and_an_override_wins(make_node: NodeFactory) -> None:
    node = make_node(HOST, quota_user_defaults={"cores": 1})
    set_limits(node, "user", "bob", cores=None)  # unlimited for bob
    set_limits(node, "user", "alice", cores=2)
    node.create("compute", sized(cores=2), user="alice")
    node.create("compute", sized(cores=4), user="bob")
    node.create("compute", sized(cores=1), user="root")

    refused(node.post_text("/compute/", sized(cores=1), user="root"),
            "cores for user root: limit 1, in use 1, this request 1")


def test_admins_are_exempt_only_when_the_setting_says_so(make_node: NodeFactory) -> None:
    node = make_node(HOST, quota_user_defaults={"instances": 0}, quota_exempt_admins=True)
    node.create("compute", sized(), user="root")
    refused(node.post_text("/compute/", sized(), user="alice"),
            "instances for user alice: limit 0, in use 0, this request 1")


# --- CDMI bytes ---------------------------------------------------------------------------


@pytest.fixture
def cdmi(qnode: Node) -> Cdmi:
    c = Cdmi(qnode)
    c.mkdir("box/")
    set_limits(qnode, "user", "alice", cdmi_bytes=100)
    return c


def test_a_cdmi_object_over_the_byte_quota_leaves_no_object_and_no_blob(cdmi: Cdmi) -> None:
    assert cdmi.put("box/a", {"value": "x" * 60}).status_code == 201
    before = snapshot_of(cdmi.node)

    response = cdmi.put("box/b", {"value": "y" * 41})

    assert response.status_code == 409
    assert ("quota exceeded: cdmi_bytes for user alice: limit 100, in use 60, this request 41"
            in json.loads(response.get_data())["error"]["description"])
    assert snapshot_of(cdmi.node) == before
    assert cdmi.get("box/b").status_code == 404
    assert cdmi.put("box/b", {"value": "y" * 40}).status_code == 201


def test_an_overwrite_counts_only_what_it_grows(cdmi: Cdmi) -> None:
    assert cdmi.put("box/a", {"value": "x" * 90}).status_code == 201
    assert cdmi.put("box/a", {"value": "z" * 100}).status_code == 204
    before = snapshot_of(cdmi.node)

    response = cdmi.put("box/a", {"value": "w" * 101})

    assert response.status_code == 409
    assert "in use 100, this request 1" in response.get_data(as_text=True)
    assert snapshot_of(cdmi.node) == before
    assert cdmi.read("box/a")["value"] == "z" * 100


def test_plain_http_and_id_only_uploads_are_counted(cdmi: Cdmi) -> None:
    assert cdmi.request("PUT", "box/p", data=b"\0" * 70,
                        headers={"Content-Type": "application/octet-stream"}).status_code == 201
    before = snapshot_of(cdmi.node)

    plain = cdmi.request("PUT", "box/q", data=b"\0" * 31,
                         headers={"Content-Type": "application/octet-stream"})
    by_id = cdmi.request("POST", "cdmi_objectid/", data=b"\0" * 31,
                         headers={"Content-Type": "application/octet-stream"})

    refused(plain, "limit 100, in use 70, this request 31")
    refused(by_id, "limit 100, in use 70, this request 31")
    assert snapshot_of(cdmi.node) == before


# --- uploads of a known length are refused before their body is read ----------------------


class Watched(io.BytesIO):
    """A request body (the test client's wsgi.input) that notes whether anything read it
    (the test client only measures it with tell and seek)."""

    touched = False

    def read(self, size: int | None = -1) -> bytes:
        self.touched = True
        return super().read(size)

    def read1(self, size: int | None = -1) -> bytes:
        self.touched = True
        return super().read1(size)

    def readinto(self, buffer: Any) -> int:
        self.touched = True
        return super().readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        self.touched = True
        return super().readline(size)


OCTETS = {"Content-Type": "application/octet-stream"}


def upload(c: Cdmi, method: str, path: str, body: Watched, length: int | None,
           **headers: str) -> Any:
    """A plain-HTTP upload of ``body``, with its Content-Length (``length``: None, chunked
    instead)."""
    assert length is None or length == len(body.getvalue())
    if length is None:
        return c.request(method, path, input_stream=body, environ_overrides={
            "wsgi.input_terminated": True}, headers={**OCTETS, "Transfer-Encoding": "chunked",
                                                     **headers})
    return c.request(method, path, input_stream=body, headers={**OCTETS, **headers})


def staging(node: Node) -> list[Path]:
    return list((Path(node.config.effective_blob_dir) / STAGING_DIR).iterdir())


# Longer than the bound to which a refused request's body is drained before the answer (so
# that the connection can serve another request): such a body is read by nobody if the
# service refuses it before reading.
BIG = UNREAD_BODY_DRAIN + 1


def test_an_upload_over_the_quota_is_refused_before_its_body_is_read(cdmi: Cdmi) -> None:
    assert cdmi.request("PUT", "box/p", data=b"\0" * 70, headers=OCTETS).status_code == 201
    before = snapshot_of(cdmi.node)
    cases = [  # method, path, Content-Length, more headers, what it grows alice by
        ("PUT", "box/q", BIG, {}, BIG),  # a new object
        ("PUT", "box/p", BIG, {}, BIG - 70),  # a whole overwrite
        ("PUT", "box/p", BIG, {"Content-Range": f"bytes 80-{80 + BIG - 1}/{80 + BIG}"},
         80 + BIG - 70),  # a range write past the end
        ("POST", "box/", BIG, {}, BIG),  # a server-named child
        ("POST", "cdmi_objectid/", BIG, {}, BIG),  # an object by ID only
    ]
    for method, path, length, more, growth in cases:
        body = Watched(bytes(length))

        response = upload(cdmi, method, path, body, length, **more)

        # the 409 and message of the check after staging (see the chunked test below)
        refused(response, "quota exceeded: cdmi_bytes for user alice: limit 100, in use 70, "
                          f"this request {growth}")
        assert not body.touched, (method, path, more)
        assert snapshot_of(cdmi.node) == before
        assert staging(cdmi.node) == []
    small = Watched(b"\0" * 31)  # refused alike; then drained (not staged) for keep-alive
    refused(upload(cdmi, "PUT", "box/q", small, 31), "in use 70, this request 31")
    assert snapshot_of(cdmi.node) == before
    fits = Watched(b"\1" * 30)
    assert upload(cdmi, "PUT", "box/q", fits, 30).status_code == 201
    assert fits.touched and cdmi.request("GET", "box/q").get_data() == b"\1" * 30


def test_a_group_byte_quota_refuses_an_upload_before_its_body_is_read(physics: Node) -> None:
    set_limits(physics, "group", "physics", cdmi_bytes=100)
    alice, bob = Cdmi(physics, "alice"), Cdmi(physics, "bob")
    alice.mkdir("a/", {"metadata": {GROUP_ATTRIBUTE: "physics"}})
    bob.mkdir("b/", {"metadata": {GROUP_ATTRIBUTE: "physics"}})
    assert alice.request("PUT", "a/x", data=b"x" * 60, headers=OCTETS).status_code == 201
    before = snapshot_of(physics)
    body = Watched(bytes(BIG))

    response = upload(bob, "PUT", "b/y", body, BIG)  # in a container of the group: its bytes

    refused(response, "quota exceeded: cdmi_bytes for group physics: limit 100, in use 60, "
                      f"this request {BIG}")
    assert not body.touched
    assert snapshot_of(physics) == before
    assert upload(bob, "PUT", "b/y", Watched(b"y" * 40), 40).status_code == 201


def test_a_chunked_upload_over_the_quota_is_refused_after_staging(cdmi: Cdmi) -> None:
    """Without a Content-Length the size is known once the body is read and staged: the
    check in the write transaction refuses it and the staged value is discarded."""
    assert cdmi.request("PUT", "box/p", data=b"\0" * 70, headers=OCTETS).status_code == 201
    before = snapshot_of(cdmi.node)
    for method, path in (("PUT", "box/q"), ("POST", "cdmi_objectid/")):
        body = Watched(b"\0" * 31)

        response = upload(cdmi, method, path, body, None)

        refused(response, "limit 100, in use 70, this request 31")
        assert body.touched
        assert snapshot_of(cdmi.node) == before
        assert staging(cdmi.node) == []


def test_over_a_real_server_the_refusal_comes_before_the_body_is_sent(
    tmp_path: Path, redis_url: str
) -> None:
    """gunicorn as nimbo serve runs it: a PUT announcing 64 MiB past a 1 MiB quota is
    answered while the client has sent its head only. Were the body read first, the
    answer would never come (the client sends none) and the read would time out."""
    with gunicorn(tmp_path, redis_url) as served:
        store = Store(served.database)
        with store.session(write=True) as session:
            session.add(QuotaLimit(scope="user", name="alice", resource="cdmi_bytes",
                                   maximum=float(1 << 20)))
        store.dispose()
        made = requests.put(f"{served.url}/cdmi/box/", data="{}", timeout=10,
                            auth=("alice", PASSWORD),
                            headers={**VERSION, "Content-Type": CONTAINER})
        assert made.status_code == 201, made.text
        blobs = served.data_dir / "blobs"
        files = sorted(p for p in blobs.rglob("*") if p.is_file())
        head = (b"PUT /cdmi/box/big HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: "
                + basic("alice")["Authorization"].encode()
                + b"\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n"
                % (64 << 20))
        with served.connect() as connection:
            connection.sendall(head)  # and not one byte of the body
            answer = read_answer(connection)

        assert answer.status == 409, answer.raw
        assert ("quota exceeded: cdmi_bytes for user alice: limit 1048576, in use 0, this "
                "request 67108864") in answer.text
        assert sorted(p for p in blobs.rglob("*") if p.is_file()) == files
        assert list((blobs / STAGING_DIR).iterdir()) == []
        gone = requests.get(f"{served.url}/cdmi/box/big", auth=("alice", PASSWORD), timeout=10)
        assert gone.status_code == 404


def test_range_writes_count_what_they_add_past_the_end(cdmi: Cdmi) -> None:
    assert cdmi.put("box/r", {"value": "0" * 90}).status_code == 201
    inside = base64.b64encode(b"XY").decode()
    assert cdmi.put("box/r?value:3-4", {"valuetransferencoding": "base64",
                                        "value": inside}).status_code == 204
    before = snapshot_of(cdmi.node)

    past = base64.b64encode(b"!").decode()
    by_cdmi = cdmi.put("box/r?value:100-100", {"valuetransferencoding": "base64",
                                               "value": past})
    by_http = cdmi.request("PUT", "box/r", data=b"Z" * 12,
                           headers={"Content-Range": "bytes 89-100/101",
                                    "Content-Type": "application/octet-stream"})

    refused(by_cdmi, "limit 100, in use 90, this request 11")
    refused(by_http, "limit 100, in use 90, this request 11")
    assert snapshot_of(cdmi.node) == before
    assert cdmi.request("PUT", "box/r", data=b"Z" * 11,
                        headers={"Content-Range": "bytes 89-99/100",
                                 "Content-Type": "application/octet-stream"}).status_code == 204


def test_a_copy_is_counted(cdmi: Cdmi) -> None:
    assert cdmi.put("box/a", {"value": "x" * 60}).status_code == 201
    before = snapshot_of(cdmi.node)

    response = cdmi.put("box/copy", {"copy": "/cdmi/box/a"})

    refused(response, "limit 100, in use 60, this request 60")
    assert snapshot_of(cdmi.node) == before


def test_deleting_a_cdmi_object_frees_its_bytes(cdmi: Cdmi) -> None:
    assert cdmi.put("box/a", {"value": "x" * 100}).status_code == 201
    assert cdmi.put("box/b", {"value": "y"}).status_code == 409
    assert cdmi.request("DELETE", "box/a").status_code == 204
    assert cdmi.put("box/b", {"value": "y" * 100}).status_code == 201


# --- settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("value", [{"cpus": 1}, {"cores": -1}, {"cores": 1.5}, {"cores": "2"},
                                   {"memory": True}])
def test_bad_default_limits_are_configuration_errors(value: Mapping[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        limits_setting("quota_user_defaults", value)


def test_quota_settings_read_from_the_environment_as_json() -> None:
    config = Config({"quota_group_defaults": '{"memory": 64.5, "cdmi_bytes": 1073741824}'})
    assert Quotas(config).defaults["group"] == {"memory": 64.5, "cdmi_bytes": 1 << 30}


@pytest.mark.parametrize(("resource", "text", "limit"), [
    ("cores", "20", 20), ("memory", "1.5", 1.5), ("cdmi_bytes", "10G", 10 << 30),
    ("cdmi_bytes", "512k", 512 << 10), ("storage", "unlimited", None),
])
def test_limits_as_the_cli_reads_them(resource: str, text: str, limit: float | None) -> None:
    assert parse_limit(resource, text) == limit


@pytest.mark.parametrize(("resource", "text"), [("cpus", "1"), ("cores", "many"),
                                                ("cores", "2.5"), ("memory", "-1"),
                                                ("instances", "10G")])
def test_bad_limits_on_the_cli_are_refused(resource: str, text: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_limit(resource, text)


# --- the command line ---------------------------------------------------------------------


def nimbo(node: Node, *args: str) -> Result:
    env = {"NIMBO_DATA_DIR": str(node.config.data_dir),
           "NIMBO_DATABASE_URL": node.config.database_url,
           "NIMBO_QUOTA_USER_DEFAULTS": json.dumps({"instances": 5})}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_cli_sets_shows_and_unsets_a_user_quota(qnode: Node) -> None:
    qnode.create("compute", sized(cores=2, memory=1.5), user="alice")

    result = nimbo(qnode, "quota", "set", "--user", "alice", "cores=3", "memory=unlimited")
    assert result.exit_code == 0, result.output
    assert "quota of user alice: cores=3, memory=unlimited" in result.output
    refused(qnode.post_text("/compute/", sized(cores=2), user="alice"),
            "cores for user alice: limit 3, in use 2, this request 2")

    shown = nimbo(qnode, "quota", "show", "--user", "alice")
    assert shown.exit_code == 0, shown.output
    table = {line.split()[0]: line.split()[1:] for line in shown.output.splitlines()[2:]}
    assert table["cores"] == ["3", "set", "2"]
    assert table["memory"] == ["(GiB)", "unlimited", "set", "1.5"]
    assert table["instances"] == ["5", "default", "1"]
    assert table["storage"] == ["(GiB)", "unlimited", "0"]

    listing = nimbo(qnode, "quota", "show")
    assert "user defaults: instances=5" in listing.output
    assert "group defaults: none (unlimited)" in listing.output
    assert "user alice" in listing.output and "user bob" not in listing.output

    removed = nimbo(qnode, "quota", "unset", "--user", "alice", "cores")
    assert removed.exit_code == 0 and "1 limit(s) removed" in removed.output
    qnode.create("compute", sized(cores=2), user="alice")
    with qnode.store.session() as session:
        left = session.scalars(select(QuotaLimit.resource)).all()
    assert left == ["memory"]


def test_cli_group_quota_and_unset_all(qnode: Node) -> None:
    assert nimbo(qnode, "quota", "set", "--group", "physics", "cdmi_bytes=1M",
                 "instances=4").exit_code == 0
    shown = nimbo(qnode, "quota", "show", "--group", "physics")
    assert "group physics" in shown.output
    assert "1048576" in shown.output
    assert nimbo(qnode, "quota", "unset", "--group", "physics").output.startswith(
        "quota of group physics: 2 limit(s) removed")
    with qnode.store.session() as session:
        assert session.scalar(select(func.count()).select_from(QuotaLimit)) == 0


@pytest.mark.parametrize(("args", "error"), [
    (["set", "cores=1"], "exactly one of --user and --group"),
    (["set", "--user", "a", "--group", "g", "cores=1"], "exactly one of --user and --group"),
    (["set", "--user", "alice", "cores"], "write RESOURCE=LIMIT"),
    (["set", "--user", "alice", "cpus=2"], "unknown resource 'cpus'"),
    (["set", "--user", "alice", "cores=lots"], "not a number or 'unlimited'"),
    (["unset", "--user", "alice", "cpus"], "unknown resource(s) cpus"),
])
def test_cli_refuses_bad_input_and_writes_nothing(qnode: Node, args: list[str],
                                                  error: str) -> None:
    result = nimbo(qnode, "quota", *args)
    assert result.exit_code != 0
    assert error in result.output
    with qnode.store.session() as session:
        assert session.scalar(select(func.count()).select_from(QuotaLimit)) == 0

