"""Who may see and change what: owners, groups, the site's group policy and admins.

Every OCCI entity (resources and links), user mixin, saved image and CDMI object has an owner
(its creator) and at most one group. For a principal, a thing is

- **theirs** when they own it, or when they are an admin (admins see and may do everything);
- **shared with them** when its group is one of their groups: under the setting
  ``group_policy`` = ``read`` they may read it (GET, listings, filters, the query interface),
  under ``full`` also change, act on, delete and link it, under ``none`` nothing;
- **absent** otherwise: every route answers exactly as for an id that does not exist (404 with
  the same message; lists simply leave it out). A group member who may only read gets 403 for
  a write, since 404 would lie about something they can see.

A thing gets its group at create: the one the creator names (``org.nimbostratus.group`` in
OCCI, the metadata item of that name in CDMI), which must be one of the creator's groups
(admins may name any), else the setting ``tenancy_default_group``: ``none`` (private) or
``primary`` (the creator's group when they are in exactly one). A request whose token is
scoped to a project (Keystone; :attr:`Principal.scope_group <auth.principal.Principal>`) acts
in that group: what it creates gets the group unless it names one, and naming any other (or
none), at create or in a later change, is ``403`` (:func:`check_scope`). Only the owner or an
admin changes it later. A link's group is its source compute's; a CDMI object created in a container
with a group takes that group (like a setgid directory); a saved image takes the group of the
compute it was saved from.

In CDMI the policy acts as one more ACE after the object's own ACL (:meth:`Tenancy.group_aces`):
the ACL can deny a group what the policy grants. ``GROUP@`` in an ACL means the object's group.

Group membership is read from the principal of each request; what depends on it is cached
per :func:`access_key` (name, admin flag and groups), never per name alone, so that a changed
membership never meets an answer cached for the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, or_

from auth.principal import Principal
from cdmi import acl
from gateway.errors import ConfigurationError, Forbidden, InvalidAttribute, NimboError
from gateway.store.models import GROUP_NAME_MAX
from occi.infrastructure import GROUP_ATTRIBUTE, OWNER_ATTRIBUTE

# GROUP_ATTRIBUTE names a thing's group as an OCCI attribute and as a CDMI metadata item;
# OWNER_ATTRIBUTE shows an entity's owner in OCCI (set by the server, immutable).
__all__ = ["GROUP_ATTRIBUTE", "OWNER_ATTRIBUTE", "Tenancy", "access_key", "check_scope"]

READ, FULL, NONE = "read", "full", "none"
POLICIES = (READ, FULL, NONE)
DEFAULT_GROUPS = ("none", "primary")

# What group members hold in CDMI under each policy: reading under "read"; everything but
# changing the ACL or the owner under "full".
_CDMI_READ = acl.READ_OBJECT | acl.READ_METADATA | acl.READ_ATTRIBUTES | acl.READ_ACL | acl.EXECUTE
_CDMI_FULL = acl.ALL_PERMS & ~(acl.WRITE_ACL | acl.WRITE_OWNER)


def access_key(principal: Principal) -> str:
    """What everything a principal may see depends on, as one cache key."""
    admin = "admin" if principal.is_admin else ""
    return "\0".join((principal.name, admin, *sorted(principal.groups)))


def group_name(value: Any, *, what: str = GROUP_ATTRIBUTE) -> str | None:
    """A group as a client gave it: a name, or None for an empty one (no group)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidAttribute(f"{what} must be a string (a group name), not {value!r}")
    name = value.strip()
    if not name:
        return None
    if len(name) > GROUP_NAME_MAX or any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidAttribute(
            f"{what}: a group name has at most {GROUP_NAME_MAX} characters and no control "
            "characters"
        )
    return name


def check_scope(principal: Principal, group: str | None, *, what: str = GROUP_ATTRIBUTE) -> None:
    """Nothing when ``principal`` may give a thing ``group`` as far as its token's scope goes
    (no scope, or that very group); 403 otherwise: the token was issued to act in its
    project's group, and another token, not another request, would act elsewhere."""
    scope = principal.scope_group
    if scope is None or group == scope:
        return
    named = f"group {group!r}" if group is not None else "no group"
    raise Forbidden(
        f"{what}: {named} is refused: this token is scoped to project {scope!r}, so what it "
        f"creates or regroups belongs to group {scope!r}; leave {what} out (or name "
        f"{scope!r}), or use a token scoped to another project, or an unscoped one"
    )


def read_only(group: str | None) -> Forbidden:
    return Forbidden(f"members of group {group} may only read this entity")


