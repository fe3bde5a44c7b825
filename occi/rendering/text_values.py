"""Values and quoting of the OCCI text renderings (GFD-R-P.229 §3, notes §3.1/§3.2).

Shared by the text renderers and parsers: attribute values to and from their text form,
quoted strings, and splitting a field value on a separator outside quoted strings and
``<…>`` link targets.

Strings are RFC 7230 quoted strings with ``\\"`` and ``\\\\`` escapes. A line break inside a
value cannot travel in a header or a body line, so it is written as ``\\n`` (``\\r``) and read
back as the line break; every other ``\\x`` reads as ``x``.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from gateway.errors import ParseError

_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+")
_EXPONENT = re.compile(r"-?[0-9]+(\.[0-9]+)?[eE][+-]?[0-9]+")
_ESCAPED_LINE_BREAKS = {"n": "\n", "r": "\r"}


def format_float(value: float) -> str:
    """A float with a dot and never an exponent: ``1e-05`` → ``0.00001``, ``2.0`` → ``2.0``."""
    if not math.isfinite(value):
        raise ValueError(f"cannot render non-finite number {value!r}")
    text = format(Decimal(repr(value)), "f")
    if "." not in text:
        text += ".0"
    return text


def quote(text: str) -> str:
    """``text`` as a quoted string."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    escaped = escaped.replace("\r", "\\r").replace("\n", "\\n")
    return f'"{escaped}"'


def format_value(value: Any) -> str:
    """An attribute value in text form: bools bare, ints bare, floats with a dot, strings
    quoted; lists and objects as a quoted JSON string (the text renderings have no such type)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return format_float(value)
    if isinstance(value, list | tuple | dict):
        return quote(json.dumps(value, separators=(",", ":")))
    return quote(str(value))


def unquote(text: str) -> str:
    """The content of a quoted string (``text`` includes the quotes)."""
    if len(text) < 2 or not text.startswith('"') or not text.endswith('"'):
        raise ParseError(f"unterminated quoted string: {text}")
    out: list[str] = []
    chars = iter(text[1:-1])
    for char in chars:
        if char == "\\":
            escaped = next(chars, "")
            out.append(_ESCAPED_LINE_BREAKS.get(escaped, escaped))
        elif char == '"':
            raise ParseError(f"unescaped quote inside quoted string: {text}")
        else:
            out.append(char)
    return "".join(out)


def parse_value(name: str, text: str) -> Any:
    """An attribute value from its text form; raises :class:`ParseError` naming ``name``."""
    text = text.strip()
    if text.startswith('"'):
        try:
            return unquote(text)
        except ParseError as exc:
            raise ParseError(f"attribute {name}: {exc.message}") from exc
    if text in ("true", "false"):
        return text == "true"
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    raise ParseError(f"attribute {name}: {_why_invalid(text)}")


def _why_invalid(text: str) -> str:
    if not text:
        return "no value"
    if _EXPONENT.fullmatch(text):
        return f"number {text} has an exponent; write it with a dot and digits only"
    return f"value {text} is neither a quoted string, a number nor true/false"


def split_outside_quotes(text: str, separator: str) -> list[str]:
    """``text`` split on ``separator`` where it is outside quoted strings and ``<…>``.

    Raises :class:`ParseError` on an unterminated quoted string.
    """
    parts: list[str] = []
    current: list[str] = []
    in_quotes = in_angle = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif in_quotes and char == "\\":
            escaped = True
        elif char == '"' and not in_angle:
            in_quotes = not in_quotes
        elif char in "<>" and not in_quotes:
            in_angle = char == "<"
        elif char == separator and not in_quotes and not in_angle:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if in_quotes:
        raise ParseError(f"unterminated quoted string in: {text}")
    parts.append("".join(current))
    return parts
