"""X.509 client certificates: where a verified subject DN comes from, and whose it is.

A request's certificate reaches :attr:`Credentials.client_dn <auth.credentials.Credentials>`
(see :func:`client_certificate`) in one of three ways, every one vouched for by a TLS layer:

- ``nimbo serve`` terminates TLS itself (``--tls-cert/--tls-key/--client-ca``): gunicorn puts
  the connection's ``ssl.SSLSocket`` in ``environ["gunicorn.socket"]``; OpenSSL verified the
  certificate against the client CA in the handshake, else there is no connection at all;
- a WSGI server inside Apache (mod_wsgi) sets ``SSL_CLIENT_S_DN``/``SSL_CLIENT_VERIFY`` in the
  environment itself (never from request headers: those all start with ``HTTP_``);
- a front end (Apache, nginx) sends headers (``x509_header_*``), believed only from the
  addresses in ``auth_trusted_proxies`` and only with a verification result of ``SUCCESS``.

DNs come as RFC 4514 (``CN=Alice,O=Example,DC=org``) or in the OpenSSL/grid slash form
(``/DC=org/O=Example/CN=Alice``); :class:`DistinguishedName` reads both into one form. An RFC
3820 proxy certificate (or a legacy Globus one) names its user's DN plus ``CN=<digits>``
(``CN=proxy``, ``CN=limited proxy``): :meth:`DistinguishedName.end_entity` takes these off.

The :class:`X509Authenticator` maps the end-entity DN to a user with a grid-mapfile
(:class:`MapFile`, principals of source ``x509``) and/or a directory search
(``x509_ldap_dn_filter``: the directory's account, source ``ldap``); an unmapped DN is not its
to accept (``None``: the chain refuses it).
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from auth.addresses import Network, listed, networks
from auth.credentials import Credentials
from auth.principal import Principal
from gateway.errors import ConfigurationError, ServiceUnavailable

log = logging.getLogger(__name__)

# --- distinguished names -------------------------------------------------------------------

# attribute type (lower case: short name, long name as Python's ssl spells it, OID) -> the
# name OpenSSL prints; types not listed are kept, upper-cased
_TYPES = {
    alias: short
    for short, aliases in {
        "CN": ("cn", "commonname", "2.5.4.3"),
        "DC": ("dc", "domaincomponent", "0.9.2342.19200300.100.1.25"),
        "O": ("o", "organizationname", "2.5.4.10"),
        "OU": ("ou", "organizationalunitname", "2.5.4.11"),
        "C": ("c", "countryname", "2.5.4.6"),
        "L": ("l", "localityname", "2.5.4.7"),
        "ST": ("st", "s", "stateorprovincename", "2.5.4.8"),
        "street": ("street", "streetaddress", "2.5.4.9"),
        "serialNumber": ("serialnumber", "2.5.4.5"),
        "title": ("title", "2.5.4.12"),
        "SN": ("sn", "surname", "2.5.4.4"),
        "GN": ("gn", "givenname", "2.5.4.42"),
        "UID": ("uid", "userid", "0.9.2342.19200300.100.1.1"),
        "emailAddress": ("emailaddress", "email", "e", "1.2.840.113549.1.9.1"),
    }.items()
    for alias in aliases
}
_TYPE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)$")
_SLASH_SPLIT = re.compile(r"/(?=(?:[A-Za-z][A-Za-z0-9-]*|[0-9]+(?:\.[0-9]+)+)=)")
_PROXY_CN = re.compile(r"^(?:[0-9]+|proxy|limited proxy)$", re.IGNORECASE)
_RFC4514_SPECIAL = ',+"\\<>;='


@dataclass(frozen=True)
class DistinguishedName:
    """A DN as ``(type, value)`` pairs, most significant first (``DC=org`` before ``CN=…``).

    Multi-valued RDNs (``CN=a+UID=b``) count as consecutive pairs, as OpenSSL's slash form
    prints them; types are normalised to OpenSSL's short names, values are kept exactly."""

    rdns: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, text: str) -> DistinguishedName:
        """Read RFC 4514 or the slash form; ``ValueError`` says what is wrong."""
        text = _strip(text)
        pairs = _parse_slash(text) if text.startswith("/") else _parse_rfc4514(text)
        if not pairs:
            raise ValueError("an empty distinguished name")
        return cls(tuple((_type(kind), value) for kind, value in pairs))

    def grid(self) -> str:
        """The slash form: ``/DC=org/DC=example/CN=Alice Smith``."""
        return "".join(f"/{kind}={value}" for kind, value in self.rdns)

    def rfc4514(self) -> str:
        """RFC 4514: ``CN=Alice Smith,DC=example,DC=org``."""
        return ",".join(f"{kind}={_escape(value)}" for kind, value in reversed(self.rdns))

    def __str__(self) -> str:
        return self.grid()

    @property
    def common_name(self) -> str:
        """The most specific CN ("" if none)."""
        return next((value for kind, value in reversed(self.rdns) if kind == "CN"), "")

    def end_entity(self, issuer: DistinguishedName | None = None) -> DistinguishedName:
        """The DN of the user certificate behind a chain of proxy certificates.

        A proxy's subject is its issuer's plus one proxy CN (RFC 3820 3.4; OpenSSL checks
        this while verifying). With the issuer known, only a certificate of that shape counts
        as a proxy (so a user certificate whose DN ends in ``CN=1234`` stays whole); the
        issuer may itself be a proxy, so its own proxy CNs go as well. Without the issuer,
        trailing proxy CNs are taken off, as grid software does."""
        if issuer is None:
            return self._without_proxy_cns()
        if self.rdns[:-1] == issuer.rdns and _is_proxy_cn(self.rdns[-1]):
            return issuer._without_proxy_cns()
        return self

    def _without_proxy_cns(self) -> DistinguishedName:
        rdns = self.rdns
        while len(rdns) > 1 and _is_proxy_cn(rdns[-1]):
            rdns = rdns[:-1]
        return DistinguishedName(rdns)


