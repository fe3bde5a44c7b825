"""X.509 client certificates (auth.x509): DNs in both spellings, RFC 3820 proxies, the
grid-mapfile, trusted front ends, a directory lookup against the real slapd, and a real
``nimbo serve`` terminating TLS on 127.0.0.1 with certificates the tests made."""

from __future__ import annotations

import base64
import http.client
import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from auth.chain import REFUSED
from auth.credentials import Credentials
from auth.x509 import (
    DistinguishedName,
    FrontEnd,
    MapFile,
    X509Authenticator,
    client_certificate,
    from_settings,
    peer_address,
)
from gateway.cli import _child_env, main
from gateway.config import Config
from gateway.errors import ConfigurationError, ServiceUnavailable
from gateway.store.db import Store
from gateway.store.models import User
from tests.auth.conftest import (
    ALICE_GRID_DN,
    LOCAL_PASSWORD,
    LOCAL_USER,
    AppFactory,
    Pki,
    _local_hash,
    ldap_settings,
)
from tests.auth.ldap_server import PEOPLE_ENTRIES, NimboSlapd
from tests.services import RedisServer

ANN = PEOPLE_ENTRIES[0]
ALICE_RFC = "CN=Alice Smith,O=Example,DC=example,DC=org"
TRUSTED, UNTRUSTED = "192.0.2.10", "198.51.100.7"
MAP = f"""# certificate users
"{ALICE_GRID_DN}" asmith,physics,cms
"/DC=org/DC=example/CN=Carol" {LOCAL_USER}
CN=Robot,O=Example asimov
"""


def dn(text: str) -> DistinguishedName:
    return DistinguishedName.parse(text)


# --- distinguished names -------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    [
        ALICE_RFC,
        "cn=Alice Smith, o=Example, dc=example, dc=org",
        "commonName=Alice Smith;organizationName=Example;domainComponent=example;"
        "0.9.2342.19200300.100.1.25=org",
        "CN=Alice\\20Smith,O=Example,DC=example,DC=org",
        'CN="Alice Smith",O=Example,DC=example,DC=org',
        "  /DC=org/DC=example/O=Example/CN=Alice Smith ",
    ],
)
def test_both_spellings_of_a_dn_are_one_dn(spelling: str) -> None:
    assert dn(spelling) == dn(ALICE_GRID_DN)
    assert dn(spelling).grid() == ALICE_GRID_DN
    assert dn(spelling).rfc4514() == ALICE_RFC


def test_values_keep_what_they_hold() -> None:
    assert dn("CN=Smith\\, J\\C3\\BCrgen,O=Example").grid() == "/O=Example/CN=Smith, Jürgen"
    assert dn("/DC=org/CN=host/vm1.example.org").common_name == "host/vm1.example.org"
    assert dn("CN=a+UID=b,O=Example").rdns == (("O", "Example"), ("UID", "b"), ("CN", "a"))
    assert dn("CN=alice,O=Example") != dn("CN=Alice,O=Example")  # values compare exactly
    tricky = DistinguishedName(
        (("O", ' #lead, "quoted" + <angle>; = \\ '), ("OU", " "), ("OU", "  "), ("CN", "trail "))
    )
    assert dn(tricky.rfc4514()) == tricky


@pytest.mark.parametrize(
    "text", ["", "/", "CN", "CN=a,", "CN=a\\", "1CN=x", 'CN=a"b', "CN=\\zz", 'CN="a', "CN=\\ff"]
)
def test_bad_dns_say_what_is_wrong(text: str) -> None:
    with pytest.raises(ValueError, match=r".+"):
        dn(text)


@pytest.mark.parametrize(
    ("subject", "issuer", "end_entity"),
    [
        (f"{ALICE_GRID_DN}/CN=123456789", None, ALICE_GRID_DN),
        (f"{ALICE_GRID_DN}/CN=proxy/CN=limited proxy", None, ALICE_GRID_DN),
        (f"CN=42,{ALICE_RFC}", None, ALICE_GRID_DN),
        (f"{ALICE_GRID_DN}/CN=999", ALICE_GRID_DN, ALICE_GRID_DN),
        (f"{ALICE_GRID_DN}/CN=1/CN=2", f"{ALICE_GRID_DN}/CN=1", ALICE_GRID_DN),  # proxy of proxy
        # a user certificate whose own DN ends in digits, issued by a CA: not a proxy
        ("/DC=org/CN=Robot/CN=1234", "/DC=org/CN=Test CA", "/DC=org/CN=Robot/CN=1234"),
        ("/DC=org/O=1234", None, "/DC=org/O=1234"),
        ("/CN=12345", None, "/CN=12345"),
    ],
)
def test_proxy_cns_come_off(subject: str, issuer: str | None, end_entity: str) -> None:
    assert dn(subject).end_entity(dn(issuer) if issuer else None).grid() == end_entity


