"""Who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated identity. ``name`` owns entities; admins see everything.

    ``source`` names the authenticator that vouched for it (``local``, ``ldap``, ``oidc``,
    ``x509``); a user name belongs to one source only (see
    :class:`gateway.services.accounts.Accounts`). ``groups`` are the user's groups or virtual
    organisations, as the source reported them."""

    name: str
    display_name: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    source: str = "local"
