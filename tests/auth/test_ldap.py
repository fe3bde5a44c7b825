"""LDAP authentication (auth.ldap) against a real slapd the tests start (tests/auth/ldap_server.py):
StartTLS verified with the tests' CA, a service account searching, users binding.

Tests that stop or restart their directory start their own slapd; the others share one.
"""

from __future__ import annotations

import base64
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import ldap
import pytest

from auth.chain import REFUSED
from auth.credentials import Credentials
from auth.ldap import Directory, LdapAuthenticator, LdapSettings
from gateway.authentication import FACTORIES
from gateway.config import Config
from gateway.errors import ConfigurationError, NotAuthenticated, ServiceUnavailable
from gateway.store.models import User
from tests.auth.conftest import (
    LOCAL_PASSWORD,
    LOCAL_USER,
    AppFactory,
    Pki,
    ldap_settings,
    start_slapd,
)
from tests.auth.ldap_server import PEOPLE_ENTRIES, NimboSlapd

ANN, BEN, CID = PEOPLE_ENTRIES


def authenticator(
    server: NimboSlapd, pki: Pki, tmp_path: Path, **changes: Any
) -> LdapAuthenticator:
    """The authenticator as the gateway builds it from its settings."""
    config = Config({"data_dir": str(tmp_path), **ldap_settings(server, pki, **changes)})
    made = FACTORIES["ldap"](config, None)  # type: ignore[arg-type]  # needs no accounts
    assert isinstance(made, LdapAuthenticator)
    return made


def basic(user: str, password: str) -> Credentials:
    return Credentials(remote_addr="127.0.0.1", basic=(user, password))


def refused(ldap_auth: LdapAuthenticator, user: str, password: str) -> str:
    with pytest.raises(NotAuthenticated) as refusal:
        ldap_auth.authenticate(basic(user, password))
    return refusal.value.message


@pytest.fixture
def ldap_auth(slapd: NimboSlapd, pki: Pki, tmp_path: Path) -> Iterator[LdapAuthenticator]:
    made = authenticator(slapd, pki, tmp_path)
    yield made
    made.directory.close()


@pytest.fixture
def own_slapd(tmp_path: Path, pki: Pki) -> Iterator[NimboSlapd]:
    """A slapd of this test alone (it may stop it)."""
    server = start_slapd(tmp_path / "slapd", pki)
    yield server
    server.stop()


# --- the flow ----------------------------------------------------------------------------------


def test_a_good_password_yields_the_user_with_groups_from_member_and_memberuid(
    ldap_auth: LdapAuthenticator,
) -> None:
    principal = ldap_auth.authenticate(basic(ANN.uid, ANN.password))
    assert principal is not None
    assert (principal.name, principal.display_name, principal.source) == (
        "ldapann",
        "Ann Example",
        "ldap",
    )
    assert principal.groups == {"physics", "cms"}  # groupOfNames member, posixGroup memberUid
    ben = ldap_auth.authenticate(basic(BEN.uid, BEN.password))
    cid = ldap_auth.authenticate(basic(CID.uid, CID.password))
    assert ben is not None and ben.groups == {"physics"}
    assert cid is not None and cid.groups == frozenset()


def test_the_name_is_the_directory_s_whatever_case_was_typed(ldap_auth: LdapAuthenticator) -> None:
    principal = ldap_auth.authenticate(basic("LdapAnn", ANN.password))
    assert principal is not None and principal.name == "ldapann"


def test_a_wrong_password_is_refused_with_the_one_answer(ldap_auth: LdapAuthenticator) -> None:
    assert refused(ldap_auth, ANN.uid, BEN.password) == REFUSED


def test_an_unknown_user_is_not_ldap_s_to_refuse(ldap_auth: LdapAuthenticator) -> None:
    assert ldap_auth.authenticate(basic("nobody", "whatever-pw")) is None
    assert ldap_auth.authenticate(Credentials(bearer="a.b.c")) is None


