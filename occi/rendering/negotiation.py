"""Content negotiation and the OCCI version rule (notes §2.2): one map from media type to
renderer and parser, pure functions over header values.

- :func:`negotiate` picks the media type to answer in from ``Accept`` (q-values honoured; no
  header, ``*/*`` or ``text/*`` give ``text/plain``; among equally acceptable types the one the
  client names first wins, wildcards resolve in our order of preference).
- :func:`renderer_for` and :func:`parser_for` map a media type to its renderer / parser.
- :func:`occi_version_ok` applies the 501 rule to ``User-Agent``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

from gateway.errors import NotAcceptable
from occi.rendering import (
    JSON,
    OCCI_JSON,
    PARSE_TYPES,
    RENDER_TYPES,
    TEXT_OCCI,
    TEXT_OCCI_PLAIN,
    TEXT_PLAIN,
    URI_LIST,
    Parser,
    Renderer,
)
from occi.rendering.json import JsonParser, JsonRenderer
from occi.rendering.text import (
    TextOcciParser,
    TextOcciRenderer,
    TextPlainParser,
    TextPlainRenderer,
    UriListParser,
    UriListRenderer,
)

SERVER_OCCI_VERSION = (1, 2)

_RENDERERS: dict[str, Callable[[], Renderer]] = {
    TEXT_PLAIN: lambda: TextPlainRenderer(TEXT_PLAIN),
    TEXT_OCCI_PLAIN: lambda: TextPlainRenderer(TEXT_OCCI_PLAIN),
    TEXT_OCCI: TextOcciRenderer,
    URI_LIST: UriListRenderer,
    OCCI_JSON: lambda: JsonRenderer(OCCI_JSON),
    JSON: lambda: JsonRenderer(JSON),
}
_PARSERS: dict[str, Callable[[], Parser]] = {
    TEXT_PLAIN: TextPlainParser,
    TEXT_OCCI_PLAIN: TextPlainParser,
    TEXT_OCCI: TextOcciParser,
    URI_LIST: UriListParser,
    OCCI_JSON: JsonParser,
    JSON: JsonParser,
}
_OCCI_VERSION = re.compile(r"(?<![A-Za-z0-9_.-])OCCI/([0-9]+)\.([0-9]+)", re.IGNORECASE)


@dataclass(frozen=True)
class MediaRange:
    """One element of an ``Accept`` header."""

    type: str
    subtype: str
    q: float
    position: int

    def specificity(self, media_type: str) -> int:
        """2 for an exact match, 1 for ``type/*``, 0 for ``*/*``, -1 for no match."""
        main, _, sub = media_type.partition("/")
        if self.type == "*":
            return 0
        if self.type != main:
            return -1
        if self.subtype == "*":
            return 1
        return 2 if self.subtype == sub else -1


def media_type_of(header: str) -> str:
    """The bare, lower-case media type of a ``Content-Type``-like value."""
    return header.split(";", 1)[0].strip().lower()


def _q_value(params: list[str]) -> float | None:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value.strip())
            except ValueError:
                return None
            return q if 0.0 <= q <= 1.0 else None
    return 1.0


def parse_accept(accept: str) -> list[MediaRange]:
    """The media ranges of an ``Accept`` value; malformed elements are skipped."""
    ranges: list[MediaRange] = []
    for position, element in enumerate(accept.split(",")):
        media_type, *params = element.split(";")
        main, slash, sub = media_type.strip().lower().partition("/")
        q = _q_value(params)
        if slash and main and sub and q is not None:
            ranges.append(MediaRange(main, sub, q, position))
    return ranges


def _best_range(ranges: list[MediaRange], media_type: str) -> MediaRange | None:
    """The most specific range matching ``media_type`` (it sets the type's q)."""
    matching = [r for r in ranges if r.specificity(media_type) >= 0]
    if not matching:
        return None
    return max(matching, key=lambda r: (r.specificity(media_type), -r.position))


@functools.lru_cache(maxsize=256)  # clients send a handful of Accept values, again and again
def negotiate(accept: str | None) -> str:
    """The media type to render in; :class:`NotAcceptable` if none of ours is acceptable."""
    if accept is None or not accept.strip():
        return TEXT_PLAIN
    ranges = parse_accept(accept)
    candidates: list[tuple[float, int, int, int, str]] = []
    for preference, media_type in enumerate(RENDER_TYPES):
        best = _best_range(ranges, media_type)
        if best is not None and best.q > 0:
            exact = best.specificity(media_type) == 2
            candidates.append((best.q, exact, -best.position, -preference, media_type))
    if not candidates:
        raise NotAcceptable(
            f"cannot answer in any of {accept!r}; supported: {', '.join(RENDER_TYPES)}")
    return max(candidates)[-1]


def renderer_for(media_type: str) -> Renderer:
    """The renderer of a negotiated media type (parameters ignored)."""
    factory = _RENDERERS.get(media_type_of(media_type))
    if factory is None:
        raise NotAcceptable(
            f"cannot render {media_type!r}; supported: {', '.join(RENDER_TYPES)}")
    return factory()


def parser_for(content_type: str | None) -> Parser:
    """The parser of a request's ``Content-Type``; none means OCCI header fields (text/occi)."""
    if content_type is None or not media_type_of(content_type):
        return TextOcciParser()
    factory = _PARSERS.get(media_type_of(content_type))
    if factory is None:
        raise NotAcceptable(
            f"cannot read Content-Type {content_type!r}; supported: {', '.join(PARSE_TYPES)}")
    return factory()


@functools.lru_cache(maxsize=256)
def occi_version_ok(user_agent: str | None) -> bool:
    """False when every ``OCCI/<major>.<minor>`` token in ``User-Agent`` is above ours (501)."""
    versions = [(int(major), int(minor))
                for major, minor in _OCCI_VERSION.findall(user_agent or "")]
    return not versions or any(v <= SERVER_OCCI_VERSION for v in versions)
