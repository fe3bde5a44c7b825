"""Just enough of the OCCI renderings for a client: request bodies in each rendering and the
parts of answers the checks look at. Deliberately independent of the server's ``occi``
package (a second, small reading of the standard), lenient where the notes say clients are.

Renderings: ``text/plain`` (fields as body lines), ``text/occi`` (fields as HTTP headers),
``application/occi+json`` / ``application/json`` (JSON), ``text/uri-list`` (listings only).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import requests

CORE = "http://schemas.ogf.org/occi/core#"
INFRA = "http://schemas.ogf.org/occi/infrastructure#"
TEXT_PLAIN = "text/plain"
TEXT_OCCI = "text/occi"
URI_LIST = "text/uri-list"
OCCI_JSON = "application/occi+json"
JSON_TYPES = (OCCI_JSON, "application/json")
TEXT_TYPES = (TEXT_PLAIN, TEXT_OCCI, "text/occi+plain")
"""Renderings of the text grammar (Category, Link, X-OCCI-Attribute fields)."""
BODY_TEXT_TYPES = (TEXT_PLAIN, "text/occi+plain")
"""Text renderings whose fields are body lines."""

Headers = dict[str, str]


class WireError(ValueError):
    """An answer could not be read as the rendering it claims."""


def media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def is_json(rendering: str) -> bool:
    return rendering in JSON_TYPES


# --- the text grammar (client side) -------------------------------------------------------------


def split_outside_quotes(value: str, separator: str) -> list[str]:
    """``value`` split at ``separator`` where it is not inside a quoted string."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in value:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if quoted:
        raise WireError(f"unterminated quoted string in {value!r}")
    parts.append("".join(current).strip())
    return [p for p in parts if p]


def unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def text_fields(rendering: str, response: requests.Response) -> list[tuple[str, str]]:
    """(lower-case field name, value) pairs of a text answer, comma-joined values split."""
    pairs: list[tuple[str, str]] = []
    if rendering == TEXT_OCCI:
        raw = [(k, v) for k, v in response.headers.items()]
    else:
        raw = []
        for line in response.text.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, sep, value = line.partition(":")
            if not sep:
                raise WireError(f"not a 'Name: value' line: {line!r}")
            raw.append((name, value))
    for name, value in raw:
        name = name.strip().lower()
        name = {"x-occi-category": "category", "x-occi-link": "link"}.get(name, name)
        if name in ("category", "link", "x-occi-attribute", "x-occi-location", "location"):
            pairs += [(name, part) for part in split_outside_quotes(value, ",")]
    return pairs


def parameters(value: str) -> tuple[str, dict[str, str]]:
    """The head of a Category or Link value and its ``key=value`` parameters (unquoted)."""
    parts = split_outside_quotes(value, ";")
    if not parts:
        raise WireError("empty value")
    params: dict[str, str] = {}
    for part in parts[1:]:
        key, sep, raw = part.partition("=")
        if not sep:
            raise WireError(f"parameter without '=': {part!r}")
        params[key.strip().lower()] = unquote(raw)
    return parts[0].strip(), params


def attribute(value: str) -> tuple[str, Any]:
    """``name=value`` of X-OCCI-Attribute: strings unquoted, numbers and booleans typed."""
    name, sep, raw = value.partition("=")
    if not sep:
        raise WireError(f"attribute without '=': {value!r}")
    raw = raw.strip()
    if raw.startswith('"'):
        return name.strip(), unquote(raw)
    if raw in ("true", "false"):
        return name.strip(), raw == "true"
    try:
        return name.strip(), int(raw)
    except ValueError:
        try:
            return name.strip(), float(raw)
        except ValueError:
            return name.strip(), raw


# --- model ------------------------------------------------------------------------------------


@dataclass
class Category:
    """A kind, mixin or action as the query interface renders it."""

    term: str
    scheme: str
    cls: str
    title: str = ""
    rel: list[str] = field(default_factory=list)
    location: str = ""
    attributes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def type_id(self) -> str:
        return self.scheme + self.term


@dataclass
class Entity:
    """The parts of a resource or link rendering the checks look at."""

    kind: str = ""
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    """Locations of the links (text: ``self``; JSON: the link's ``id``/location)."""
    link_targets: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def title(self) -> Any:
        return self.attributes.get("occi.core.title")


