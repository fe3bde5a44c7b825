"""What a CDMI request body says, checked: the fields a create or update may carry (operation,
metadata, group, mimetype, domain, capabilities URI), values in their transfer encodings, and
the bookkeeping of a value's written extents. Functions of the body and of rows; no I/O.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from cdmi import acl, extents
from cdmi.model import (
    CAPABILITIES_DIR,
    DEFAULT_DOMAIN,
    GROUP_METADATA,
    OPERATIONS,
    WRITTEN_EXTENTS,
    check_metadata,
)
from gateway.errors import InvalidRequest
from gateway.services.cdmi_state import NO_GROUP
from gateway.store.models import CdmiObjectRow


def track_written(row: CdmiObjectRow, size: int, first: int | None, count: int) -> None:
    """Keep the extents of ``row``'s value (``size`` bytes before the write) in step with a
    write of ``count`` bytes from ``first``; ``first`` None: the whole value was replaced."""
    if first is None:
        written = None
    else:
        written = extents.after_write(
            extents.from_stored((row.extra or {}).get(WRITTEN_EXTENTS)), size, first, count
        )
    set_written(row, extents.to_stored(written))


def copy_written(source: CdmiObjectRow, row: CdmiObjectRow) -> None:
    """A copy's value has the source's gaps."""
    set_written(row, (source.extra or {}).get(WRITTEN_EXTENTS))


def set_written(row: CdmiObjectRow, stored: list[list[int]] | None) -> None:
    extra = {k: v for k, v in (row.extra or {}).items() if k != WRITTEN_EXTENTS}
    if stored is not None:
        extra[WRITTEN_EXTENTS] = stored
    if extra != (row.extra or {}):
        row.extra = extra  # a new dict: the JSON column sees the change


class ByteCount:
    """Counts the bytes of a stream while it passes through."""

    def __init__(self) -> None:
        self.total = 0

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.total += len(chunk)
            yield chunk


def operation_of(body: Mapping[str, Any]) -> str | None:
    """The one operation field of a body (or None); 400 for two, or for one not offered."""
    given = [name for name in OPERATIONS if name in body]
    if len(given) > 1:
        raise InvalidRequest(
            f"at most one of {', '.join(OPERATIONS)} per request (got {', '.join(given)})"
        )
    if given and given[0] not in ("value", "copy", "move"):
        raise InvalidRequest(f"{given[0]} is not offered here (its capability is absent)")
    return given[0] if given else None


def metadata_of(body: Mapping[str, Any]) -> tuple[dict[str, Any] | None, Any]:
    """The body's user metadata, checked, and its ``cdmi_acl`` (parsed here to check it),
    each None when not given."""
    given = body.get("metadata")
    if given is None:
        return None, None
    if not isinstance(given, dict):
        raise InvalidRequest("metadata must be a JSON object")
    explicit_acl = given.get("cdmi_acl")
    if explicit_acl is not None:
        acl.parse(explicit_acl)
    return check_metadata(given), explicit_acl


def group_of(body: Mapping[str, Any]) -> Any:
    """The group the body's metadata names (``""``: none), or ``NO_GROUP``."""
    given = body.get("metadata")
    if not isinstance(given, dict) or GROUP_METADATA not in given:
        return NO_GROUP
    return given[GROUP_METADATA]


def mimetype_of(body: Mapping[str, Any]) -> str | None:
    """The body's ``mimetype``, stored lower case."""
    mimetype = body.get("mimetype")
    if mimetype is None:
        return None
    if not isinstance(mimetype, str) or "/" not in mimetype:
        raise InvalidRequest("mimetype must be a media type such as text/plain")
    return mimetype.strip().lower()


def check_fields(body: Mapping[str, Any]) -> None:
    if not isinstance(body, Mapping):
        raise InvalidRequest("a CDMI request body is a JSON object")
    for name in ("copy", "move", "reference"):
        if name in body and not isinstance(body[name], str):
            raise InvalidRequest(f"{name} must be a URI string")


def check_domain(body: Mapping[str, Any], root: str) -> None:
    domain = body.get("domainURI")
    if domain is None:
        return
    if not isinstance(domain, str) or domain.rstrip("/") + "/" not in (
        root + DEFAULT_DOMAIN,
        "/" + DEFAULT_DOMAIN,
    ):
        raise InvalidRequest(
            f"domainURI {domain!r}: the only domain here is {root}{DEFAULT_DOMAIN}"
        )


def check_capabilities_uri(body: Mapping[str, Any], root: str, kind: str) -> None:
    uri = body.get("capabilitiesURI")
    if uri is None:
        return
    wanted = f"{CAPABILITIES_DIR}/{kind}/"
    if not isinstance(uri, str) or uri.rstrip("/") + "/" not in (root + wanted, "/" + wanted):
        raise InvalidRequest(f"capabilitiesURI {uri!r}: a {kind} here has {root}{wanted}")


def below_root(uri: str, root: str) -> str:
    from urllib.parse import unquote, urlsplit

    path = unquote(urlsplit(uri).path) if "://" in uri else unquote(uri)
    if path.startswith(root):
        return path[len(root) :]
    if path.startswith("/"):
        return path[1:]
    return path


def decode_base64(text: str) -> bytes:
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest("value is not valid base64") from None


class Utf8Check:
    """Validates a stream as UTF-8 while it passes through, without holding it."""

    def __init__(self) -> None:
        self.valid = True
        self._decoder = codecs.getincrementaldecoder("utf-8")()

    def wrap(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            if self.valid:
                try:
                    self._decoder.decode(chunk)
                except UnicodeDecodeError:
                    self.valid = False
            yield chunk
        if self.valid:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.valid = False
