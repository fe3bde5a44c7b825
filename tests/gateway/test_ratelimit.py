"""Rate limits through the whole gateway on a real Redis: per principal, per client address
(before authentication, refused passwords included), the refused-password budget, exempt
addresses, X-Forwarded-For only from trusted proxies, one Redis round trip per request, and
fail-open when Redis cannot be reached."""

from __future__ import annotations

import base64
import logging
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis

from auth.chain import AuthChain, Authenticator
from auth.credentials import Credentials
from auth.principal import Principal
from gateway.app import create_app
from gateway.errors import ConfigurationError
from gateway.ratelimit import Rate, bucket, parse_rate
from tests.gateway.conftest import PASSWORD, Node, NodeFactory, basic

pytestmark = pytest.mark.redis

HOST = {"host-a": "memory://ratelimit-host?cores=16&memory_mib=32768"}
RETRY_AFTER = re.compile(r"^[1-9][0-9]*$")


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: the limits live in Redis; the store plays no part."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


def wrong(user: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:not-{PASSWORD}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def get(node: Node, headers: dict[str, str] | None = None, *, address: str = "127.0.0.1",
        **more: str) -> Any:
    return node.client.get("/compute/", headers={**(headers or {}), **more},
                           environ_overrides={"REMOTE_ADDR": address})


def assert_429(response: Any, *fragments: str) -> int:
    text = response.get_data(as_text=True)
    assert response.status_code == 429, text
    assert RETRY_AFTER.match(response.headers["Retry-After"]), response.headers
    for fragment in fragments:
        assert fragment in text, text
    return int(response.headers["Retry-After"])


# --- settings -------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "rate"), [("600/60", Rate(600, 60)), (" 5 / 1 ", Rate(5, 1)),
                                            ("", None), ("0", None), ("0/60", None)])
def test_rates_are_read_as_n_per_seconds(text: str, rate: Rate | None) -> None:
    assert parse_rate("rate_limit_user", text) == rate


@pytest.mark.parametrize("text", ["600", "600/0", "fast", "-1/60", "10/1m"])
def test_a_bad_rate_names_the_setting(text: str) -> None:
    with pytest.raises(ConfigurationError, match=r"rate_limit_address: .* N/SECONDS"):
        parse_rate("rate_limit_address", text)


