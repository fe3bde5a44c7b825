"""Several trusted OpenID Connect issuers (auth.oidc, setting ``oidc_issuers``): EGI Check-in
style (the flat ``oidc_*`` settings, bare user names, entitlements) beside an INDIGO IAM style
issuer (an entry with its own audience, keys, ``wlcg.groups`` and the user prefix ``wlcg:``).
Each is a real issuer serving its JWKS over HTTP on 127.0.0.1 with its own key pairs
(tests/auth/jwks_server.py, ``key_set``); tokens go through the authenticator as the gateway
builds it and through the whole gateway (OCCI, ``POST /auth/tokens``, Keystone federation)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from auth.oidc import OidcAuthenticator
from auth.oidc_issuers import issuer_settings
from gateway.authentication import FACTORIES
from gateway.config import Config, load_config
from gateway.errors import ConfigurationError
from gateway.store.models import User
from tests.auth.jwks_server import AUDIENCE, IdentityProvider, tampered
from tests.auth.test_oidc import EGI_GROUP, ENTITLEMENTS, NEGATIVE, bearer, refusal
from tests.gateway.conftest import INFRA, Node, NodeFactory, category, text_plain

IAM_GROUP = r"/([^/]+)(?:/.*)?"  # /vo.example.org/production -> vo.example.org
WLCG_GROUPS = ["/vo.example.org/production", "/vo.iam-only.eu"]
PREFIX = "wlcg:"


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: nothing here depends on the store's engine."""
    return f"sqlite:///{tmp_path / 'nimbo.sqlite3'}"


@pytest.fixture
def checkin(identity_provider: IdentityProvider) -> IdentityProvider:
    """The first issuer (key set 0), configured by the flat oidc_* settings."""
    return identity_provider


@pytest.fixture
def iam() -> Iterator[IdentityProvider]:
    """The second issuer, with key pairs of its own under the same key ids (rsa-0, ...)."""
    provider = IdentityProvider(key_set=1)
    yield provider
    provider.stop()


@pytest.fixture
def stranger() -> Iterator[IdentityProvider]:
    """An issuer nobody configured: it must never be asked for anything."""
    provider = IdentityProvider(key_set=2)
    yield provider
    provider.stop()


def iam_entry(provider: IdentityProvider, **changes: Any) -> dict[str, Any]:
    return {
        "issuer": provider.issuer,
        "audience": AUDIENCE,
        "groups_claim": "wlcg.groups",
        "group_pattern": IAM_GROUP,
        "user_prefix": PREFIX,
        **changes,
    }


def two_issuers(
    checkin: IdentityProvider, iam: IdentityProvider, *, entry: Any = None, **changes: Any
) -> dict[str, Any]:
    """Settings trusting both: Check-in by the flat settings, the IAM by an entry."""
    return {
        "oidc_issuer": checkin.issuer,
        "oidc_audience": AUDIENCE,
        "oidc_group_pattern": EGI_GROUP,
        "oidc_jwks_refetch_seconds": 0,
        "oidc_issuers": [iam_entry(iam) if entry is None else entry],
        **changes,
    }


def authenticator(tmp_path: Path, settings: dict[str, Any]) -> OidcAuthenticator:
    config = Config({"data_dir": str(tmp_path), **settings})
    made = FACTORIES["oidc"](config, None)  # type: ignore[arg-type]  # oidc needs no accounts
    assert isinstance(made, OidcAuthenticator)
    return made


def checkin_token(provider: IdentityProvider, **changes: Any) -> str:
    return provider.token(provider.claims(eduperson_entitlement=ENTITLEMENTS, **changes))


def iam_token(provider: IdentityProvider, **changes: Any) -> str:
    return provider.token(provider.claims(**{"wlcg.groups": WLCG_GROUPS, **changes}))


# --- both issuers, each with its own claims --------------------------------------------------


