"""Successful password logins remembered for a while, so a busy client is not re-checked.

A password check costs tens of milliseconds by design (scrypt, or a directory bind). A login
that succeeded is remembered for a bounded time as an HMAC of the user name and password
under a per-process random key, never the password itself; only the same password finds it.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time

from auth.principal import Principal


class LoginCache:
    """User name -> (HMAC of name and password, until, principal)."""

    def __init__(self) -> None:
        self._key = os.urandom(32)
        self._entries: dict[str, tuple[bytes, float, Principal]] = {}
        self._lock = threading.Lock()

    def _tag(self, user: str, password: str) -> bytes:
        return hmac.new(self._key, f"{user}\0{password}".encode(), hashlib.sha256).digest()

    def find(self, user: str, password: str) -> Principal | None:
        """The principal of a remembered login with this very password, else None."""
        with self._lock:
            entry = self._entries.get(user)
        if entry is None or entry[1] <= time.monotonic():
            return None
        return entry[2] if hmac.compare_digest(entry[0], self._tag(user, password)) else None

    def remember(self, user: str, password: str, principal: Principal, seconds: float) -> None:
        entry = (self._tag(user, password), time.monotonic() + seconds, principal)
        with self._lock:
            self._entries[user] = entry

    def forget(self, user: str) -> None:
        with self._lock:
            self._entries.pop(user, None)
