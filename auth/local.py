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

from collections.abc import Callable
from dataclasses import dataclass

from auth.chain import REFUSED, PasswordRefused
from auth.credentials import Credentials
from auth.login_cache import LoginCache
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
        self._logins = LoginCache()

    def challenge(self, base_url: str) -> str:
        return f'Basic realm="{self._realm}"'

    def authenticate(self, credentials: Credentials) -> Principal | None:
        if credentials.basic is None:
            return None
        name, password = credentials.basic
        cached = self._logins.find(name, password)
        if cached is not None:
            return cached
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
        self._logins.remember(name, password, principal, self._cache_seconds)
        return principal

    def forget(self, name: str) -> None:
        self._logins.forget(name)
