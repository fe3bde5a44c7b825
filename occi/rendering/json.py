"""The OCCI JSON rendering: ``application/occi+json``, also served as ``application/json``
(OCCI 1.2 JSON Rendering; notes §4).

Rendering
    Resource ``{kind, mixins, attributes, actions, id, links, title, summary}``; link
    ``{kind, mixins, attributes, actions, id, source, target, title}``. ``attributes`` holds every
    attribute except those shown at the top level (``occi.core.id``, ``.title``, ``.summary``,
    ``.source``, ``.target``). Collections ``{"resources": […]}`` and/or ``{"links": […]}``;
    locations a bare array of absolute URLs (rOCCI 2); categories one object with ``kinds``,
    ``mixins`` and ``actions``. A kind lists all its attributes, inherited ones included (as
    the text rendering does). Errors ``{"code": status, "message": "…"}``.

Parsing
    Single objects or collections. ``id``, ``title`` and ``summary`` land in ``attributes`` as
    ``occi.core.*``; a standalone link gets ``occi.core.source``/``occi.core.target`` (and
    ``occi.core.source.kind``/``occi.core.target.kind`` when given, as in the text rendering);
    the ``actions`` of an entity go to ``EntityRequest.action_links``. Locations may be a bare
    array or ``{"locations": […]}``. Filters travel as header fields in every rendering
    (notes §2.6), so :meth:`JsonParser.filters` reads the OCCI header fields.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from gateway import json_limits
from gateway.errors import ParseError
from occi.core import (
    Action,
    ActionRequest,
    AttributeDefinition,
    AttributeType,
    Category,
    CategoryRef,
    Entity,
    EntityRequest,
    Kind,
    Link,
    LinkRequest,
    Mixin,
    RenderContext,
    Resource,
)
from occi.rendering import OCCI_JSON, HeaderList, Rendered
from occi.rendering import text_parse as tp

_TOP_LEVEL = ("occi.core.id", "occi.core.title", "occi.core.summary",
              "occi.core.source", "occi.core.target")
_JSON_TYPES = {
    AttributeType.STRING: "string", AttributeType.ENUM: "string",
    AttributeType.INTEGER: "number", AttributeType.NUMBER: "number",
    AttributeType.BOOLEAN: "boolean", AttributeType.ARRAY: "array",
    AttributeType.OBJECT: "object",
}

# --- rendering ---------------------------------------------------------------------------


def _instance_attributes(entity: Entity) -> dict[str, Any]:
    return {name: value for name, value in sorted(entity.attributes.items())
            if value is not None and name not in _TOP_LEVEL}


def _endpoint(location: str, kind: Kind | None) -> dict[str, str]:
    out = {"location": location}
    if kind is not None:
        out["kind"] = kind.type_id
    return out


def _common(entity: Entity) -> dict[str, Any]:
    return {
        "kind": entity.kind.type_id,
        "mixins": [m.type_id for m in entity.mixins],
        "attributes": _instance_attributes(entity),
        "actions": [a.type_id for a in entity.actions],
        "id": entity.attributes.get("occi.core.id") or entity.id,
    }


def link_object(link: Link, source: Entity | None = None) -> dict[str, Any]:
    """A link; ``source`` fills in the source location and kind of an inline link."""
    source_location = link.source or str(link.attributes.get("occi.core.source", ""))
    source_kind = link.source_kind
    if source is not None:
        source_location = source_location or source.location
        source_kind = source_kind or source.kind
    out = _common(link)
    out["source"] = _endpoint(source_location, source_kind)
    target = link.target or str(link.attributes.get("occi.core.target", ""))
    out["target"] = _endpoint(target, link.target_kind)
    if link.title is not None:
        out["title"] = link.title
    return out


def resource_object(resource: Entity) -> dict[str, Any]:
    out = _common(resource)
    links = resource.links if isinstance(resource, Resource) else []
    out["links"] = [link_object(link, source=resource) for link in links]
    if resource.title is not None:
        out["title"] = resource.title
    if resource.summary is not None:
        out["summary"] = resource.summary
    return out


def entity_object(entity: Entity) -> dict[str, Any]:
    return link_object(entity) if isinstance(entity, Link) else resource_object(entity)


def attribute_definition_object(definition: AttributeDefinition) -> dict[str, Any]:
    """``{mutable, required, type, pattern, default, description}``, empty parts left out."""
    out: dict[str, Any] = {
        "mutable": definition.mutable,
        "required": definition.required,
        "type": _JSON_TYPES[definition.type],
    }
    pattern = _json_schema(definition)
    if pattern:
        out["pattern"] = pattern
    if definition.default is not None:
        out["default"] = definition.default
    if definition.description:
        out["description"] = definition.description
    return out


def _json_schema(definition: AttributeDefinition) -> dict[str, Any]:
    """The value constraints of ``definition`` as a JSON-Schema object."""
    schema: dict[str, Any] = {}
    if definition.type is AttributeType.ENUM:
        schema["enum"] = list(definition.enum)
    elif definition.type is AttributeType.INTEGER:
        schema["type"] = "integer"
    elif definition.pattern:
        schema = {"type": "string", "pattern": definition.pattern}
    if definition.minimum is not None:
        schema.setdefault("type", "number")
        schema["minimum"] = definition.minimum
    if definition.maximum is not None:
        schema.setdefault("type", "number")
        schema["maximum"] = definition.maximum
    return schema


def _attribute_map(definitions: Sequence[AttributeDefinition]) -> dict[str, Any]:
    return {d.name: attribute_definition_object(d) for d in definitions}


def kind_object(kind: Kind) -> dict[str, Any]:
    out: dict[str, Any] = {
        "term": kind.term, "scheme": kind.scheme, "title": kind.title,
        "attributes": _attribute_map(kind.all_attributes()),
        "actions": [a.type_id for a in kind.actions],
    }
    if kind.parent is not None:
        out["parent"] = kind.parent.type_id
    if kind.location is not None:
        out["location"] = kind.location
    return out


def mixin_object(mixin: Mixin) -> dict[str, Any]:
    out: dict[str, Any] = {
        "term": mixin.term, "scheme": mixin.scheme, "title": mixin.title,
        "attributes": _attribute_map(mixin.attributes),
        "actions": [a.type_id for a in mixin.actions],
        "depends": [m.type_id for m in mixin.depends],
        "applies": [k.type_id for k in mixin.applies],
    }
    if mixin.location is not None:
        out["location"] = mixin.location
    return out


def action_object(action: Action) -> dict[str, Any]:
    return {"term": action.term, "scheme": action.scheme, "title": action.title,
            "attributes": _attribute_map(action.attributes)}


def categories_object(categories: Sequence[Category]) -> dict[str, list[dict[str, Any]]]:
    return {
        "kinds": [kind_object(c) for c in categories if isinstance(c, Kind)],
        "mixins": [mixin_object(c) for c in categories if isinstance(c, Mixin)],
        "actions": [action_object(c) for c in categories if isinstance(c, Action)],
    }


def entity_text(entity: Entity) -> str:
    """The compact JSON text of :func:`entity_object`: an entity's rendering without its final
    newline, and what a collection holds for it."""
    return json.dumps(entity_object(entity), separators=(",", ":"), ensure_ascii=False)


def collection_text(
    entities: Sequence[Entity], text_of: Callable[[Entity], str] = entity_text
) -> str:
    """The compact JSON text of a collection, ``{"resources": [...], "links": [...]}`` (the
    resources, or an empty list of them when there are no members; links when there are
    some), joined from each member's text (``text_of``: :func:`entity_text`, or a memo of
    it): the same characters json.dumps makes of the whole document."""
    resources = [text_of(e) for e in entities if not isinstance(e, Link)]
    links = [text_of(e) for e in entities if isinstance(e, Link)]
    parts = []
    if resources or not links:
        parts.append('"resources":[' + ",".join(resources) + "]")
    if links:
        parts.append('"links":[' + ",".join(links) + "]")
    return "{" + ",".join(parts) + "}"


class JsonRenderer:
    """``application/occi+json``; echoes ``application/json`` when that was negotiated."""

    def __init__(self, media_type: str = OCCI_JSON) -> None:
        self.media_type = media_type

    def _render(self, document: object) -> Rendered:
        # Compact separators and no indent: json then uses its C encoder (an indented dump of a
        # 1,000-entity listing runs the pure-Python one, several times slower).
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False) + "\n"
        return Rendered(body.encode("utf-8"), self.media_type)

    def entity(self, entity: Entity, ctx: RenderContext) -> Rendered:
        return Rendered((entity_text(entity) + "\n").encode("utf-8"), self.media_type)

    def collection(
        self,
        entities: Sequence[Entity],
        ctx: RenderContext,
        text_of: Callable[[Entity], str] = entity_text,
    ) -> Rendered:
        """``text_of``: each member's :func:`entity_text`, from a memo of the caller's (the
        text does not depend on ``ctx``: locations are rendered relative)."""
        body = collection_text(entities, text_of) + "\n"
        return Rendered(body.encode("utf-8"), self.media_type)

    def locations(self, locations: Sequence[str], ctx: RenderContext) -> Rendered:
        return self._render([ctx.absolute(location) for location in locations])

    def categories(self, categories: Sequence[Category], ctx: RenderContext) -> Rendered:
        return self._render(categories_object(categories))

    def ok(self) -> Rendered:
        return Rendered(b"", self.media_type)

    def error(self, status: int, message: str) -> Rendered:
        return self._render({"code": status, "message": message})


# --- parsing -----------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ParseError(f"invalid JSON number {name}")


def load(body: bytes) -> Any:
    """The JSON document in ``body``; :class:`ParseError` if it is not JSON or nests deeper
    than the setting ``json_max_depth``."""
    try:
        return json_limits.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ParseError(f"invalid JSON: {exc}") from exc


def _object(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ParseError(f"{what} must be a JSON object")
    return value


def _list(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ParseError(f"{what} must be a JSON array")
    return value


def _string(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParseError(f"{what} must be a non-empty string")
    return value


def _strings(value: Any, what: str) -> list[str]:
    return [_string(item, f"an item of {what}") for item in _list(value, what)]


def _attributes(document: dict[str, Any], what: str) -> dict[str, Any]:
    attributes = dict(_object(document.get("attributes", {}), f"attributes of {what}"))
    for key in ("id", "title", "summary"):
        if document.get(key) is not None:
            attributes[f"occi.core.{key}"] = document[key]
    return attributes


def _kind(document: dict[str, Any], what: str) -> str:
    if "kind" not in document:
        raise ParseError(f"{what} has no kind")
    return _string(document["kind"], f"kind of {what}")


def _endpoint_location(document: dict[str, Any], key: str) -> tuple[str, str | None]:
    endpoint = document.get(key)
    if isinstance(endpoint, str):
        return endpoint, None
    endpoint = _object(endpoint, f"link {key}")
    location = _string(endpoint.get("location"), f"link {key} location")
    kind = endpoint.get("kind")
    return location, _string(kind, f"link {key} kind") if kind is not None else None


def inline_link(document: Any) -> LinkRequest:
    link = _object(document, "a link")
    kind = _kind(link, "a link")
    target, target_kind = _endpoint_location(link, "target")
    self_location = link.get("location") or link.get("id")
    rel = _strings(link.get("rel", []), "link rel") if "rel" in link else []
    return LinkRequest(
        target=target, target_kind=target_kind,
        rel=rel or ([target_kind] if target_kind else []),
        self_location=str(self_location) if self_location is not None else None,
        categories=[kind, *_strings(link.get("mixins", []), "link mixins")],
        attributes=_attributes(link, "a link"),
    )


def _entity_common(document: dict[str, Any], what: str) -> EntityRequest:
    return EntityRequest(
        kind=_kind(document, what),
        mixins=_strings(document.get("mixins", []), f"mixins of {what}"),
        attributes=_attributes(document, what),
        action_links=_strings(document.get("actions", []), f"actions of {what}"),
    )


def resource_request(document: Any) -> EntityRequest:
    resource = _object(document, "a resource")
    request = _entity_common(resource, "a resource")
    request.links = [inline_link(link) for link in _list(resource.get("links", []), "links")]
    return request


def link_request(document: Any) -> EntityRequest:
    link = _object(document, "a link")
    request = _entity_common(link, "a link")
    for end in ("source", "target"):
        location, kind = _endpoint_location(link, end)
        request.attributes[f"occi.core.{end}"] = location
        if kind is not None:
            request.attributes[f"occi.core.{end}.kind"] = kind
    return request


def entity_requests(document: Any) -> list[EntityRequest]:
    """A resource, a link, or a collection ``{"resources": […], "links": […]}``."""
    document = _object(document, "the body")
    if "resources" in document or ("links" in document and "kind" not in document):
        resources = _list(document.get("resources", []), "resources")
        links = _list(document.get("links", []), "links")
        return [*map(resource_request, resources), *map(link_request, links)]
    if "source" in document and "target" in document:
        return [link_request(document)]
    return [resource_request(document)]


def action_request(document: Any) -> ActionRequest:
    invocation = _object(document, "an action invocation")
    action = _string(invocation.get("action"), "action")
    attributes = _object(invocation.get("attributes", {}), "action attributes")
    return ActionRequest(action=action, attributes=dict(attributes))


def mixin_ref(document: Any) -> CategoryRef:
    mixin = _object(document, "a mixin")
    attributes = _object(mixin.get("attributes", {}), "mixin attributes")
    title = mixin.get("title")
    location = mixin.get("location")
    return CategoryRef(
        scheme=_string(mixin.get("scheme"), "mixin scheme"),
        term=_string(mixin.get("term"), "mixin term"),
        cls="mixin",
        title=_string(title, "mixin title") if title is not None else None,
        rel=_strings(mixin.get("depends", []), "mixin depends"),
        location=_string(location, "mixin location") if location is not None else None,
        attributes=list(attributes),
        actions=_strings(mixin.get("actions", []), "mixin actions"),
    )


def category_refs(document: Any) -> list[CategoryRef]:
    """``{"mixins": […]}`` or one mixin object."""
    document = _object(document, "the body")
    if "mixins" in document:
        return [mixin_ref(m) for m in _list(document["mixins"], "mixins")]
    return [mixin_ref(document)]


def category_attributes(document: Any) -> dict[str, Any]:
    """The attribute values beside the mixins of ``{"mixins": […], "attributes": {…}}``; none
    in the one-mixin form, where ``attributes`` defines the mixin's own attributes."""
    document = _object(document, "the body")
    if "mixins" not in document:
        return {}
    return dict(_object(document.get("attributes", {}), "attributes"))


def location_list(document: Any) -> list[str]:
    """A bare array of locations or ``{"locations": […]}``."""
    if isinstance(document, dict):
        document = document.get("locations")
    return [tp.parse_location(text) for text in _strings(document, "locations")]


class JsonParser:
    """Reads ``application/occi+json`` and ``application/json``."""

    def entities(self, body: bytes, headers: HeaderList) -> list[EntityRequest]:
        return entity_requests(load(body))

    def action(self, body: bytes, headers: HeaderList) -> ActionRequest:
        return action_request(load(body))

    def categories(self, body: bytes, headers: HeaderList) -> list[CategoryRef]:
        return category_refs(load(body))

    def category_attributes(self, body: bytes, headers: HeaderList) -> dict[str, object]:
        return category_attributes(load(body))

    def locations(self, body: bytes, headers: HeaderList) -> list[str]:
        return location_list(load(body))

    def filters(
        self, body: bytes, headers: HeaderList
    ) -> tuple[list[CategoryRef], dict[str, object]]:
        return tp.filters(tp.header_fields(headers))
