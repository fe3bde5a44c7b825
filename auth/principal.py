"""Who is asking."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Principal:
    """An authenticated identity. ``name`` owns entities; admins see everything."""

    name: str
    display_name: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)
    is_admin: bool = False
