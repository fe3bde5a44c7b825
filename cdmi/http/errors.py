"""The one place where CDMI answers get their HTTP status, and the error body they carry."""

from __future__ import annotations

import re
from typing import Any

from gateway.errors import NimboError
from occi.http.errors import status_for


def error_id(error: NimboError) -> str:
    """``InvalidRequest`` -> ``invalidRequest`` (the Onedata-style error id)."""
    name = type(error).__name__
    return name[0].lower() + name[1:] if name else "error"


def error_body(error: NimboError) -> dict[str, Any]:
    return {"error": {"id": error_id(error), "description": error.message}}


def cdmi_status(error: NimboError) -> int:
    """The same classes mean the same statuses as on the OCCI side."""
    return status_for(error)


_SAFE = re.compile(r"[\r\n]")


def header_safe(text: str) -> str:
    return _SAFE.sub(" ", text)