# --- the grid-mapfile ----------------------------------------------------------------------


def test_the_map_file_maps_dns_to_users_and_groups(tmp_path: Path) -> None:
    path = tmp_path / "grid-mapfile"
    path.write_text(
        MAP + '"/DC=org/CN=Nobody"\n"/DC=org/CN=Open\n/DC=org/CN=Bad Bad alice\n'
        "CN=Robot,O=Example second-line-loses\n"
    )
    mapping = MapFile(path)
    alice = mapping.lookup(dn(ALICE_RFC))
    assert alice is not None and (alice.user, alice.groups) == ("asmith", {"physics", "cms"})
    robot = mapping.lookup(dn("/O=Example/CN=Robot"))
    assert robot is not None and (robot.user, robot.groups) == ("asimov", frozenset())
    assert mapping.lookup(dn("/DC=org/CN=Nobody")) is None
    assert mapping.lookup(dn("/DC=org/CN=Open")) is None

    path.write_text(f'"{ALICE_GRID_DN}" alice2\n')  # read again once it changed
    changed = mapping.lookup(dn(ALICE_GRID_DN))
    assert changed is not None and changed.user == "alice2"
    assert mapping.lookup(dn("/O=Example/CN=Robot")) is None

    path.unlink()
    with pytest.raises(ServiceUnavailable, match="map file"):
        mapping.lookup(dn(ALICE_GRID_DN))


def test_the_x509_method_needs_a_way_to_map_dns(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="x509_map_file or x509_ldap_dn_filter"):
        from_settings(Config({"data_dir": str(tmp_path)}).as_dict())
    with pytest.raises(ConfigurationError, match="is not a file"):
        from_settings(
            Config({"data_dir": str(tmp_path), "x509_map_file": str(tmp_path / "no")}).as_dict()
        )


# --- trusted front ends ----------------------------------------------------------------------


def front_end(proxies: str) -> FrontEnd:
    return FrontEnd.from_settings(Config({"auth_trusted_proxies": proxies}).as_dict())


def test_front_ends_are_trusted_by_address_or_network() -> None:
    trusted = front_end("10.0.0.0/8, 192.0.2.10,::1")
    for address in ("10.1.2.3", "192.0.2.10", "::ffff:10.0.0.1", "::1"):
        assert trusted.trusts(address), address
    for address in ("192.0.2.11", "11.0.0.1", "", "not-an-address", "::2"):
        assert not trusted.trusts(address), address
    assert not front_end("").trusts("127.0.0.1")
    with pytest.raises(ConfigurationError, match="auth_trusted_proxies"):
        front_end("10.0.0.0/8,example.org")


def test_front_end_headers_count_only_verified_and_from_a_trusted_address() -> None:
    trusted = front_end(TRUSTED)
    headers = {"SSL_CLIENT_S_DN": ALICE_RFC, "SSL_CLIENT_VERIFY": "SUCCESS"}
    assert trusted.certificate(headers, TRUSTED) == (ALICE_RFC, None)
    assert trusted.certificate(headers, UNTRUSTED) is None
    assert front_end("").certificate(headers, TRUSTED) is None
    for verify in ("NONE", "FAILED:certificate has expired", "GENEROUS", ""):
        assert trusted.certificate({**headers, "SSL_CLIENT_VERIFY": verify}, TRUSTED) is None


def test_the_wsgi_server_s_own_tls_variables_count_and_request_headers_do_not() -> None:
    mod_ssl = {"SSL_CLIENT_S_DN": ALICE_RFC, "SSL_CLIENT_VERIFY": "SUCCESS"}
    assert client_certificate({}, mod_ssl, None) == (ALICE_RFC, None)
    assert client_certificate({}, {**mod_ssl, "SSL_CLIENT_VERIFY": "NONE"}, None) is None
    from_client = {"HTTP_SSL_CLIENT_S_DN": ALICE_RFC, "HTTP_SSL_CLIENT_VERIFY": "SUCCESS"}
    assert client_certificate(cert_headers(ALICE_RFC), from_client, None) is None
    # werkzeug's ProxyFix rewrites REMOTE_ADDR from X-Forwarded-For: trust the real peer only
    rewritten = {"REMOTE_ADDR": TRUSTED, "werkzeug.proxy_fix.orig": {"REMOTE_ADDR": UNTRUSTED}}
    assert peer_address(rewritten) == UNTRUSTED
    assert client_certificate(cert_headers(ALICE_RFC), rewritten, front_end(TRUSTED)) is None


# --- through the gateway (Flask) ---------------------------------------------------------------


