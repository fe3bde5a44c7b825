"""Who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated identity. ``name`` owns entities; admins see everything.

    ``source`` names the authenticator that vouched for it (``local``, ``ldap``, ``oidc``,
    ``x509``); a user name belongs to one source only (see
    :class:`gateway.services.accounts.Accounts`). ``groups`` are the user's groups or virtual
    organisations, as the source reported them.

    ``scope_group`` is the group the request acts in: the project (Keystone v3) or tenant
    (v2.0) its token is scoped to (see :mod:`auth.tokens`), one of ``groups``; None for every
    other credential and for an unscoped token. What such a request creates belongs to that
    group, it may give nothing another group, and it sees only what its user sees in that
    group; admins still see everything (:mod:`gateway.services.tenancy`)."""

    name: str
    display_name: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
    source: str = "local"
    scope_group: str | None = None

    def __post_init__(self) -> None:
        if self.scope_group is not None and self.scope_group not in self.groups:
            raise ValueError(f"scope group {self.scope_group!r} is not one of {self.name}'s groups")