def test_an_empty_password_is_refused_before_anything_reaches_the_directory(
    slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    # the pitfall: a simple bind with a DN and no password is an anonymous bind, and succeeds
    raw = ldap.initialize(slapd.ldap_uri)
    raw.simple_bind_s(ANN.dn, "")
    raw.unbind_s()
    with socket.socket() as probe:  # a directory nobody answers for: any contact would be 503
        probe.bind(("127.0.0.1", 0))
        nowhere = f"ldap://127.0.0.1:{probe.getsockname()[1]}"
        ldap_auth = authenticator(slapd, pki, tmp_path, ldap_url=nowhere, ldap_start_tls=False)
        assert refused(ldap_auth, ANN.uid, "") == REFUSED
        with pytest.raises(ServiceUnavailable):
            ldap_auth.authenticate(basic(ANN.uid, "not-empty"))
    directory = Directory(LdapSettings.from_settings(_defaults() | ldap_settings(slapd, pki)))
    assert directory.check_password(ANN.dn, "") is False


@pytest.mark.parametrize(
    "name",
    ["*", "ldapan*", "*ann", ")(uid=*", "ldapann)(uid=*", "ldapann)(|(uid=*", "ldap\\2a", "\x00"],
)
def test_the_user_name_cannot_change_the_filter(ldap_auth: LdapAuthenticator, name: str) -> None:
    # unescaped, "ldapan*" and "*ann" would find ldapann alone and bind with her password
    assert ldap_auth.authenticate(basic(name, ANN.password)) is None


def test_a_filter_matching_several_entries_finds_nobody(
    slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    ldap_auth = authenticator(
        slapd, pki, tmp_path, ldap_user_filter="(|(uid={user})(objectClass=inetOrgPerson))"
    )
    assert ldap_auth.authenticate(basic(ANN.uid, ANN.password)) is None


def test_a_successful_bind_is_cached_and_the_cache_takes_no_wrong_password(
    own_slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    ldap_auth = authenticator(own_slapd, pki, tmp_path)
    assert ldap_auth.authenticate(basic(ANN.uid, ANN.password)) is not None
    own_slapd.stop_slapd()
    cached = ldap_auth.authenticate(basic(ANN.uid, ANN.password))  # no directory needed
    assert cached is not None and cached.name == "ldapann"
    with pytest.raises(ServiceUnavailable):  # not in the cache: asked, and it is down
        ldap_auth.authenticate(basic(ANN.uid, ANN.password + "x"))
    own_slapd.resume()
    assert refused(ldap_auth, ANN.uid, ANN.password + "x") == REFUSED
    assert refused(ldap_auth, ANN.uid, ANN.password[:-1]) == REFUSED


# --- TLS, service account ------------------------------------------------------------------


def test_starttls_verifies_the_directory_s_certificate(
    slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    plain = authenticator(slapd, pki, tmp_path, ldap_start_tls=False)
    assert plain.authenticate(basic(BEN.uid, BEN.password)) is not None
    distrusting = authenticator(slapd, pki, tmp_path, ldap_ca_file=str(pki.other_ca.cert_file))
    with pytest.raises(ServiceUnavailable) as unavailable:
        distrusting.authenticate(basic(BEN.uid, BEN.password))
    assert "cannot be reached" in unavailable.value.message


def test_a_refused_service_account_is_503_naming_the_settings(
    slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    ldap_auth = authenticator(slapd, pki, tmp_path, ldap_bind_password="wrong")
    with pytest.raises(ServiceUnavailable) as unavailable:
        ldap_auth.authenticate(basic(ANN.uid, ANN.password))
    assert "ldap_bind_dn, ldap_bind_password" in unavailable.value.message
    assert "wrong" not in unavailable.value.message


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"ldap_url": "http://example.org"}, "not an ldap://"),
        ({"ldap_url": "ldaps://example.org"}, "ldap_start_tls applies to ldap:// URLs only"),
        ({"ldap_user_base": ""}, "ldap_user_base"),
        ({"ldap_user_filter": "(cn=*)"}, "must contain {user}"),
        ({"ldap_user_filter": "(uid={name})"}, "may use only {user} and {dn}"),
        ({"ldap_group_filter": "member={dn}"}, "not an LDAP filter"),
    ],
)
def test_bad_settings_are_refused_when_the_chain_is_built(
    slapd: NimboSlapd, pki: Pki, tmp_path: Path, changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ConfigurationError, match=complaint.replace("{", r"\{")):
        authenticator(slapd, pki, tmp_path, **changes)


# --- the directory away --------------------------------------------------------------------


def test_connections_are_opened_again_after_the_directory_restarted(
    own_slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    ldap_auth = authenticator(own_slapd, pki, tmp_path)
    assert ldap_auth.authenticate(basic(ANN.uid, ANN.password)) is not None
    own_slapd.stop_slapd()
    own_slapd.resume()
    principal = ldap_auth.authenticate(basic(BEN.uid, BEN.password))  # same thread, new slapd
    assert principal is not None and principal.groups == {"physics"}


def test_threads_authenticate_at_once_each_on_its_own_connections(
    slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    ldap_auth = authenticator(slapd, pki, tmp_path, ldap_cache_seconds=0)

    def attempt(number: int) -> str:
        person = PEOPLE_ENTRIES[number % len(PEOPLE_ENTRIES)]
        if number % 4 == 3:
            return refused(ldap_auth, person.uid, "wrong-pw")
        principal = ldap_auth.authenticate(basic(person.uid, person.password))
        assert principal is not None
        return principal.name

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(attempt, range(48)))
    expected = [
        REFUSED if n % 4 == 3 else PEOPLE_ENTRIES[n % len(PEOPLE_ENTRIES)].uid for n in range(48)
    ]
    assert answers == expected


def test_a_directory_that_never_answers_is_503_after_the_timeout(
    slapd: NimboSlapd, pki: Pki, tmp_path: Path
) -> None:
    with socket.socket() as silent:  # the kernel accepts connections; nobody ever answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"ldap://127.0.0.1:{silent.getsockname()[1]}"
        ldap_auth = authenticator(slapd, pki, tmp_path, ldap_url=url, ldap_timeout=1)
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable) as unavailable:
            ldap_auth.authenticate(basic(ANN.uid, ANN.password))
        assert time.monotonic() - started < 5
    assert f"the LDAP directory {url} cannot be reached" in unavailable.value.message


def _get(app: Any, user: str, password: str) -> Any:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return app.test_client().get("/-/", headers={"Authorization": f"Basic {token}"})


def test_through_the_gateway_ldap_down_is_503_for_ldap_users_and_local_users_go_on(
    make_app: AppFactory, own_slapd: NimboSlapd, pki: Pki
) -> None:
    app = make_app(auth_methods="local,ldap", ldap_cache_seconds=0, **ldap_settings(own_slapd, pki))
    assert _get(app, ANN.uid, ANN.password).status_code == 200
    assert _get(app, LOCAL_USER, LOCAL_PASSWORD).status_code == 200
    wrong, unknown = _get(app, ANN.uid, "wrong-pw"), _get(app, "nobody", "wrong-pw")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_data() == unknown.get_data()
    assert wrong.headers["WWW-Authenticate"] == 'Basic realm="nimbostratus"'
    nimbo = app.extensions["nimbostratus"]
    with nimbo.store.session() as session:
        row = session.get(User, "ldapann")
        assert row is not None
        assert (row.source, row.display_name, sorted(row.groups)) == (
            "ldap",
            "Ann Example",
            ["cms", "physics"],
        )

    own_slapd.stop_slapd()
    down = _get(app, ANN.uid, ANN.password)
    assert down.status_code == 503
    assert f"the LDAP directory {own_slapd.ldap_uri.rstrip('/')} cannot be reached" in (
        down.get_data(as_text=True)
    )
    assert "local users are not affected" in down.get_data(as_text=True)
    assert down.headers["Retry-After"]
    assert _get(app, LOCAL_USER, LOCAL_PASSWORD).status_code == 200
    assert _get(app, LOCAL_USER, "wrong-pw").status_code == 401  # local users stay local

    own_slapd.resume()
    assert _get(app, ANN.uid, ANN.password).status_code == 200


def _defaults() -> dict[str, Any]:
    """Every ldap_* setting's default (the fixtures give only what differs)."""
    from gateway.defaults import DEFAULTS

    return {n: s.default for n, s in DEFAULTS.items() if n.startswith("ldap_")}
