"""Checks a parsed entity against the registry: categories resolved, mixins applicable,
attributes known, typed, in range and matching their patterns. Pure; raises only
:class:`gateway.errors.InvalidRequest` subclasses (HTTP 400)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from gateway.errors import InvalidAttribute, InvalidRequest
from occi.core import AttributeDefinition, AttributeType, EntityRequest, Kind, Mixin
from occi.infrastructure import ATTRIBUTE_ALIASES
from occi.registry import Registry


def canonical_attributes(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """Attribute names in lower case with the accepted aliases mapped to the spec names."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        key = name.strip().lower()
        out[ATTRIBUTE_ALIASES.get(key, key)] = value
    return out


def resolve_categories(
    request: EntityRequest, registry: Registry, expected: Kind | None = None
) -> tuple[Kind, list[Mixin]]:
    """The kind and mixins a request names. ``expected``: the kind the target collection
    serves; another kind is a 400."""
    kind_ids = [request.kind] if request.kind else []
    mixin_ids: list[str] = []
    for type_id in request.mixins:
        if type_id in registry.kinds:
            kind_ids.append(type_id)
        else:
            mixin_ids.append(type_id)
    if not kind_ids:
        if expected is None:
            raise InvalidRequest("the request names no kind")
        kind_ids = [expected.type_id]
    if len(set(kind_ids)) > 1:
        raise InvalidRequest(f"the request names more than one kind: {', '.join(kind_ids)}")
    kind = registry.kind(kind_ids[0])
    if expected is not None and kind != expected:
        raise InvalidRequest(f"kind {kind.type_id} cannot be created in {expected.location}")
    if kind.location is None:
        raise InvalidRequest(f"kind {kind.type_id} cannot be instantiated")
    mixins = [registry.mixin(type_id) for type_id in dict.fromkeys(mixin_ids)]
    for mixin in mixins:
        if not mixin.applies_to(kind):
            raise InvalidRequest(f"mixin {mixin.type_id} does not apply to kind {kind.type_id}")
    return kind, mixins


def definitions(kind: Kind, mixins: Iterable[Mixin]) -> dict[str, AttributeDefinition]:
    """Attribute definitions of a kind and its mixins (and what they depend on); a mixin's
    definition of the same name (with its default) wins over the kind's."""
    defs = {d.name: d for d in kind.all_attributes()}
    for mixin in mixins:
        for ancestor in reversed(mixin.ancestry()):
            defs.update({d.name: d for d in ancestor.attributes})
    return defs


def check_attributes(
    attributes: Mapping[str, Any], defs: Mapping[str, AttributeDefinition], where: str
) -> dict[str, Any]:
    """Coerce and check each given attribute; unknown names are a 400 naming ``where``."""
    out: dict[str, Any] = {}
    for name, value in attributes.items():
        definition = defs.get(name)
        if definition is None:
            raise InvalidAttribute(f"attribute {name} is not defined for {where}")
        out[name] = coerce(definition, value)
    return out


def require(
    attributes: Mapping[str, Any], defs: Mapping[str, AttributeDefinition], skip: Iterable[str] = ()
) -> None:
    """Every required attribute (but those in ``skip``, set by the server) has a value."""
    skipped = set(skip)
    missing = [
        n for n, d in defs.items() if d.required and n not in skipped and attributes.get(n) is None
    ]
    if missing:
        raise InvalidAttribute(f"required attribute(s) missing: {', '.join(sorted(missing))}")


def coerce(definition: AttributeDefinition, value: Any) -> Any:
    """The value in the definition's type, or InvalidAttribute saying what was wrong."""
    if value is None:
        return None
    name = definition.name
    converter = _CONVERTERS[definition.type]
    result = converter(name, value)
    if definition.type in (AttributeType.ENUM,) and result not in definition.enum:
        raise InvalidAttribute(
            f"{name} must be one of {', '.join(definition.enum)}, not {result!r}"
        )
    if isinstance(result, int | float) and not isinstance(result, bool):
        _check_range(definition, result)
    if (
        definition.pattern
        and isinstance(result, str)
        and not _regex(definition.pattern).fullmatch(result)
    ):
        raise InvalidAttribute(f"{name} value {result!r} does not match {definition.pattern}")
    return result


def _check_range(definition: AttributeDefinition, value: float) -> None:
    if definition.minimum is not None and value < definition.minimum:
        raise InvalidAttribute(f"{definition.name} must be at least {definition.minimum}")
    if definition.maximum is not None and value > definition.maximum:
        raise InvalidAttribute(f"{definition.name} must be at most {definition.maximum}")


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _to_str(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    raise InvalidAttribute(f"{name} must be a string, not {type(value).__name__}")


def _to_int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise InvalidAttribute(f"{name} must be an integer, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
        return int(value)
    raise InvalidAttribute(f"{name} must be an integer, not {value!r}")


def _to_float(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise InvalidAttribute(f"{name} must be a number, not a boolean")
    decimal = isinstance(value, str) and re.fullmatch(r"[+-]?\d+(\.\d+)?", value.strip())
    if isinstance(value, int | float) or decimal:
        result = float(value)
    else:
        raise InvalidAttribute(f"{name} must be a number, not {value!r}")
    if not math.isfinite(result):
        raise InvalidAttribute(f"{name} must be a finite number")
    return result


def _to_bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidAttribute(f"{name} must be true or false, not {value!r}")


def _to_list(name: str, value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    raise InvalidAttribute(f"{name} must be an array")


def _to_dict(name: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    raise InvalidAttribute(f"{name} must be an object")


_CONVERTERS = {
    AttributeType.STRING: _to_str,
    AttributeType.ENUM: _to_str,
    AttributeType.INTEGER: _to_int,
    AttributeType.NUMBER: _to_float,
    AttributeType.BOOLEAN: _to_bool,
    AttributeType.ARRAY: _to_list,
    AttributeType.OBJECT: _to_dict,
}


def single_template(mixins: Iterable[Mixin], parent: Mixin) -> Mixin | None:
    """The one provider template below ``parent`` among ``mixins``; two are a 400."""
    found = [m for m in mixins if m is not parent and m.depends_on(parent)]
    if len(found) > 1:
        names = ", ".join(m.type_id for m in found)
        raise InvalidRequest(f"only one {parent.term} mixin may be given, not {names}")
    return found[0] if found else None
