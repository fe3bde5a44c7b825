"""The OCCI text renderings: ``text/plain`` (also ``text/occi+plain``), ``text/occi`` and
``text/uri-list`` (GFD-R-P.229; notes §3, §10).

Renderers
    :class:`TextPlainRenderer` writes one ``Name: value`` line per field. Lines end in CRLF
    as the text rendering asks (notes §3); every parser in the field (rOCCI, pOCCI, ooi, the
    OCCI-WG script) strips the CR. :class:`TextOcciRenderer` sends the same fields as HTTP
    header fields, one per name with comma-joined values, and the body ``OK``.
    :class:`UriListRenderer` writes one absolute URI per line (RFC 2483, CRLF) and renders
    only collections and locations.

Parsers
    :class:`TextPlainParser` reads the body; when the body holds no OCCI field it reads the
    OCCI header fields instead (clients mix them). :class:`TextOcciParser` reads only header
    fields. :class:`UriListParser` reads only locations.

Entity requests: a Category without ``class`` is put into ``EntityRequest.mixins``; the caller
resolves it against the registry (a known kind type-id becomes the kind). Action links in a
request (``Link: <…?action=term>``) go to ``EntityRequest.action_links`` as the action type-id
(their ``rel``).
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import InvalidRequest, ParseError
from occi.core import ActionRequest, Category, CategoryRef, Entity, EntityRequest, RenderContext
from occi.rendering import (
    TEXT_OCCI,
    TEXT_PLAIN,
    URI_LIST,
    HeaderList,
    Rendered,
)
from occi.rendering import text_parse as tp
from occi.rendering.text_render import (
    Field,
    category_field,
    entity_fields,
    location_fields,
    one_line,
)

CRLF = "\r\n"

# --- renderers ---------------------------------------------------------------------------


class _FieldRenderer:
    """What the two field renderings share: the same fields, carried by ``_render``."""

    media_type: str

    def _render(self, fields: Sequence[Field]) -> Rendered:
        raise NotImplementedError

    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered:
        return self._render(entity_fields(entity, ctx))

    def collection(self, entities: Sequence[Entity], ctx: RenderContext) -> Rendered:
        return self._render(location_fields((e.location for e in entities), ctx))

    def locations(self, locations: Sequence[str], ctx: RenderContext) -> Rendered:
        return self._render(location_fields(locations, ctx))

    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered:
        return self._render([category_field(c) for c in categories])


class TextPlainRenderer(_FieldRenderer):
    """``text/plain`` and its alias ``text/occi+plain``: fields as body lines."""

    def __init__(self, media_type: str = TEXT_PLAIN) -> None:
        self.media_type = media_type

    def _render(self, fields: Sequence[Field]) -> Rendered:
        body = "".join(f"{name}: {value}{CRLF}" for name, value in fields)
        return Rendered(body.encode("utf-8"), self.media_type)

    def ok(self) -> Rendered:
        return Rendered(b"", self.media_type)

    def error(self, status: int, message: str) -> Rendered:
        return Rendered(f"{one_line(message)}{CRLF}".encode(), self.media_type)


def header_form(fields: Sequence[Field]) -> list[tuple[str, str]]:
    """One header field per name, values comma-joined, names in order of first appearance."""
    joined: dict[str, list[str]] = {}
    for name, value in fields:
        joined.setdefault(name, []).append(value)
    return [(name, ", ".join(values)) for name, values in joined.items()]


class TextOcciRenderer(_FieldRenderer):
    """``text/occi``: fields as HTTP header fields, body ``OK``."""

    media_type = TEXT_OCCI

    def _render(self, fields: Sequence[Field]) -> Rendered:
        return Rendered(b"OK", self.media_type, header_form(fields))

    def ok(self) -> Rendered:
        return self._render([])

    def error(self, status: int, message: str) -> Rendered:
        line = one_line(message)
        return Rendered(line.encode(), self.media_type, [("X-OCCI-Error", line)])


class UriListRenderer:
    """``text/uri-list``: absolute entity locations, one per line; listings only."""

    media_type = URI_LIST

    def _render(self, locations: Sequence[str], ctx: RenderContext) -> Rendered:
        body = "".join(f"{ctx.absolute(location)}{CRLF}" for location in locations)
        return Rendered(body.encode("utf-8"), self.media_type)

    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered:
        raise InvalidRequest("text/uri-list renders only collections")

    def collection(self, entities: Sequence[Entity], ctx: RenderContext) -> Rendered:
        return self._render([e.location for e in entities], ctx)

    def locations(self, locations: Sequence[str], ctx: RenderContext) -> Rendered:
        return self._render(locations, ctx)

    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered:
        raise InvalidRequest("text/uri-list renders only collections")

    def ok(self) -> Rendered:
        return Rendered(b"", self.media_type)

    def error(self, status: int, message: str) -> Rendered:
        """The message as an RFC 2483 comment line, so no client mistakes it for a URI."""
        return Rendered(f"# {one_line(message)}{CRLF}".encode(), self.media_type)


# --- parsers -----------------------------------------------------------------------------


class _FieldParser:
    """The Parser protocol over a list of OCCI fields; subclasses say where fields come from."""

    def fields(self, body: bytes, headers: HeaderList) -> list[tp.Field]:
        raise NotImplementedError

    def entities(self, body: bytes, headers: HeaderList) -> list[EntityRequest]:
        return [tp.entity_request(self.fields(body, headers))]

    def action(self, body: bytes, headers: HeaderList) -> ActionRequest:
        return tp.action_request(self.fields(body, headers))

    def categories(self, body: bytes, headers: HeaderList) -> list[CategoryRef]:
        return tp.category_refs(self.fields(body, headers))

    def category_attributes(self, body: bytes, headers: HeaderList) -> dict[str, object]:
        """``X-OCCI-Attribute`` fields beside the ``Category`` ones."""
        return tp.parse_attributes(self.fields(body, headers))

    def locations(self, body: bytes, headers: HeaderList) -> list[str]:
        return tp.locations(self.fields(body, headers))

    def filters(
        self, body: bytes, headers: HeaderList
    ) -> tuple[list[CategoryRef], dict[str, object]]:
        return tp.filters(self.fields(body, headers))


class TextPlainParser(_FieldParser):
    """``text/plain``: body lines, or the OCCI header fields when the body has none."""

    def fields(self, body: bytes, headers: HeaderList) -> list[tp.Field]:
        return tp.body_fields(body) or tp.header_fields(headers)


class TextOcciParser(_FieldParser):
    """``text/occi``: header fields only; the body (``OK`` or empty) is ignored."""

    def fields(self, body: bytes, headers: HeaderList) -> list[tp.Field]:
        return tp.header_fields(headers)


class UriListParser:
    """``text/uri-list``: one absolute URI or path per line; ``#`` lines are comments."""

    def entities(self, body: bytes, headers: HeaderList) -> list[EntityRequest]:
        raise ParseError("text/uri-list carries only locations")

    def action(self, body: bytes, headers: HeaderList) -> ActionRequest:
        raise ParseError("text/uri-list carries only locations")

    def categories(self, body: bytes, headers: HeaderList) -> list[CategoryRef]:
        raise ParseError("text/uri-list carries only locations")

    def category_attributes(self, body: bytes, headers: HeaderList) -> dict[str, object]:
        raise ParseError("text/uri-list carries only locations")

    def locations(self, body: bytes, headers: HeaderList) -> list[str]:
        lines = (line.strip() for line in tp.decode(body).splitlines())
        return [tp.parse_location(line) for line in lines if line and not line.startswith("#")]

    def filters(
        self, body: bytes, headers: HeaderList
    ) -> tuple[list[CategoryRef], dict[str, object]]:
        """Filters always travel as header fields (notes §2.6)."""
        return tp.filters(tp.header_fields(headers))
