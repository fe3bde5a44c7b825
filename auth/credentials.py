"""What a request offers to prove who sent it, read from HTTP by :mod:`auth.flask`.

Plain data: authenticators receive it and never see the request. Only credentials that a
trusted party vouched for reach ``client_dn`` (the TLS layer of ``nimbo up`` itself, or a front
end at an address listed in ``auth_trusted_proxies``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Credentials:
    """Everything one request carries; any field may be absent."""

    remote_addr: str = ""
    basic: tuple[str, str] | None = None  # Authorization: Basic user:password
    bearer: str | None = None  # Authorization: Bearer <JWT>
    auth_token: str | None = None  # X-Auth-Token: <token from POST /auth/tokens>
    client_dn: str | None = None  # a verified X.509 client certificate's subject DN
    client_issuer_dn: str | None = None  # and its issuer's DN

    @property
    def empty(self) -> bool:
        return not (self.basic or self.bearer or self.auth_token or self.client_dn)
