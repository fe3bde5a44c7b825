"""JSON request bodies with bounded nesting, for the OCCI JSON rendering and CDMI bodies.

Python's decoder recurses once per array or object: a body of a few thousand ``[`` ends in a
``RecursionError``, and a merely deep one costs stack and time for nothing a client needs.
The depth is counted before decoding, over the brackets outside strings only
(``bytes.replace``, one regex and ``bytes.translate``: C speed, a 64 MiB body in a quarter
of a second), and a body deeper than the setting ``json_max_depth`` is refused with
:class:`~gateway.errors.ParseError` (400).

Pure: no I/O and no Flask, so parsers may import it. The limit in force is :data:`MAX_DEPTH`,
which the request hooks of :mod:`gateway.hardening` set from the configuration for the
request being served; outside a request it is the setting's default.
"""

from __future__ import annotations

import json
import re
from contextvars import ContextVar
from itertools import accumulate
from typing import Any

from gateway.defaults import DEFAULTS
from gateway.errors import ParseError

MAX_DEPTH: ContextVar[int] = ContextVar(
    "json_max_depth", default=DEFAULTS["json_max_depth"].default
)

_STRING = re.compile(rb'"[^"]*"')
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def depth(data: bytes) -> int:
    """The deepest nesting of arrays and objects in ``data`` (0 for a scalar)."""
    # Escaped backslashes go first, then escaped quotes: what is left of a string is
    # quote, text, quote, and the brackets outside strings are all that remain.
    unescaped = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = _STRING.sub(b"", unescaped).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def too_deep(limit: int) -> ParseError:
    return ParseError(f"JSON nested deeper than {limit} levels")


def loads(data: bytes | str, **options: Any) -> Any:
    """``json.loads(data, **options)`` after checking the depth against :data:`MAX_DEPTH`.

    Raises :class:`ParseError` for a body nested deeper; the decoder's own errors
    (``ValueError``, ``UnicodeDecodeError``) pass through for the caller to word."""
    limit = MAX_DEPTH.get()
    if depth(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data) > limit:
        raise too_deep(limit)
    try:
        return json.loads(data, **options)
    except RecursionError:  # cannot happen below the limit; a guard, never a 500
        raise too_deep(limit) from None
