"""Password hashing with scrypt (hashlib), stored as ``scrypt$n$r$p$salt$hash`` (base64)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

_N, _R, _P, _LEN = 2**14, 8, 1, 32


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=_LEN)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of ``password`` against a stored hash; malformed hashes fail."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


# A hash of a random password: verifying against it costs the same as a real check, so that an
# unknown user and a wrong password take the same time.
DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def generate_password() -> str:
    """A random password (144 bits, URL-safe base64) that does not start with '-', which
    command lines would take for an option (``--password -x…``)."""
    while True:
        password = secrets.token_urlsafe(18)
        if not password.startswith("-"):
            return password
