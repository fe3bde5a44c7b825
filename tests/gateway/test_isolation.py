"""The isolation matrix: every OCCI and CDMI route and verb, asked by six principals of
things alice owns, under the group policies ``read`` and ``full``.

- alice owns the things; most are in her group ``physics`` (the default group of a user in
  exactly one group under ``tenancy_default_group = "primary"``), some are private;
- carol is in ``physics``: she reads what is shared under both policies and changes it only
  under ``full`` (403 under ``read``: she sees it, a 404 would lie); private things are as
  absent for her as for bob;
- bob is in no group: for him everything of alice's is absent. His answer is compared with
  the answer to the same request naming an id (or name) that exists nowhere: the same status
  and, once the two ids are blanked, the same body (nothing tells the two apart);
- root is an admin: everything, like the owner;
- two Keystone v3 tokens scoped to a project act only inside its group
  (gateway.services.tenancy.in_scope): alice's, scoped to ``physics``, has her rights on what
  is in physics (but moving it out of the group, 403) and finds her private things absent;
  carol's, scoped to ``chemistry`` (her other group), finds everything of alice's absent, as
  bob does, though carol herself is in physics. What these tokens make of their own (a
  compute to link from, a container to copy into) they make with the token, in its group.
  Every principal for whom a thing is absent gets the answer of an unknown id (twin).

Each case is one row of :data:`CASES`; a case makes fresh things for each principal (so that
a delete by one does not decide another's answer). One gateway per policy serves every case
(in-process app, SQLite, memory host, real redis); nothing is provisioned unless a case needs a
worker (the console).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from werkzeug.test import TestResponse

from backends.memory import MemoryDriver, reset_memory_hosts
from cdmi import objectid
from gateway.app import Nimbo, create_app
from gateway.config import Config
from gateway.runtime import WorkerContext, install
from gateway.services.catalog import bump_catalog
from gateway.services.mixins import register_image
from gateway.store.models import EntityRow, Image, User
from tests.auth.keystone import stored
from tests.auth.test_keystone_scope import v3_token
from tests.gateway.cdmi_client import CONTAINER, OBJECT, VERSION
from tests.gateway.conftest import (
    IMAGE,
    INFRA,
    USERS,
    Node,
    _password_hash,
    category,
    compute_categories,
    entity_id,
    path_of,
    text_plain,
)
from tests.services import RedisServer

pytestmark = pytest.mark.redis

ALICE, CAROL, BOB, ROOT = "alice", "carol", "bob", "root"
ALICE_SCOPED, CAROL_SCOPED = "alice@physics", "carol@chemistry"  # tokens scoped to a project
# the refused first: their requests must change nothing
ACTORS = (BOB, CAROL_SCOPED, CAROL, ALICE_SCOPED, ALICE, ROOT)
OUTSIDERS = (BOB, CAROL_SCOPED)  # nothing of alice's exists for them
GROUP, OTHER = "physics", "chemistry"
SCOPES = {ALICE_SCOPED: (ALICE, GROUP), CAROL_SCOPED: (CAROL, OTHER)}
TAGS = "http://example.org/tags#"
HOST = "memory://isolation?cores=4096&memory_mib=8388608"
TEXT = {"Content-Type": "text/plain", "Accept": "text/plain"}
NETIF, STORAGELINK = f"{INFRA}networkinterface", f"{INFRA}storagelink"


# --- the world: one gateway per policy ------------------------------------------------------


@dataclass
class World:
    node: Node
    policy: str
    serial: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # of the actors in SCOPES

    def request(
        self,
        actor: str,
        method: str,
        path: str,
        data: str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> TestResponse:
        """A request of ``actor``: Basic credentials, or the actor's scoped token."""
        if actor in self.tokens:
            headers = {"X-Auth-Token": self.tokens[actor], **(headers or {})}
            return self.node.request(method, path, user=None, data=data, headers=headers)
        return self.node.request(method, path, user=actor, data=data, headers=headers)

    def name(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}x{uuid.uuid4().hex[:6]}"

    def send(self, actor: str, req: Req) -> TestResponse:
        def call() -> TestResponse:
            return self.request(actor, req.method, req.path, req.body, req.headers)

        return self.node.while_working(call) if req.work else call()

    # things, made by ``user`` (alice unless said); ``group``: None for the user's default

    def compute(
        self,
        user: str = ALICE,
        *,
        group: str | None = None,
        links: tuple[str, ...] = (),
        image: str = IMAGE,
    ) -> str:
        attrs = {"occi.core.title": self.name("c")}
        if group is not None:
            attrs["org.nimbostratus.group"] = group
        body = text_plain(compute_categories(image=image), attrs, links)
        return self._create("/compute/", body, user)

    def storage(self, user: str = ALICE, *, group: str | None = None) -> str:
        attrs: dict[str, Any] = {"occi.storage.size": 1.0}
        if group is not None:
            attrs["org.nimbostratus.group"] = group
        return self._create(
            "/storage/", text_plain([category("storage", INFRA, "kind")], attrs), user
        )

    def network(self, user: str = ALICE) -> str:
        self.serial += 1
        body = text_plain(
            [
                category("network", INFRA, "kind"),
                category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin"),
            ],
            {"occi.network.address": f"10.{self.serial // 250}.{self.serial % 250}.0/24"},
        )
        return self._create("/network/", body, user)

    def link(self, kind: str, source: str, target: str, user: str = ALICE) -> str:
        body = text_plain(
            [category(kind, INFRA, "kind")],
            {"occi.core.source": source, "occi.core.target": target},
        )
        return self._create(f"/{kind}/", body, user)

    def tag(self, *tagged: str, user: str = ALICE) -> tuple[str, str]:
        """A user mixin of ``user`` (its term and location) holding ``tagged``."""
        term = self.name("tag")
        location = f"/{term}/"
        body = f'Category: {term}; scheme="{TAGS}"; class="mixin"; location="{location}"\r\n'
        assert self.request(user, "POST", "/-/", body, TEXT).status_code == 200
        if tagged:
            response = self.request(
                user,
                "POST",
                location,
                headers={"X-OCCI-Location": ", ".join(tagged), "Content-Type": "text/occi"},
            )
            assert response.status_code == 200, response.get_data(as_text=True)
        return term, location

    def image(self, owner: str = ALICE, group: str | None = GROUP) -> str:
        """A saved image of ``owner`` (as the save action leaves one), in ``group``."""
        term = self.name("img")
        with self.node.store.session(write=True) as session:
            session.add(
                Image(term=term, title=term, source="", owner=owner, group=group, state="ready")
            )
            bump_catalog(session)
        return term

    def container(self, user: str = ALICE, *, group: str | None = None) -> str:
        """A CDMI container of ``user`` in the root (``dir<n>/``) holding a data object
        ``doc``."""
        name = self.name("dir") + "/"
        body: dict[str, Any] = {}
        if group is not None:
            body["metadata"] = {"org.nimbostratus.group": group}
        self._cdmi(user, "PUT", name, body, CONTAINER, 201)
        self._cdmi(user, "PUT", name + "doc", {"value": "secret"}, OBJECT, 201)
        return name

    def object_id(self, path: str) -> str:
        response = self.node.get(f"/cdmi/{path}", user=ROOT, headers=VERSION)
        assert response.status_code == 200, response.get_data(as_text=True)
        return str(json.loads(response.get_data())["objectID"])

    def row(self, location: str) -> EntityRow | None:
        return self.node.row(location)

    def _create(self, collection: str, body: str, user: str) -> str:
        response = self.request(user, "POST", collection, body, {"Content-Type": "text/plain"})
        assert response.status_code == 201, response.get_data(as_text=True)
        return path_of(response.headers["Location"])

    def _cdmi(self, user: str, method: str, path: str, body: Any, media: str, status: int) -> None:
        response = self.request(
            user,
            method,
            f"/cdmi/{path}",
            json.dumps(body),
            {**VERSION, "Content-Type": media, "Accept": media},
        )
        assert response.status_code == status, response.get_data(as_text=True)