@dataclass(frozen=True)
class Tenancy:
    """The policy of one gateway (settings ``group_policy`` and ``tenancy_default_group``)."""

    policy: str = READ
    default_group: str = "none"

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigurationError(
                f"group_policy must be one of {', '.join(POLICIES)}, not {self.policy!r}"
            )
        if self.default_group not in DEFAULT_GROUPS:
            raise ConfigurationError(
                f"tenancy_default_group must be one of {', '.join(DEFAULT_GROUPS)}, "
                f"not {self.default_group!r}"
            )

    @classmethod
    def from_config(cls, config: Any) -> Tenancy:
        return cls(config.group_policy, config.tenancy_default_group)

    # --- one thing --------------------------------------------------------------------------

    def sees(self, principal: Principal, owner: str | None, group: str | None) -> bool:
        return (
            principal.is_admin
            or owner == principal.name
            or (self.policy != NONE and group is not None and group in principal.groups)
        )

    def may_change(self, principal: Principal, owner: str | None, group: str | None) -> bool:
        return (
            principal.is_admin
            or owner == principal.name
            or (self.policy == FULL and group is not None and group in principal.groups)
        )

    def check_change(
        self, principal: Principal, owner: str | None, group: str | None, missing: NimboError
    ) -> None:
        """Nothing when the principal may change the thing; 403 when they may only read it;
        ``missing`` (the error of an absent thing) when they may not even see it."""
        if self.may_change(principal, owner, group):
            return
        if self.sees(principal, owner, group):
            raise read_only(group)
        raise missing

    # --- many things, in SQL ----------------------------------------------------------------

    def visible(self, principal: Principal, owner: Any, group: Any) -> ColumnElement[bool] | None:
        """The SQL condition on the ``owner`` and ``group`` columns of what the principal
        sees (None: everything, for admins)."""
        return self._condition(principal, owner, group, shared=self.policy != NONE)

    def changeable(
        self, principal: Principal, owner: Any, group: Any
    ) -> ColumnElement[bool] | None:
        """The SQL condition of what the principal may change (None: everything)."""
        return self._condition(principal, owner, group, shared=self.policy == FULL)

    @staticmethod
    def _condition(
        principal: Principal, owner: Any, group: Any, *, shared: bool
    ) -> ColumnElement[bool] | None:
        if principal.is_admin:
            return None
        mine: ColumnElement[bool] = owner == principal.name
        if not shared or not principal.groups:
            return mine
        return or_(mine, group.in_(sorted(principal.groups)))

    # --- groups -----------------------------------------------------------------------------

    def new_group(
        self, principal: Principal, asked: Any, *, what: str = GROUP_ATTRIBUTE
    ) -> str | None:
        """The group of something the principal creates, asking for ``asked`` (None: the
        default)."""
        if asked is None:
            return self.default_for(principal)
        group = group_name(asked, what=what)
        check_scope(principal, group, what=what)
        return self.allowed_group(principal, group, what=what)

    def default_for(self, principal: Principal) -> str | None:
        if principal.scope_group is not None:  # a token scoped to a project acts in its group
            return principal.scope_group
        if self.default_group == "primary" and len(principal.groups) == 1:
            return next(iter(principal.groups))
        return None

    @staticmethod
    def allowed_group(
        principal: Principal, group: str | None, *, what: str = GROUP_ATTRIBUTE
    ) -> str | None:
        """``group`` if the principal may give it (one of theirs; an admin any), else 400."""
        if group is None or principal.is_admin or group in principal.groups:
            return group
        mine = ", ".join(sorted(principal.groups))
        allowed = f"one of your groups ({mine})" if mine else "empty: you belong to no group"
        raise InvalidAttribute(f"{what} {group!r} is not allowed; it must be {allowed}")

    def regroup(
        self,
        principal: Principal,
        owner: str,
        current: str | None,
        asked: Any,
        *,
        what: str = GROUP_ATTRIBUTE,
    ) -> str | None:
        """The group after an update asking for ``asked`` (an empty name: none). Only the
        owner or an admin changes it (403), to one of their groups (400)."""
        group = group_name(asked, what=what)
        if group == current:
            return current
        if not (principal.is_admin or owner == principal.name):
            raise Forbidden(f"only the owner ({owner}) or an administrator may change the group")
        check_scope(principal, group, what=what)
        return self.allowed_group(principal, group, what=what)

    # --- CDMI -------------------------------------------------------------------------------

    def group_aces(self) -> tuple[acl.Ace, ...]:
        """The policy as ACEs evaluated after an object's own ACL."""
        if self.policy == NONE:
            return ()
        mask = _CDMI_FULL if self.policy == FULL else _CDMI_READ
        return (acl.Ace(acl.ALLOW, acl.GROUP, 0, mask),)
