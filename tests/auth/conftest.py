"""Fixtures of the authenticator tests: a test PKI, a real slapd, gateways with chosen settings,
a local OpenID Connect issuer."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from auth.passwords import hash_password
from gateway.app import Nimbo, create_app
from gateway.config import Config
from gateway.store.models import User
from tests.auth.certs import CertificateAuthority, Issued, name, proxy
from tests.auth.ldap_server import (
    GROUPS,
    PEOPLE,
    SERVICE_DN,
    SERVICE_PASSWORD,
    NimboSlapd,
)
from tests.gateway.conftest import make_node  # noqa: F401  (a fixture: gateways for test_oidc)

LOCAL_USER, LOCAL_PASSWORD = "carol", "carol-pw-1234"
ALICE_DN = (("DC", "org"), ("DC", "example"), ("O", "Example"), ("CN", "Alice Smith"))
ALICE_GRID_DN = "/DC=org/DC=example/O=Example/CN=Alice Smith"


@dataclass(frozen=True)
class Pki:
    """The tests' CA with a server certificate for 127.0.0.1, Alice's client certificate and
    an RFC 3820 proxy of it; and another CA with Mallory's client certificate."""

    ca: CertificateAuthority
    server: Issued
    alice: Issued
    alice_proxy: Issued
    other_ca: CertificateAuthority
    mallory: Issued


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca = CertificateAuthority(directory, name(("O", "nimbostratus tests"), ("CN", "Test CA")))
    alice = ca.client("alice", name(*ALICE_DN))
    other = CertificateAuthority(directory, name(("O", "elsewhere"), ("CN", "Other CA")))
    mallory = other.client("mallory", name(*ALICE_DN))  # the same DN, from the wrong CA
    return Pki(ca, ca.server("server"), alice, proxy(alice, "alice-proxy"), other, mallory)


def start_slapd(directory: Path, pki: Pki) -> NimboSlapd:
    directory.mkdir(parents=True, exist_ok=True)
    try:
        server = NimboSlapd(
            directory,
            ca_file=pki.ca.cert_file,
            cert_file=pki.server.cert_file,
            key_file=pki.server.key_file,
        )
    except ValueError as exc:  # slapdtest: a command it needs is not installed
        pytest.skip(f"slapd is not installed (run scripts/setup): {exc}")
    server.start()
    return server


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[NimboSlapd]:
    """A slapd for the session (tests that stop their directory start their own)."""
    server = start_slapd(tmp_path_factory.mktemp("slapd"), pki)
    yield server
    server.stop()


def ldap_settings(server: NimboSlapd, pki: Pki, **changes: Any) -> dict[str, Any]:
    """The ldap_* settings of ``server``: StartTLS verified with the tests' CA, the service
    account searching."""
    return {
        "ldap_url": server.ldap_uri.rstrip("/"),
        "ldap_start_tls": True,
        "ldap_ca_file": str(pki.ca.cert_file),
        "ldap_bind_dn": SERVICE_DN,
        "ldap_bind_password": SERVICE_PASSWORD,
        "ldap_user_base": PEOPLE,
        "ldap_group_base": GROUPS,
        "ldap_timeout": 2,
        **changes,
    }


@functools.cache
def _local_hash() -> str:
    return hash_password(LOCAL_PASSWORD)


AppFactory = Callable[..., Flask]


@pytest.fixture
def make_app(redis_url: str, tmp_path: Path) -> Iterator[AppFactory]:
    """Gateways with the given settings (SQLite, the session's redis) and one local user,
    ``carol``: ``make_app(auth_methods="local,ldap", **ldap_settings(...))``."""
    made: list[Nimbo] = []

    def make(**settings: Any) -> Flask:
        number = len(made)
        config = Config(
            {
                "data_dir": str(tmp_path / f"node{number}"),
                "database_url": f"sqlite:///{tmp_path / f'auth{number}.sqlite3'}",
                "redis_url": redis_url,
                "libvirt_uri": "test:///default",
                "host_name": "host-a",
                "log_level": "WARNING",
                **settings,
            }
        )
        app = create_app(config)
        nimbo: Nimbo = app.extensions["nimbostratus"]
        made.append(nimbo)
        with nimbo.store.session(write=True) as session:
            session.add(User(name=LOCAL_USER, password_hash=_local_hash()))
        return app

    yield make
    for nimbo in made:
        nimbo.queue.connection.close()
        nimbo.store.dispose()


# --- OIDC (tests/auth/test_oidc.py) ---------------------------------------------------------


@pytest.fixture
def identity_provider() -> Iterator[Any]:
    """A local OpenID Connect issuer on 127.0.0.1 (tests/auth/jwks_server.py)."""
    from tests.auth.jwks_server import IdentityProvider

    provider = IdentityProvider()
    yield provider
    provider.stop()
