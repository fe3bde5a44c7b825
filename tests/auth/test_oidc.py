"""OpenID Connect bearer tokens (auth.oidc): a local issuer serves its JWKS over real HTTP on
127.0.0.1 (tests/auth/jwks_server.py) and signs tokens with keys the tests made. Every forged,
stale or misdirected token is refused with a message naming what was wrong, at the
authenticator and through the whole gateway (an OCCI GET)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from auth.credentials import Credentials
from auth.oidc import OidcAuthenticator
from gateway.authentication import FACTORIES
from gateway.config import Config
from gateway.errors import ConfigurationError, NotAuthenticated, ServiceUnavailable
from gateway.store.models import User
from tests.auth.jwks_server import AUDIENCE, IdentityProvider, tampered
from tests.gateway.conftest import INFRA, Node, NodeFactory, category, text_plain

EGI_GROUP = r"urn:mace:egi\.eu:group:([^:#]+)(?::[^#]*)?#aai\.egi\.eu"
ENTITLEMENTS = [
    "urn:mace:egi.eu:group:vo.example.org:role=member#aai.egi.eu",
    "urn:mace:egi.eu:group:vo.other.eu#aai.egi.eu",
    "urn:mace:example.org:something-else",
]


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the store's engine."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


def settings(provider: IdentityProvider, **changes: Any) -> dict[str, Any]:
    return {
        "oidc_issuer": provider.issuer,
        "oidc_audience": f"another-service, {AUDIENCE}",
        "oidc_jwks_refetch_seconds": 0,
        **changes,
    }


def authenticator(provider: IdentityProvider, tmp_path: Path, **changes: Any) -> OidcAuthenticator:
    """The authenticator as the gateway builds it from its settings."""
    config = Config({"data_dir": str(tmp_path), **settings(provider, **changes)})
    made = FACTORIES["oidc"](config, None)  # type: ignore[arg-type]  # oidc needs no accounts
    assert isinstance(made, OidcAuthenticator)
    return made


def bearer(token: str) -> Credentials:
    return Credentials(remote_addr="127.0.0.1", bearer=token)


def refusal(oidc: OidcAuthenticator, token: str) -> str:
    with pytest.raises(NotAuthenticated) as refused:
        oidc.authenticate(bearer(token))
    return refused.value.message


# --- the good token -------------------------------------------------------------------------


def test_a_good_token_yields_its_subject_with_mapped_groups(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path, oidc_group_pattern=EGI_GROUP)
    token = identity_provider.token(identity_provider.claims(eduperson_entitlement=ENTITLEMENTS))
    principal = oidc.authenticate(bearer(token))
    assert principal is not None
    assert (principal.name, principal.display_name, principal.source) == (
        "alice-oidc",
        "Alice Example",
        "oidc",
    )
    assert principal.groups == {"vo.example.org", "vo.other.eu"}
    assert oidc.authenticate(Credentials(basic=("alice", "pw"))) is None  # not its kind


def test_groups_come_as_they_are_without_a_pattern_from_a_list_or_a_string(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path, oidc_groups_claim="groups")
    claims = identity_provider.claims(groups="admins, staff users", sub="x" * 255)
    principal = oidc.authenticate(bearer(identity_provider.token(claims)))
    assert principal is not None and principal.groups == {"admins", "staff", "users"}
    assert principal.name == "x" * 255
    listed = identity_provider.token(identity_provider.claims(groups=["a", "b"], sub="bob"))
    assert oidc.authenticate(bearer(listed)).groups == {"a", "b"}  # type: ignore[union-attr]


def test_es256_tokens_verify_against_an_ec_key(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    kid = identity_provider.add_key("EC")
    oidc = authenticator(identity_provider, tmp_path)
    principal = oidc.authenticate(bearer(identity_provider.token(kid=kid)))
    assert principal is not None and principal.name == "alice-oidc"


def test_the_user_claim_and_display_name_are_configurable(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path, oidc_user_claim="preferred_username")
    claims = identity_provider.claims(preferred_username="alice.x", name=None)
    principal = oidc.authenticate(bearer(identity_provider.token(claims)))
    assert principal is not None and (principal.name, principal.display_name) == (
        "alice.x",
        "alice.x",
    )
    no_user = identity_provider.token(identity_provider.claims())
    assert "lacks the user claim 'preferred_username'" in refusal(oidc, no_user)


# --- the negative set -----------------------------------------------------------------------

Forge = Callable[[IdentityProvider], str]
NEGATIVE: dict[str, tuple[Forge, str]] = {
    "expired": (lambda p: p.token(p.claims(exp=int(time.time()) - 120)), "has expired"),
    "not yet valid": (
        lambda p: p.token(p.claims(nbf=int(time.time()) + 600)),
        "not yet valid",
    ),
    "issued in the future": (
        lambda p: p.token(p.claims(iat=int(time.time()) + 600)),
        "not yet valid",
    ),
    "wrong issuer": (
        lambda p: p.token(p.claims(iss="https://evil.example.org")),
        "wrong issuer",
    ),
    "issuer with a trailing slash": (
        lambda p: p.token(p.claims(iss=p.issuer + "/")),
        "wrong issuer",
    ),
    "wrong audience": (lambda p: p.token(p.claims(aud="someone-else")), "wrong audience"),
    "no audience": (lambda p: p.token(p.claims(aud=None)), "required claim 'aud'"),
    "tampered payload": (lambda p: tampered(p.token(), sub="root"), "bad signature"),
    "alg none": (lambda p: p.unsigned(), "unsupported algorithm"),
    "HS256 with the public key": (lambda p: p.hmac_with_public_key(), "unsupported algorithm"),
    "unknown kid": (
        lambda p: p.token(kid="forged-kid", key=p.add_key(publish=False)),
        "unknown key id 'forged-kid'",
    ),
    "signed by an unpublished key": (
        lambda p: p.token(kid="rsa-0", key=p.add_key(publish=False)),
        "bad signature",
    ),
    "missing exp": (lambda p: p.token(p.claims(exp=None)), "required claim 'exp'"),
    "RS256 named but ES256 key": (
        lambda p: p.token(kid=p.add_key("EC"), alg="RS256", key="rsa-0"),
        "does not fit its key",
    ),
    "not a JWT": (lambda p: "not-a-jwt", "not a well-formed JWT"),
}


@pytest.mark.parametrize("case", list(NEGATIVE))
def test_bad_tokens_are_refused_with_the_reason(
    case: str, identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    forge, reason = NEGATIVE[case]
    token = forge(identity_provider)
    oidc = authenticator(identity_provider, tmp_path)
    assert reason in refusal(oidc, token)
    assert reason in refusal(oidc, token)  # and again: refusals are never cached


def test_hs256_and_none_cannot_even_be_configured(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    for algorithms, fragment in (
        ("RS256,none", "'none'"),
        ("HS256", "shared-secret"),
        ("RS256,hs512", "shared-secret"),
        ("RS256,XS1", "unknown algorithm"),
        ("", "empty"),
    ):
        with pytest.raises(ConfigurationError, match=fragment):
            authenticator(identity_provider, tmp_path, oidc_algorithms=algorithms)
    for changes, fragment in (
        ({"oidc_issuer": ""}, "oidc_issuer"),
        ({"oidc_audience": " , "}, "oidc_audience"),
        ({"oidc_jwks_url": "file:///etc/passwd"}, "oidc_jwks_url"),
        ({"oidc_group_pattern": "urn:(a)(b)"}, "exactly one group"),
        ({"oidc_group_pattern": "urn:(a"}, "not a regular expression"),
    ):
        with pytest.raises(ConfigurationError, match=fragment):
            authenticator(identity_provider, tmp_path, **changes)


# --- keys: rotation, forged kids, an unreachable issuer --------------------------------------


def test_a_rotated_key_is_accepted_after_one_refetch(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path)
    assert oidc.authenticate(bearer(identity_provider.token())) is not None
    assert identity_provider.jwks_fetches == 1
    new = identity_provider.rotate()
    principal = oidc.authenticate(bearer(identity_provider.token(kid=new)))
    assert principal is not None and identity_provider.jwks_fetches == 2
    old = identity_provider.token(identity_provider.claims(sub="old-key"), kid="rsa-0")
    assert "unknown key id 'rsa-0'" in refusal(oidc, old)  # no longer published


def test_forged_key_ids_cause_at_most_one_fetch_per_interval(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path, oidc_jwks_refetch_seconds=60)
    assert oidc.authenticate(bearer(identity_provider.token())) is not None
    forger = identity_provider.add_key(publish=False)
    for number in range(20):
        token = identity_provider.token(kid=f"forged-{number}", key=forger)
        assert f"unknown key id 'forged-{number}'" in refusal(oidc, token)
    assert identity_provider.jwks_fetches == 1  # the first fetch is less than 60 s old
    patient = authenticator(identity_provider, tmp_path, oidc_jwks_refetch_seconds=0)
    patient.authenticate(bearer(identity_provider.token()))
    for number in range(3):
        refusal(patient, identity_provider.token(kid=f"forged-{number}", key=forger))
    assert identity_provider.jwks_fetches == 1 + 1 + 3  # without the bound: one per kid


def test_keys_are_discovered_from_the_issuer_or_taken_from_the_setting(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    discovered = authenticator(identity_provider, tmp_path)
    assert discovered.authenticate(bearer(identity_provider.token())) is not None
    assert identity_provider.served["/.well-known/openid-configuration"] == 1
    explicit = authenticator(identity_provider, tmp_path, oidc_jwks_url=identity_provider.jwks_url)
    assert explicit.authenticate(bearer(identity_provider.token())) is not None
    assert identity_provider.served["/.well-known/openid-configuration"] == 1
    assert identity_provider.jwks_fetches == 2


def test_an_unreachable_issuer_is_503_not_401(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    token = identity_provider.token()
    oidc = authenticator(identity_provider, tmp_path, oidc_http_timeout=2)
    identity_provider.stop()
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        oidc.authenticate(bearer(token))
    identity_provider.start()  # back on the same port: the next request fetches again
    assert oidc.authenticate(bearer(token)) is not None


def test_keys_already_fetched_outlive_a_short_outage(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path, oidc_jwks_cache_seconds=0)
    assert oidc.authenticate(bearer(identity_provider.token())) is not None
    identity_provider.stop()
    other = identity_provider.token(identity_provider.claims(sub="bob-oidc"))
    with pytest.raises(ServiceUnavailable):  # stale for longer than twice the cache time
        oidc.authenticate(bearer(other))
    longer = authenticator(identity_provider, tmp_path, oidc_jwks_cache_seconds=1)
    identity_provider.start()
    assert longer.authenticate(bearer(identity_provider.token())) is not None
    identity_provider.stop()
    time.sleep(1.05)  # stale, but within the grace of one more cache period
    principal = longer.authenticate(bearer(other))
    assert principal is not None and principal.name == "bob-oidc"


def test_an_unknown_kid_while_the_issuer_is_down_is_503_not_401(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path)
    assert oidc.authenticate(bearer(identity_provider.token())) is not None
    rotated = identity_provider.token(kid=identity_provider.add_key())
    identity_provider.stop()
    with pytest.raises(ServiceUnavailable, match="cannot be reached"):
        oidc.authenticate(bearer(rotated))
    other = identity_provider.token(identity_provider.claims(sub="bob-oidc"))
    principal = oidc.authenticate(bearer(other))  # the keys held still verify their tokens
    assert principal is not None and principal.name == "bob-oidc"


def test_a_discovery_document_of_another_issuer_is_refused(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path)
    token = identity_provider.token()
    real = identity_provider.document
    identity_provider.document = lambda path: (  # type: ignore[method-assign]
        {"issuer": "https://elsewhere.example.org", "jwks_uri": identity_provider.jwks_url}
        if path.startswith("/.well-known")
        else real(path)
    )
    with pytest.raises(ServiceUnavailable, match="not the issuer"):
        oidc.authenticate(bearer(token))


# --- the cache of verified tokens -----------------------------------------------------------


def test_a_verified_token_is_remembered_until_the_bound(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    """With keys fetched on every verification (jwks cache 0), a remembered token costs no
    fetch; without the token cache every use fetches."""
    token = identity_provider.token()
    warm = authenticator(identity_provider, tmp_path, oidc_jwks_cache_seconds=0)
    for _ in range(5):
        assert warm.authenticate(bearer(token)) is not None
    assert identity_provider.jwks_fetches == 1
    cold = authenticator(
        identity_provider, tmp_path, oidc_jwks_cache_seconds=0, oidc_token_cache_seconds=0
    )
    for _ in range(3):
        assert cold.authenticate(bearer(token)) is not None
    assert identity_provider.jwks_fetches == 1 + 3


def test_the_cache_never_outlives_the_token(
    identity_provider: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(identity_provider, tmp_path, oidc_leeway=0)
    exp = int(time.time()) + 2
    token = identity_provider.token(identity_provider.claims(exp=exp))
    assert oidc.authenticate(bearer(token)) is not None
    time.sleep(max(0.0, exp + 0.05 - time.time()))
    assert "has expired" in refusal(oidc, token)


# --- through the gateway --------------------------------------------------------------------


def oidc_node(make_node: NodeFactory, provider: IdentityProvider, **changes: Any) -> Node:
    return make_node(
        auth_methods="local,oidc",
        oidc_group_pattern=EGI_GROUP,
        **settings(provider, **changes),
    )


def get(node: Node, path: str, token: str) -> Any:
    return node.request("GET", path, user=None, headers={"Authorization": f"Bearer {token}"})


def test_a_bearer_token_works_through_the_gateway_and_owns_what_it_creates(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    node = oidc_node(make_node, identity_provider)
    token = identity_provider.token(identity_provider.claims(eduperson_entitlement=ENTITLEMENTS))
    assert get(node, "/compute/", token).status_code == 200
    body = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 1.0})
    created = node.request(
        "POST",
        "/storage/",
        user=None,
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
    assert created.status_code == 201, created.get_data(as_text=True)
    row = node.row(created.headers["Location"])
    assert row is not None and row.owner == "alice-oidc"
    with node.store.session() as session:
        user = session.get(User, "alice-oidc")
        assert user is not None
        assert (user.source, user.display_name, sorted(user.groups)) == (
            "oidc",
            "Alice Example",
            ["vo.example.org", "vo.other.eu"],
        )
    # Basic users are untouched, and alice (local) is not alice-oidc.
    assert node.get("/compute/", user="alice").status_code == 200
    assert node.get(created.headers["Location"], user="alice").status_code == 404


def test_every_bad_token_is_401_through_the_gateway(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    node = oidc_node(make_node, identity_provider)
    for case, (forge, reason) in NEGATIVE.items():
        response = get(node, "/compute/", forge(identity_provider))
        assert response.status_code == 401, case
        assert reason in response.get_data(as_text=True), case
        assert response.headers["WWW-Authenticate"] == (
            'Basic realm="nimbostratus", Bearer realm="nimbostratus"'
        )


def test_an_unreachable_issuer_is_503_for_bearer_requests_only(
    make_node: NodeFactory, identity_provider: IdentityProvider
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/jwks"
    node = oidc_node(make_node, identity_provider, oidc_jwks_url=closed)
    response = get(node, "/compute/", identity_provider.token())
    assert response.status_code == 503
    assert "identity provider cannot be reached" in response.get_data(as_text=True)
    assert "Retry-After" in response.headers
    assert node.get("/compute/", user="alice").status_code == 200