def parse_categories(rendering: str, response: requests.Response) -> list[Category]:
    """The categories of a query-interface answer."""
    if is_json(rendering):
        document = response.json()
        if not isinstance(document, dict):
            raise WireError("the query interface is not a JSON object")
        out = []
        for key, cls in (("kinds", "kind"), ("mixins", "mixin"), ("actions", "action")):
            for item in document.get(key, []):
                rel = item.get("parent") if cls == "kind" else item.get("depends", [])
                out.append(Category(
                    term=item["term"], scheme=item["scheme"], cls=cls,
                    title=item.get("title", ""),
                    rel=[rel] if isinstance(rel, str) else list(rel or []),
                    location=item.get("location", ""),
                    attributes=list(item.get("attributes", {}) or {}),
                    actions=list(item.get("actions", []) or [])))
        return out
    out = []
    for name, value in text_fields(rendering, response):
        if name != "category":
            continue
        term, params = parameters(value)
        out.append(Category(
            term=term, scheme=params.get("scheme", ""), cls=params.get("class", ""),
            title=params.get("title", ""), rel=params.get("rel", "").split(),
            location=params.get("location", ""),
            attributes=[re.sub(r"\{.*\}$", "", a) for a in params.get("attributes", "").split()],
            actions=params.get("actions", "").split()))
    return out


def parse_entity(rendering: str, response: requests.Response) -> Entity:
    """The entity of an entity answer."""
    if is_json(rendering):
        return entity_from_json(response.json())
    entity = Entity()
    for name, value in text_fields(rendering, response):
        if name == "category":
            term, params = parameters(value)
            type_id = params.get("scheme", "") + term
            if params.get("class") == "kind":
                entity.kind = type_id
            elif params.get("class") == "mixin":
                entity.mixins.append(type_id)
        elif name == "link":
            target, params = parameters(value)
            target = target.strip("<>")
            if "?action=" in target:
                entity.actions.append(params.get("rel", ""))
            else:
                entity.link_targets.append(target)
                if params.get("self"):
                    entity.links.append(params["self"])
        elif name == "x-occi-attribute":
            key, typed = attribute(value)
            entity.attributes[key] = typed
    return entity


def entity_from_json(document: Any) -> Entity:
    if not isinstance(document, dict):
        raise WireError("the entity is not a JSON object")
    attributes = dict(document.get("attributes") or {})
    for key in ("id", "title", "summary"):
        if key in document:
            attributes.setdefault(f"occi.core.{key}", document[key])
    for end in ("source", "target"):
        if isinstance(document.get(end), dict):
            attributes.setdefault(f"occi.core.{end}", document[end].get("location"))
    links, targets = [], []
    for link in document.get("links") or []:
        if isinstance(link, dict):
            links.append(str(link.get("location") or link.get("id") or ""))
            target = link.get("target") or {}
            targets.append(str(target.get("location", "")) if isinstance(target, dict) else "")
        else:
            links.append(str(link))
    return Entity(kind=str(document.get("kind", "")), mixins=list(document.get("mixins") or []),
                  attributes=attributes, links=links, link_targets=targets,
                  actions=list(document.get("actions") or []))


def parse_locations(rendering: str, response: requests.Response) -> list[str]:
    """Entity locations of a collection answer (JSON collections: the entities' ids and
    locations, whichever the server gives)."""
    if rendering == URI_LIST:
        return [line.strip() for line in response.text.splitlines()
                if line.strip() and not line.startswith("#")]
    if is_json(rendering):
        document = response.json()
        if isinstance(document, list):
            return [str(x) for x in document]
        items = (document.get("resources") or []) + (document.get("links") or [])
        return [str(i.get("location") or i.get("id")) if isinstance(i, dict) else str(i)
                for i in items]
    return [v for n, v in text_fields(rendering, response) if n in ("x-occi-location",
                                                                   "location")]


def created_locations(rendering: str, response: requests.Response) -> list[str]:
    """Locations a 201 (or 200) answer to a create names: ``Location`` then the body."""
    found = [response.headers["Location"]] if response.headers.get("Location") else []
    if not found:
        try:
            found = parse_locations(rendering, response)
        except (WireError, ValueError):
            found = []
    return found


# --- request bodies ---------------------------------------------------------------------------


def _category_line(type_id: str, cls: str, extra: str = "") -> str:
    scheme, _, term = type_id.rpartition("#")
    return f'{term}; scheme="{scheme}#"; class="{cls}"{extra}'


def _text_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.6f}".rstrip("0").rstrip(".") + (".0" if value.is_integer() else "")
    return quote(str(value))