def _is_proxy_cn(pair: tuple[str, str]) -> bool:
    return pair[0] == "CN" and bool(_PROXY_CN.match(pair[1]))


def _type(kind: str) -> str:
    kind = kind.strip()
    if not _TYPE.match(kind):
        raise ValueError(f"{kind!r} is not an attribute type")
    return _TYPES.get(kind.lower(), kind.upper())


def _strip(text: str) -> str:
    """``text`` without surrounding white space, but for an escaped final space (``\\ ``)."""
    text = text.lstrip()
    body = text.rstrip()
    escaping = (len(body) - len(body.rstrip("\\"))) % 2 == 1
    return body + " " if escaping and len(body) < len(text) else body


def _parse_slash(text: str) -> list[tuple[str, str]]:
    pairs = []
    for part in _SLASH_SPLIT.split(text[1:]) if text != "/" else []:
        kind, equals, value = part.partition("=")
        if not equals:
            raise ValueError(f"{part!r} is not TYPE=value")
        pairs.append((kind, value))
    return pairs


def _parse_rfc4514(text: str) -> list[tuple[str, str]]:
    """RFC 4514 (also RFC 2253's quoted values and ';' separators), reversed into the
    most-significant-first order."""
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        equals = text.find("=", position)
        if equals < 0:
            raise ValueError(f"{text[position:]!r} is not TYPE=value")
        kind = text[position:equals]
        value, position = _read_value(text, equals + 1)
        pairs.append((kind, value))
        if position < len(text):
            if text[position] not in ",+;":
                raise ValueError(f"unexpected {text[position]!r} at {position} in {text!r}")
            position += 1
            if position == len(text):
                raise ValueError(f"{text!r} ends with a separator")
    return pairs[::-1]