def test_tokens_of_both_issuers_are_accepted_with_their_own_users_and_groups(
    checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(tmp_path, two_issuers(checkin, iam))
    assert oidc.issuers == (checkin.issuer, iam.issuer)
    first = oidc.authenticate(bearer(checkin_token(checkin)))
    second = oidc.authenticate(bearer(iam_token(iam)))
    assert first is not None and second is not None
    assert (first.name, first.display_name, first.source) == (
        "alice-oidc",
        "Alice Example",
        "oidc",
    )
    assert first.groups == {"vo.example.org", "vo.other.eu"}  # entitlements through EGI_GROUP
    assert (second.name, second.display_name, second.source) == (
        "wlcg:alice-oidc",
        "Alice Example",
        "oidc",
    )
    assert second.groups == {"vo.example.org", "vo.iam-only.eu"}  # wlcg.groups, IAM_GROUP
    # Each issuer reads its own groups claim only.
    crossed = iam.token(iam.claims(eduperson_entitlement=ENTITLEMENTS, sub="carol"))
    assert oidc.authenticate(bearer(crossed)).groups == frozenset()  # type: ignore[union-attr]


def test_each_issuer_has_its_own_keys_and_key_cache(
    checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(tmp_path, two_issuers(checkin, iam))
    assert oidc.authenticate(bearer(checkin_token(checkin))) is not None
    assert (checkin.jwks_fetches, iam.jwks_fetches) == (1, 0)
    assert oidc.authenticate(bearer(iam_token(iam))) is not None
    assert (checkin.jwks_fetches, iam.jwks_fetches) == (1, 1)
    # A rotation at the IAM refetches the IAM's keys only.
    rotated = iam.rotate()
    assert oidc.authenticate(bearer(iam.token(iam.claims(sub="dave"), kid=rotated))) is not None
    assert oidc.authenticate(bearer(checkin_token(checkin, sub="erin"))) is not None
    assert (checkin.jwks_fetches, iam.jwks_fetches) == (1, 2)


def test_a_key_of_one_issuer_never_verifies_a_token_claiming_the_other(
    checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(tmp_path, two_issuers(checkin, iam))
    assert checkin.jwk("rsa-0") != iam.jwk("rsa-0")  # same kid, different key pairs
    # Signed with Check-in's rsa-0, claiming the IAM: judged by the IAM's rsa-0.
    forged = checkin.token(iam.claims(sub="root"), kid="rsa-0")
    assert "bad signature" in refusal(oidc, forged)
    # A kid only Check-in publishes is unknown to the IAM.
    only_checkin = checkin.add_key()
    assert oidc.authenticate(bearer(checkin.token(kid=only_checkin))) is not None
    forged = checkin.token(iam.claims(sub="root"), kid=only_checkin)
    assert f"unknown key id {only_checkin!r}" in refusal(oidc, forged)
    # ... and the other way round.
    forged = iam.token(checkin.claims(sub="root"), kid="rsa-0")
    assert "bad signature" in refusal(oidc, forged)


def test_the_same_sub_from_two_issuers_is_two_users_through_the_gateway(
    make_node: NodeFactory, checkin: IdentityProvider, iam: IdentityProvider
) -> None:
    node = make_node(auth_methods="local,oidc", **two_issuers(checkin, iam))
    tokens = {"alice-oidc": checkin_token(checkin), f"{PREFIX}alice-oidc": iam_token(iam)}
    made = {}
    for user, token in tokens.items():
        created = post_storage(node, token)
        assert created.status_code == 201, created.get_data(as_text=True)
        made[user] = created.headers["Location"]
        row = node.row(made[user])
        assert row is not None and row.owner == user
    with node.store.session() as session:
        rows = {name: session.get(User, name) for name in tokens}
        assert {name: (u.source, sorted(u.groups)) for name, u in rows.items() if u} == {
            "alice-oidc": ("oidc", ["vo.example.org", "vo.other.eu"]),
            f"{PREFIX}alice-oidc": ("oidc", ["vo.example.org", "vo.iam-only.eu"]),
        }
    # Neither sees the other's storage (group policy aside: neither created it in a group).
    for user, token in tokens.items():
        other = next(location for owner, location in made.items() if owner != user)
        assert get(node, made[user], token).status_code == 200
        assert get(node, other, token).status_code == 404


def test_a_bare_name_in_another_issuers_namespace_is_refused(
    checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    """Check-in keeps bare names, so its sub 'wlcg:bob' would be the IAM's bob."""
    oidc = authenticator(tmp_path, two_issuers(checkin, iam))
    impostor = checkin_token(checkin, sub=f"{PREFIX}bob")
    assert "belong to the users of another trusted issuer" in refusal(oidc, impostor)
    bob = oidc.authenticate(bearer(iam_token(iam, sub="bob")))
    assert bob is not None and bob.name == f"{PREFIX}bob"
    # A single issuer reserves nothing: its names are what they always were.
    alone = authenticator(
        tmp_path, {"oidc_issuer": checkin.issuer, "oidc_audience": AUDIENCE}
    ).authenticate(bearer(impostor))
    assert alone is not None and alone.name == f"{PREFIX}bob"


def test_without_the_flat_issuer_the_first_entry_may_keep_bare_names(
    checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    bare = {"issuer": checkin.issuer, "audience": AUDIENCE}
    oidc = authenticator(tmp_path, {"oidc_issuers": [bare, iam_entry(iam)]})
    assert oidc.authenticate(bearer(checkin.token())).name == "alice-oidc"  # type: ignore[union-attr]
    assert oidc.authenticate(bearer(iam.token())).name == "wlcg:alice-oidc"  # type: ignore[union-attr]
    prefixed = {**bare, "user_prefix": "egi:"}
    oidc = authenticator(tmp_path, {"oidc_issuers": [prefixed, iam_entry(iam)]})
    assert oidc.authenticate(bearer(checkin.token())).name == "egi:alice-oidc"  # type: ignore[union-attr]
    assert oidc.authenticate(bearer(checkin.token(checkin.claims(sub="wlcg:x")))) is not None


# --- untrusted issuers ------------------------------------------------------------------------


def test_an_untrusted_issuer_is_refused_and_never_fetched_from(
    checkin: IdentityProvider, iam: IdentityProvider, stranger: IdentityProvider, tmp_path: Path
) -> None:
    oidc = authenticator(tmp_path, two_issuers(checkin, iam))
    for token in (
        stranger.token(),  # a real issuer, with discovery and JWKS, that nobody configured
        stranger.token(stranger.claims(iss=stranger.issuer + "/")),
        checkin.token(checkin.claims(iss=stranger.jwks_url)),  # signed by a trusted key
        checkin.token(checkin.claims(iss=checkin.issuer + "/")),  # not exactly Check-in
    ):
        message = refusal(oidc, token)
        assert "wrong issuer" in message and "is not trusted here" in message
        assert f"this server accepts {checkin.issuer}, {iam.issuer}" in message
    assert stranger.served == {}
    assert checkin.served == {} and iam.served == {}  # nothing is fetched before the issuer
    assert "lacks the required claim 'iss'" in refusal(
        oidc, checkin.token(checkin.claims(iss=None))
    )
    listed = tampered(checkin.token(), iss=[iam.issuer])  # PyJWT signs no such token
    assert "iss is not a string" in refusal(oidc, listed)
    long = "https://evil.example.org/" + "x" * 5000
    assert len(refusal(oidc, checkin.token(checkin.claims(iss=long)))) < 400
    assert checkin.served == {} and iam.served == {}


def test_an_untrusted_issuer_is_401_through_the_gateway(
    make_node: NodeFactory,
    checkin: IdentityProvider,
    iam: IdentityProvider,
    stranger: IdentityProvider,
) -> None:
    node = make_node(auth_methods="local,oidc", **two_issuers(checkin, iam))
    response = get(node, "/compute/", stranger.token())
    assert response.status_code == 401
    assert f"issuer '{stranger.issuer}' is not trusted here" in response.get_data(as_text=True)
    assert response.headers["WWW-Authenticate"] == (
        'Basic realm="nimbostratus", Bearer realm="nimbostratus"'
    )
    assert stranger.served == {}


# --- per-issuer audience and algorithms ----------------------------------------------------


def test_each_issuer_has_its_own_audience(
    checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    settings = two_issuers(
        checkin, iam, entry=iam_entry(iam, audience=["iam-audience", "also-iam"])
    )
    oidc = authenticator(tmp_path, {**settings, "oidc_audience": "checkin-audience"})
    assert oidc.authenticate(bearer(checkin_token(checkin, aud="checkin-audience"))) is not None
    assert oidc.authenticate(bearer(iam_token(iam, aud="also-iam"))) is not None
    message = refusal(oidc, iam_token(iam, aud="checkin-audience", sub="x"))
    assert message.endswith("its aud names none of iam-audience, also-iam")
    message = refusal(oidc, checkin_token(checkin, aud="iam-audience", sub="y"))
    assert message.endswith("its aud names none of checkin-audience")


def test_each_issuer_has_its_own_algorithms(
    checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    iam_ec = iam.add_key("EC")
    checkin_ec = checkin.add_key("EC")
    settings = two_issuers(checkin, iam, entry=iam_entry(iam, algorithms="ES256"))
    oidc = authenticator(tmp_path, {**settings, "oidc_algorithms": "RS256"})
    assert oidc.authenticate(bearer(checkin.token())) is not None
    assert oidc.authenticate(bearer(iam.token(kid=iam_ec))) is not None
    message = refusal(oidc, iam.token(iam.claims(sub="x"), kid="rsa-0"))  # published, RS256
    assert "'RS256' is not accepted (unsupported algorithm)" in message
    assert message.endswith(f"this server accepts ES256 from {iam.issuer}")
    message = refusal(oidc, checkin.token(checkin.claims(sub="y"), kid=checkin_ec))
    assert "'ES256' is not accepted" in message and message.endswith(f"RS256 from {checkin.issuer}")
    for forged in (iam.unsigned(), iam.hmac_with_public_key()):
        assert "unsupported algorithm" in refusal(oidc, forged)


@pytest.mark.parametrize("case", list(NEGATIVE))
def test_every_bad_token_of_the_second_issuer_is_refused_with_the_reason(
    case: str, checkin: IdentityProvider, iam: IdentityProvider, tmp_path: Path
) -> None:
    """The negative set of test_oidc.py, against the issuer configured by an entry."""
    forge, reason = NEGATIVE[case]
    oidc = authenticator(tmp_path, two_issuers(checkin, iam))
    token = forge(iam)
    assert reason in refusal(oidc, token)
    assert reason in refusal(oidc, token)


def test_an_unreachable_issuer_is_503_for_its_own_tokens_only(
    make_node: NodeFactory, checkin: IdentityProvider, iam: IdentityProvider
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/jwks"
    settings = two_issuers(checkin, iam, entry=iam_entry(iam, jwks_url=closed))
    node = make_node(auth_methods="local,oidc", **settings)
    response = get(node, "/compute/", iam_token(iam))
    assert response.status_code == 503
    assert "identity provider cannot be reached" in response.get_data(as_text=True)
    assert get(node, "/compute/", checkin_token(checkin)).status_code == 200
    assert node.get("/compute/", user="alice").status_code == 200


# --- tokens and Keystone with the second issuer ----------------------------------------------


def test_the_second_issuers_tokens_get_x_auth_tokens_and_keystone_tokens(
    make_node: NodeFactory, checkin: IdentityProvider, iam: IdentityProvider
) -> None:
    node = make_node(auth_methods="local,oidc,token", **two_issuers(checkin, iam))
    for token, user, groups in (
        (iam_token(iam), f"{PREFIX}alice-oidc", ["vo.example.org", "vo.iam-only.eu"]),
        (checkin_token(checkin), "alice-oidc", ["vo.example.org", "vo.other.eu"]),
    ):
        issued = node.client.post("/auth/tokens", headers={"Authorization": f"Bearer {token}"})
        assert issued.status_code == 201, issued.get_data(as_text=True)
        assert (issued.get_json()["user"], issued.get_json()["groups"]) == (user, groups)
        x_auth = issued.get_json()["token"]
        listed = node.request("GET", "/compute/", user=None, headers={"X-Auth-Token": x_auth})
        assert listed.status_code == 200
        federated = node.client.post(
            "/auth/v3/OS-FEDERATION/identity_providers/egi.eu/protocols/openid/auth",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert federated.status_code == 201, federated.get_data(as_text=True)
        document = federated.get_json()["token"]
        assert (document["user"]["name"], document["methods"]) == (user, ["openid"])
        assert [g["id"] for g in document["user"]["OS-FEDERATION"]["groups"]] == groups
        keystone = node.client.post(
            "/auth/v3/auth/tokens", headers={"Authorization": f"Bearer {token}"}
        )
        assert keystone.status_code == 201, keystone.get_data(as_text=True)
        assert keystone.get_json()["token"]["user"]["name"] == user
    stranger = iam.token(iam.claims(iss="https://evil.example.org"))
    refused = node.client.post("/auth/tokens", headers={"Authorization": f"Bearer {stranger}"})
    assert refused.status_code == 401 and "is not trusted here" in refused.get_data(as_text=True)


# --- configuration ----------------------------------------------------------------------------

A = "https://iam-a.example.org/"
B = "https://iam-b.example.org/"


def entry(issuer: str = A, **changes: Any) -> dict[str, Any]:
    return {"issuer": issuer, "audience": "cloud", "user_prefix": "a:", **changes}


CONFIG_ERRORS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown key": (
        {"oidc_issuers": [entry(groups="x", leeway=3)]},
        rf"oidc_issuers\[0\] \({A}\): unknown key\(s\) groups, leeway",
    ),
    "entry not a table": (
        {"oidc_issuers": ["https://x.org"]},
        r"oidc_issuers\[0\] must be a table",
    ),
    "issuer missing": (
        {"oidc_issuers": [{"audience": "cloud"}]},
        r"oidc_issuers\[0\]: issuer is required",
    ),
    "issuer not a string": (
        {"oidc_issuers": [{"issuer": 7}]},
        r"oidc_issuers\[0\]: issuer is required",
    ),
    "same issuer as oidc_issuer": (
        {"oidc_issuer": A, "oidc_audience": "cloud", "oidc_issuers": [entry(A)]},
        rf"oidc_issuers\[0\] \({A}\): issuer {A} is already configured as oidc_issuer",
    ),
    "same issuer twice": (
        {"oidc_issuers": [entry(A), entry(A, user_prefix="b:")]},
        rf"oidc_issuers\[1\] \({A}\): issuer {A} is already configured as oidc_issuers\[0\]",
    ),
    "issuer not http": (
        {"oidc_issuers": [entry("ftp://iam.example.org/")]},
        r"oidc_issuers\[0\] \(ftp://iam.example.org/\): issuer must be an http\(s\) URL",
    ),
    "jwks_url not http": (
        {"oidc_issuers": [entry(jwks_url="file:///etc/passwd")]},
        rf"oidc_issuers\[0\] \({A}\): jwks_url must be an http\(s\) URL",
    ),
    "jwks_url without host": (
        {"oidc_issuers": [entry(jwks_url="https:///jwks")]},
        r"jwks_url must be an http\(s\) URL",
    ),
    "bad regex": (
        {"oidc_issuers": [entry(group_pattern="/(vo")]},
        rf"oidc_issuers\[0\] \({A}\): group_pattern is not a regular expression",
    ),
    "regex of two groups": (
        {"oidc_issuers": [entry(group_pattern="/(a)(b)")]},
        r"group_pattern must hold exactly one group",
    ),
    "alg none": (
        {"oidc_issuers": [entry(algorithms="RS256,none")]},
        rf"oidc_issuers\[0\] \({A}\): algorithms: 'none'",
    ),
    "alg HS256": (
        {"oidc_issuers": [entry(algorithms="HS256")]},
        r"algorithms: HS256 is a shared-secret algorithm",
    ),
    "alg hs512 in a list": (
        {"oidc_issuers": [entry(algorithms=["RS256", "hs512"])]},
        r"algorithms: hs512 is a shared-secret algorithm",
    ),
    "alg unknown": ({"oidc_issuers": [entry(algorithms="XS1")]}, r"unknown algorithm 'XS1'"),
    "no algorithms": ({"oidc_issuers": [entry(algorithms=" , ")]}, r"algorithms is empty"),
    "no audience": (
        {"oidc_issuers": [entry(audience="")]},
        rf"oidc_issuers\[0\] \({A}\): audience is required",
    ),
    "audience not text": ({"oidc_issuers": [entry(audience=5)]}, r"audience must be a string"),
    "user_claim not text": (
        {"oidc_issuers": [entry(user_claim=["sub"])]},
        r"user_claim must be a string",
    ),
    "empty groups_claim": ({"oidc_issuers": [entry(groups_claim="")]}, r"groups_claim is empty"),
    "second issuer without a prefix": (
        {"oidc_issuers": [entry(A, user_prefix=""), entry(B, user_prefix="")]},
        rf"oidc_issuers\[1\] \({B}\): user_prefix is required",
    ),
    "an entry beside oidc_issuer without a prefix": (
        {"oidc_issuer": A, "oidc_audience": "cloud", "oidc_issuers": [entry(B, user_prefix="")]},
        rf"oidc_issuers\[0\] \({B}\): user_prefix is required",
    ),
    "the same prefix twice": (
        {"oidc_issuers": [entry(A, user_prefix="vo:"), entry(B, user_prefix="vo:")]},
        rf"oidc_issuers\[1\] \({B}\): user_prefix 'vo:' overlaps",
    ),
    "one prefix begins another": (
        {"oidc_issuers": [entry(A, user_prefix="wlcg:"), entry(B, user_prefix="wlcg:atlas:")]},
        r"user_prefix 'wlcg:atlas:' overlaps the user_prefix 'wlcg:' of oidc_issuers\[0\]",
    ),
    "prefix not a user name": (
        {"oidc_issuers": [entry(user_prefix=":x/")]},
        rf"oidc_issuers\[0\] \({A}\): user_prefix ':x/' must begin with a letter",
    ),
    "bad flat settings beside entries": (
        {
            "oidc_issuer": A,
            "oidc_audience": "cloud",
            "oidc_algorithms": "HS256",
            "oidc_issuers": [entry(B)],
        },
        r"oidc_algorithms: HS256 is a shared-secret",
    ),
    "not a list": ({"oidc_issuers": {"issuer": A}}, r"oidc_issuers: expected list"),
}


@pytest.mark.parametrize("case", list(CONFIG_ERRORS))
def test_bad_issuer_settings_are_refused_when_the_configuration_is_read(
    case: str, tmp_path: Path
) -> None:
    settings, message = CONFIG_ERRORS[case]
    with pytest.raises(ConfigurationError, match=message):
        Config({"data_dir": str(tmp_path), **settings})  # no authenticator is built


def test_issuers_come_from_the_toml_file_and_from_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "nimbo.toml"
    path.write_text(
        f"""
oidc_issuer = "https://aai.egi.eu/auth/realms/egi"
oidc_audience = "cloud"

[[oidc_issuers]]
issuer = "{A}"
audience = ["cloud", "cloud-a"]
groups_claim = "wlcg.groups"
user_prefix = "a:"

[[oidc_issuers]]
issuer = "{B}"
audience = "cloud"
algorithms = "ES256"
user_prefix = "b:"
"""
    )
    config = load_config({"NIMBO_CONFIG": str(path), "NIMBO_DATA_DIR": str(tmp_path)})
    issuers = issuer_settings(config.as_dict())
    assert [(i.issuer, i.audiences, i.algorithms, i.claims.user_prefix) for i in issuers] == [
        ("https://aai.egi.eu/auth/realms/egi", ("cloud",), ("RS256", "ES256"), ""),
        (A, ("cloud", "cloud-a"), ("RS256", "ES256"), "a:"),
        (B, ("cloud",), ("ES256",), "b:"),
    ]
    assert issuers[0].claims.reserved == ("a:", "b:")
    assert issuers[1].claims.groups_claim == "wlcg.groups"
    assert issuers[2].claims.groups_claim == "eduperson_entitlement"  # the flat default
    environ = {
        "NIMBO_DATA_DIR": str(tmp_path / "none"),
        "NIMBO_OIDC_ISSUERS": json.dumps([entry(A), entry(B, user_prefix="b:")]),
    }
    from_env = issuer_settings(load_config(environ).as_dict())
    assert [i.issuer for i in from_env] == [A, B]
    with pytest.raises(ConfigurationError, match="oidc_issuers: cannot read"):
        load_config({**environ, "NIMBO_OIDC_ISSUERS": "[{"})
    with pytest.raises(ConfigurationError, match=re.escape("oidc_issuers: expected list")):
        load_config({**environ, "NIMBO_OIDC_ISSUERS": json.dumps(entry(A))})


def test_the_flat_settings_alone_are_one_issuer_as_before(
    checkin: IdentityProvider, tmp_path: Path
) -> None:
    (only,) = issuer_settings(
        Config({"oidc_issuer": checkin.issuer, "oidc_audience": "a, b"}).as_dict()
    )
    assert (only.label, only.issuer, only.audiences, only.claims.user_prefix) == (
        "oidc_issuer",
        checkin.issuer,
        ("a", "b"),
        "",
    )
    assert only.claims.reserved == ()
    with pytest.raises(ConfigurationError, match="oidc_issuer must be an http"):
        authenticator(tmp_path, {})


# --- helpers for the gateway ------------------------------------------------------------------


def get(node: Node, path: str, token: str) -> Any:
    return node.request("GET", path, user=None, headers={"Authorization": f"Bearer {token}"})


def post_storage(node: Node, token: str) -> Any:
    body = text_plain([category("storage", INFRA, "kind")], {"occi.storage.size": 1.0})
    return node.request(
        "POST",
        "/storage/",
        user=None,
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "text/plain"},
    )