def text_request(rendering: str, fields: list[tuple[str, str]]) -> tuple[Headers, str]:
    """Headers and body carrying ``fields`` in a text rendering (text/occi: as headers)."""
    if rendering == TEXT_OCCI:
        headers: Headers = {"Content-Type": TEXT_OCCI}
        for name, value in fields:
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return headers, ""
    body = "".join(f"{name}: {value}\r\n" for name, value in fields)
    return {"Content-Type": TEXT_PLAIN if rendering == URI_LIST else rendering}, body


def entity_request(rendering: str, kind: str, *, mixins: list[str] | None = None,
                   attributes: dict[str, Any] | None = None,
                   links: list[tuple[str, str]] | None = None) -> tuple[Headers, str]:
    """A full entity rendering; ``links`` are (target location, target kind) of inline links
    (link kinds are for links created on their own: give source/target as attributes)."""
    mixins, attributes, links = mixins or [], attributes or {}, links or []
    if is_json(rendering):
        document: dict[str, Any] = {"kind": kind, "attributes": dict(attributes)}
        if mixins:
            document["mixins"] = mixins
        for end in ("source", "target"):
            key = f"occi.core.{end}"
            if key in attributes:
                document[end] = {"location": document["attributes"].pop(key)}
        if "occi.core.title" in attributes:
            document["title"] = document["attributes"].pop("occi.core.title")
        return {"Content-Type": rendering}, json.dumps(document)
    fields = [("Category", _category_line(kind, "kind"))]
    fields += [("Category", _category_line(m, "mixin")) for m in mixins]
    fields += [("Link", f'<{target}>; rel="{rel}"') for target, rel in links]
    fields += [("X-OCCI-Attribute", f"{k}={_text_value(v)}") for k, v in attributes.items()]
    return text_request(rendering, fields)


def action_request(rendering: str, action: str,
                   attributes: dict[str, Any] | None = None) -> tuple[Headers, str]:
    """An action invocation of ``action`` (a type id)."""
    attributes = attributes or {}
    if is_json(rendering):
        return {"Content-Type": rendering}, json.dumps({"action": action,
                                                        "attributes": attributes})
    fields = [("Category", _category_line(action, "action"))]
    fields += [("X-OCCI-Attribute", f"{k}={_text_value(v)}") for k, v in attributes.items()]
    return text_request(rendering, fields)


def mixin_request(rendering: str, type_id: str, location: str | None,
                  title: str = "") -> tuple[Headers, str]:
    """A user mixin for POST/DELETE on the query interface (``location`` None: omitted)."""
    if is_json(rendering):
        scheme, _, term = type_id.rpartition("#")
        mixin: dict[str, Any] = {"term": term, "scheme": scheme + "#"}
        if title:
            mixin["title"] = title
        if location is not None:
            mixin["location"] = location
        return {"Content-Type": rendering}, json.dumps({"mixins": [mixin]})
    extra = f"; title={quote(title)}" if title else ""
    extra += f"; location={quote(location)}" if location is not None else ""
    return text_request(rendering, [("Category", _category_line(type_id, "mixin", extra))])


def locations_request(rendering: str, locations: list[str]) -> tuple[Headers, str]:
    """Entity locations for a mixin collection (JSON: a bare array; else X-OCCI-Location)."""
    if is_json(rendering):
        return {"Content-Type": rendering}, json.dumps(locations)
    if rendering == URI_LIST:
        return {"Content-Type": URI_LIST}, "".join(f"{x}\r\n" for x in locations)
    return text_request(rendering, [("X-OCCI-Location", x) for x in locations])


def path_of(location: str) -> str:
    """The path of an absolute or relative location."""
    if "://" in location:
        rest = location.split("://", 1)[1]
        return "/" + (rest.split("/", 1)[1] if "/" in rest else "")
    return location if location.startswith("/") else "/" + location


def same_location(a: str, b: str) -> bool:
    """Two locations name the same thing (absolute or path, trailing slash ignored)."""
    return path_of(a).rstrip("/") == path_of(b).rstrip("/")


def names_entity(listed: str, location: str) -> bool:
    """An item of a listing names the entity at ``location``: the same location, or (JSON
    collections carry ids, not locations) an id ending in the location's last segment."""
    tail = location.rstrip("/").rsplit("/", 1)[-1]
    return same_location(listed, location) or listed.rsplit(":", 1)[-1] == tail

