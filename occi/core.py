"""OCCI Core model: categories (kinds, mixins, actions), attribute definitions, entities.

Pure data, no I/O. Renderers turn these into bytes; parsers produce the request forms at the
bottom of this module (:class:`CategoryRef`, :class:`LinkRequest`, :class:`EntityRequest`,
:class:`ActionRequest`), which :mod:`occi.validation` checks against a
:class:`~occi.registry.Registry`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

CORE = "http://schemas.ogf.org/occi/core#"


class AttributeType(StrEnum):
    """Attribute value types. ``integer``/``number`` are both JSON numbers; text renders ints
    without a dot and floats with one."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ENUM = "enum"
    ARRAY = "array"
    OBJECT = "object"


@dataclass(frozen=True)
class AttributeDefinition:
    """Definition of one attribute of a category (OCCI Core ``Attribute``)."""

    name: str
    type: AttributeType = AttributeType.STRING
    required: bool = False
    mutable: bool = True
    default: Any = None
    description: str = ""
    enum: tuple[str, ...] = ()
    pattern: str | None = None
    """Regular expression (ERE-compatible subset) a string value must match in full."""
    minimum: float | None = None
    maximum: float | None = None


@dataclass(frozen=True, eq=False)
class Category:
    """Base of kinds, mixins and actions. Identity is the type-id (scheme + term)."""

    scheme: str
    term: str
    title: str = ""
    attributes: tuple[AttributeDefinition, ...] = ()

    @property
    def type_id(self) -> str:
        return self.scheme + self.term

    @property
    def category_class(self) -> str:
        raise NotImplementedError

    def attribute(self, name: str) -> AttributeDefinition | None:
        for definition in self.attributes:
            if definition.name == name:
                return definition
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Category) and other.type_id == self.type_id

    def __hash__(self) -> int:
        return hash(self.type_id)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.type_id}>"


@dataclass(frozen=True, eq=False, repr=False)
class Action(Category):
    """An operation on an entity; its attributes are the action's parameters."""

    @property
    def category_class(self) -> str:
        return "action"


@dataclass(frozen=True, eq=False, repr=False)
class Kind(Category):
    """The type of an entity. ``location`` ends with ``/`` (e.g. ``/compute/``)."""

    parent: Kind | None = None
    actions: tuple[Action, ...] = ()
    location: str | None = None

    @property
    def category_class(self) -> str:
        return "kind"

    def lineage(self) -> tuple[Kind, ...]:
        """This kind and its ancestors, nearest first."""
        chain: list[Kind] = []
        kind: Kind | None = self
        while kind is not None:
            chain.append(kind)
            kind = kind.parent
        return tuple(chain)

    def is_a(self, other: Kind) -> bool:
        return other in self.lineage()

    def all_attributes(self) -> tuple[AttributeDefinition, ...]:
        """Attributes of this kind and all ancestors, root first (``occi.core.*`` first)."""
        seen: dict[str, AttributeDefinition] = {}
        for kind in reversed(self.lineage()):
            for definition in kind.attributes:
                seen[definition.name] = definition
        return tuple(seen.values())


@dataclass(frozen=True, eq=False, repr=False)
class Mixin(Category):
    """Extra capabilities for entities. ``depends`` are mixins it builds on; ``applies`` the
    kinds it may be attached to (empty: any). ``user_defined`` marks mixins made through the
    query interface (tags)."""

    depends: tuple[Mixin, ...] = ()
    applies: tuple[Kind, ...] = ()
    actions: tuple[Action, ...] = ()
    location: str | None = None
    user_defined: bool = False
    owner: str | None = None

    @property
    def category_class(self) -> str:
        return "mixin"

    def ancestry(self) -> tuple[Mixin, ...]:
        """This mixin and everything it depends on, transitively, nearest first."""
        out: list[Mixin] = []
        stack: list[Mixin] = [self]
        while stack:
            mixin = stack.pop(0)
            if mixin not in out:
                out.append(mixin)
                stack.extend(mixin.depends)
        return tuple(out)

    def depends_on(self, other: Mixin) -> bool:
        return other in self.ancestry()[1:]

    def applies_to(self, kind: Kind) -> bool:
        return not self.applies or any(kind.is_a(k) for k in self.applies)


@dataclass
class Entity:
    """An entity instance: a resource or a link.

    ``attributes`` holds every attribute by its dotted name, including ``occi.core.id``
    (``urn:uuid:…``), ``occi.core.title`` and ``occi.core.summary``. ``location`` is the path
    of the entity (``/compute/<uuid>``); renderers make it absolute. ``actions`` lists the
    actions valid in the entity's current state (rendered as action links).
    """

    id: str
    kind: Kind
    mixins: list[Mixin] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)

    @property
    def location(self) -> str:
        assert self.kind.location is not None
        return f"{self.kind.location}{self.id}"

    @property
    def title(self) -> str | None:
        value = self.attributes.get("occi.core.title")
        return value if isinstance(value, str) else None

    @property
    def summary(self) -> str | None:
        value = self.attributes.get("occi.core.summary")
        return value if isinstance(value, str) else None


@dataclass
class Resource(Entity):
    """A resource; ``links`` are the links whose source is this resource."""

    links: list[Link] = field(default_factory=list)


@dataclass
class Link(Entity):
    """A link from ``source`` to ``target`` (both locations: a path like ``/compute/<id>`` for
    our own entities, or an absolute URI outside this provider)."""

    source: str = ""
    target: str = ""
    source_kind: Kind | None = None
    target_kind: Kind | None = None


@dataclass(frozen=True)
class RenderContext:
    """What a renderer needs beyond the model: the base URL that makes paths absolute."""

    base_url: str

    def absolute(self, location: str) -> str:
        if "://" in location:
            return location
        return self.base_url.rstrip("/") + "/" + location.lstrip("/")


# --- request forms produced by parsers ---------------------------------------------------


@dataclass
class CategoryRef:
    """A category as a client wrote it: only ``scheme`` and ``term`` are guaranteed.

    ``cls`` is ``"kind"``, ``"mixin"``, ``"action"`` or ``None`` when the client left it out.
    ``attributes`` are the raw attribute definitions of a user mixin (text: the
    ``attributes="…"`` string split on spaces, with ``{…}`` properties kept verbatim).
    """

    scheme: str
    term: str
    cls: str | None = None
    title: str | None = None
    rel: list[str] = field(default_factory=list)
    location: str | None = None
    attributes: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)

    @property
    def type_id(self) -> str:
        return self.scheme + self.term


@dataclass
class LinkRequest:
    """An inline link in a resource rendering (text ``Link:`` header, JSON ``links`` item)."""

    target: str
    rel: list[str] = field(default_factory=list)
    self_location: str | None = None
    categories: list[str] = field(default_factory=list)
    """Type-ids: the link's kind first if given, then mixins."""
    attributes: dict[str, Any] = field(default_factory=dict)
    target_kind: str | None = None


@dataclass
class EntityRequest:
    """One entity as a client sent it, before validation against the registry.

    ``kind`` and ``mixins`` are type-ids. For links sent as standalone entities,
    ``occi.core.source``/``occi.core.target`` are in ``attributes``.
    """

    kind: str | None = None
    mixins: list[str] = field(default_factory=list)
    attributes: dict[str, Any] = field(default_factory=dict)
    links: list[LinkRequest] = field(default_factory=list)
    action_links: list[str] = field(default_factory=list)


@dataclass
class ActionRequest:
    """An action invocation: the action's type-id and its parameters."""

    action: str
    attributes: dict[str, Any] = field(default_factory=dict)
