"""A whole gateway per test: the Flask app on SQLite or PostgreSQL, a real redis-server, hosts
driven by libvirt's ``test:///`` driver (or the in-memory driver), and jobs run in-process.

``node`` is the default: admin ``root`` plus plain users ``alice`` and ``bob``, an ``os_tpl``
image ``debian12`` and one libvirt test host ``host-a`` (16 cores, 32 GiB). Tests that need
other hosts or settings use ``make_node`` with the same database parameter.
"""

from __future__ import annotations

import base64
import functools
import json
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient
from rq import SimpleWorker
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool
from werkzeug.test import TestResponse

from auth.passwords import hash_password
from backends.base import HostDriver
from backends.memory import reset_memory_hosts
from gateway.app import Nimbo, create_app
from gateway.config import Config
from gateway.queue import GENERAL_QUEUE, host_queue_name
from gateway.runtime import WorkerContext, install
from gateway.services.mixins import register_image
from gateway.store.models import EntityRow, Host, User
from gateway.worker import register_host

HOSTS_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "hosts"
PASSWORD = "s3cret-pw"
USERS = {"root": True, "alice": False, "bob": False}  # name -> is_admin

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
COMPUTE_ACTION = "http://schemas.ogf.org/occi/infrastructure/compute/action#"
OS_SCHEME = "http://schemas.nimbostratus.org/occi/os_tpl#"
RESOURCE_SCHEME = "http://schemas.nimbostratus.org/occi/resource_tpl#"
IMAGE = "debian12"
OCCI_JSON = "application/occi+json"
T = TypeVar("T")


def host_file_uri(host: str) -> str:
    """``test:///<abs path>`` of a simulated host under tests/fixtures/hosts/."""
    return f"test://{HOSTS_DIR / f'{host}.xml'}"


@functools.cache
def _password_hash() -> str:
    return hash_password(PASSWORD)  # scrypt: once per session, not once per user and test


def basic(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


# --- request bodies ---------------------------------------------------------------------


def category(term: str, scheme: str, cls: str) -> str:
    return f'{term}; scheme="{scheme}"; class="{cls}"'


def text_plain(categories: Sequence[str], attributes: Mapping[str, Any] | None = None,
               links: Sequence[str] = ()) -> str:
    """A text/plain body: Category lines, Link lines, X-OCCI-Attribute lines."""
    attributes = attributes or {}
    lines = [f"Category: {c}" for c in categories]
    lines += [f"Link: {link}" for link in links]
    lines += [f"X-OCCI-Attribute: {name}={_value(value)}" for name, value in attributes.items()]
    return "\r\n".join(lines) + "\r\n"


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))


def compute_categories(*, image: str = IMAGE, flavour: str | None = None) -> list[str]:
    out = [category("compute", INFRA, "kind"), category(image, OS_SCHEME, "mixin")]
    if flavour:
        out.append(category(flavour, RESOURCE_SCHEME, "mixin"))
    return out


def path_of(location: str) -> str:
    return "/" + location.split("://", 1)[-1].split("/", 1)[1] if "://" in location else location


def entity_id(location: str) -> str:
    return location.rstrip("/").rsplit("/", 1)[-1]


class BurstWorker(SimpleWorker):
    """RQ's in-process worker without its command channel (pub/sub for kill-horse and
    shutdown commands, which a burst in a test never gets): RQ joins that channel's thread
    with a one-second timeout at the end of every burst, which would dominate the suite."""

    def subscribe(self) -> None:
        self.pubsub_thread = None


# --- the node ---------------------------------------------------------------------------


