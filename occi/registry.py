"""The set of categories a server offers: infrastructure kinds, provider templates and user
mixins. Built per request from the static declarations plus the templates and user mixins the
gateway knows; lookups by type-id and by location."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from gateway.errors import UnknownCategory
from occi import infrastructure as infra
from occi.core import Action, AttributeDefinition, AttributeType, Category, Kind, Mixin


@dataclass(frozen=True)
class Flavour:
    """A resource template: sizes applied to a compute."""

    term: str
    title: str
    cores: int
    memory: float
    share: int = 1


@dataclass(frozen=True)
class OsImage:
    """An OS template: a registered image."""

    term: str
    title: str


def resource_template(flavour: Flavour, scheme: str) -> Mixin:
    A = AttributeDefinition
    return Mixin(
        scheme,
        flavour.term,
        flavour.title,
        depends=(infra.RESOURCE_TPL,),
        applies=(infra.COMPUTE,),
        location=f"/mixin/resource_tpl/{flavour.term}/",
        attributes=(
            A("occi.compute.cores", AttributeType.INTEGER, default=flavour.cores, mutable=False),
            A("occi.compute.memory", AttributeType.NUMBER, default=flavour.memory, mutable=False),
            A("occi.compute.share", AttributeType.INTEGER, default=flavour.share, mutable=False),
        ),
    )


def os_template(image: OsImage, scheme: str) -> Mixin:
    return Mixin(
        scheme,
        image.term,
        image.title,
        depends=(infra.OS_TPL,),
        applies=(infra.COMPUTE,),
        location=f"/mixin/os_tpl/{image.term}/",
    )


@dataclass
class Registry:
    """All categories visible to one principal, by type-id."""

    kinds: dict[str, Kind] = field(default_factory=dict)
    mixins: dict[str, Mixin] = field(default_factory=dict)
    actions: dict[str, Action] = field(default_factory=dict)

    @classmethod
    def build(cls, templates: Iterable[Mixin] = (), user_mixins: Iterable[Mixin] = ()) -> Registry:
        registry = cls()
        for kind in infra.KINDS:
            registry.kinds[kind.type_id] = kind
        for mixin in (*infra.MIXINS, *templates, *user_mixins):
            registry.mixins[mixin.type_id] = mixin
        for action in infra.ACTIONS:
            registry.actions[action.type_id] = action
        return registry

    def categories(self) -> list[Category]:
        return [*self.kinds.values(), *self.mixins.values(), *self.actions.values()]

    def find(self, type_id: str) -> Category | None:
        return self.kinds.get(type_id) or self.mixins.get(type_id) or self.actions.get(type_id)

    def kind(self, type_id: str) -> Kind:
        kind = self.kinds.get(type_id)
        if kind is None:
            raise UnknownCategory(f"unknown kind {type_id}")
        return kind

    def mixin(self, type_id: str) -> Mixin:
        mixin = self.mixins.get(type_id)
        if mixin is None:
            raise UnknownCategory(f"unknown mixin {type_id}")
        return mixin

    def action(self, type_id: str) -> Action:
        action = self.actions.get(type_id)
        if action is None:
            raise UnknownCategory(f"unknown action {type_id}")
        return action

    def by_location(self, location: str) -> Kind | Mixin | None:
        """The instantiable kind or the mixin bound at ``location`` (a path ending in ``/``)."""
        for kind in self.kinds.values():
            if kind.location == location:
                return kind
        for mixin in self.mixins.values():
            if mixin.location == location:
                return mixin
        return None

    def related(self, category: Category) -> list[Category]:
        """QI filtering: the category, its actions, its parent chain, and mixins that apply to
        it or depend on it."""
        out: list[Category] = [category]
        if isinstance(category, Kind):
            out.extend(category.actions)
            out.extend(category.lineage()[1:])
            out.extend(m for m in self.mixins.values() if category in m.applies)
        elif isinstance(category, Mixin):
            out.extend(category.actions)
            out.extend(category.ancestry()[1:])
            out.extend(m for m in self.mixins.values() if m.depends_on(category))
        seen: list[Category] = []
        for item in out:
            if item not in seen:
                seen.append(item)
        return seen

    def templates(self, parent: Mixin) -> list[Mixin]:
        """Provider mixins that depend on ``parent`` (os_tpl or resource_tpl)."""
        return [m for m in self.mixins.values() if m is not parent and m.depends_on(parent)]