def test_ipv6_clients_are_counted_by_their_64() -> None:
    assert bucket("2001:db8:1:2::1") == bucket("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert bucket("2001:db8:1:3::1") != bucket("2001:db8:1:2::1")
    assert bucket("::ffff:192.0.2.7") == bucket("192.0.2.7") == "192.0.2.7"


# --- per principal --------------------------------------------------------------------------


def test_a_user_over_the_limit_gets_429_naming_it(make_node: NodeFactory) -> None:
    node = make_node(HOST, rate_limit_user="3/60")
    for _ in range(3):
        assert get(node, basic("alice")).status_code == 200
    wait = assert_429(get(node, basic("alice")), "user alice", "3 per 60 s", "rate_limit_user")
    assert 1 <= wait <= 20  # one request frees every 20 s
    assert get(node, basic("bob")).status_code == 200  # bob's budget is his own


def test_the_user_limit_holds_across_api_processes(make_node: NodeFactory) -> None:
    first, second = make_node(HOST, rate_limit_user="3/60"), make_node(HOST, rate_limit_user="3/60")
    assert get(first, basic("alice")).status_code == 200
    assert get(second, basic("alice")).status_code == 200
    assert get(first, basic("alice")).status_code == 200
    assert_429(get(second, basic("alice")), "user alice")
    assert_429(get(first, basic("alice")), "user alice")


def test_a_users_budget_follows_him_to_any_address(make_node: NodeFactory) -> None:
    node = make_node(HOST, rate_limit_user="2/60")
    assert get(node, basic("alice"), address="192.0.2.1").status_code == 200
    assert get(node, basic("alice"), address="192.0.2.2").status_code == 200
    assert_429(get(node, basic("alice"), address="192.0.2.3"), "user alice")


# --- per address, before authentication -----------------------------------------------------


class CountingAuthenticator:
    """A seam: the real local authenticator, counting the credentials it was asked about."""

    def __init__(self, inner: Authenticator) -> None:
        self.inner, self.name, self.offers, self.calls = inner, inner.name, inner.offers, 0

    def authenticate(self, credentials: Credentials) -> Principal | None:
        self.calls += 1
        return self.inner.authenticate(credentials)

    def challenge(self, base_url: str) -> str | None:
        return self.inner.challenge(base_url)


def test_the_address_limit_counts_every_request_and_refuses_before_authentication(
    make_node: NodeFactory,
) -> None:
    node = make_node(HOST, rate_limit_address="4/60", rate_limit_auth_failures="")
    local = node.nimbo.auth.find("local")
    assert local is not None
    counting = CountingAuthenticator(local)
    chain = node.nimbo.limiter.guard(AuthChain([counting], admit=node.nimbo.accounts.admit))
    app = create_app(node.config, replace(node.nimbo, auth=chain)).test_client()

    assert app.get("/compute/").status_code == 401  # no credentials: counted
    assert app.get("/compute/", headers=wrong("alice")).status_code == 401  # refused: counted
    assert app.get("/compute/", headers=basic("alice")).status_code == 200
    assert app.get("/compute/", headers=basic("bob")).status_code == 200
    assert_429(app.get("/compute/", headers=basic("alice")),
               "too many requests from 127.0.0.1", "4 per 60 s", "rate_limit_address")
    checked = counting.calls
    for headers in (basic("alice"), wrong("alice"), {}):
        assert_429(app.get("/compute/", headers=headers), "from 127.0.0.1")
    assert counting.calls == checked  # refused before any password was looked at
    other = app.get("/compute/", headers=basic("alice"),
                    environ_overrides={"REMOTE_ADDR": "192.0.2.50"})
    assert other.status_code == 200


def test_exempt_addresses_are_never_limited(make_node: NodeFactory) -> None:
    node = make_node(HOST, rate_limit_user="1/60", rate_limit_address="1/60",
                     rate_limit_auth_failures="1/60",
                     rate_limit_exempt="127.0.0.0/8, 2001:db8::/32")
    for _ in range(4):
        assert get(node, basic("alice")).status_code == 200
        assert get(node, wrong("bob")).status_code == 401
        assert get(node, basic("alice"), address="2001:db8::5").status_code == 200
    assert get(node, basic("bob"), address="192.0.2.9").status_code == 200
    assert_429(get(node, basic("bob"), address="192.0.2.9"))


# --- refused passwords ----------------------------------------------------------------------


def test_refused_passwords_lock_password_logins_of_that_address_right_or_wrong(
    make_node: NodeFactory,
) -> None:
    node = make_node(HOST, rate_limit_auth_failures="3/60")
    for _ in range(3):
        assert get(node, wrong("alice")).status_code == 401
    locked = get(node, wrong("alice"))
    assert_429(locked, "too many refused passwords from 127.0.0.1", "3 per 60 s",
               "rate_limit_auth_failures")
    right = get(node, basic("alice"))
    assert_429(right)
    assert right.get_data(as_text=True) == locked.get_data(as_text=True)  # nothing learned
    other_user = get(node, basic("bob"))
    assert_429(other_user)

    elsewhere = make_node(HOST, rate_limit_auth_failures="3/60")  # another process: Redis
    assert_429(get(elsewhere, basic("alice")), "refused passwords")
    assert get(elsewhere, basic("alice"), address="192.0.2.8").status_code == 200
    # what offers no password is not held up (a token cannot be guessed)
    unauthenticated = get(node)
    assert unauthenticated.status_code == 401
    assert "authentication required" in unauthenticated.get_data(as_text=True)


def test_a_right_password_does_not_spend_the_failure_budget(make_node: NodeFactory) -> None:
    node = make_node(HOST, rate_limit_auth_failures="2/60")
    for _ in range(5):
        assert get(node, basic("alice")).status_code == 200
    assert get(node, wrong("alice")).status_code == 401
    assert get(node, basic("alice")).status_code == 200


def keystone(user: str, password: str) -> dict[str, Any]:
    identity = {"methods": ["password"],
                "password": {"user": {"name": user, "password": password}}}
    return {"auth": {"identity": identity}}


def test_views_that_authenticate_for_themselves_are_held_to_the_budgets(
    make_node: NodeFactory,
) -> None:
    node = make_node(HOST, auth_methods="local,token", rate_limit_user="2/60",
                     rate_limit_auth_failures="2/60")
    client = node.client
    for _ in range(2):
        assert client.post("/auth/tokens", headers=basic("alice")).status_code == 201
    assert_429(client.post("/auth/tokens", headers=basic("alice")), "user alice")
    # a password in a Keystone body counts as one in an Authorization header
    path = "/auth/v3/auth/tokens"
    for _ in range(2):
        assert client.post(path, json=keystone("bob", "not-his")).status_code == 401
    assert_429(client.post(path, json=keystone("bob", "not-his")), "refused passwords")
    assert_429(client.post(path, json=keystone("bob", PASSWORD)), "refused passwords")


# --- client addresses -----------------------------------------------------------------------


def test_forwarded_for_is_believed_from_trusted_proxies_only(make_node: NodeFactory) -> None:
    node = make_node(HOST, rate_limit_address="2/60", auth_trusted_proxies="10.0.0.1")
    proxy = "10.0.0.1"
    for _ in range(2):
        assert get(node, basic("alice"), address=proxy,
                   **{"X-Forwarded-For": "203.0.113.7"}).status_code == 200
    # a client's own X-Forwarded-For entries (left of the proxy's) are not believed
    assert_429(get(node, basic("alice"), address=proxy,
                   **{"X-Forwarded-For": "198.51.100.99, 203.0.113.7"}),
               "from 203.0.113.7")
    assert get(node, basic("alice"), address=proxy,
               **{"X-Forwarded-For": "203.0.113.8"}).status_code == 200
    # from an address that is no trusted proxy the header counts for nothing
    for _ in range(2):
        assert get(node, basic("alice"), address="192.0.2.20",
                   **{"X-Forwarded-For": "203.0.113.9"}).status_code == 200
    assert_429(get(node, basic("alice"), address="192.0.2.20",
                   **{"X-Forwarded-For": "203.0.113.10"}), "from 192.0.2.20")


# --- cost and failure -----------------------------------------------------------------------


def test_a_request_costs_one_redis_round_trip(make_node: NodeFactory, redis_url: str) -> None:
    node = make_node(HOST, rate_limit_user="1000/60", rate_limit_address="1000/60",
                     rate_limit_auth_failures="1000/60")
    assert get(node, basic("alice")).status_code == 200  # loads the script
    with redis.Redis.from_url(redis_url) as client:
        client.config_resetstat()
        for _ in range(10):
            assert get(node, basic("alice")).status_code == 200
        stats = client.info("commandstats")
    calls = {name.removeprefix("cmdstat_"): stat["calls"] for name, stat in stats.items()}
    calls.pop("config|resetstat")
    assert calls.pop("evalsha") == 10  # one script call per request
    assert set(calls) <= {"time", "get", "set"}  # and nothing else but what the script runs


def test_a_warm_basic_login_with_only_the_failure_budget_skips_redis(
    make_node: NodeFactory, redis_url: str
) -> None:
    """With the default limits (only rate_limit_auth_failures), a whole failure budget is
    believed for CLEAR_SECONDS: a busy Basic client costs Redis one look a second, and a
    refusal counted here makes the next request look again."""
    node = make_node(HOST)
    assert get(node, basic("alice")).status_code == 200  # looks, finds the budget whole
    with redis.Redis.from_url(redis_url) as client:
        client.config_resetstat()
        for _ in range(10):
            assert get(node, basic("alice")).status_code == 200
        assert "cmdstat_evalsha" not in client.info("commandstats")
        assert get(node, wrong("alice")).status_code == 401  # charged
        assert get(node, basic("alice")).status_code == 200  # and looked at again
        stats = client.info("commandstats")
    assert stats["cmdstat_evalsha"]["calls"] == 2


def test_limits_fail_open_when_redis_cannot_be_reached(
    make_node: NodeFactory, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    node = make_node(HOST, redis=f"unix://{tmp_path / 'no-redis.sock'}",
                     rate_limit_user="1/60", rate_limit_address="1/60")
    with caplog.at_level(logging.WARNING, logger="gateway.ratelimit"):
        for _ in range(3):
            assert get(node, basic("alice")).status_code == 200
            assert get(node, wrong("alice")).status_code == 401
    warnings = [r for r in caplog.records if r.name == "gateway.ratelimit"]
    assert len(warnings) == 1  # once a minute, not once a request
    assert "rate limits not applied: Redis cannot be reached" in warnings[0].getMessage()
