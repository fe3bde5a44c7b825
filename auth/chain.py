"""The configured chain of authenticators (setting ``auth_methods``) and their contract.

An :class:`Authenticator` looks at the :class:`~auth.credentials.Credentials` of a request and
answers in one of three ways:

- a :class:`~auth.principal.Principal`: the credentials are its kind and they are good;
- ``None``: not its kind of credentials, or a name it does not know; the next one may try;
- it raises :class:`~gateway.errors.NotAuthenticated` when the credentials are its own and
  wrong (a bad password of a user it holds, a token with a bad signature): no later
  authenticator gets a second chance at them; or :class:`~gateway.errors.ServiceUnavailable`
  when what it checks against (a directory, an identity provider) cannot be reached.

The chain hands the first principal to its ``admit`` step (the gateway's accounts: a user row
for an external identity, disabled accounts refused, admin rights) and returns what that gives;
when no authenticator claims the credentials it raises ``NotAuthenticated(REFUSED)``. Every
message says what was wrong without telling an unknown user from a wrong password.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from auth.credentials import Credentials
from auth.passwords import DUMMY_HASH, verify_password
from auth.principal import Principal
from gateway.errors import NotAuthenticated

# The one answer to a refused password, whichever authenticator refused it and whether or not
# the user exists: a client must not learn which user names are real. Token authenticators may
# say more (expired, wrong audience): that tells nothing about other users.
REFUSED = (
    "the credentials were not accepted: wrong user name or password, an unknown or expired "
    "token, or a disabled account"
)


class PasswordRefused(NotAuthenticated):
    """A password was checked against a stored hash and found wrong: the cost of a password
    check has been paid (see :meth:`AuthChain.authenticate`)."""


class Authenticator(Protocol):
    """One way of proving who one is (local users, LDAP, OIDC, X.509, issued tokens)."""

    name: str  # as listed in auth_methods
    offers: str  # what a client sends, for messages: "HTTP Basic", "X-Auth-Token", ...

    def authenticate(self, credentials: Credentials) -> Principal | None: ...

    def challenge(self, base_url: str) -> str | None:
        """This method's part of a 401's ``WWW-Authenticate`` (None: it has none)."""
        ...


class AuthChain:
    """Tries each authenticator in the configured order."""

    def __init__(
        self,
        authenticators: Sequence[Authenticator],
        admit: Callable[[Principal], Principal] = lambda principal: principal,
    ) -> None:
        if not authenticators:
            raise ValueError("an authentication chain needs at least one authenticator")
        self.authenticators = tuple(authenticators)
        self._admit = admit

    def authenticate(self, credentials: Credentials) -> Principal:
        if credentials.empty:
            raise NotAuthenticated(f"authentication required: {self.accepted()}")
        try:
            for authenticator in self.authenticators:
                principal = authenticator.authenticate(credentials)
                if principal is not None:
                    return self._admit(principal)
        except PasswordRefused:
            raise
        except NotAuthenticated:
            self._pay_for_a_password_check(credentials)
            raise
        self._pay_for_a_password_check(credentials)
        raise NotAuthenticated(REFUSED)

    @staticmethod
    def _pay_for_a_password_check(credentials: Credentials) -> None:
        """Every refused password costs one scrypt check, so that the time of an answer does
        not tell a local user with a wrong password (a real check) from an unknown name or
        a directory user (no local check at all). A name the local users do not hold is passed
        on at once, without a check, so that LDAP users pay nothing once their bind is
        cached."""
        if credentials.basic is not None:
            verify_password(credentials.basic[1], DUMMY_HASH)

    def accepted(self) -> str:
        offers = dict.fromkeys(a.offers for a in self.authenticators)
        return "this server accepts " + ", ".join(offers)

    def challenge(self, base_url: str) -> str:
        """One ``WWW-Authenticate`` value: every method's challenge, in chain order."""
        parts = [c for a in self.authenticators if (c := a.challenge(base_url))]
        return ", ".join(dict.fromkeys(parts))

    def find(self, name: str) -> Authenticator | None:
        return next((a for a in self.authenticators if a.name == name), None)
