"""Reading the OCCI text renderings: fields from a body or header fields, then the grammar of
each field (GFD-R-P.229 §3, notes §3.1 and the interop quirks of §10).

Field names compare case-insensitively, ``_`` counts as ``-`` (CGI-mangling proxies) and the
aliases ``X-OCCI-Category``, ``X-OCCI-Link`` and ``Location`` are accepted. Every field value
is split on commas outside quoted strings and ``<…>``, so repeated and comma-joined fields
mix freely. Anything malformed raises :class:`gateway.errors.ParseError` (HTTP 400).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from gateway.errors import ParseError
from occi.core import ActionRequest, CategoryRef, EntityRequest, LinkRequest
from occi.rendering import HeaderList
from occi.rendering.text_values import parse_value, split_outside_quotes, unquote

CATEGORY = "category"
LINK = "link"
ATTRIBUTE = "x-occi-attribute"
LOCATION = "x-occi-location"

Field = tuple[str, str]
"""A canonical field name (one of the four above) and one comma-separated item of its value."""

_ALIASES = {
    "category": CATEGORY, "x-occi-category": CATEGORY,
    "link": LINK, "x-occi-link": LINK,
    "x-occi-attribute": ATTRIBUTE,
    "x-occi-location": LOCATION, "location": LOCATION,
}
_OCCI_WORDS = ("category", "link", "attribute", "location")
_HTTP_LOOKALIKES = frozenset({"content-location"})
_CLASSES = frozenset({"kind", "mixin", "action"})
_PROPERTIES = frozenset({"immutable", "required"})

_FIELD_NAME = re.compile(r"[A-Za-z0-9_-]+")
_TERM = re.compile(r"[A-Za-z0-9_.-]+")
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
_ATTRIBUTE_SPEC = re.compile(r"\s*(?P<name>[^\s{}]+)(\{(?P<properties>[^{}]*)\})?\s*")
_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s<>\"{}|\\^`]+")
_PATH = re.compile(r"/[^\s<>\"{}|\\^`]*")


# --- fields ------------------------------------------------------------------------------


def canonical_name(name: str) -> str | None:
    """The canonical OCCI field name for ``name``, or None if it is not an OCCI field."""
    return _ALIASES.get(name.strip().lower().replace("_", "-"))


def _looks_like_occi(name: str) -> bool:
    normalized = name.strip().lower().replace("_", "-")
    if normalized in _HTTP_LOOKALIKES:
        return False
    return any(word in normalized for word in _OCCI_WORDS)


def _items(name: str, value: str) -> list[Field]:
    return [(name, item.strip()) for item in split_outside_quotes(value, ",") if item.strip()]


def body_fields(body: bytes) -> list[Field]:
    """The OCCI fields of a text/plain body: ``Name: value`` lines, CRLF or LF.

    Blank lines are skipped; any other line that is not a known OCCI field is an error.
    """
    fields: list[Field] = []
    for line in decode(body).splitlines():
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        canonical = canonical_name(name) if sep and _FIELD_NAME.fullmatch(name.strip()) else None
        if canonical is None:
            raise ParseError(f"not an OCCI field line: {line.strip()[:80]}")
        fields.extend(_items(canonical, value))
    return fields


def header_fields(headers: HeaderList) -> list[Field]:
    """The OCCI fields among HTTP header fields; unrelated headers are ignored, but a name
    that is a misspelt OCCI field (``Nocategory``, ``Category2``) is an error."""
    fields: list[Field] = []
    for name, value in headers:
        canonical = canonical_name(name)
        if canonical is not None:
            fields.extend(_items(canonical, value))
        elif _looks_like_occi(name):
            raise ParseError(f"unknown OCCI header field {name}")
    return fields


def decode(body: bytes) -> str:
    try:
        return body.decode("utf-8").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        raise ParseError(f"body is not UTF-8: {exc}") from exc


def values_of(fields: Iterable[Field], name: str) -> list[str]:
    return [value for field_name, value in fields if field_name == name]


# --- parameters --------------------------------------------------------------------------


def _parameters(segments: Iterable[str], what: str) -> list[tuple[str, str]]:
    """``name=value`` segments as (lower-case name, raw value); empty segments skipped."""
    params: list[tuple[str, str]] = []
    for segment in segments:
        segment = segment.strip()
        if not segment:
            continue
        name, sep, value = segment.partition("=")
        if not sep or not name.strip():
            raise ParseError(f"{what}: parameter {segment!r} is not name=value")
        params.append((name.strip(), value.strip()))
    return params


def _text(raw: str) -> str:
    """A parameter value: a quoted string or a bare token."""
    return unquote(raw) if raw.startswith('"') else raw


# --- Category ----------------------------------------------------------------------------


def parse_category(text: str) -> CategoryRef:
    """``term; scheme="…"; class="…"[; title=…][; rel=…][; location=…][; attributes=…]
    [; actions=…]``. ``class`` may be bare or missing; ``scheme`` is required."""
    term, *segments = split_outside_quotes(text, ";")
    term = term.strip()
    if not _TERM.fullmatch(term):
        raise ParseError(f"category {text[:80]!r}: invalid term {term!r}")
    params = {name.lower(): _text(raw) for name, raw in _parameters(segments, f"category {term}")}
    if not params.get("scheme"):
        raise ParseError(f"category {term}: scheme missing")
    return CategoryRef(
        scheme=params["scheme"], term=term, cls=_category_class(term, params.get("class")),
        title=params.get("title"), rel=params.get("rel", "").split(),
        location=params.get("location"),
        attributes=parse_attribute_specs(term, params.get("attributes", "")),
        actions=params.get("actions", "").split(),
    )


def _category_class(term: str, cls: str | None) -> str | None:
    if cls is None:
        return None
    if cls.lower() not in _CLASSES:
        raise ParseError(f"category {term}: class {cls!r} is not kind, mixin or action")
    return cls.lower()


def parse_attribute_specs(term: str, text: str) -> list[str]:
    """The ``attributes="name{immutable required} name …"`` list, entries kept verbatim."""
    specs: list[str] = []
    position = 0
    while position < len(text.rstrip()):
        match = _ATTRIBUTE_SPEC.match(text, position)
        if match is None or not _ATTRIBUTE_NAME.fullmatch(match["name"]):
            raise ParseError(f"category {term}: malformed attributes list {text!r}")
        unknown = set((match["properties"] or "").split()) - _PROPERTIES
        if unknown:
            raise ParseError(f"category {term}: attribute {match['name']} has unknown "
                             f"properties {' '.join(sorted(unknown))} (immutable, required)")
        specs.append(match.group().strip())
        position = match.end()
    return specs


# --- Link --------------------------------------------------------------------------------


def parse_link(text: str) -> LinkRequest:
    """``<target>; rel="…"[; self="…"][; category="…"][; name=value …]``."""
    target, *segments = split_outside_quotes(text, ";")
    target = target.strip()
    if not (target.startswith("<") and target.endswith(">") and len(target) > 2):
        raise ParseError(f"link {text[:80]!r}: target must be written <uri>")
    link = LinkRequest(target=target[1:-1].strip())
    for name, raw in _parameters(segments, f"link {link.target}"):
        _link_parameter(link, name, raw)
    return link


def _link_parameter(link: LinkRequest, name: str, raw: str) -> None:
    key = name.lower()
    if key == "rel":
        link.rel = _text(raw).split()
    elif key == "self":
        link.self_location = _text(raw)
    elif key == "category":
        link.categories = _text(raw).split()
    else:
        link.attributes[_attribute_name(name)] = parse_value(name, raw)


def is_action_link(link: LinkRequest) -> bool:
    """An action link: its target is ``<entity>?action=<term>``."""
    return "?action=" in link.target


# --- X-OCCI-Attribute and X-OCCI-Location ------------------------------------------------


def _attribute_name(name: str) -> str:
    if not _ATTRIBUTE_NAME.fullmatch(name):
        raise ParseError(f"invalid attribute name {name!r}")
    return name


def parse_attribute(text: str) -> tuple[str, Any]:
    """``name=value``."""
    name, sep, value = text.partition("=")
    name = _attribute_name(name.strip())
    if not sep:
        raise ParseError(f"attribute {name}: no value (expected {name}=value)")
    return name, parse_value(name, value)


def parse_attributes(fields: Iterable[Field]) -> dict[str, Any]:
    return dict(parse_attribute(text) for text in values_of(fields, ATTRIBUTE))


def parse_location(text: str) -> str:
    """An absolute URI or an absolute path."""
    text = text.strip()
    if text.startswith("<") and text.endswith(">"):
        text = text[1:-1].strip()
    if _PATH.fullmatch(text) and not text.startswith("//"):
        return text
    if _URI.fullmatch(text):
        return text
    raise ParseError(f"invalid location {text[:80]!r}: need an absolute URI or a path")


# --- request forms -----------------------------------------------------------------------


def category_refs(fields: Iterable[Field]) -> list[CategoryRef]:
    return [parse_category(text) for text in values_of(fields, CATEGORY)]


def entity_request(fields: list[Field]) -> EntityRequest:
    """One entity: kind, mixins (and class-less categories, for the caller to resolve),
    inline links, action links (by action type-id) and attributes."""
    request = EntityRequest(attributes=parse_attributes(fields))
    for category in category_refs(fields):
        _add_category(request, category)
    for text in values_of(fields, LINK):
        link = parse_link(text)
        if is_action_link(link):
            request.action_links.append(link.rel[0] if link.rel else link.target)
        else:
            request.links.append(link)
    return request


def _add_category(request: EntityRequest, category: CategoryRef) -> None:
    if category.cls == "kind":
        if request.kind is not None and request.kind != category.type_id:
            raise ParseError(f"more than one kind: {request.kind} and {category.type_id}")
        request.kind = category.type_id
    elif category.cls == "action":
        raise ParseError(f"action {category.type_id} in an entity rendering")
    elif category.type_id not in request.mixins:
        request.mixins.append(category.type_id)


def action_request(fields: list[Field]) -> ActionRequest:
    """Exactly one Category (class action or none) plus attributes."""
    categories = category_refs(fields)
    if len(categories) != 1:
        raise ParseError(f"an action invocation needs exactly one Category, got {len(categories)}")
    category = categories[0]
    if category.cls not in (None, "action"):
        raise ParseError(f"category {category.type_id} has class {category.cls}, not action")
    return ActionRequest(action=category.type_id, attributes=parse_attributes(fields))


def locations(fields: Iterable[Field]) -> list[str]:
    return [parse_location(text) for text in values_of(fields, LOCATION)]


def filters(fields: list[Field]) -> tuple[list[CategoryRef], dict[str, object]]:
    return category_refs(fields), parse_attributes(fields)
