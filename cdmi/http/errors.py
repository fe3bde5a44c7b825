"""The error body CDMI answers carry; their status comes from the one map of
:mod:`occi.http.errors` (the same classes mean the same statuses on both sides)."""

from __future__ import annotations

from typing import Any

from gateway.errors import NimboError


def error_id(error: NimboError) -> str:
    """``InvalidRequest`` -> ``invalidRequest`` (the Onedata-style error id)."""
    name = type(error).__name__
    return name[0].lower() + name[1:] if name else "error"


def error_body(error: NimboError) -> dict[str, Any]:
    return {"error": {"id": error_id(error), "description": error.message}}
