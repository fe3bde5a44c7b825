"""Where a CDMI request points: the URL path below the CDMI root, checked and classified.

Pure functions. The view hands in the path below the root exactly as decoded by the server,
plus whether the raw request URI had an encoded ``/`` (refused: names never hold one).
"""

from __future__ import annotations

from dataclasses import dataclass

from cdmi import objectid
from cdmi.model import (
    CAPABILITIES_DIR,
    DOMAINS_DIR,
    MAX_PATH_BYTES,
    OBJECTID_DIR,
    SNAPSHOTS_DIR,
)
from gateway.errors import InvalidRequest, NotFound

PATH, BY_ID, ID_ROOT, CAPABILITIES, DOMAINS = "path", "by-id", "id-root", "capabilities", "domains"


@dataclass(frozen=True)
class Target:
    """``kind`` is one of PATH, BY_ID (``cdmi_objectid/<ID>[/rest]``), ID_ROOT
    (``cdmi_objectid/``), CAPABILITIES or DOMAINS (``rest`` below those directories)."""

    kind: str
    path: str = ""  # PATH: below the root, "" for the root itself
    object_id: str = ""  # BY_ID
    rest: str = ""  # BY_ID: the descendant path below the object; CAPABILITIES/DOMAINS: below
    slash: bool = False  # the URL ends in "/" (container syntax)

    @property
    def in_snapshot(self) -> bool:
        return f"/{SNAPSHOTS_DIR}/" in f"/{self.path}{self.rest}"


def _segments(path: str) -> list[str]:
    trimmed = path[:-1] if path.endswith("/") else path
    if not trimmed:
        return []
    segments = trimmed.split("/")
    for segment in segments:
        if segment == "":
            raise InvalidRequest("empty path segment ('//') in the URL")
        if segment in (".", ".."):
            raise InvalidRequest(f"path segment {segment!r} is not allowed in CDMI URLs")
        if "?" in segment:
            raise InvalidRequest("object names may not contain '?'")
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in segment):
            raise InvalidRequest("object names may not contain control characters")
    return segments


def target(below_root: str, *, encoded_slash: bool = False) -> Target:
    if encoded_slash:
        raise InvalidRequest("an encoded '/' (%2F) in the URL: object names never contain '/'")
    if len(below_root.encode("utf-8")) > MAX_PATH_BYTES:
        raise InvalidRequest(f"path longer than {MAX_PATH_BYTES} bytes")
    slash = below_root.endswith("/") or below_root == ""
    segments = _segments(below_root)
    if not segments:
        return Target(PATH, "", slash=True)
    head, rest = segments[0], segments[1:]
    rest_text = "/".join(rest) + ("/" if slash and rest else "")
    if head == OBJECTID_DIR:
        if not rest:
            return Target(ID_ROOT, slash=slash)
        canonical = objectid.parse(rest[0])
        if canonical is None:
            raise NotFound(f"{rest[0]!r} is not a well-formed CDMI object ID")
        below = "/".join(rest[1:]) + ("/" if slash and rest[1:] else "")
        return Target(BY_ID, object_id=canonical, rest=below, slash=slash)
    if head == CAPABILITIES_DIR:
        return Target(CAPABILITIES, rest=rest_text, slash=slash)
    if head == DOMAINS_DIR:
        return Target(DOMAINS, rest=rest_text, slash=slash)
    return Target(PATH, "/".join(segments) + ("/" if slash else ""), slash=slash)
