"""The authenticator contract and chain (auth.chain), the local authenticator and accounts."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from auth.chain import REFUSED, AuthChain
from auth.credentials import Credentials
from auth.flask import basic_credentials, bearer_token, credentials_from
from auth.local import LocalAuthenticator, UserRecord
from auth.passwords import hash_password, verify_password
from auth.principal import Principal
from gateway.authentication import build_chain, method_names
from gateway.config import Config
from gateway.errors import ConfigurationError, NotAuthenticated, ServiceUnavailable
from gateway.services.accounts import Accounts
from gateway.store.db import Store
from gateway.store.models import User

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)


@dataclass
class Scripted:
    """An authenticator that answers from a table, and counts what it was asked."""

    name: str
    answers: dict[str, Principal | Exception | None]
    offers: str = "HTTP Basic"
    asked: list[str] = field(default_factory=list)

    def authenticate(self, credentials: Credentials) -> Principal | None:
        user = credentials.basic[0] if credentials.basic else ""
        self.asked.append(user)
        answer = self.answers.get(user)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def challenge(self, base_url: str) -> str | None:
        return f'{self.name.title()} realm="x"'


def basic(user: str, password: str = PASSWORD) -> Credentials:
    return Credentials(remote_addr="127.0.0.1", basic=(user, password))


# --- the chain ----------------------------------------------------------------------------


def test_the_first_principal_wins_and_later_authenticators_are_not_asked() -> None:
    alice = Principal("alice", source="first")
    first, second = Scripted("first", {"alice": alice}), Scripted("second", {})
    assert AuthChain([first, second]).authenticate(basic("alice")) is alice
    assert second.asked == []


def test_none_passes_on_and_a_refusal_stops_the_chain() -> None:
    bob = Principal("bob", source="second")
    first = Scripted("first", {"carol": NotAuthenticated(REFUSED)})
    second = Scripted("second", {"bob": bob, "carol": bob})
    chain = AuthChain([first, second])
    assert chain.authenticate(basic("bob")) is bob
    with pytest.raises(NotAuthenticated):
        chain.authenticate(basic("carol"))
    assert second.asked == ["bob"]


def test_unclaimed_credentials_get_the_one_refusal() -> None:
    chain = AuthChain([Scripted("first", {}), Scripted("second", {})])
    with pytest.raises(NotAuthenticated) as caught:
        chain.authenticate(basic("nobody"))
    assert caught.value.message == REFUSED


def test_no_credentials_say_what_the_server_accepts() -> None:
    chain = AuthChain([Scripted("a", {}), Scripted("b", {}, offers="X-Auth-Token")])
    with pytest.raises(NotAuthenticated, match="accepts HTTP Basic, X-Auth-Token"):
        chain.authenticate(Credentials(remote_addr="127.0.0.1"))


def test_a_source_that_is_down_is_not_hidden() -> None:
    chain = AuthChain([Scripted("a", {}), Scripted("b", {"x": ServiceUnavailable("down")})])
    with pytest.raises(ServiceUnavailable):
        chain.authenticate(basic("x"))


def test_admit_sees_every_principal() -> None:
    seen: list[str] = []

    def admit(principal: Principal) -> Principal:
        seen.append(principal.name)
        return Principal(principal.name, is_admin=True)

    chain = AuthChain([Scripted("a", {"alice": Principal("alice")})], admit=admit)
    assert chain.authenticate(basic("alice")).is_admin
    assert seen == ["alice"]


def test_the_challenge_joins_each_method_once_in_order() -> None:
    chain = AuthChain([Scripted("basic", {}), Scripted("bearer", {}), Scripted("basic", {})])
    assert chain.challenge("http://h/") == 'Basic realm="x", Bearer realm="x"'


def test_an_empty_chain_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        AuthChain([])


# --- reading credentials -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Basic YWxpY2U6cHc=", ("alice", "pw")),
        ("basic YWxpY2U6OnB3", ("alice", ":pw")),
        ("Basic YWxpY2U=", None),  # no colon
        ("Basic !!!", None),
        ("Bearer abc", None),
        (None, None),
    ],
)
def test_basic_credentials(header: str | None, expected: tuple[str, str] | None) -> None:
    assert basic_credentials(header) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [("Bearer abc.def", "abc.def"), ("bearer  x ", "x"), ("Bearer ", None), ("Basic x", None)],
)
def test_bearer_token(header: str, expected: str | None) -> None:
    assert bearer_token(header) == expected


def test_credentials_from_a_request() -> None:
    headers = {"Authorization": "Bearer t0k", "X-Auth-Token": " opaque "}
    credentials = credentials_from(headers, {"REMOTE_ADDR": "192.0.2.7"})
    assert credentials == Credentials(remote_addr="192.0.2.7", bearer="t0k", auth_token="opaque")
    assert credentials_from({}, {}).empty


# --- local users ---------------------------------------------------------------------------


class Directory:
    def __init__(self, *records: UserRecord) -> None:
        self.records = {r.name: r for r in records}
        self.lookups = 0

    def __call__(self, name: str) -> UserRecord | None:
        self.lookups += 1
        return self.records.get(name)


def test_local_users_claim_their_names() -> None:
    users = Directory(UserRecord("alice", HASH, False, False, frozenset({"physics"})))
    local = LocalAuthenticator(users, realm="nimbo")
    principal = local.authenticate(basic("alice"))
    assert principal == Principal("alice", "alice", frozenset({"physics"}), False, "local")
    with pytest.raises(NotAuthenticated) as caught:
        local.authenticate(basic("alice", "wrong password"))
    assert caught.value.message == REFUSED
    assert local.authenticate(basic("mallory")) is None  # not ours: the next method may try
    assert local.authenticate(Credentials(bearer="x")) is None
    assert local.challenge("http://h/") == 'Basic realm="nimbo"'


def test_a_disabled_local_user_is_refused_like_a_wrong_password() -> None:
    local = LocalAuthenticator(Directory(UserRecord("bob", HASH, False, True)), realm="n")
    with pytest.raises(NotAuthenticated) as caught:
        local.authenticate(basic("bob"))
    assert caught.value.message == REFUSED


def test_the_cache_remembers_only_the_right_password() -> None:
    users = Directory(UserRecord("alice", HASH, False, False))
    local = LocalAuthenticator(users, realm="n")
    local.authenticate(basic("alice"))
    local.authenticate(basic("alice"))
    assert users.lookups == 1
    with pytest.raises(NotAuthenticated):
        local.authenticate(basic("alice", PASSWORD + "x"))
    local.forget("alice")
    local.authenticate(basic("alice"))
    assert users.lookups == 3


# --- accounts ------------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite:///{tmp_path / 'accounts.sqlite3'}")
    store.create_schema()
    with store.session(write=True) as session:
        session.add(User(name="alice", password_hash=HASH, groups=["physics"]))
        session.add(User(name="ldapuser", source="ldap", disabled=True))
    return store


def users(store: Store) -> dict[str, User]:
    with store.session() as session:
        return {u.name: u for u in session.query(User)}


def test_local_lookup_knows_only_local_accounts(store: Store) -> None:
    accounts = Accounts(store)
    record = accounts.local_user("alice")
    assert record is not None and record.groups == frozenset({"physics"})
    assert accounts.local_user("ldapuser") is None
    assert accounts.local_user("nobody") is None


def test_an_external_identity_gets_a_row_once_and_again_when_its_groups_change(
    store: Store,
) -> None:
    accounts = Accounts(store, cache_seconds=60)
    carol = Principal("carol@example.org", "Carol", frozenset({"vo.a"}), source="oidc")
    assert accounts.admit(carol) == carol
    row = users(store)["carol@example.org"]
    assert (row.source, row.display_name, row.groups, row.password_hash) == (
        "oidc",
        "Carol",
        ["vo.a"],
        "",
    )
    accounts.admit(carol)  # cached, unchanged: no write
    moved = Principal("carol@example.org", "Carol", frozenset({"vo.b"}), source="oidc")
    accounts.admit(moved)
    assert users(store)["carol@example.org"].groups == ["vo.b"]


def test_a_name_belongs_to_the_source_that_claimed_it(store: Store) -> None:
    accounts = Accounts(store)
    with pytest.raises(NotAuthenticated) as caught:
        accounts.admit(Principal("alice", source="oidc"))  # a local name
    assert caught.value.message == REFUSED
    assert users(store)["alice"].source == "local"


def test_disabled_and_malformed_external_identities_are_refused(store: Store) -> None:
    accounts = Accounts(store)
    with pytest.raises(NotAuthenticated):
        accounts.admit(Principal("ldapuser", source="ldap"))
    with pytest.raises(NotAuthenticated):
        accounts.admit(Principal("bad name with spaces", source="oidc"))
    assert "bad name with spaces" not in users(store)


def test_admin_groups_make_admins(store: Store) -> None:
    accounts = Accounts(store, admin_groups=frozenset({"cloud-admins"}))
    admin = accounts.admit(Principal("dave", groups=frozenset({"cloud-admins"}), source="ldap"))
    assert admin.is_admin
    assert not accounts.admit(Principal("erin", groups=frozenset({"x"}), source="ldap")).is_admin
    assert accounts.admit(Principal("alice")).is_admin is False


# --- configuration ------------------------------------------------------------------------


def test_auth_methods_are_checked(tmp_path: Path) -> None:
    config = Config({"data_dir": str(tmp_path)})
    assert method_names(config) == ["local"]
    for bad in ("", "local,nosuch", "local,local"):
        with pytest.raises(ConfigurationError):
            method_names(config.replace(auth_methods=bad))


def test_the_default_chain_is_local_users(store: Store, tmp_path: Path) -> None:
    chain = build_chain(Config({"data_dir": str(tmp_path)}), Accounts(store))
    assert chain.authenticate(basic("alice")).name == "alice"
    assert chain.challenge("http://h/") == 'Basic realm="nimbostratus"'


# --- the cost of a refusal ----------------------------------------------------------------


def cost(call: Callable[[], object]) -> float:
    """The least of five timings of ``call`` (seconds): the floor of what it must do."""
    timings = []
    for _ in range(5):
        began = time.perf_counter()
        with contextlib.suppress(NotAuthenticated):
            call()
        timings.append(time.perf_counter() - began)
    return min(timings)


def test_every_refused_password_costs_one_password_check() -> None:
    """Unknown names are passed on by the local users at once; the chain pays a dummy check
    for every refusal of a password, so none is quicker than a local user's wrong password."""
    check = cost(lambda: verify_password("x", HASH))
    local = LocalAuthenticator(Directory(UserRecord("alice", HASH, False, False)), realm="n")
    refusing = Scripted("ldap", {"bob": NotAuthenticated(REFUSED)})
    chain = AuthChain([local, refusing, Scripted("other", {})])
    for user in ("alice", "bob", "nobody"):  # wrong local password, refused elsewhere, unknown
        assert cost(lambda user=user: chain.authenticate(basic(user, "wrong"))) > 0.5 * check
    # a name the local users do not hold costs no check on its way to the next authenticator
    assert cost(lambda: local.authenticate(basic("nobody"))) < 0.2 * check
    assert cost(lambda: chain.authenticate(Credentials(bearer="x"))) < 0.2 * check
