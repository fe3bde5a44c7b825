"""CDMI objects as the protocol shows them: names, metadata rules and response documents.

The service hands in :class:`ObjectState` (what the store holds); the functions here decide
what a client sees, in the field order the spec requires (``value``/``children`` last). Pure
functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cdmi import capabilities, extents
from cdmi.request import CdmiType, Selection
from gateway.errors import InvalidRequest

CONTAINER = "container"
DATAOBJECT = "dataobject"
OBJECTID_DIR = "cdmi_objectid"
CAPABILITIES_DIR = "cdmi_capabilities"
DOMAINS_DIR = "cdmi_domains"
SNAPSHOTS_DIR = "cdmi_snapshots"
DEFAULT_DOMAIN = "cdmi_domains/default/"
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 1024

GROUP_METADATA = "org.nimbostratus.group"
"""The object's group (vendor storage-system metadata; CDMI 1.1.1 names no group item): the
group ``GROUP@`` means and whose members share the object (see gateway.services.tenancy). A
client names it in ``metadata`` like ``cdmi_acl``; it is never stored as user metadata."""

WRITTEN_EXTENTS = "org.nimbostratus.written"
"""Where an object's ``extra`` keeps the extents written by range writes that left a gap
(see :mod:`cdmi.extents`). Server state: never rendered, never taken from a request body."""

# Storage-system metadata: made by the server from its columns; what clients send is ignored.
SYSTEM_METADATA = frozenset(
    {
        "cdmi_size",
        "cdmi_ctime",
        "cdmi_atime",
        "cdmi_mtime",
        "cdmi_acount",
        "cdmi_mcount",
        "cdmi_owner",
        "cdmi_acl",
        "cdmi_hash",
        GROUP_METADATA,
    }
)

# The fields of a CDMI request body that mean one operation each; at most one may be given.
OPERATIONS = ("copy", "move", "reference", "serialize", "deserialize", "deserializevalue", "value")
KNOWN_FIELDS = frozenset(
    {
        *OPERATIONS,
        "mimetype",
        "metadata",
        "domainURI",
        "valuetransferencoding",
        "capabilitiesURI",
        "exports",
        "snapshot",
    }
)


def unknown_fields(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a request body that are stored, not interpreted (§6: unknown fields);
    a field named like server state is dropped."""
    return {
        k: v for k, v in body.items() if k not in KNOWN_FIELDS and k != WRITTEN_EXTENTS
    }


def check_name(name: str) -> None:
    """A single path segment a client may create."""
    if not name:
        raise InvalidRequest("an object name may not be empty")
    if "/" in name or "?" in name:
        raise InvalidRequest(f"object name {name!r} contains '/' or '?'")
    if name in (".", ".."):
        raise InvalidRequest(f"object name {name!r} is not allowed")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        raise InvalidRequest("object names may not contain control characters")
    if name.startswith("cdmi_"):
        raise InvalidRequest(f"names starting with cdmi_ are reserved ({name!r})")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise InvalidRequest(f"object name longer than {MAX_NAME_BYTES} bytes")


def parent_path(path: str) -> str:
    """The path of the container holding ``path`` (both below the root; ``""``: the root)."""
    trimmed = path.rstrip("/")
    return trimmed.rsplit("/", 1)[0] + "/" if "/" in trimmed else ""


def timestamp(moment: datetime) -> str:
    """``YYYY-MM-DDThh:mm:ss.ffffffZ`` (UTC, six fraction digits)."""
    if moment.tzinfo is None:  # SQLite hands back naive UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_metadata(metadata: Any) -> dict[str, Any]:
    """User metadata from a request body: names not ``cdmi_`` (storage-system names are
    dropped, ``cdmi_acl`` is taken out by the caller), sizes within the advertised limits."""
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be a JSON object")
    result: dict[str, Any] = {}
    total = 0
    for name, value in metadata.items():
        if name in SYSTEM_METADATA:
            continue
        if name.startswith("cdmi_"):
            raise InvalidRequest(
                f"metadata {name!r}: names starting with cdmi_ belong to the system"
            )
        if not name:
            raise InvalidRequest("metadata names may not be empty")
        size = len(name.encode()) + len(json.dumps(value, ensure_ascii=False).encode())
        if size > capabilities.METADATA_MAX_SIZE:
            raise InvalidRequest(
                f"metadata {name!r} is {size} bytes; at most {capabilities.METADATA_MAX_SIZE}"
            )
        total += size
        result[name] = value
    if len(result) > capabilities.METADATA_MAX_ITEMS:
        raise InvalidRequest(
            f"{len(result)} metadata items; at most {capabilities.METADATA_MAX_ITEMS}"
        )
    if total > capabilities.METADATA_MAX_TOTAL:
        raise InvalidRequest(
            f"metadata totals {total} bytes; at most {capabilities.METADATA_MAX_TOTAL}"
        )
    return result


