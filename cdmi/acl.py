"""CDMI access control lists (CDMI 1.1.1 §16.1): parsing, inheritance and evaluation.

An ACL is an ordered list of ACEs ``{"acetype", "identifier", "aceflags", "acemask"}``. Values
arrive as ``0x`` hex strings, as numbers, or as constant names joined by ``,``, ``|`` or
spaces; we store them normalised (hex strings) and evaluate them in the client's order, NFSv4
style: each ACE that applies to the principal decides the bits nobody decided before it; bits
nobody decided are denied. Where the spec's tables and grammar disagree, Table 117 wins (see
docs/cdmi-notes.md §19.13). Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.errors import InvalidRequest

ALLOW, DENY, AUDIT = 0x0, 0x1, 0x2
ACETYPES = {
    "ALLOW": ALLOW,
    "DENY": DENY,
    "AUDIT": AUDIT,
    "CDMI_ACE_ACCESS_ALLOW": ALLOW,
    "CDMI_ACE_ACCESS_DENY": DENY,
    "CDMI_ACE_SYSTEM_AUDIT": AUDIT,
}

OBJECT_INHERIT = 0x1
CONTAINER_INHERIT = 0x2
NO_PROPAGATE = 0x4
INHERIT_ONLY = 0x8
IDENTIFIER_GROUP = 0x40
INHERITED = 0x80
FLAGS = {
    "NO_FLAGS": 0x0,
    "OBJECT_INHERIT": OBJECT_INHERIT,
    "CONTAINER_INHERIT": CONTAINER_INHERIT,
    "NO_PROPAGATE": NO_PROPAGATE,
    "INHERIT_ONLY": INHERIT_ONLY,
    "IDENTIFIER_GROUP": IDENTIFIER_GROUP,
    "INHERITED": INHERITED,
}

READ_OBJECT = LIST_CONTAINER = 0x1
WRITE_OBJECT = ADD_OBJECT = 0x2
APPEND_DATA = ADD_SUBCONTAINER = 0x4
READ_METADATA = 0x8
WRITE_METADATA = 0x10
EXECUTE = TRAVERSE_CONTAINER = 0x20
DELETE_OBJECT = DELETE_SUBCONTAINER = 0x40
READ_ATTRIBUTES = 0x80
WRITE_ATTRIBUTES = 0x100
WRITE_RETENTION = 0x200
WRITE_RETENTION_HOLD = 0x400
DELETE = 0x10000
READ_ACL = 0x20000
WRITE_ACL = 0x40000
WRITE_OWNER = 0x80000
SYNCHRONIZE = 0x100000
ALL_PERMS = 0x001F07FF
MASKS = {
    "READ_OBJECT": READ_OBJECT,
    "LIST_CONTAINER": LIST_CONTAINER,
    "WRITE_OBJECT": WRITE_OBJECT,
    "ADD_OBJECT": ADD_OBJECT,
    "APPEND_DATA": APPEND_DATA,
    "ADD_SUBCONTAINER": ADD_SUBCONTAINER,
    "READ_METADATA": READ_METADATA,
    "WRITE_METADATA": WRITE_METADATA,
    "EXECUTE": EXECUTE,
    "TRAVERSE_CONTAINER": TRAVERSE_CONTAINER,
    "DELETE_OBJECT": DELETE_OBJECT,
    "DELETE_SUBCONTAINER": DELETE_SUBCONTAINER,
    "READ_ATTRIBUTES": READ_ATTRIBUTES,
    "WRITE_ATTRIBUTES": WRITE_ATTRIBUTES,
    "WRITE_RETENTION": WRITE_RETENTION,
    "WRITE_RETENTION_HOLD": WRITE_RETENTION_HOLD,
    "DELETE": DELETE,
    "READ_ACL": READ_ACL,
    "WRITE_ACL": WRITE_ACL,
    "WRITE_OWNER": WRITE_OWNER,
    "SYNCHRONIZE": SYNCHRONIZE,
    "ALL_PERMS": ALL_PERMS,
    "RW_ALL": 0x000601DF,
    "READ_ALL": 0x09,
    "READ": 0x09,
    "RW": 0x1F,
}

OWNER, GROUP, EVERYONE = "OWNER@", "GROUP@", "EVERYONE@"
ANONYMOUS, AUTHENTICATED = "ANONYMOUS@", "AUTHENTICATED@"
ADMINISTRATOR, ADMINUSERS = "ADMINISTRATOR@", "ADMINUSERS@"

_SPLIT = re.compile(r"[\s,|]+")
MAX_ACES = 256


@dataclass(frozen=True)
class Ace:
    acetype: int
    identifier: str
    flags: int
    mask: int

    def to_json(self) -> dict[str, str]:
        return {
            "acetype": f"0x{self.acetype:02X}",
            "identifier": self.identifier,
            "aceflags": f"0x{self.flags:02X}",
            "acemask": f"0x{self.mask:08X}",
        }


@dataclass(frozen=True)
class Subject:
    """Who is asking, as ACEs see it."""

    name: str
    groups: frozenset[str]
    is_admin: bool


def _number(value: Any, names: Mapping[str, int], what: str) -> int:
    if isinstance(value, bool):
        raise InvalidRequest(f"cdmi_acl: {what} must be a hex string or constant names")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and value.strip():
        number = 0
        for token in _SPLIT.split(value.strip()):
            if not token:
                continue
            upper = token.upper()
            if upper.startswith("0X"):
                try:
                    number |= int(upper, 16)
                except ValueError:
                    raise InvalidRequest(f"cdmi_acl: {what} {token!r} is not hex") from None
            elif upper in names:
                number |= names[upper]
            elif upper.startswith("CDMI_ACE_") and upper[9:] in names:
                number |= names[upper[9:]]
            else:
                raise InvalidRequest(f"cdmi_acl: unknown {what} {token!r}")
    else:
        raise InvalidRequest(f"cdmi_acl: {what} must be a hex string or constant names")
    if not 0 <= number < 1 << 32:
        raise InvalidRequest(f"cdmi_acl: {what} out of range")
    return number


def parse(value: Any) -> tuple[Ace, ...]:
    """ACEs from a client's ``cdmi_acl`` metadata value; InvalidRequest says what is wrong."""
    if not isinstance(value, list):
        raise InvalidRequest("cdmi_acl must be a JSON array of ACE objects")
    if len(value) > MAX_ACES:
        raise InvalidRequest(f"cdmi_acl has more than {MAX_ACES} entries")
    aces = []
    for position, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidRequest(f"cdmi_acl[{position}] is not an object")
        missing = {"acetype", "identifier", "aceflags", "acemask"} - item.keys()
        if missing:
            raise InvalidRequest(f"cdmi_acl[{position}] lacks {', '.join(sorted(missing))}")
        identifier = item["identifier"]
        if not isinstance(identifier, str) or not identifier.strip() or len(identifier) > 256:
            raise InvalidRequest(f"cdmi_acl[{position}]: identifier must be a non-empty name")
        acetype = _number(item["acetype"], ACETYPES, "acetype")
        if acetype not in (ALLOW, DENY, AUDIT):
            raise InvalidRequest(f"cdmi_acl[{position}]: acetype must be ALLOW, DENY or AUDIT")
        aces.append(
            Ace(
                acetype,
                identifier.strip(),
                _number(item["aceflags"], FLAGS, "aceflags"),
                _number(item["acemask"], MASKS, "acemask"),
            )
        )
    return tuple(aces)


