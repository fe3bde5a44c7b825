"""``nimbo users``: local accounts (add, passwd, disable/enable, groups, admin, list) and what
a running API makes of a change: a disabled account is refused (401), a changed password
replaces the old one, within the authenticators' cache bounds (30 s for a login, 10 s for an
account; at once where nothing was cached)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from click.testing import CliRunner, Result

from auth.chain import AuthChain
from auth.credentials import Credentials
from auth.local import LocalAuthenticator
from gateway.cli import main
from gateway.errors import NotAuthenticated
from gateway.services.accounts import Accounts
from gateway.store.models import User
from tests.gateway.conftest import PASSWORD, Node, NodeFactory, basic

pytestmark = pytest.mark.redis

HOST = {"host-a": "memory://users?cores=16&memory_mib=32768"}
NEW_PASSWORD = "another-secret"
LIFETIME = 2.0  # of the caches in test_changes_reach_a_running_api_when_its_caches_expire


def nimbo(node: Node, *args: str, stdin: str | None = None) -> Result:
    env = {
        "NIMBO_DATA_DIR": str(node.config.data_dir),
        "NIMBO_DATABASE_URL": node.config.database_url,
        "NIMBO_CONFIG": None,
    }
    return CliRunner().invoke(main, ["users", *args], input=stdin, env=env)


def user(node: Node, name: str) -> User:
    with node.store.session() as session:
        found = session.get(User, name)
        assert found is not None
        return found


def listing(node: Node) -> dict[str, list[str]]:
    result = nimbo(node, "list")
    assert result.exit_code == 0, result.output
    header, *lines = result.output.splitlines()
    assert header.split("\t") == ["name", "source", "admin", "disabled", "groups"]
    return {line.split("\t")[0]: line.split("\t")[1:] for line in lines}


def status(node: Node, name: str, password: str = PASSWORD) -> int:
    headers = basic(name) if password == PASSWORD else basic_with(name, password)
    return node.client.get("/compute/", headers=headers).status_code


def basic_with(name: str, password: str) -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()}


@pytest.fixture
def unode(make_node: NodeFactory) -> Node:
    return make_node(HOST)


def test_add_list_groups_and_admin(unode: Node) -> None:
    assert nimbo(unode, "add", "carol", stdin="carols-secret\n").exit_code == 0
    assert listing(unode)["carol"] == ["local", "no", "no", ""]

    result = nimbo(unode, "groups", "carol", "physics, chemistry,physics")
    assert result.exit_code == 0, result.output
    assert "groups of carol: chemistry, physics" in result.output
    assert "within 30 s" in result.output
    assert user(unode, "carol").groups == ["chemistry", "physics"]
    assert listing(unode)["carol"] == ["local", "no", "no", "chemistry,physics"]
    assert nimbo(unode, "groups", "carol").exit_code == 0  # none: no group
    assert user(unode, "carol").groups == []

    assert nimbo(unode, "admin", "carol", "--on").exit_code == 0
    assert user(unode, "carol").is_admin and listing(unode)["carol"][1] == "yes"
    assert nimbo(unode, "admin", "carol", "--off").exit_code == 0
    assert not user(unode, "carol").is_admin
    assert nimbo(unode, "admin", "carol").exit_code == 2  # --on or --off is required


def test_refusals_say_what_is_wrong(unode: Node) -> None:
    with unode.store.session(write=True) as session:
        session.add(User(name="dn-user", source="x509", groups=["vo.example"]))
    for args in (
        ("passwd", "nobody"),
        ("disable", "nobody"),
        ("groups", "nobody", "g"),
        ("admin", "nobody", "--on"),
        ("enable", "nobody"),
    ):
        result = nimbo(unode, *args, stdin="long-enough\n")
        assert result.exit_code == 1 and "no user nobody" in result.output, args
    short = nimbo(unode, "passwd", "alice", stdin="short\n")
    assert short.exit_code == 1 and "at least 8 characters" in short.output
    external = nimbo(unode, "passwd", "dn-user", stdin="long-enough\n")
    assert external.exit_code == 1
    assert "dn-user is an x509 identity: its password and groups come from x509" in external.output
    assert nimbo(unode, "groups", "dn-user", "other").exit_code == 1
    assert (
        user(unode, "dn-user").groups == ["vo.example"] and not user(unode, "dn-user").password_hash
    )
    bad = nimbo(unode, "groups", "alice", "ok,bad\x01name")
    assert bad.exit_code == 1 and "control characters" in bad.output
    assert nimbo(unode, "disable", "dn-user").exit_code == 0  # any account can be disabled
    assert listing(unode)["dn-user"] == ["x509", "no", "yes", "vo.example"]


def test_a_disabled_account_is_401_and_enabled_again(unode: Node) -> None:
    result = nimbo(unode, "disable", "alice")
    assert result.exit_code == 0 and "user alice disabled" in result.output
    refused = unode.client.get("/compute/", headers=basic("alice"))
    assert refused.status_code == 401
    assert "WWW-Authenticate" in refused.headers
    assert status(unode, "bob") == 200  # others are untouched
    assert nimbo(unode, "enable", "alice").exit_code == 0
    unode.nimbo.accounts.forget("alice")  # this process caches its refusal's account read
    assert status(unode, "alice") == 200


def test_a_changed_password_replaces_the_old_one(unode: Node) -> None:
    result = nimbo(unode, "passwd", "bob", stdin=NEW_PASSWORD + "\n")
    assert result.exit_code == 0 and "password of bob changed" in result.output
    assert status(unode, "bob") == 401  # nothing cached: the old password is refused at once
    assert status(unode, "bob", NEW_PASSWORD) == 200


def test_changes_reach_a_running_api_when_its_caches_expire(unode: Node) -> None:
    """The bound is the caches' lifetime: here the gateway's chain with lifetimes of 2 s
    instead of 30 s and 10 s. A login cached before the change still works until then."""
    accounts = Accounts(unode.store, cache_seconds=LIFETIME)
    local = LocalAuthenticator(accounts.local_user, realm="test", cache_seconds=LIFETIME)
    chain = AuthChain([local], admit=accounts.admit)

    def login(name: str, password: str = PASSWORD) -> Any:
        return chain.authenticate(Credentials(basic=(name, password)))

    assert login("alice").name == "alice" and login("bob").name == "bob"
    cached = time.monotonic()
    assert nimbo(unode, "disable", "alice").exit_code == 0
    assert nimbo(unode, "passwd", "bob", stdin=NEW_PASSWORD + "\n").exit_code == 0
    assert nimbo(unode, "groups", "bob", "physics").exit_code == 0
    assert time.monotonic() - cached < LIFETIME, "the changes took longer than the lifetime"
    assert login("alice").name == "alice"  # cached: within the bound
    assert login("bob").groups == frozenset()
    time.sleep(LIFETIME + 0.1)
    with pytest.raises(NotAuthenticated):
        login("alice")
    with pytest.raises(NotAuthenticated):
        login("bob")
    assert login("bob", NEW_PASSWORD).groups == frozenset({"physics"})


@pytest.mark.slow
def test_a_running_api_refuses_a_disabled_account_within_30_seconds(unode: Node) -> None:
    """The same with the gateway's own chain and its real bounds."""
    assert status(unode, "alice") == 200
    assert nimbo(unode, "disable", "alice").exit_code == 0
    assert nimbo(unode, "passwd", "bob", stdin=NEW_PASSWORD + "\n").exit_code == 0
    assert status(unode, "bob", NEW_PASSWORD) == 200  # not cached: at once
    deadline = time.monotonic() + 31
    while status(unode, "alice") == 200:
        assert time.monotonic() < deadline, "alice was still accepted after 31 s"
        time.sleep(0.5)
    assert status(unode, "alice") == 401
