"""The one exception tree of nimbostratus.

Every error we raise derives from :class:`NimboError`. Each protocol (OCCI, CDMI) maps these
classes to an HTTP status in exactly one place (see ``occi.http.errors``). Foreign errors
(libvirt, redis, SQLAlchemy, subprocess) are translated at the package boundary and chained
with ``raise ... from exc``.

This module imports nothing from the project, so any package may import it.
"""

from __future__ import annotations


class NimboError(Exception):
    """Root of every error nimbostratus raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- client errors (the request is wrong) -------------------------------------------------


class ClientError(NimboError):
    """The request cannot be honoured as sent; the message says why."""


class InvalidRequest(ClientError):
    """Syntax or semantic error in the request (HTTP 400)."""


class ParseError(InvalidRequest):
    """A body or header could not be parsed in its media type (HTTP 400)."""


class UnknownCategory(InvalidRequest):
    """A category type-id that this server does not know (HTTP 400)."""


class InvalidAttribute(InvalidRequest):
    """An attribute value of the wrong type, pattern, or an immutable/required rule broken."""


class NotAuthenticated(ClientError):
    """No or wrong credentials (HTTP 401)."""


class Forbidden(ClientError):
    """Authenticated but not allowed (HTTP 403)."""


class NotFound(ClientError):
    """No such path, entity or category visible to this principal (HTTP 404)."""


class MethodNotAllowed(ClientError):
    """The verb is not defined for this target (HTTP 405)."""

    def __init__(self, message: str, allowed: tuple[str, ...]) -> None:
        super().__init__(message)
        self.allowed = allowed


class NotAcceptable(ClientError):
    """Neither the requested ``Accept`` nor the ``Content-Type`` is supported (HTTP 406)."""


class Conflict(ClientError):
    """The request conflicts with the current state of the target (HTTP 409)."""


class PayloadTooLarge(ClientError):
    """A page size or body larger than the configured maximum (HTTP 413)."""


class QuotaExceeded(Conflict):
    """A create or resize would take a user or group past a quota (HTTP 409); the message
    names the limit and the current use."""


class TooManyRequests(ClientError):
    """A principal or client address is over its request rate (HTTP 429, ``Retry-After``)."""

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NotImplementedByServer(ClientError):
    """Defined by the standard but not offered here, or client version too high (HTTP 501)."""


# --- server-side errors (we or our backends failed) ---------------------------------------


class ServiceUnavailable(NimboError):
    """A dependency (queue, store, directory) is unreachable; retry later (HTTP 503)."""

    def __init__(self, message: str, retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BackendError(NimboError):
    """A hypervisor, storage or network backend failed; raised by drivers in ``backends/``."""


class BackendUnavailable(BackendError):
    """The backend could not be reached (libvirt daemon down, connection lost)."""


class BackendNotFound(BackendError):
    """The backend object (domain, volume, network) does not exist."""


class BackendConflict(BackendError):
    """The backend refused the operation in the object's current state."""


class CapacityExceeded(NimboError):
    """No host can take the request (HTTP 503 with a message naming what was short)."""


class ConfigurationError(NimboError):
    """The configuration file or environment holds an invalid value."""