@pytest.fixture
def map_file(tmp_path: Path) -> Path:
    path = tmp_path / "grid-mapfile"
    path.write_text(MAP)
    return path


def cert_headers(
    subject: str, issuer: str | None = None, verify: str = "SUCCESS"
) -> dict[str, str]:
    headers = {"SSL_CLIENT_S_DN": subject, "SSL_CLIENT_VERIFY": verify}
    return headers | ({"SSL_CLIENT_I_DN": issuer} if issuer else {})


def test_front_end_certificates_through_the_gateway(make_app: AppFactory, map_file: Path) -> None:
    app = make_app(
        auth_methods="local,x509", x509_map_file=str(map_file), auth_trusted_proxies=TRUSTED
    )
    client = app.test_client()

    def get(headers: dict[str, str], address: str = TRUSTED) -> Any:
        return client.get("/-/", headers=headers, environ_base={"REMOTE_ADDR": address})

    assert get(cert_headers(ALICE_RFC)).status_code == 200
    proxy = cert_headers(f"{ALICE_GRID_DN}/CN=73519", issuer=ALICE_GRID_DN)
    assert get(proxy).status_code == 200
    with app.extensions["nimbostratus"].store.session() as session:
        row = session.get(User, "asmith")
        assert row is not None
        assert (row.source, row.display_name, sorted(row.groups)) == (
            "x509",
            "Alice Smith",
            ["cms", "physics"],
        )

    forged = get(cert_headers(ALICE_RFC), address=UNTRUSTED)  # anyone can send headers
    assert forged.status_code == 401
    assert forged.headers["WWW-Authenticate"] == 'Basic realm="nimbostratus"'
    assert get(cert_headers(ALICE_RFC, verify="NONE")).status_code == 401
    unmapped = get(cert_headers("CN=Eve,O=Example"))
    assert unmapped.status_code == 401 and REFUSED in unmapped.get_data(as_text=True)
    # a DN mapped onto a local user's name does not become that local user
    assert get(cert_headers("/DC=org/DC=example/CN=Carol")).status_code == 401
    assert get(cert_headers("not a DN")).status_code == 401


def test_a_certificate_found_in_the_directory_is_the_directory_s_account(
    make_app: AppFactory, slapd: NimboSlapd, pki: Pki
) -> None:
    app = make_app(
        auth_methods="ldap,x509",
        auth_trusted_proxies=TRUSTED,
        x509_ldap_dn_filter="(description={grid_dn})",
        **ldap_settings(slapd, pki),
    )
    client = app.test_client()
    subject = dn(ANN.grid_dn).rfc4514()  # the front end speaks RFC 4514, the directory slashes
    by_certificate = client.get(
        "/-/", headers=cert_headers(subject), environ_base={"REMOTE_ADDR": TRUSTED}
    )
    assert by_certificate.status_code == 200
    password = base64.b64encode(f"{ANN.uid}:{ANN.password}".encode()).decode()
    by_password = client.get("/-/", headers={"Authorization": f"Basic {password}"})
    assert by_password.status_code == 200
    with app.extensions["nimbostratus"].store.session() as session:
        row = session.get(User, ANN.uid)
        assert row is not None and (row.source, sorted(row.groups)) == ("ldap", ["cms", "physics"])
    unknown = client.get(
        "/-/", headers=cert_headers("CN=Nobody,DC=org"), environ_base={"REMOTE_ADDR": TRUSTED}
    )
    assert unknown.status_code == 401


def test_the_authenticator_ignores_credentials_without_a_certificate(map_file: Path) -> None:
    x509 = X509Authenticator(front_end=FrontEnd(), map_file=MapFile(map_file))
    assert x509.authenticate(Credentials(basic=("asmith", "pw"))) is None
    assert x509.challenge("https://cloud.example.org/") is None


# --- a real nimbo serve with TLS -----------------------------------------------------------