def _build(redis_server: RedisServer, directory: Path, policy: str) -> Iterator[World]:
    """A gateway as ``make_node`` builds one, for a whole module: users, groups, an image and
    one memory host."""
    with redis_server.client() as client:
        client.flushall()
    config = Config(
        {
            "data_dir": str(directory),
            "redis_url": redis_server.url,
            "database_url": f"sqlite:///{directory / 'nimbo.sqlite3'}",
            "host_name": "host-a",
            "job_retries": 0,
            "log_level": "WARNING",
            "group_policy": policy,
            "tenancy_default_group": "primary",
            "auth_methods": "local,token",
        }
    )
    app = create_app(config)
    nimbo: Nimbo = app.extensions["nimbostratus"]
    with nimbo.store.session(write=True) as session:
        for name, is_admin in {**USERS, CAROL: False}.items():
            session.add(User(name=name, password_hash=_password_hash(), is_admin=is_admin))
        session.flush()
        session.execute(update(User).where(User.name == ALICE).values(groups=[GROUP]))
        session.execute(update(User).where(User.name == CAROL).values(groups=[GROUP, OTHER]))
    image = directory / f"{IMAGE}.qcow2"
    image.write_bytes(b"QFI\xfb" + bytes(4092))
    register_image(nimbo.store, IMAGE, str(image), title="Debian 12")
    context = WorkerContext(store=nimbo.store, config=config)
    install(context)
    node = Node(app, config, nimbo, nimbo.queue.connection, context, directory)
    reset_memory_hosts()
    node.register_host("host-a", HOST)
    tokens = {actor: v3_token(node, user, project) for actor, (user, project) in SCOPES.items()}
    try:
        yield World(node, policy, tokens=tokens)
    finally:
        install(None)
        context.close()
        node.connection.close()
        nimbo.store.dispose()
        reset_memory_hosts()
        with redis_server.client() as client:
            client.flushall()


