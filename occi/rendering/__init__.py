"""OCCI renderings: one parser and one renderer per media type, chosen through one map.

Renderers are pure functions from model objects to :class:`Rendered`; parsers are pure
functions from a body and the request's header fields to the request forms of
:mod:`occi.core`, raising :class:`gateway.errors.ParseError` (HTTP 400) on bad input.

Header fields are passed as a sequence of ``(name, value)`` pairs so that repeated fields
survive; names compare case-insensitively.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from occi.core import (
    ActionRequest,
    Category,
    CategoryRef,
    Entity,
    EntityRequest,
    RenderContext,
)

HeaderList = Sequence[tuple[str, str]]


@dataclass
class Rendered:
    """A rendering: body bytes, the exact ``Content-Type`` to send, and extra header fields."""

    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)


class Renderer(Protocol):
    """Turns model objects into one media type."""

    media_type: str

    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered:
        """One resource (with its links and currently valid action links) or one link."""

    def collection(self, entities: Sequence[Entity], ctx: RenderContext) -> Rendered:
        """An entity collection: locations in the text renderings, full entities in JSON."""

    def locations(self, locations: Sequence[str], ctx: RenderContext) -> Rendered:
        """Bare locations: the answer to a create (201) or a mixin-collection change."""

    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered:
        """The query interface, or one category (the mixin made by ``save``)."""

    def ok(self) -> Rendered:
        """A success without content (``OK`` in text/occi)."""

    def error(self, status: int, message: str) -> Rendered:
        """An error in this media type; text/occi also carries ``X-OCCI-Error``."""


class Parser(Protocol):
    """Reads one media type."""

    def entities(self, body: bytes, headers: HeaderList) -> list[EntityRequest]:
        """One or more entities (create, replace, partial update)."""

    def action(self, body: bytes, headers: HeaderList) -> ActionRequest:
        """An action invocation: exactly one action category plus parameters."""

    def categories(self, body: bytes, headers: HeaderList) -> list[CategoryRef]:
        """Categories: user mixins to add/remove through the query interface, QI filters."""

    def category_attributes(self, body: bytes, headers: HeaderList) -> dict[str, object]:
        """Attribute values sent with the categories of a query-interface create (the new
        user mixins' ``org.nimbostratus.group``)."""

    def locations(self, body: bytes, headers: HeaderList) -> list[str]:
        """Entity locations for mixin-collection membership (``X-OCCI-Location``, uri-list)."""

    def filters(
        self, body: bytes, headers: HeaderList
    ) -> tuple[list[CategoryRef], dict[str, object]]:
        """Collection filters: categories and attribute values."""


TEXT_PLAIN = "text/plain"
TEXT_OCCI_PLAIN = "text/occi+plain"
TEXT_OCCI = "text/occi"
URI_LIST = "text/uri-list"
OCCI_JSON = "application/occi+json"
JSON = "application/json"

# Renderable media types, in the order we prefer them when the client does not care.
RENDER_TYPES: tuple[str, ...] = (TEXT_PLAIN, TEXT_OCCI_PLAIN, TEXT_OCCI, URI_LIST, OCCI_JSON, JSON)
PARSE_TYPES: tuple[str, ...] = (TEXT_PLAIN, TEXT_OCCI_PLAIN, TEXT_OCCI, URI_LIST, OCCI_JSON, JSON)
