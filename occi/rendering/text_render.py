"""Fields of the OCCI text renderings: model objects → ``(name, value)`` pairs.

The text/plain renderer writes each pair as a body line, the text/occi renderer joins the
values of one name into one header field. Follows the emit rules of notes §3.2: Category
parameters in grammar order, ``; `` separators, no trailing ``;``, category ``location`` as a
path, entity locations absolute, lower-case attribute names, floats with a dot.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from occi.core import (
    CORE,
    Action,
    AttributeDefinition,
    Category,
    Entity,
    Kind,
    Link,
    Mixin,
    RenderContext,
    Resource,
)
from occi.rendering.text_values import format_value, quote

Field = tuple[str, str]

CATEGORY = "Category"
LINK = "Link"
ATTRIBUTE = "X-OCCI-Attribute"
LOCATION = "X-OCCI-Location"

_CORE_RESOURCE = CORE + "resource"
_LINK_ENDPOINTS = ("occi.core.source", "occi.core.target")
_CORE_ORDER = ("occi.core.id", "occi.core.title", "occi.core.summary", *_LINK_ENDPOINTS)


def _params(first: str, params: Iterable[tuple[str, str | None]]) -> str:
    """``first; name="value"; …`` skipping parameters whose value is None."""
    parts = [first]
    parts.extend(f"{name}={value}" for name, value in params if value is not None)
    return "; ".join(parts)


def _quoted_or_none(text: str | None) -> str | None:
    return quote(text) if text else None


def attribute_definitions(definitions: Sequence[AttributeDefinition]) -> str | None:
    """``name{immutable required} name …`` or None when there are none."""
    if not definitions:
        return None
    return quote(" ".join(_attribute_definition(d) for d in definitions))


def _attribute_definition(definition: AttributeDefinition) -> str:
    properties = [p for p, on in (("immutable", not definition.mutable),
                                  ("required", definition.required)) if on]
    return definition.name + (f"{{{' '.join(properties)}}}" if properties else "")


def _rel(category: Category) -> str | None:
    if isinstance(category, Kind) and category.parent is not None:
        return category.parent.type_id
    if isinstance(category, Mixin) and category.depends:
        return category.depends[0].type_id
    return None


def _definitions(category: Category) -> Sequence[AttributeDefinition]:
    if isinstance(category, Kind):
        return category.all_attributes()
    return category.attributes


def _actions(category: Category) -> str | None:
    actions: Sequence[Action] = getattr(category, "actions", ())
    return quote(" ".join(a.type_id for a in actions)) if actions else None


def category_field(category: Category) -> Field:
    """The full Category field of the query interface (all parameters, grammar order)."""
    value = _params(category.term, (
        ("scheme", quote(category.scheme)),
        ("class", quote(category.category_class)),
        ("title", _quoted_or_none(category.title)),
        ("rel", _quoted_or_none(_rel(category))),
        ("location", _quoted_or_none(getattr(category, "location", None))),
        ("attributes", attribute_definitions(_definitions(category))),
        ("actions", _actions(category)),
    ))
    return (CATEGORY, value)


def category_ref_field(category: Category) -> Field:
    """The short Category field of an entity rendering: term, scheme, class, title."""
    value = _params(category.term, (
        ("scheme", quote(category.scheme)),
        ("class", quote(category.category_class)),
        ("title", _quoted_or_none(category.title)),
    ))
    return (CATEGORY, value)


def action_link_field(entity: Entity, action: Action, ctx: RenderContext) -> Field:
    """``Link: <{absolute entity location}?action={term}>; rel="{action type-id}"``."""
    target = f"{ctx.absolute(entity.location)}?action={action.term}"
    return (LINK, _params(f"<{target}>", (("rel", quote(action.type_id)),)))


def _attribute_order(item: tuple[str, Any]) -> tuple[int, str]:
    name = item[0]
    rank = _CORE_ORDER.index(name) if name in _CORE_ORDER else len(_CORE_ORDER)
    return rank, name


def ordered_attributes(attributes: dict[str, Any]) -> list[tuple[str, Any]]:
    """Attributes that have a value, lower-case names: ``occi.core.id``, ``.title``,
    ``.summary``, ``.source``, ``.target`` first, then by name."""
    present = {name.lower(): value for name, value in attributes.items() if value is not None}
    return sorted(present.items(), key=_attribute_order)


def inline_link_field(link: Link) -> Field:
    """A link inside its source resource's rendering."""
    target_kind = link.target_kind.type_id if link.target_kind else _CORE_RESOURCE
    categories = " ".join(c.type_id for c in (link.kind, *link.mixins))
    attributes = [(name, value) for name, value in ordered_attributes(link.attributes)
                  if name not in _LINK_ENDPOINTS]
    value = _params(f"<{link_target(link)}>", (
        ("rel", quote(target_kind)),
        ("self", quote(link.location)),
        ("category", quote(categories)),
        *((name, format_value(v)) for name, v in attributes),
    ))
    return (LINK, value)


def link_target(link: Link) -> str:
    return link.target or str(link.attributes.get("occi.core.target", ""))


def link_source(link: Link) -> str:
    return link.source or str(link.attributes.get("occi.core.source", ""))


def attribute_fields(attributes: dict[str, Any]) -> list[Field]:
    return [(ATTRIBUTE, f"{name}={format_value(value)}")
            for name, value in ordered_attributes(attributes)]


def _link_attributes(link: Link) -> dict[str, Any]:
    attributes = dict(link.attributes)
    attributes["occi.core.source"] = link_source(link)
    attributes["occi.core.target"] = link_target(link)
    if link.source_kind is not None:
        attributes["occi.core.source.kind"] = link.source_kind.type_id
    if link.target_kind is not None:
        attributes["occi.core.target.kind"] = link.target_kind.type_id
    return attributes


def entity_fields(entity: Entity, ctx: RenderContext) -> list[Field]:
    """A resource (categories, inline links, action links, attributes) or a link instance
    (categories, action links, attributes with source and target)."""
    fields = [category_ref_field(c) for c in (entity.kind, *entity.mixins)]
    if isinstance(entity, Resource):
        fields.extend(inline_link_field(link) for link in entity.links)
    fields.extend(action_link_field(entity, action, ctx) for action in entity.actions)
    attributes = _link_attributes(entity) if isinstance(entity, Link) else entity.attributes
    fields.extend(attribute_fields(attributes))
    return fields


def location_fields(locations: Iterable[str], ctx: RenderContext) -> list[Field]:
    return [(LOCATION, ctx.absolute(location)) for location in locations]


def one_line(message: str) -> str:
    """``message`` with line breaks folded into spaces (error bodies and headers)."""
    return " ".join(message.split())