@dataclass(frozen=True)
class TlsServer:
    url: str
    port: int
    database_url: str


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, pki: Pki, redis_server: RedisServer
) -> Iterator[TlsServer]:
    """``nimbo serve --tls-cert --tls-key --client-ca`` on 127.0.0.1 (one gthread worker):
    local users (carol), certificates mapped by a grid-mapfile, and 127.0.0.2 as a trusted
    front end."""
    directory = tmp_path_factory.mktemp("tls-server")
    (directory / "grid-mapfile").write_text(MAP)
    database_url = f"sqlite:///{directory / 'nimbo.sqlite3'}"
    store = Store(database_url)
    store.create_schema()
    with store.session(write=True) as session:
        session.add(User(name=LOCAL_USER, password_hash=_local_hash()))
    store.dispose()
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NIMBO_")} | {
        "NIMBO_DATA_DIR": str(directory),
        "NIMBO_DATABASE_URL": database_url,
        "NIMBO_REDIS_URL": redis_server.url,
        "NIMBO_AUTH_METHODS": "local,x509",
        "NIMBO_X509_MAP_FILE": str(directory / "grid-mapfile"),
        "NIMBO_AUTH_TRUSTED_PROXIES": "127.0.0.2",
        "NIMBO_API_WORKERS": "1",
        "NIMBO_LIBVIRT_URI": "test:///default",
        "NIMBO_HOST_NAME": "host-a",
        "NIMBO_LOG_LEVEL": "WARNING",
    }
    log = (directory / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "serve", "--listen", f"127.0.0.1:{port}",
         "--tls-cert", str(pki.server.cert_file), "--tls-key", str(pki.server.key_file),
         "--client-ca", str(pki.ca.cert_file)],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        _wait_for(port, process, directory / "serve.log", pki.ca.cert_file)
        yield TlsServer(f"https://127.0.0.1:{port}", port, database_url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_for(port: int, process: subprocess.Popen[bytes], log: Path, ca: Path) -> None:
    """Until a TLS handshake with the server succeeds."""
    context = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"nimbo serve exited ({process.returncode}):\n{log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as raw:
                context.wrap_socket(raw, server_hostname="127.0.0.1").close()
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nimbo serve did not answer on {port} within 30 s:\n{log.read_text()}")


def test_a_client_certificate_is_its_mapped_user(tls_server: TlsServer, pki: Pki) -> None:
    for issued in (pki.alice, pki.alice_proxy):  # the user certificate, an RFC 3820 proxy
        response = requests.get(
            f"{tls_server.url}/-/",
            cert=(str(issued.cert_file), str(issued.key_file)),
            verify=str(pki.ca.cert_file),
            timeout=10,
        )
        assert response.status_code == 200, (issued.cert_file.name, response.text)
    store = Store(tls_server.database_url)
    with store.session() as session:
        row = session.get(User, "asmith")
        assert row is not None and (row.source, row.display_name) == ("x509", "Alice Smith")
    store.dispose()


def test_a_certificate_of_another_ca_gets_no_connection(tls_server: TlsServer, pki: Pki) -> None:
    with pytest.raises((requests.exceptions.SSLError, requests.exceptions.ConnectionError)):
        requests.get(
            f"{tls_server.url}/-/",
            cert=(str(pki.mallory.cert_file), str(pki.mallory.key_file)),
            verify=str(pki.ca.cert_file),
            timeout=10,
        )


def test_without_a_certificate_basic_still_works(tls_server: TlsServer, pki: Pki) -> None:
    url, ca = f"{tls_server.url}/-/", str(pki.ca.cert_file)
    assert requests.get(url, auth=(LOCAL_USER, LOCAL_PASSWORD), verify=ca, timeout=10).ok
    anonymous = requests.get(url, verify=ca, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"] == 'Basic realm="nimbostratus"'


def test_front_end_headers_over_real_http_count_from_the_trusted_address_only(
    tls_server: TlsServer, pki: Pki
) -> None:
    context = ssl.create_default_context(cafile=str(pki.ca.cert_file))

    def status(source: str) -> int:
        connection = http.client.HTTPSConnection(
            "127.0.0.1", tls_server.port, context=context, source_address=(source, 0), timeout=10
        )
        try:
            connection.request("GET", "/-/", headers=cert_headers(ALICE_GRID_DN))
            return connection.getresponse().status
        finally:
            connection.close()

    assert status("127.0.0.2") == 200  # gunicorn passes SSL_CLIENT_* from its front end
    assert status("127.0.0.1") == 401


# --- the command line ------------------------------------------------------------------------


def test_serve_wants_a_certificate_for_a_key_or_client_ca(pki: Pki, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["serve", "--data-dir", str(tmp_path), "--client-ca", str(pki.ca.cert_file)]
    )
    assert result.exit_code == 2 and "need --tls-cert" in result.output


def test_up_hands_its_tls_settings_to_the_api_process(pki: Pki, tmp_path: Path) -> None:
    config = Config(
        {
            "data_dir": str(tmp_path),
            "tls_cert": str(pki.server.cert_file),
            "tls_key": str(pki.server.key_file),
            "tls_client_ca": str(pki.ca.cert_file),
        }
    )
    env = _child_env(config)
    assert env["NIMBO_TLS_CERT"] == str(pki.server.cert_file)
    assert env["NIMBO_TLS_KEY"] == str(pki.server.key_file)
    assert env["NIMBO_TLS_CLIENT_CA"] == str(pki.ca.cert_file)
