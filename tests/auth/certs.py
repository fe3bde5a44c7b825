"""Certificates the tests make: a CA, server and client certificates, RFC 3820 proxies.

Each :class:`Issued` knows its PEM files; keys are EC P-256 (fast to generate). Nothing here is
for production: validity is a day, keys are unencrypted.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

PROXY_CERT_INFO = ObjectIdentifier("1.3.6.1.5.5.7.1.14")  # RFC 3820 ProxyCertInfo
# ProxyCertInfo ::= SEQUENCE { proxyPolicy SEQUENCE { policyLanguage id-ppl-inheritAll } }
INHERIT_ALL = bytes.fromhex("300c300a06082b06010505071501")

_ATTRIBUTES = {
    "C": NameOID.COUNTRY_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "CN": NameOID.COMMON_NAME,
}


def name(*parts: tuple[str, str]) -> x509.Name:
    """A name from ``(type, value)`` pairs, most significant first (the slash-form order)."""
    return x509.Name([x509.NameAttribute(_ATTRIBUTES[kind], value) for kind, value in parts])


@dataclass(frozen=True)
class Issued:
    """A certificate, its key, and where both were written."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    cert_file: Path
    key_file: Path

    @property
    def subject(self) -> x509.Name:
        return self.certificate.subject


def _write(
    directory: Path,
    stem: str,
    cert: x509.Certificate,
    key: ec.EllipticCurvePrivateKey,
    chain: tuple[x509.Certificate, ...] = (),
) -> Issued:
    cert_file, key_file = directory / f"{stem}.pem", directory / f"{stem}.key"
    cert_file.write_bytes(
        b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (cert, *chain))
    )
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    return Issued(cert, key, cert_file, key_file)


def _builder(
    subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, serial: int = 0
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


class CertificateAuthority:
    """A self-signed CA writing what it issues into ``directory``."""

    def __init__(self, directory: Path, subject: x509.Name) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder(subject, subject, key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_usage(cert_sign=True), critical=True)
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        stem = "ca-" + subject.rfc4514_string().split(",")[0].split("=")[1].replace(" ", "-")
        self.issued = _write(directory, stem.lower(), cert, key)

    @property
    def cert_file(self) -> Path:
        return self.issued.cert_file

    def server(self, stem: str, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")) -> Issued:
        """A TLS server certificate for ``hosts`` (IP addresses or DNS names)."""
        alt_names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                alt_names.append(x509.DNSName(host))
        return self._issue(
            stem,
            name(("O", "nimbostratus tests"), ("CN", hosts[0])),
            extensions=[
                (x509.SubjectAlternativeName(alt_names), False),
                (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            ],
        )

    def client(self, stem: str, subject: x509.Name) -> Issued:
        """An end-entity client certificate (it may sign RFC 3820 proxies, like a grid one)."""
        return self._issue(
            stem,
            subject,
            extensions=[(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
        )

    def _issue(
        self, stem: str, subject: x509.Name, extensions: list[tuple[x509.ExtensionType, bool]]
    ) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (
            _builder(subject, self.issued.subject, key)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_usage(), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.issued.key.public_key()),
                critical=False,
            )
        )
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        cert = builder.sign(self.issued.key, hashes.SHA256())
        return _write(self.directory, stem, cert, key)


def proxy(user: Issued, stem: str) -> Issued:
    """An RFC 3820 proxy certificate signed by ``user``: its subject is the user's plus one
    ``CN=<serial>``; the written certificate file holds the proxy, then the user's certificate
    (the chain a grid client presents)."""
    key = ec.generate_private_key(ec.SECP256R1())
    serial = x509.random_serial_number() >> 100
    subject = x509.Name([*user.subject, x509.NameAttribute(NameOID.COMMON_NAME, str(serial))])
    cert = (
        _builder(subject, user.subject, key, serial)
        .add_extension(_usage(), critical=True)
        .add_extension(x509.UnrecognizedExtension(PROXY_CERT_INFO, INHERIT_ALL), critical=True)
        .sign(user.key, hashes.SHA256())
    )
    return _write(user.cert_file.parent, stem, cert, key, chain=(user.certificate,))


def _usage(*, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )
