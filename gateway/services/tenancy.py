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

A request whose token is scoped to a project (Keystone;
:attr:`Principal.scope_group <auth.principal.Principal>`, group G) acts only inside G, as an
OpenStack project-scoped token does: it sees what its user sees (the rules above) *and* whose
group is G, so the user's own things there with owner rights and the group's shared things
under the policy; the user's things with no group or in another group, and other groups'
shared things, are absent to it exactly as to an outsider (404, left out of every listing,
filter, registry, link target and ``/cdmi_objectid/``). In CDMI the object's ACL decides
within that reach, and it sees the scoped token as a member of G only (:func:`acl_subject`);
the root container is everyone's namespace and within every scope. Admins see everything,
scoped or not. Unscoped principals (Basic, OIDC, X.509, unscoped tokens) are not limited.
Quotas are not scoped (they are per user and per group already). :func:`in_scope` and
:func:`scope_condition` are the rule; :meth:`Tenancy.sees`, :meth:`Tenancy.may_change`,
:meth:`Tenancy.visible` and :meth:`Tenancy.changeable` apply it to every OCCI entity, user
mixin and saved image, the CDMI service to every CDMI object.

A thing gets its group at create: the one the creator names (``org.nimbostratus.group`` in
OCCI, the metadata item of that name in CDMI), which must be one of the creator's groups
(admins may name any), else the setting ``tenancy_default_group``: ``none`` (private) or
``primary`` (the creator's group when they are in exactly one). A scoped request's creations
get G unless it names a group, and naming any other (or none), at create or in a later
change, is ``403`` (:func:`check_scope`). Only the owner or an admin changes it later. A link's
group is its source compute's; a CDMI object created in a container takes the container's
group (like a setgid directory), under a scoped token G (:meth:`Tenancy.child_group`; a
container it sees is of G anyway); a saved image takes the group of the compute it was saved
from.

In CDMI the policy acts as one more ACE after the object's own ACL (:meth:`Tenancy.group_aces`):
the ACL can deny a group what the policy grants. ``GROUP@`` in an ACL means the object's group.

Group membership is read from the principal of each request; what depends on it is cached
per :func:`access_key` (name, admin flag, scope and groups), never per name alone, so that a
changed membership or another scope never meets an answer cached for the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from auth.principal import Principal
from cdmi import acl
from gateway.errors import ConfigurationError, Forbidden, InvalidAttribute, NimboError
from gateway.store.models import GROUP_NAME_MAX
from occi.infrastructure import GROUP_ATTRIBUTE, OWNER_ATTRIBUTE

# GROUP_ATTRIBUTE names a thing's group as an OCCI attribute and as a CDMI metadata item;
# OWNER_ATTRIBUTE shows an entity's owner in OCCI (set by the server, immutable).
__all__ = [
    "GROUP_ATTRIBUTE",
    "OWNER_ATTRIBUTE",
    "Tenancy",
    "access_key",
    "acl_subject",
    "check_scope",
    "in_scope",
    "scope_condition",
]

READ, FULL, NONE = "read", "full", "none"
POLICIES = (READ, FULL, NONE)
DEFAULT_GROUPS = ("none", "primary")

# What group members hold in CDMI under each policy: reading under "read"; everything but
# changing the ACL or the owner under "full".
_CDMI_READ = acl.READ_OBJECT | acl.READ_METADATA | acl.READ_ATTRIBUTES | acl.READ_ACL | acl.EXECUTE
_CDMI_FULL = acl.ALL_PERMS & ~(acl.WRITE_ACL | acl.WRITE_OWNER)


def access_key(principal: Principal) -> str:
    """What everything a principal may see depends on, as one cache key: name, admin flag,
    scope and groups."""
    admin = "admin" if principal.is_admin else ""
    scope = principal.scope_group or ""
    return "\0".join((principal.name, admin, scope, *sorted(principal.groups)))


def in_scope(principal: Principal, group: str | None) -> bool:
    """Whether a thing of ``group`` is within the reach of the principal's token: for a token
    scoped to a project, only a thing of the project's group; for every other principal, and
    for admins (who see everything, scoped or not), anything. Reach is not access: the other
    rules (owner, group policy, CDMI ACLs) still decide within it."""
    scope = principal.scope_group
    return scope is None or principal.is_admin or group == scope


def scope_condition(principal: Principal, group: Any) -> ColumnElement[bool] | None:
    """:func:`in_scope` as an SQL condition on the ``group`` column (None: no limit)."""
    if principal.scope_group is None or principal.is_admin:
        return None
    condition: ColumnElement[bool] = group == principal.scope_group
    return condition


def acl_subject(principal: Principal) -> acl.Subject:
    """Who is asking, as a CDMI ACL sees it. A scoped token acts as a member of its scope group
    only: an ACE naming another of its user's groups grants it nothing."""
    groups = principal.groups
    if principal.scope_group is not None and not principal.is_admin:
        groups = frozenset({principal.scope_group})
    return acl.Subject(principal.name, groups, principal.is_admin)


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
        """Whether the thing exists for the principal: an admin's, or in the principal's
        scope (:func:`in_scope`) and theirs, or shared with them by the policy."""
        return self._holds(principal, owner, group, shared=self.policy != NONE)

    def may_change(self, principal: Principal, owner: str | None, group: str | None) -> bool:
        """As :meth:`sees`, for changing (``full`` policy for group members)."""
        return self._holds(principal, owner, group, shared=self.policy == FULL)

    @staticmethod
    def _holds(
        principal: Principal, owner: str | None, group: str | None, *, shared: bool
    ) -> bool:
        """:meth:`sees` or :meth:`may_change` for one thing; ``shared``: whether the policy
        gives group members what is asked (as :meth:`_condition` does in SQL)."""
        return principal.is_admin or (
            in_scope(principal, group)
            and (
                owner == principal.name
                or (shared and group is not None and group in principal.groups)
            )
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
        sees, as :meth:`sees` decides it for one thing (None: everything, for admins)."""
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
        scope = principal.scope_group
        if scope is not None:  # its group only: the user's own there, the shared under the policy
            in_group: ColumnElement[bool] = group == scope
            return in_group if shared else and_(mine, in_group)
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

    @staticmethod
    def child_group(principal: Principal, container_group: str | None) -> str | None:
        """The group of a new CDMI object in a container of ``container_group`` before any the
        request names: the container's (a setgid directory); under a scoped token its scope
        group, as for everything it creates (a container it sees is of that group but for an
        admin's token)."""
        if principal.scope_group is not None:
            return principal.scope_group
        return container_group

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