@pytest.fixture(scope="module", params=["read", "full"])
def world(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[World]:
    policy: str = request.param
    yield from _build(redis_server, tmp_path_factory.mktemp(f"isolation-{policy}"), policy)


# --- cases ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Req:
    """One request of a case. ``secret`` is the id or name of alice's thing in it: the twin
    request names an unknown one of the same shape instead."""

    method: str
    path: str
    body: str | bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    secret: str = ""
    work: bool = False  # answered by the host's worker (a console read)
    target: str = ""  # what "listed" and "affected" cases look for


Maker = Callable[[World, str], Req]

STATUS, LISTED, AFFECTED, UNIFORM = "status", "listed", "affected", "uniform"
SHARED = "shared"


@dataclass(frozen=True)
class Case:
    """``ok``: the status of those allowed. ``write``: changing (else reading) the thing.

    ``check``: STATUS (the allowed get ``ok``, a read-only member 403, the others
    ``hidden``); LISTED (a listing: ``ok``, ``target`` in it for those who see it);
    AFFECTED (a collection-wide write: ``ok``, and ``target`` changed for those who may change
    it); UNIFORM (the same answer for everyone: nothing of alice's is involved). A LISTED or
    AFFECTED case whose ``route`` is SHARED is itself one of alice's shared things (a user
    mixin, a container): bob gets ``hidden`` there."""

    name: str
    make: Maker
    ok: int
    write: bool = False
    check: str = STATUS
    hidden: int = 404
    shared: bool = True  # alice's thing is in her group (else private: carol is an outsider)
    owner_only: bool = False  # even a member under "full" may not (changing the group)
    twin: bool = True  # compare bob's answer with the answer for an unknown id
    affected: Callable[[World, Req], bool] | None = None
    route: str = "public"


def sees(case: Case, actor: str) -> bool:
    return actor in (ALICE, ROOT) or (actor in (CAROL, ALICE_SCOPED) and case.shared)


def may_change(case: Case, actor: str, policy: str) -> bool:
    if actor in (ALICE, ROOT):
        return True
    if actor == ALICE_SCOPED:  # the owner-only case takes the thing out of the token's group
        return case.shared and not case.owner_only
    return actor == CAROL and case.shared and policy == "full" and not case.owner_only


def expected_status(case: Case, actor: str, policy: str) -> int:
    if case.check == UNIFORM:
        return case.ok
    if case.check in (LISTED, AFFECTED):
        return case.hidden if case.route == SHARED and actor in OUTSIDERS else case.ok
    if not sees(case, actor):
        return case.hidden
    if case.write or case.owner_only:
        return case.ok if may_change(case, actor, policy) else 403
    return case.ok


# OCCI requests ------------------------------------------------------------------------------


def get(path: str, secret: str = "", **more: Any) -> Req:
    return Req("GET", path, headers={"Accept": "text/plain"}, secret=secret, **more)


def post(path: str, body: str, secret: str = "", method: str = "POST", **more: Any) -> Req:
    return Req(method, path, body, TEXT, secret=secret, **more)


def title(kind: str) -> str:
    return text_plain([category(kind, INFRA, "kind")], {"occi.core.title": "renamed"})


def action(kind: str, term: str) -> str:
    return text_plain([category(term, f"{INFRA[:-1]}/{kind}/action#", "action")])


def made(world: World, kind: str) -> str:
    """A fresh thing of alice's of ``kind`` (a resource or a link kind), in her group."""
    if kind == "compute":
        return world.compute()
    if kind == "storage":
        return world.storage()
    if kind == "network":
        return world.network()
    compute = world.compute()
    target = world.network() if kind == "networkinterface" else world.storage()
    return world.link(kind, compute, target)


def entity_rows(kind: str) -> list[Case]:
    def at(world: World) -> tuple[str, str]:
        location = made(world, kind)
        return location, entity_id(location)

    def read(world: World, actor: str) -> Req:
        location, secret = at(world)
        return get(location, secret)

    def update_(world: World, actor: str) -> Req:
        location, secret = at(world)
        return post(location, title(kind), secret)

    def replace(world: World, actor: str) -> Req:
        location, secret = at(world)
        return post(location, title(kind), secret, method="PUT")

    def delete_(world: World, actor: str) -> Req:
        location, secret = at(world)
        return Req("DELETE", location, secret=secret)

    return [
        Case(f"GET /{kind}/<id>", read, 200),
        Case(f"POST /{kind}/<id> (update)", update_, 200, write=True),
        # PUT to an unknown id creates it (201): no twin
        Case(f"PUT /{kind}/<id> (replace)", replace, 200, write=True, twin=False),
        Case(f"DELETE /{kind}/<id>", delete_, 200, write=True),
    ]


def entity_action(kind: str, term: str) -> Case:
    def make(world: World, actor: str) -> Req:
        location = made(world, kind)
        return post(f"{location}?action={term}", action(kind, term), entity_id(location))

    return Case(f"POST /{kind}/<id>?action={term}", make, 200, write=True)


def console(world: World, actor: str) -> Req:
    location = world.compute()
    return get(
        f"{location}/console", entity_id(location), work=actor in (ALICE, CAROL, ALICE_SCOPED, ROOT)
    )


def regroup(world: World, actor: str) -> Req:
    location = world.compute()
    body = text_plain([category("compute", INFRA, "kind")], {"org.nimbostratus.group": ""})
    return post(location, body, entity_id(location))


def private_compute(world: World, actor: str) -> Req:
    location = world.compute(group="")
    return get(location, entity_id(location))


def kind_listing(kind: str, path: str | None = None, **headers: str) -> Maker:
    def make(world: World, actor: str) -> Req:
        location = made(world, kind)
        return Req(
            "GET",
            path or f"/{kind}/",
            headers={"Accept": "text/uri-list", **headers},
            target=location,
        )

    return make


def titled_listing(world: World, actor: str) -> Req:
    location = world.compute()
    title_ = world.row(location).attributes["occi.core.title"]  # type: ignore[union-attr]
    return Req(
        "GET",
        "/compute/",
        target=location,
        headers={"Accept": "text/uri-list", "X-OCCI-Attribute": f'occi.core.title="{title_}"'},
    )


def private_listing(world: World, actor: str) -> Req:
    location = world.compute(group="")
    return Req("GET", "/compute/", headers={"Accept": "text/uri-list"}, target=location)


def bulk_delete(world: World, actor: str) -> Req:
    location = world.compute()
    return Req("DELETE", "/compute/", target=location)


def deleted(world: World, req: Req) -> bool:
    row = world.row(req.target)
    return row is None or row.deleting


def bulk_action(world: World, actor: str) -> Req:
    location = world.network()
    return post("/network/?action=down", action("network", "down"), target=location)


def acted(world: World, req: Req) -> bool:
    row = world.row(req.target)
    return row is not None and row.state_message == "down queued"


# mixin collections


def tagged(world: World) -> tuple[str, str, str]:
    """A fresh compute of alice's in a fresh user mixin of hers: (compute, term, location)."""
    compute = world.compute()
    term, location = world.tag(compute)
    return compute, term, location


def tag_get(world: World, actor: str) -> Req:
    _, term, location = tagged(world)
    return get(location, term)


def tag_put(world: World, actor: str) -> Req:
    compute, term, location = tagged(world)
    return Req("PUT", location, f"{compute}\r\n", {"Content-Type": "text/uri-list"}, secret=term)


def tag_post(world: World, actor: str) -> Req:
    _, term, location = tagged(world)
    other = world.compute()
    return Req("POST", location, f"{other}\r\n", {"Content-Type": "text/uri-list"}, secret=term)


def tag_delete(world: World, actor: str) -> Req:
    _, term, location = tagged(world)
    return Req("DELETE", location, secret=term)


def tag_action(world: World, actor: str) -> Req:
    network = world.network()
    term, location = world.tag(network)
    return post(f"{location}?action=down", action("network", "down"), term, target=network)


def template_listing(path: str, flavour: str | None = None) -> Maker:
    def make(world: World, actor: str) -> Req:
        attrs = {"occi.core.title": world.name("t")}
        body = text_plain(compute_categories(flavour=flavour), attrs)
        location = world._create("/compute/", body, ALICE)
        return Req("GET", path, headers={"Accept": "text/uri-list"}, target=location)

    return make


def template_write(method: str, path: str) -> Maker:
    def make(world: World, actor: str) -> Req:
        compute = world.compute()
        if method == "DELETE":
            return Req("DELETE", path)
        return Req(method, path, f"{compute}\r\n", {"Content-Type": "text/uri-list"})

    return make


def saved_image(world: World, actor: str) -> Req:
    term = world.image()
    return get(f"/mixin/os_tpl/{term}/", term)


def compute_with_saved_image(world: World, actor: str) -> Req:
    term = world.image()
    body = text_plain(compute_categories(image=term), {"occi.core.title": world.name("c")})
    return post("/compute/", body, term)


# query interface


def qi_listing(path: str) -> Maker:
    def make(world: World, actor: str) -> Req:
        term, _ = world.tag()
        return Req("GET", path, headers={"Accept": "text/plain"}, target=f"{term};")

    return make


def qi_delete(world: World, actor: str) -> Req:
    term, _ = world.tag()
    body = f'Category: {term}; scheme="{TAGS}"; class="mixin"\r\n'
    return Req("DELETE", "/-/", body, {"Content-Type": "text/plain"}, secret=term)


# links to alice's things


def link_to(kind: str) -> Maker:
    """``actor`` links a compute of their own to alice's network or storage."""

    def make(world: World, actor: str) -> Req:
        target = world.network() if kind == "networkinterface" else world.storage()
        source = world.compute(actor)
        body = text_plain(
            [category(kind, INFRA, "kind")],
            {"occi.core.source": source, "occi.core.target": target},
        )
        return post(f"/{kind}/", body, entity_id(target))

    return make


def link_from(world: World, actor: str) -> Req:
    """``actor`` links alice's compute to a network of their own."""
    source = world.compute()
    target = world.network(actor)
    body = text_plain(
        [category("networkinterface", INFRA, "kind")],
        {"occi.core.source": source, "occi.core.target": target},
    )
    return post("/networkinterface/", body, entity_id(source))


def inline_link(world: World, actor: str) -> Req:
    """``actor`` creates a compute with an inline link to alice's storage."""
    storage = world.storage()
    link = f'<{storage}>; rel="{INFRA}storage"; category="{STORAGELINK}"'
    body = text_plain(compute_categories(), {"occi.core.title": world.name("c")}, [link])
    return post("/compute/", body, entity_id(storage))


# CDMI requests -------------------------------------------------------------------------------


def cdmi(
    method: str,
    path: str,
    body: Any = None,
    media: str | None = None,
    secret: str = "",
    **more: Any,
) -> Req:
    headers = dict(VERSION)
    if media:
        headers.update({"Content-Type": media, "Accept": media})
    data = json.dumps(body) if body is not None else None
    return Req(method, f"/cdmi/{path}", data, headers, secret=secret, **more)


def dir_secret(name: str) -> str:
    return name.rstrip("/")


def cdmi_read(what: str, *, by_id: bool = False, plain: bool = False) -> Maker:
    def make(world: World, actor: str) -> Req:
        name = world.container()
        path = name if what == "container" else name + "doc"
        if by_id:
            object_id = world.object_id(path)
            slash = "/" if what == "container" else ""
            return cdmi("GET", f"cdmi_objectid/{object_id}{slash}", secret=object_id)
        if plain:
            return Req("GET", f"/cdmi/{path}", secret=dir_secret(name))
        return cdmi("GET", path, secret=dir_secret(name))

    return make


def cdmi_no_slash(world: World, actor: str) -> Req:
    name = world.container()
    return cdmi("GET", name.rstrip("/"), secret=dir_secret(name))


def cdmi_child_by_id(world: World, actor: str) -> Req:
    name = world.container()
    object_id = world.object_id(name)
    return cdmi("GET", f"cdmi_objectid/{object_id}/doc", secret=object_id)


def cdmi_write(how: str) -> Maker:
    def make(world: World, actor: str) -> Req:
        name = world.container()
        doc = name + "doc"
        if how == "value":
            return cdmi("PUT", doc, {"value": "changed"}, OBJECT, dir_secret(name))
        if how == "value-by-id":
            object_id = world.object_id(doc)
            return cdmi(
                "PUT", f"cdmi_objectid/{object_id}", {"value": "changed"}, OBJECT, object_id
            )
        if how == "plain":
            return Req(
                "PUT",
                f"/cdmi/{doc}",
                b"changed",
                {"Content-Type": "text/plain"},
                secret=dir_secret(name),
            )
        if how == "metadata":
            return cdmi("PUT", name, {"metadata": {"color": "red"}}, CONTAINER, dir_secret(name))
        if how == "create-in":
            return cdmi("PUT", name + "new", {"value": "x"}, OBJECT, dir_secret(name))
        if how == "post-in":
            return cdmi("POST", name, {"value": "x"}, OBJECT, dir_secret(name))
        if how == "plain-post-in":
            return Req(
                "POST",
                f"/cdmi/{name}",
                b"x",
                {"Content-Type": "text/plain"},
                secret=dir_secret(name),
            )
        if how == "delete":
            return cdmi("DELETE", doc, secret=dir_secret(name))
        if how == "delete-by-id":
            object_id = world.object_id(doc)
            return cdmi("DELETE", f"cdmi_objectid/{object_id}", secret=object_id)
        if how == "delete-container":
            return cdmi("DELETE", name, secret=dir_secret(name))
        raise AssertionError(how)

    return make


def cdmi_copy(operation: str) -> Maker:
    """``actor`` copies (reads) or moves (deletes) alice's data object into a container of
    their own."""

    def make(world: World, actor: str) -> Req:
        name = world.container()
        mine = world.container(actor)
        body = {operation: f"/cdmi/{name}doc"}
        return cdmi("PUT", f"{mine}got", body, OBJECT, dir_secret(name))

    return make


def cdmi_root_listing(world: World, actor: str) -> Req:
    name = world.container()
    return cdmi("GET", "", target=f'"{name}"')


def cdmi_private_child(world: World, actor: str) -> Req:
    """A private data object in alice's shared container: in her listing, not carol's."""
    name = world.container()
    private = world.name("priv")
    world._cdmi(
        ALICE,
        "PUT",
        name + private,
        {"value": "p", "metadata": {"org.nimbostratus.group": ""}},
        OBJECT,
        201,
    )
    return cdmi("GET", name, target=f'"{private}"')


def cdmi_private(world: World, actor: str) -> Req:
    name = world.container(group="")
    return cdmi("GET", name + "doc", secret=dir_secret(name))


CASES: list[Case] = [
    # OCCI entities, their actions and console
    *entity_rows("compute"),
    *entity_rows("storage"),
    *entity_rows("network"),
    *entity_rows("networkinterface"),
    *entity_rows("storagelink"),
    entity_action("compute", "start"),
    entity_action("storage", "online"),
    entity_action("network", "up"),
    Case("GET /compute/<id>/console", console, 200),
    Case("POST /compute/<id> (change the group)", regroup, 200, owner_only=True),
    Case("GET /compute/<id> (private)", private_compute, 200, shared=False),
    # kind collections and the root
    *[
        Case(f"GET /{kind}/ (listing)", kind_listing(kind), 200, check=LISTED)
        for kind in ("compute", "storage", "network", "networkinterface", "storagelink")
    ],
    Case("GET / (listing)", kind_listing("storagelink", "/"), 200, check=LISTED),
    Case("GET /compute/ (filtered by title)", titled_listing, 200, check=LISTED),
    Case("GET /compute/ (private)", private_listing, 200, check=LISTED, shared=False),
    Case("DELETE /compute/", bulk_delete, 200, check=AFFECTED, affected=deleted),
    Case("POST /network/?action=down", bulk_action, 200, check=AFFECTED, affected=acted),
    # user mixin collections
    Case("GET /<user mixin>/", tag_get, 200),
    Case("PUT /<user mixin>/", tag_put, 200, write=True),
    Case("POST /<user mixin>/", tag_post, 200, write=True),
    Case("DELETE /<user mixin>/", tag_delete, 200, write=True),
    Case(
        "POST /<user mixin>/?action=down",
        tag_action,
        200,
        check=AFFECTED,
        affected=acted,
        route=SHARED,
    ),
    # provider template collections: listings show what one sees; writes are refused alike
    Case(
        "GET /mixin/os_tpl/<image>/", template_listing(f"/mixin/os_tpl/{IMAGE}/"), 200, check=LISTED
    ),
    Case(
        "GET /mixin/resource_tpl/<flavour>/",
        template_listing("/mixin/resource_tpl/small/", "small"),
        200,
        check=LISTED,
    ),
    *[
        Case(
            f"{method} /mixin/{parent}/<template>/",
            template_write(method, path),
            400,
            check=UNIFORM,
        )
        for method in ("PUT", "POST", "DELETE")
        for parent, path in (
            ("os_tpl", f"/mixin/os_tpl/{IMAGE}/"),
            ("resource_tpl", "/mixin/resource_tpl/small/"),
        )
    ],
    Case("GET /mixin/os_tpl/<saved image>/", saved_image, 200),
    Case("POST /compute/ with a saved image", compute_with_saved_image, 201, hidden=400),
    # the query interface
    Case("GET /-/ (user mixins)", qi_listing("/-/"), 200, check=LISTED),
    Case(
        "GET /.well-known/org/ogf/occi/-/ (user mixins)",
        qi_listing("/.well-known/org/ogf/occi/-/"),
        200,
        check=LISTED,
    ),
    Case("DELETE /-/ (a user mixin)", qi_delete, 200, write=True),
    # links to and from alice's resources
    Case(
        "POST /networkinterface/ (to her network)",
        link_to("networkinterface"),
        201,
        write=True,
        hidden=400,
    ),
    Case(
        "POST /storagelink/ (to her storage)", link_to("storagelink"), 201, write=True, hidden=400
    ),
    Case("POST /networkinterface/ (from her compute)", link_from, 201, write=True, hidden=400),
    Case("POST /compute/ (inline link to her storage)", inline_link, 201, write=True, hidden=400),
    # CDMI
    Case("GET /cdmi/<container>/", cdmi_read("container"), 200),
    Case("GET /cdmi/<container> (no slash: a redirect)", cdmi_no_slash, 301),
    Case("GET /cdmi/<container>/<object>", cdmi_read("object"), 200),
    Case("GET /cdmi/<container>/<object> (plain)", cdmi_read("object", plain=True), 200),
    Case("GET /cdmi/cdmi_objectid/<container>/", cdmi_read("container", by_id=True), 200),
    Case("GET /cdmi/cdmi_objectid/<object>", cdmi_read("object", by_id=True), 200),
    Case("GET /cdmi/cdmi_objectid/<container>/<child>", cdmi_child_by_id, 200),
    Case("PUT /cdmi/<container>/<object> (value)", cdmi_write("value"), 204, write=True),
    Case("PUT /cdmi/cdmi_objectid/<object>", cdmi_write("value-by-id"), 204, write=True),
    Case("PUT /cdmi/<container>/<object> (plain)", cdmi_write("plain"), 204, write=True),
    # PUT to an unknown container creates it (201): no twin
    Case("PUT /cdmi/<container>/ (metadata)", cdmi_write("metadata"), 204, write=True, twin=False),
    Case("PUT /cdmi/<container>/<new object>", cdmi_write("create-in"), 201, write=True),
    Case("POST /cdmi/<container>/", cdmi_write("post-in"), 201, write=True),
    Case("POST /cdmi/<container>/ (plain)", cdmi_write("plain-post-in"), 201, write=True),
    Case("DELETE /cdmi/<container>/<object>", cdmi_write("delete"), 204, write=True),
    Case("DELETE /cdmi/cdmi_objectid/<object>", cdmi_write("delete-by-id"), 204, write=True),
    Case("DELETE /cdmi/<container>/", cdmi_write("delete-container"), 204, write=True),
    Case("PUT /cdmi/<mine>/<new> (copy of hers)", cdmi_copy("copy"), 201, hidden=400),
    Case("PUT /cdmi/<mine>/<new> (move of hers)", cdmi_copy("move"), 201, write=True, hidden=400),
    Case("GET /cdmi/ (children)", cdmi_root_listing, 200, check=LISTED),
    Case(
        "GET /cdmi/<container>/ (a private child)",
        cdmi_private_child,
        200,
        check=LISTED,
        shared=False,
        route=SHARED,
    ),
    Case("GET /cdmi/<container>/<object> (private)", cdmi_private, 200, shared=False),
]


# --- the matrix ------------------------------------------------------------------------------


def _twin(world: World, req: Req) -> tuple[Req, str]:
    """``req`` naming an unknown id (or name) of the same shape as its secret."""
    secret = req.secret
    if re.fullmatch(r"[0-9A-F]{48}", secret):
        unknown = objectid.new(world.node.config.cdmi_enterprise_number)
    elif re.fullmatch(r"[0-9a-f-]{36}", secret):
        unknown = str(uuid.uuid4())
    else:
        unknown = world.name(re.sub(r"[0-9].*", "", secret))
    body = req.body
    if isinstance(body, str):
        body = body.replace(secret, unknown)
    return Req(req.method, req.path.replace(secret, unknown), body, req.headers), unknown


def _text(response: TestResponse, *blanks: str) -> str:
    text = response.get_data(as_text=True)
    for blank in blanks:
        text = text.replace(blank, "<ID>")
    return text


def _judge(world: World, case: Case, actor: str, req: Req, response: TestResponse) -> str:
    """What is wrong with ``actor``'s answer to ``req`` ("" if nothing)."""
    text = response.get_data(as_text=True)
    want = expected_status(case, actor, world.policy)
    if response.status_code != want:
        return f"{actor}: {response.status_code}, expected {want}: {text[:300]}"
    if case.check == LISTED and want == 200 and (req.target in text) != sees(case, actor):
        return f"{actor}: listed={req.target in text}, sees={sees(case, actor)}"
    if case.check == AFFECTED and want == 200:
        assert case.affected is not None
        changed, allowed = case.affected(world, req), may_change(case, actor, world.policy)
        if changed != allowed:
            return f"{actor}: changed={changed}, may change={allowed}"
    if not sees(case, actor) and case.twin and req.secret and case.check == STATUS:
        twin, unknown = _twin(world, req)
        answer = world.send(actor, twin)
        mine = (response.status_code, _text(response, req.secret))
        theirs = (answer.status_code, _text(answer, unknown))
        if mine != theirs:
            return f"{actor}: {mine} differs from the answer for an unknown id {theirs}"
    return ""


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_isolation(world: World, case: Case) -> None:
    failures = []
    for actor in ACTORS:
        req = case.make(world, actor)
        failures.append(_judge(world, case, actor, req, world.send(actor, req)))
    wrong = "\n".join(f for f in failures if f)
    assert not wrong, f"{case.name} under group_policy={world.policy}:\n{wrong}"


def test_the_matrix_rests_on_these_memberships(world: World) -> None:
    assert isinstance(world.node.driver("host-a"), MemoryDriver)
    with world.node.store.session() as session:
        groups = {u.name: sorted(u.groups or []) for u in session.query(User)}
    assert groups[ALICE] == [GROUP] and groups[CAROL] == [OTHER, GROUP] and groups[BOB] == []
    for actor, (user, project) in SCOPES.items():
        assert stored(world.node, world.tokens[actor])["tenant"] == project, actor
        assert stored(world.node, world.tokens[actor])["name"] == user, actor