@dataclass
class Node:
    """One gateway: app, store, queue, hosts and an in-process worker context."""

    app: Flask
    config: Config
    nimbo: Nimbo
    connection: redis.Redis
    context: WorkerContext
    tmp_path: Path
    hosts: dict[str, str] = field(default_factory=dict)

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    @property
    def store(self):  # type: ignore[no-untyped-def]
        return self.nimbo.store

    # requests (authenticated as ``user``; default the admin)

    def request(self, method: str, path: str, *, user: str | None = "root",
                headers: Mapping[str, str] | None = None, **kwargs: Any) -> TestResponse:
        all_headers = {**(basic(user) if user else {}), **(headers or {})}
        return self.client.open(path_of(path), method=method, headers=all_headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.request("GET", path, **kwargs)

    def get_json(self, path: str, *, user: str = "root") -> dict[str, Any]:
        response = self.get(path, user=user, headers={"Accept": OCCI_JSON})
        assert response.status_code == 200, response.get_data(as_text=True)
        document: dict[str, Any] = response.get_json()
        return document

    def post_text(self, path: str, body: str, *, user: str = "root",
                  headers: Mapping[str, str] | None = None) -> TestResponse:
        return self.request("POST", path, user=user, data=body,
                            headers={"Content-Type": "text/plain", **(headers or {})})

    def post_json(self, path: str, document: Any, *, user: str = "root",
                  method: str = "POST") -> TestResponse:
        return self.request(method, path, user=user, data=json.dumps(document),
                            headers={"Content-Type": OCCI_JSON, "Accept": OCCI_JSON})

    def action(self, location: str, term: str, *, user: str = "root",
               attributes: Mapping[str, Any] | None = None, kind: str = "compute") -> TestResponse:
        scheme = f"http://schemas.ogf.org/occi/infrastructure/{kind}/action#"
        body = text_plain([category(term, scheme, "action")], attributes)
        return self.post_text(f"{path_of(location)}?action={term}", body, user=user)

    # creating things

    def create(self, kind: str, body: str, *, user: str = "root") -> str:
        response = self.post_text(f"/{kind}/", body, user=user)
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.headers["Location"]

    def create_compute(self, *, user: str = "root", flavour: str | None = None,
                       attributes: Mapping[str, Any] | None = None,
                       links: Sequence[str] = (), extra: Sequence[str] = ()) -> str:
        body = text_plain([*compute_categories(flavour=flavour), *extra], attributes, links)
        return self.create("compute", body, user=user)

    def create_storage(self, size: float = 2.0, *, user: str = "root") -> str:
        body = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": size})
        return self.create("storage", body, user=user)

    def create_network(self, *, user: str = "root", address: str = "10.1.0.0/24") -> str:
        body = text_plain([category("network", INFRA, "kind"),
                           category("ipnetwork", f"{INFRA[:-1]}/network#", "mixin")],
                          {"occi.network.address": address})
        return self.create("network", body, user=user)

    # the worker side

    def run_jobs(self, hosts: Sequence[str] | None = None) -> None:
        """Drain the queues of ``hosts`` (default: every host) and the general queue in this
        process."""
        names = [host_queue_name(h) for h in (self.hosts if hosts is None else hosts)]
        worker = BurstWorker([*names, GENERAL_QUEUE], connection=self.connection)
        worker.work(burst=True, logging_level="WARNING")

    def while_working(self, call: Callable[[], T], *, hosts: Sequence[str] | None = None) -> T:
        """``call()``, a request that waits for a host's worker to answer (a console read), run
        in another thread while this one works the queues of ``hosts`` (default: all), as the
        hosts' workers would. RQ's worker stays in the main thread: it installs signal
        handlers. The request bounds the wait itself (it answers 503 when nobody works)."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            answer = pool.submit(call)
            while True:
                self.run_jobs(hosts)
                try:
                    return answer.result(timeout=0.05)
                except TimeoutError:  # not answered yet: more work may have come
                    continue

    def driver(self, host: str = "host-a") -> HostDriver:
        """The worker's own driver of ``host`` (the test driver's state is per connection)."""
        return self.context.driver(host)

    def row(self, location: str) -> EntityRow | None:
        with self.store.session() as session:
            return session.get(EntityRow, entity_id(location))

    def count_entities(self) -> int:
        with self.store.session() as session:
            return int(session.scalar(select(func.count()).select_from(EntityRow)) or 0)

    def register_host(self, name: str, uri: str) -> None:
        register_host(self.store, self.config, name, uri)
        self.hosts[name] = uri

    def disable_host(self, name: str) -> None:
        with self.store.session(write=True) as session:
            host = session.get(Host, name)
            assert host is not None
            host.enabled = False


# --- databases --------------------------------------------------------------------------


def _postgres_base_url(server: Any) -> str:
    """The SQLAlchemy URL of the postgres_server fixture's maintenance database."""
    for attribute in ("url", "sqlalchemy_url", "database_url", "dsn"):
        value = getattr(server, attribute, None)
        if isinstance(value, str):
            return value
    return str(server)


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh schema in the session's PostgreSQL database (cheaper than a database per test:
    CREATE DATABASE copies a template), made the connections' search_path, dropped after."""
    server = request.getfixturevalue("postgres_server")
    base = make_url(_postgres_base_url(server))
    if base.drivername == "postgresql":
        base = base.set(drivername="postgresql+psycopg")
    schema = f"t_{uuid.uuid4().hex[:16]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=[
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


NodeFactory = Callable[..., Node]


@pytest.fixture
def make_node(database_url: str, redis_url: str, tmp_path: Path) -> Iterator[NodeFactory]:
    """Build gateways: ``make_node(hosts={name: uri}, **settings)``; one per test is usual."""
    made: list[Node] = []

    def make(hosts: Mapping[str, str] | None = None, *, redis: str | None = None,
             image: bool = True, **settings: Any) -> Node:
        values = {"data_dir": str(tmp_path / f"node{len(made)}"), "redis_url": redis or redis_url,
                  "database_url": database_url, "libvirt_uri": "test:///default",
                  "host_name": "host-a", "job_retries": 0, "log_level": "WARNING", **settings}
        config = Config(values)
        app = create_app(config)
        nimbo: Nimbo = app.extensions["nimbostratus"]
        with nimbo.store.session(write=True) as session:
            for name, is_admin in USERS.items():
                if session.get(User, name) is None:
                    session.add(User(name=name, password_hash=_password_hash(),
                                     is_admin=is_admin))
        if image and not made:
            source = tmp_path / f"{IMAGE}.qcow2"
            source.write_bytes(b"QFI\xfb" + bytes(4092))
            register_image(nimbo.store, IMAGE, str(source), title="Debian 12")
        context = WorkerContext(store=nimbo.store, config=config)
        install(context)
        node = Node(app, config, nimbo, nimbo.queue.connection, context, tmp_path)
        made.append(node)
        for name, uri in (hosts if hosts is not None else {"host-a": host_file_uri("host-a")}
                          ).items():
            node.register_host(name, uri)
        return node

    reset_memory_hosts()
    yield make
    install(None)
    for node in made:
        node.context.close()
        node.connection.close()
        node.store.dispose()
    reset_memory_hosts()


@pytest.fixture
def node(make_node: NodeFactory) -> Node:
    """The default gateway: one libvirt test host, host-a (16 cores, 32 GiB)."""
    return make_node()
