"""Translation of ``libvirt.libvirtError`` into our exceptions, in one context manager.

Importing this module also silences libvirt's default error handler, which otherwise prints
every error to stderr even when we catch and translate it (the handler is process-wide).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import libvirt

from gateway.errors import BackendConflict, BackendError, BackendNotFound, BackendUnavailable

NOT_FOUND = frozenset(
    {
        libvirt.VIR_ERR_NO_DOMAIN,
        libvirt.VIR_ERR_NO_STORAGE_VOL,
        libvirt.VIR_ERR_NO_STORAGE_POOL,
        libvirt.VIR_ERR_NO_NETWORK,
    }
)
CONFLICT = frozenset({libvirt.VIR_ERR_OPERATION_INVALID})
UNAVAILABLE = frozenset(
    {
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_INVALID_CONN,
        libvirt.VIR_ERR_RPC,
        libvirt.VIR_ERR_AUTH_FAILED,
        libvirt.VIR_ERR_AUTH_UNAVAILABLE,
    }
)
UNAVAILABLE_DOMAINS = frozenset({libvirt.VIR_FROM_RPC, libvirt.VIR_FROM_REMOTE})


def _ignore(_context: object, _error: object) -> None:
    """libvirt error callback that prints nothing: errors reach us as exceptions."""


libvirt.registerErrorHandler(_ignore, None)


def classify(exc: libvirt.libvirtError, *, connecting: bool = False) -> type[BackendError]:
    """Our exception class for a libvirt error."""
    code = exc.get_error_code()
    if code in NOT_FOUND:
        return BackendNotFound
    if code in CONFLICT:
        return BackendConflict
    if code in UNAVAILABLE or exc.get_error_domain() in UNAVAILABLE_DOMAINS:
        return BackendUnavailable
    if connecting and code == libvirt.VIR_ERR_SYSTEM_ERROR:
        return BackendUnavailable
    return BackendError


@contextmanager
def translated(action: str, *, connecting: bool = False) -> Iterator[None]:
    """Run the body, turning a ``libvirtError`` into our error with ``action`` in the message.

    ``connecting=True`` marks opening the connection, where a system error (socket missing,
    refused) means the daemon is unreachable.
    """
    try:
        yield
    except libvirt.libvirtError as exc:
        if is_image_locked(exc):
            raise BackendConflict(
                f"{action}: a disk image of the domain is in use by another domain or "
                f"process, which holds its lock ({exc})"
            ) from exc
        raise classify(exc, connecting=connecting)(f"{action}: {exc}") from exc


def is_image_locked(exc: libvirt.libvirtError) -> bool:
    """QEMU could not take a disk image's lock: another QEMU (or qemu-img) holds it."""
    text = str(exc)
    return "Failed to get" in text and "lock" in text


def is_unsupported(exc: BaseException) -> bool:
    """True for "this function is not supported by the connection driver" (test driver gaps)."""
    cause = exc.__cause__ if isinstance(exc, BackendError) else exc
    return (
        isinstance(cause, libvirt.libvirtError)
        and cause.get_error_code() == libvirt.VIR_ERR_NO_SUPPORT
    )