def _read_value(text: str, position: int) -> tuple[str, int]:
    """One attribute value from ``position``: (the value, the index of the separator)."""
    while position < len(text) and text[position] == " ":
        position += 1
    if text.startswith('"', position):
        end = position + 1
        while end < len(text) and text[end] != '"':
            end += 2 if text[end] == "\\" else 1
        if end >= len(text):
            raise ValueError(f"unterminated quotes in {text!r}")
        return _unescape(text[position + 1 : end]), _skip_spaces(text, end + 1)
    out = bytearray()
    trailing = 0  # unescaped spaces at the end of ``out``, dropped (RFC 4514 2.4)
    while position < len(text) and text[position] not in ",+;":
        char = text[position]
        if char == "\\":
            decoded, position = _escaped(text, position)
            out += decoded
            trailing = 0
            continue
        if char in '"<>':
            raise ValueError(f"{char!r} must be escaped in {text!r}")
        out += char.encode()
        trailing = trailing + 1 if char == " " else 0
        position += 1
    value = bytes(out[: len(out) - trailing])
    try:
        return value.decode(), position
    except UnicodeDecodeError as exc:
        raise ValueError(f"{text!r} escapes bytes that are not UTF-8") from exc


def _escaped(text: str, position: int) -> tuple[bytes, int]:
    pair = text[position + 1 : position + 3]
    if re.fullmatch(r"[0-9A-Fa-f]{2}", pair):
        return bytes.fromhex(pair), position + 3
    if pair[:1] and pair[0] in _RFC4514_SPECIAL + " #":
        return pair[0].encode(), position + 2
    raise ValueError(f"a bad escape {text[position : position + 3]!r} in {text!r}")


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted)


def _skip_spaces(text: str, position: int) -> int:
    while position < len(text) and text[position] == " ":
        position += 1
    return position


def _escape(value: str) -> str:
    escaped = "".join(f"\\{c}" if c in _RFC4514_SPECIAL else c for c in value)
    if value.startswith((" ", "#")):
        escaped = "\\" + escaped
    if value.endswith(" ") and len(value) > 1:  # (a lone space was escaped as leading)
        escaped = escaped[:-1] + "\\ "
    return escaped


# --- where a verified certificate comes from -----------------------------------------------


class HeaderLookup(Protocol):
    def get(self, key: str) -> str | None: ...


@dataclass(frozen=True)
class FrontEnd:
    """The TLS front ends whose client-certificate headers are believed."""

    networks: tuple[Network, ...] = ()
    subject_header: str = "SSL_CLIENT_S_DN"
    issuer_header: str = "SSL_CLIENT_I_DN"
    verify_header: str = "SSL_CLIENT_VERIFY"

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> FrontEnd:
        """From ``auth_trusted_proxies`` and ``x509_header_*``."""
        trusted = networks(str(values["auth_trusted_proxies"]), "auth_trusted_proxies")
        headers = [values[f"x509_header_{n}"] for n in ("subject", "issuer", "verify")]
        if not all(re.fullmatch(r"[A-Za-z0-9_-]+", h) for h in headers):
            raise ConfigurationError(f"x509_header_*: {headers} are not all header names")
        return cls(trusted, *headers)

    def trusts(self, address: str) -> bool:
        return listed(address, self.networks)

    def certificate(self, headers: HeaderLookup, peer: str) -> tuple[str, str | None] | None:
        """(subject, issuer) the front end at ``peer`` reports, or None: no certificate,
        not verified, or ``peer`` is no trusted front end (then the headers mean nothing)."""
        if not self.networks or not self.trusts(peer):
            return None
        subject = (headers.get(self.subject_header) or "").strip()
        if not subject or (headers.get(self.verify_header) or "").strip() != "SUCCESS":
            return None
        return subject, (headers.get(self.issuer_header) or "").strip() or None


def client_certificate(
    headers: HeaderLookup, environ: Mapping[str, Any], front_end: FrontEnd | None
) -> tuple[str, str | None] | None:
    """The (subject DN, issuer DN) of a request's verified client certificate, or None.

    A trusted front end's headers come first (when it also speaks TLS to us, the connection's
    own certificate is the front end's); then the WSGI server's own TLS layer."""
    if front_end is not None:
        found = front_end.certificate(headers, peer_address(environ))
        if found is not None:
            return found
    subject = environ.get("SSL_CLIENT_S_DN")  # mod_wsgi: set by mod_ssl, not from headers
    if isinstance(subject, str) and subject and environ.get("SSL_CLIENT_VERIFY") == "SUCCESS":
        issuer = environ.get("SSL_CLIENT_I_DN")
        return subject, issuer if isinstance(issuer, str) and issuer else None
    return _peer_certificate(environ.get("gunicorn.socket"))


