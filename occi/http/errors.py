"""The one place where OCCI answers get their HTTP status: exception class -> status."""

from __future__ import annotations

from gateway.errors import (
    BackendError,
    CapacityExceeded,
    ClientError,
    Conflict,
    Forbidden,
    InvalidRequest,
    MethodNotAllowed,
    NimboError,
    NotAcceptable,
    NotAuthenticated,
    NotFound,
    NotImplementedByServer,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
)

STATUS: tuple[tuple[type[NimboError], int], ...] = (
    (InvalidRequest, 400),
    (NotAuthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (MethodNotAllowed, 405),
    (NotAcceptable, 406),
    (Conflict, 409),
    (PayloadTooLarge, 413),
    (TooManyRequests, 429),
    (NotImplementedByServer, 501),
    (ServiceUnavailable, 503),
    (CapacityExceeded, 503),
    (BackendError, 503),
    (ClientError, 400),
)


def status_for(error: NimboError) -> int:
    for cls, status in STATUS:
        if isinstance(error, cls):
            return status
    return 500


def extra_headers(error: NimboError, challenge: str) -> list[tuple[str, str]]:
    """Headers the status obliges: ``challenge`` (the ``WWW-Authenticate`` value) on 401,
    ``Allow`` on 405, ``Retry-After`` on 429 and 503."""
    if isinstance(error, NotAuthenticated):
        return [("WWW-Authenticate", challenge)]
    if isinstance(error, MethodNotAllowed):
        return [("Allow", ", ".join(error.allowed))]
    if isinstance(error, ServiceUnavailable | TooManyRequests):
        return [("Retry-After", str(error.retry_after))]
    if isinstance(error, CapacityExceeded | BackendError):
        return [("Retry-After", "30")]
    return []