def from_stored(value: Iterable[Mapping[str, str]]) -> tuple[Ace, ...]:
    return tuple(
        Ace(int(a["acetype"], 16), a["identifier"], int(a["aceflags"], 16), int(a["acemask"], 16))
        for a in value
    )


def to_stored(aces: Iterable[Ace]) -> list[dict[str, str]]:
    return [ace.to_json() for ace in aces]


def default(*, inheritable: bool = True) -> tuple[Ace, ...]:
    """The owner may do everything; children inherit that."""
    flags = OBJECT_INHERIT | CONTAINER_INHERIT if inheritable else 0
    return (Ace(ALLOW, OWNER, flags, ALL_PERMS),)


def root() -> tuple[Ace, ...]:
    """The root container: its owner (the administrator) may do everything; any authenticated
    user may list it (seeing only what they may read) and create in it. Nothing inherits:
    what a user creates in the root is theirs alone."""
    return (
        Ace(ALLOW, OWNER, 0, ALL_PERMS),
        Ace(
            ALLOW,
            AUTHENTICATED,
            0,
            LIST_CONTAINER | ADD_OBJECT | ADD_SUBCONTAINER | READ_METADATA | READ_ACL,
        ),
    )


def inherited(parent: Sequence[Ace], *, container: bool) -> tuple[Ace, ...]:
    """The ACEs a new child inherits from its parent's ACL (NFSv4 rules)."""
    result = []
    for ace in parent:
        if container:
            if not ace.flags & (CONTAINER_INHERIT | OBJECT_INHERIT):
                continue
            if ace.flags & NO_PROPAGATE:
                flags = 0
            elif ace.flags & CONTAINER_INHERIT:
                flags = ace.flags & ~INHERIT_ONLY
            else:  # object-inherit only: passes through to grandchildren objects
                flags = ace.flags | INHERIT_ONLY
        else:
            if not ace.flags & OBJECT_INHERIT:
                continue
            flags = 0
        flags &= OBJECT_INHERIT | CONTAINER_INHERIT | INHERIT_ONLY | IDENTIFIER_GROUP
        result.append(Ace(ace.acetype, ace.identifier, flags | INHERITED, ace.mask))
    return tuple(result)


def _applies(ace: Ace, subject: Subject, owner: str, group: str | None) -> bool:
    who = ace.identifier
    if who == EVERYONE:
        return True
    if who == AUTHENTICATED:
        return bool(subject.name)
    if who == ANONYMOUS:
        return not subject.name
    if who == OWNER:
        return subject.name == owner
    if who in (ADMINISTRATOR, ADMINUSERS):
        return subject.is_admin
    if who == GROUP:  # the object's group (see gateway.services.tenancy)
        return group is not None and group in subject.groups
    if ace.flags & IDENTIFIER_GROUP:
        return who in subject.groups
    return who == subject.name


def allowed(
    aces: Sequence[Ace], subject: Subject, owner: str, wanted: int, group: str | None = None
) -> bool:
    """Whether ``subject`` holds every bit of ``wanted`` on an object with ``owner`` (and
    ``group``, the one ``GROUP@`` means)."""
    if subject.is_admin:
        return True
    return granted(aces, subject, owner, wanted, group) == wanted


def granted(
    aces: Sequence[Ace], subject: Subject, owner: str, wanted: int, group: str | None = None
) -> int:
    """The bits of ``wanted`` that ``subject`` holds (admins: all of them)."""
    if subject.is_admin:
        return wanted
    held = 0
    decided = 0
    for ace in aces:
        if (
            ace.acetype == AUDIT
            or ace.flags & INHERIT_ONLY
            or not _applies(ace, subject, owner, group)
        ):
            continue
        fresh = ace.mask & wanted & ~decided
        if not fresh:
            continue
        if ace.acetype == ALLOW:
            held |= fresh
        decided |= fresh
        if decided & wanted == wanted:
            break
    return held & wanted