def peer_address(environ: Mapping[str, Any]) -> str:
    """The address of the TCP peer: the one before werkzeug's ProxyFix, if that rewrote it."""
    original = environ.get("werkzeug.proxy_fix.orig")
    if isinstance(original, Mapping) and original.get("REMOTE_ADDR"):
        return str(original["REMOTE_ADDR"])
    return str(environ.get("REMOTE_ADDR") or "")


def _peer_certificate(sock: object) -> tuple[str, str | None] | None:
    """(subject, issuer) of the certificate the TLS peer of ``sock`` presented (verified in
    the handshake against the client CA); None without TLS or without a certificate."""
    if not isinstance(sock, ssl.SSLSocket):
        return None
    try:
        certificate = sock.getpeercert()
    except (ValueError, OSError):  # no handshake (yet), or the connection is gone
        return None
    if not certificate or "subject" not in certificate:
        return None
    subject = _from_ssl(certificate["subject"])
    issuer = _from_ssl(certificate.get("issuer", ()))
    return subject.rfc4514(), issuer.rfc4514() if issuer.rdns else None


def _from_ssl(name: Any) -> DistinguishedName:
    """A DN from ``SSLSocket.getpeercert()``'s nested tuples (most significant first)."""
    return DistinguishedName(
        tuple((_type(kind), str(value)) for rdn in name for kind, value in rdn)
    )


# --- whose certificate it is ---------------------------------------------------------------


@dataclass(frozen=True)
class MapEntry:
    user: str
    groups: frozenset[str]