def merge_metadata(
    current: Mapping[str, Any], given: Mapping[str, Any], selection: Selection
) -> dict[str, Any]:
    """An update's metadata: all replaced, or with ``?metadata:<name>`` only the named
    items set (given) or deleted (named but not given)."""
    if not selection.metadata_prefixes:
        return dict(given)
    merged = dict(current)
    for name in selection.metadata_prefixes:
        if name in given:
            merged[name] = given[name]
        else:
            merged.pop(name, None)
    return merged


@dataclass
class ObjectState:
    """What the store knows of an object, in the terms of the protocol."""

    id: str
    kind: str  # container | dataobject
    path: str | None  # below the root: "", "a/", "a/b"; None: by ID only
    parent_id: str | None
    owner: str
    mimetype: str
    encoding: str
    size: int
    metadata: dict[str, Any]
    acl: list[dict[str, str]]
    exports: dict[str, Any]
    completion: str
    ctime: datetime
    mtime: datetime
    atime: datetime
    acount: int
    mcount: int
    extra: dict[str, Any] = field(default_factory=dict)
    group: str | None = None

    @property
    def name(self) -> str | None:
        """``objectName``: the last segment, ``/``-terminated for containers."""
        if self.path is None:
            return None
        trimmed = self.path.rstrip("/")
        last = trimmed.rsplit("/", 1)[-1]
        return f"{last}/" if self.kind == CONTAINER and last else last

    @property
    def parent_path(self) -> str | None:
        return parent_path(self.path) if self.path else None

    @property
    def written(self) -> list[extents.Extent] | None:
        """The extents of the value that were written (None: all of it, no gaps)."""
        return extents.from_stored(self.extra.get(WRITTEN_EXTENTS))

    @property
    def media(self) -> CdmiType:
        return CdmiType.CONTAINER if self.kind == CONTAINER else CdmiType.OBJECT


def system_metadata(state: ObjectState) -> dict[str, Any]:
    group = {GROUP_METADATA: state.group} if state.group is not None else {}
    return {
        "cdmi_size": str(state.size),
        "cdmi_ctime": timestamp(state.ctime),
        "cdmi_atime": timestamp(state.atime),
        "cdmi_mtime": timestamp(state.mtime),
        "cdmi_acount": str(state.acount),
        "cdmi_mcount": str(state.mcount),
        "cdmi_owner": state.owner,
        **group,
        "cdmi_acl": state.acl,
    }


def header_fields(state: ObjectState, root: str, parent_id: str | None) -> dict[str, Any]:
    """The fields every object response starts with, in order. ``root`` is the CDMI root URI
    path (``/cdmi/``); an object reached by ID only has no name or parent."""
    doc: dict[str, Any] = {"objectType": str(state.media), "objectID": state.id}
    if state.path is not None and state.path != "":
        doc["objectName"] = state.name
        doc["parentURI"] = root + (state.parent_path or "")
        if parent_id is not None:
            doc["parentID"] = parent_id
    elif state.path == "":  # the root: below /cdmi/ it is "cdmi/" in "/", at "/" it is "/"
        trimmed = root.rstrip("/")
        doc["objectName"] = trimmed.rsplit("/", 1)[-1] + "/" if trimmed else "/"
        doc["parentURI"] = trimmed.rsplit("/", 1)[0] + "/" if trimmed else ""
    doc["domainURI"] = root + DEFAULT_DOMAIN
    doc["capabilitiesURI"] = f"{root}{CAPABILITIES_DIR}/{state.kind}/"
    doc["completionStatus"] = state.completion
    if state.completion == "Processing":
        doc["percentComplete"] = "0"
    return doc


def document(
    state: ObjectState,
    root: str,
    parent_id: str | None,
    selection: Selection,
    *,
    metadata_readable: bool = True,
) -> dict[str, Any]:
    """The response document without ``value``/``valuerange``/``children`` (the service adds
    those, they are last): header, ``mimetype``, ``metadata``, ``exports``, ``snapshots``."""
    full = header_fields(state, root, parent_id)
    if state.kind == DATAOBJECT:
        full["mimetype"] = state.mimetype
    if metadata_readable:
        metadata = {**state.metadata, **system_metadata(state)}
        if selection.metadata_prefixes:
            metadata = {
                k: v
                for k, v in metadata.items()
                if any(k.startswith(p) for p in selection.metadata_prefixes)
            }
        full["metadata"] = metadata
    if state.kind == CONTAINER and state.exports:
        full["exports"] = state.exports
    for name, value in state.extra.items():
        if name != WRITTEN_EXTENTS:
            full.setdefault(name, value)
    if selection.everything:
        return full
    return {name: full[name] for name in selection.fields if name in full}
