"""The import rules of ARCHITECTURE.md ("Packages"), checked on the source: a rule broken by a
new import fails here, not in a review.

- ``occi/`` and ``cdmi/`` reach the rest through ``gateway``'s service interfaces: never a
  driver (``backends``, libvirt), SQL, Redis or LDAP.
- Model, parsing and rendering code does no I/O: no Flask, no files, sockets or processes, and
  of ``gateway`` only the exception tree and the JSON limits (pure functions).
- ``backends/`` knows nothing of the HTTP side.
- ``auth/`` knows nothing of the HTTP side but its small Flask hook (``auth/flask.py``).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

DRIVERS_AND_STORES = {"backends", "libvirt", "sqlalchemy", "redis", "rq", "ldap", "gateway.store"}
HTTP_SIDE = {"flask", "werkzeug", "gunicorn", "occi", "cdmi", "gateway.hardening"}
IO = {"os", "io", "pathlib", "socket", "subprocess", "shutil", "tempfile", "requests", "urllib3"}
PURE_GATEWAY = {"gateway.errors", "gateway.json_limits"}

MODEL_CODE = [
    "occi/core.py",
    "occi/infrastructure.py",
    "occi/registry.py",
    "occi/validation.py",
    "occi/rendering",
    "cdmi/acl.py",
    "cdmi/capabilities.py",
    "cdmi/extents.py",
    "cdmi/model.py",
    "cdmi/objectid.py",
    "cdmi/paths.py",
    "cdmi/request.py",
]


def sources(*places: str) -> Iterator[Path]:
    for place in places:
        path = ROOT / place
        yield from sorted(path.rglob("*.py")) if path.is_dir() else [path]


def imported(path: Path) -> set[str]:
    """Every absolute name ``path`` imports: ``import a.b`` gives ``a.b``, ``from a.b import c``
    gives ``a.b.c`` (``c`` may be a module or a name in ``a.b``; either way it is inside it)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def breaking(path: Path, forbidden: set[str], allowed: frozenset[str] = frozenset()) -> list[str]:
    """The imports of ``path`` that are, or are inside, a ``forbidden`` module and are not, or
    are not inside, an ``allowed`` one."""

    def within(name: str, modules: set[str] | frozenset[str]) -> bool:
        return any(name == m or name.startswith(m + ".") for m in modules)

    return sorted(
        n for n in imported(path) if within(n, forbidden) and not within(n, allowed)
    )


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", list(sources("occi", "cdmi")), ids=relative)
def test_protocol_packages_reach_no_driver_or_store(path: Path) -> None:
    assert breaking(path, DRIVERS_AND_STORES) == []


@pytest.mark.parametrize("path", list(sources(*MODEL_CODE)), ids=relative)
def test_model_and_rendering_code_does_no_io(path: Path) -> None:
    forbidden = DRIVERS_AND_STORES | HTTP_SIDE - {"occi", "cdmi"} | IO | {"gateway"}
    assert breaking(path, forbidden, frozenset(PURE_GATEWAY)) == []


@pytest.mark.parametrize("path", list(sources("backends")), ids=relative)
def test_drivers_know_nothing_of_http(path: Path) -> None:
    assert breaking(path, HTTP_SIDE | {"auth"}) == []


@pytest.mark.parametrize(
    "path", [p for p in sources("auth") if p.name != "flask.py"], ids=relative
)
def test_authenticators_know_nothing_of_http_but_their_hook(path: Path) -> None:
    assert breaking(path, HTTP_SIDE) == []


def test_the_rules_see_a_broken_one(tmp_path: Path) -> None:
    """The checker itself: each kind of import is seen."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import os.path\nfrom sqlalchemy import select\nfrom gateway import store\n"
        "from gateway.errors import NotFound\nimport flask as f\n"
    )
    assert breaking(bad, DRIVERS_AND_STORES) == ["gateway.store", "sqlalchemy.select"]
    assert breaking(bad, IO) == ["os.path"]
    assert breaking(bad, {"gateway"}, frozenset(PURE_GATEWAY)) == ["gateway.store"]
    assert breaking(bad, HTTP_SIDE) == ["flask"]
