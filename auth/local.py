"""HTTP Basic against local users, with a short in-process cache of successful checks.

scrypt costs tens of milliseconds by design; re-verifying it on every request of a busy
client would cap the API at a few dozen requests per second per core. A successful check is
remembered for ``cache_seconds`` as an HMAC of the password under a per-process random key
(never the password itself); a changed or disabled account takes effect when the entry expires
(at once in the process that made the change, see :meth:`LocalAuthenticator.forget`).

Local users own their names: a wrong password for a local user is refused here, never passed
on to LDAP. An unknown name is passed on without a check; if no later authenticator takes it,
the chain pays a check against a dummy hash, so it takes as long as a wrong password.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from auth.chain import REFUSED, PasswordRefused
from auth.credentials import Credentials
from auth.passwords import verify_password
from auth.principal import Principal


@dataclass(frozen=True)
class UserRecord:
    """What the authenticator needs to know of a stored local user."""

    name: str
    password_hash: str
    is_admin: bool
    disabled: bool
    groups: frozenset[str] = frozenset()


UserLookup = Callable[[str], UserRecord | None]


class LocalAuthenticator:
    """Checks a user name and password against the store's local users."""

    name = "local"
    offers = "HTTP Basic"

    def __init__(self, lookup: UserLookup, *, realm: str, cache_seconds: float = 30.0) -> None:
        self._lookup = lookup
        self._realm = realm
        self._cache_seconds = cache_seconds
        self._key = os.urandom(32)
        self._cache: dict[str, tuple[bytes, float, Principal]] = {}
        self._lock = threading.Lock()

    def challenge(self, base_url: str) -> str:
        return f'Basic realm="{self._realm}"'

    def authenticate(self, credentials: Credentials) -> Principal | None:
        if credentials.basic is None:
            return None
        name, password = credentials.basic
        tag = hmac.new(self._key, f"{name}\0{password}".encode(), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(name)
        if cached and cached[1] > now and hmac.compare_digest(cached[0], tag):
            return cached[2]
        record = self._lookup(name)
        if record is None:
            return None  # the chain pays a dummy check if nobody else takes the name
        if not verify_password(password, record.password_hash) or record.disabled:
            raise PasswordRefused(REFUSED)
        principal = Principal(
            name=record.name,
            display_name=record.name,
            groups=record.groups,
            is_admin=record.is_admin,
            source=self.name,
        )
        with self._lock:
            self._cache[name] = (tag, now + self._cache_seconds, principal)
        return principal

    def forget(self, name: str) -> None:
        with self._lock:
            self._cache.pop(name, None)