class MapFile:
    """A grid-mapfile: ``"<DN>" user[,group…]`` per line, ``#`` comments; the DN in either
    form, quoted when it holds spaces. Read again when its modification time, size or inode
    changes; a line that cannot be read is logged and skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._entries: dict[DistinguishedName, MapEntry] = {}
        self._lock = threading.Lock()

    def lookup(self, dn: DistinguishedName) -> MapEntry | None:
        self._refresh()
        return self._entries.get(dn)

    def _refresh(self) -> None:
        try:
            info = os.stat(self.path)
        except OSError as exc:
            raise self._unreadable(exc) from exc
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if stamp == self._stamp:
            return
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                text = self.path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise self._unreadable(exc) from exc
            self._entries = dict(self._parse(text))
            self._stamp = stamp
            log.info("read %d certificate mappings from %s", len(self._entries), self.path)

    def _parse(self, text: str) -> Iterator[tuple[DistinguishedName, MapEntry]]:
        seen: set[DistinguishedName] = set()
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            try:
                dn, entry = _map_line(line)
            except ValueError as exc:
                log.warning("%s:%d: skipped: %s", self.path, number, exc)
                continue
            if dn not in seen:  # the first line for a DN counts, as in grid software
                seen.add(dn)
                yield dn, entry

    def _unreadable(self, exc: Exception) -> ServiceUnavailable:
        log.error("the X.509 map file %s cannot be read: %s", self.path, exc)
        return ServiceUnavailable(
            f"the certificate map file of this server cannot be read ({type(exc).__name__}); "
            "other ways of logging in are not affected"
        )


def _map_line(line: str) -> tuple[DistinguishedName, MapEntry]:
    if line.startswith('"'):
        match = re.match(r'"((?:[^"\\]|\\.)*)"\s*(.*)$', line)
        if match is None:
            raise ValueError("the quoted DN does not end")
        dn_text, rest = match.group(1).replace('\\"', '"'), match.group(2)
    else:
        dn_text, _, rest = line.partition(" ")
    names = [n.strip() for n in rest.strip().split(",")]
    if not names[0] or not all(names) or any(re.search(r"\s", n) for n in names):
        raise ValueError(f"write the user name after the DN: {rest.strip()!r}")
    return DistinguishedName.parse(dn_text), MapEntry(names[0], frozenset(names[1:]))


DirectoryLookup = Callable[[DistinguishedName], Principal | None]
"""Finds the principal of a certificate DN in a directory (see :func:`ldap_lookup`)."""


class X509Authenticator:
    """Maps a verified client certificate's subject to a user."""

    name = "x509"
    offers = "an X.509 client certificate"

    def __init__(
        self,
        *,
        front_end: FrontEnd,
        map_file: MapFile | None = None,
        directory: DirectoryLookup | None = None,
        cache_seconds: float = 60.0,
    ) -> None:
        if map_file is None and directory is None:
            raise ConfigurationError(
                "the x509 method needs x509_map_file or x509_ldap_dn_filter to map DNs to users"
            )
        self.front_end = front_end
        self._map_file = map_file
        self._directory = directory
        self._cache_seconds = cache_seconds
        self._found: dict[DistinguishedName, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()

    def challenge(self, base_url: str) -> None:
        return None  # a certificate is asked for in the TLS handshake, not by HTTP

    def authenticate(self, credentials: Credentials) -> Principal | None:
        if not credentials.client_dn:
            return None
        try:
            subject = DistinguishedName.parse(credentials.client_dn)
            issuer = credentials.client_issuer_dn
            dn = subject.end_entity(DistinguishedName.parse(issuer) if issuer else None)
        except ValueError as exc:
            log.warning("unreadable client certificate DN %r: %s", credentials.client_dn, exc)
            return None
        if self._map_file is not None:
            entry = self._map_file.lookup(dn)
            if entry is not None:
                return Principal(
                    name=entry.user,
                    display_name=dn.common_name or entry.user,
                    groups=entry.groups,
                    source=self.name,
                )
        if self._directory is not None:
            return self._in_directory(dn)
        return None

    def _in_directory(self, dn: DistinguishedName) -> Principal | None:
        now = time.monotonic()
        with self._lock:
            found = self._found.get(dn)
        if found is not None and found[0] > now:
            return found[1]
        assert self._directory is not None
        principal = self._directory(dn)
        with self._lock:
            self._found[dn] = (now + self._cache_seconds, principal)
        return principal


def ldap_lookup(values: Mapping[str, Any]) -> DirectoryLookup:
    """Finds a certificate's user with ``x509_ldap_dn_filter`` and the ``ldap_*`` settings.

    The principal is the directory's account (``source="ldap"``), the one its password logs
    in to as well: a name belongs to one source (:mod:`gateway.services.accounts`), and a
    certificate is one more way into the same account, not a second account."""
    from auth.ldap import Directory, LdapSettings

    template = str(values["x509_ldap_dn_filter"])
    try:
        template.format(dn="d", grid_dn="g")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigurationError(
            f"x509_ldap_dn_filter: {template!r} may use only {{dn}} and {{grid_dn}}"
        ) from exc
    directory = Directory(LdapSettings.from_settings(values))

    def lookup(dn: DistinguishedName) -> Principal | None:
        entry = directory.find_matching(template, dn=dn.rfc4514(), grid_dn=dn.grid())
        if entry is None:
            return None
        return Principal(
            name=entry.name,
            display_name=entry.display_name or entry.name,
            groups=directory.groups_of(entry),
            source="ldap",
        )

    return lookup


def from_settings(values: Mapping[str, Any]) -> X509Authenticator:
    """The authenticator the settings describe (``Config.as_dict()``)."""
    map_path = str(values["x509_map_file"])
    if map_path and not Path(map_path).is_file():
        raise ConfigurationError(f"x509_map_file: {map_path} is not a file")
    return X509Authenticator(
        front_end=FrontEnd.from_settings(values),
        map_file=MapFile(Path(map_path)) if map_path else None,
        directory=ldap_lookup(values) if values["x509_ldap_dn_filter"] else None,
        cache_seconds=float(values["ldap_cache_seconds"]),
    )
