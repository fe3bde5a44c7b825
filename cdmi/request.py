"""Reading CDMI requests: version negotiation, media types, field selection and byte ranges.

Pure functions over header and query strings; nothing here touches Flask or the store. Those
that read one header value remember their answers for the last :data:`HEADER_CACHE` values
(clients send the same few, and every request reads three of them).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import lru_cache

from gateway.errors import InvalidRequest, NotAcceptable

VERSION_HEADER = "X-CDMI-Specification-Version"
# Ours, best first. 1.0.1 and 1.0.2 clients are answered in their version's vocabulary.
SUPPORTED_VERSIONS = ("1.1.1", "1.1", "1.0.2", "1.0.1")
_VERSION_KEY = {"1.1.1": (1, 1, 1), "1.1": (1, 1, 0), "1.0.2": (1, 0, 2), "1.0.1": (1, 0, 1)}
HEADER_CACHE = 256
"""Distinct header values whose parse is remembered, per function and process."""


class CdmiType(StrEnum):
    OBJECT = "application/cdmi-object"
    CONTAINER = "application/cdmi-container"
    CAPABILITY = "application/cdmi-capability"
    DOMAIN = "application/cdmi-domain"
    QUEUE = "application/cdmi-queue"


# Accepted, never emitted: names some clients use for the same classes.
_ALIASES = {
    "application/cdmi-dataobject": CdmiType.OBJECT,
    "application/cdmi-capabilities": CdmiType.CAPABILITY,
}


@lru_cache(maxsize=HEADER_CACHE)  # a refusal raises every time: exceptions are not cached
def negotiate_version(header: str | None) -> str | None:
    """The version to answer in, spelled as the client spelled it; None without a header.

    The header is a comma list; unknown tokens are ignored (a 2.0 client may list several).
    InvalidRequest when nothing in it is ours."""
    if header is None:
        return None
    offered = [token.strip() for token in header.split(",") if token.strip()]
    best: tuple[tuple[int, int, int], str] | None = None
    for token in offered:
        canonical = token.lower().rstrip("h")  # old libcdmi-python sent "1.0.1h"
        if canonical == "1.1.0":
            canonical = "1.1"
        key = _VERSION_KEY.get(canonical)
        if key is not None and (best is None or key > best[0]):
            best = (key, token)
    if best is None:
        raise InvalidRequest(
            f"{VERSION_HEADER} {header!r} names no version this server speaks "
            f"(supported: {', '.join(SUPPORTED_VERSIONS)})"
        )
    return best[1]


def is_legacy(version: str | None) -> bool:
    """Whether a negotiated version is a 1.0.x one (deprecated capability names)."""
    return version is not None and version.startswith("1.0")


@dataclass(frozen=True)
class MediaType:
    cdmi: CdmiType | None  # None: not a CDMI type
    json_suffix: bool  # the RFC 6839 ``+json`` flavour
    raw: str  # type/subtype, lower case, no parameters
    charset: str | None = None

    def render(self, cdmi: CdmiType) -> str:
        return f"{cdmi}+json" if self.json_suffix else str(cdmi)


@lru_cache(maxsize=HEADER_CACHE)
def media_type(header: str | None) -> MediaType | None:
    if not header or not header.strip():
        return None
    main, *params = header.split(";")
    raw = main.strip().lower()
    charset = None
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
    suffix = raw.endswith("+json")
    base = raw.removesuffix("+json")
    cdmi = _ALIASES.get(base)
    if cdmi is None:
        try:
            cdmi = CdmiType(base)
        except ValueError:
            cdmi = None
    return MediaType(cdmi, suffix, raw, charset)


@lru_cache(maxsize=HEADER_CACHE)
def accepted_cdmi(accept: str | None) -> tuple[MediaType, ...]:
    """The CDMI media types in an ``Accept`` header (in order)."""
    if not accept:
        return ()
    types = [media_type(part.split(";")[0]) for part in accept.split(",")]
    return tuple(t for t in types if t is not None and t.cdmi is not None)


def check_accept(accept: str | None, produced: CdmiType) -> MediaType | None:
    """The flavour of ``produced`` the client accepts; NotAcceptable when it asks only for
    other CDMI classes. None when it names no CDMI type (``*/*``, ``application/json``)."""
    cdmi = accepted_cdmi(accept)
    if not cdmi:
        return None
    for candidate in cdmi:
        if candidate.cdmi == produced:
            return candidate
    raise NotAcceptable(
        f"this is a {produced}; the request accepts only {', '.join(t.raw for t in cdmi)}"
    )


# --- field selection --------------------------------------------------------------------

_RANGE = re.compile(r"^(\d+)-(\d+)$")


@dataclass(frozen=True)
class Selection:
    """A 1.x query (``?objectID;metadata:cdmi_;value:0-99;children:0-2``).

    ``fields`` is empty when the client asked for everything. ``metadata_prefixes`` holds
    ``metadata:<prefix>`` items (read: a filter; update: the names to set or delete)."""

    fields: tuple[str, ...] = ()
    value_range: tuple[int, int] | None = None
    children_range: tuple[int, int] | None = None
    metadata_prefixes: tuple[str, ...] = ()
    raw_items: tuple[str, ...] = field(default=())

    @property
    def everything(self) -> bool:
        return not self.fields

    def wants(self, name: str) -> bool:
        return not self.fields or name in self.fields


def _inclusive(text: str, what: str) -> tuple[int, int]:
    match = _RANGE.match(text)
    if match is None:
        raise InvalidRequest(f"{what} range {text!r} must be <first>-<last>, both numbers")
    first, last = int(match.group(1)), int(match.group(2))
    if last < first:
        raise InvalidRequest(f"{what} range {text!r} ends before it starts")
    return first, last


def selection(query: str) -> Selection:
    """Parse the raw query string (already percent-decoded is fine: names hold no ``;``)."""
    if not query:
        return Selection()
    if "&" in query or "=" in query:
        raise InvalidRequest(
            "CDMI 2.0 query syntax (?a&b, ?value=0-3) is not spoken here; use 1.x: ?a;b, ?value:0-3"
        )
    fields: list[str] = []
    value_range = children_range = None
    prefixes: list[str] = []
    items = tuple(item for item in query.split(";") if item)
    for item in items:
        name, colon, argument = item.partition(":")
        if name == "value" and colon:
            value_range = _inclusive(argument, "value")
        elif name == "children" and colon:
            children_range = _inclusive(argument, "children")
        elif name == "metadata" and colon:
            prefixes.append(argument)
        elif colon:
            raise InvalidRequest(
                f"query item {item!r}: only value:, children: and metadata: take an argument"
            )
        fields.append(name)
    return Selection(
        tuple(dict.fromkeys(fields)), value_range, children_range, tuple(prefixes), items
    )


# --- HTTP byte ranges -------------------------------------------------------------------

_BYTES = re.compile(r"^\s*(?:bytes\s*=\s*)?(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)
_CONTENT_RANGE = re.compile(r"^\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", re.IGNORECASE)


class Unsatisfiable(Exception):
    """A syntactically valid ``Range`` that selects nothing of the value (HTTP 416)."""


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` for a single-range ``Range`` header, also the ``0-3`` form
    some CDMI clients send without ``bytes=``; None when absent or not a single byte range
    (RFC 7233: ignore it, send everything). Unsatisfiable when it lies past the end."""
    if header is None:
        return None
    match = _BYTES.match(header)
    if match is None or "," in header:
        return None
    first, last = match.group(1), match.group(2)
    if not first and not last:
        return None
    if not first:  # suffix: the last N bytes
        length = int(last)
        if length == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - length), size
    start = int(first)
    end = int(last) + 1 if last else size
    if last and end <= start:
        return None  # invalid: ignored per RFC 7233
    if start >= size:
        raise Unsatisfiable
    return start, min(end, size)


def content_range(header: str | None) -> tuple[int, int] | None:
    """``(start, end_exclusive)`` of a ``Content-Range: bytes a-b/total`` on a write."""
    if header is None:
        return None
    match = _CONTENT_RANGE.match(header)
    if match is None:
        raise InvalidRequest(f"Content-Range {header!r} must be 'bytes <first>-<last>/<total>'")
    first, last = int(match.group(1)), int(match.group(2))
    if last < first:
        raise InvalidRequest(f"Content-Range {header!r} ends before it starts")
    return first, last + 1
