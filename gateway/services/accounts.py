"""Accounts: the user rows behind principals.

Local users are made by an administrator (``nimbo users add``). An identity vouched for by an
external source (LDAP, OIDC, X.509) gets its row at its first request, so that it can own
entities; later requests only read it (cached for a few seconds per process), and write it
again only when the source reports a different display name or groups. A name belongs to the
source that first claimed it: an OIDC subject cannot become the local user of the same name.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, replace

from sqlalchemy.exc import IntegrityError

from auth.chain import REFUSED
from auth.local import UserRecord
from auth.principal import Principal
from gateway.errors import NotAuthenticated
from gateway.store.db import Store
from gateway.store.models import USER_NAME_MAX, User, utcnow

log = logging.getLogger(__name__)

USER_NAME = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9._@+:-]{{0,{USER_NAME_MAX - 1}}}$")


@dataclass(frozen=True)
class _Known:
    source: str
    disabled: bool
    is_admin: bool
    display_name: str
    groups: frozenset[str]
    until: float


class Accounts:
    """Looks up local users and admits external principals."""

    def __init__(
        self,
        store: Store,
        *,
        admin_groups: frozenset[str] = frozenset(),
        cache_seconds: float = 10.0,
    ) -> None:
        self._store = store
        self._admin_groups = admin_groups
        self._cache_seconds = cache_seconds
        self._known: dict[str, _Known] = {}
        self._lock = threading.Lock()

    def local_user(self, name: str) -> UserRecord | None:
        """The local account ``name`` (None: no such local account).

        A name this process admitted lately from another source (an LDAP user, within the
        cache bound) is answered from memory: the directory users' warm path reads no row."""
        with self._lock:
            known = self._known.get(name)
        if known is not None and known.source != "local" and known.until > time.monotonic():
            return None
        with self._store.session() as session:
            user = session.get(User, name)
            if user is None or user.source != "local":
                return None
            return UserRecord(
                user.name,
                user.password_hash,
                user.is_admin,
                user.disabled,
                frozenset(user.groups or ()),
            )

    def admit(self, principal: Principal) -> Principal:
        """``principal`` as the gateway knows it: its row made or refreshed, admin rights added.

        Raises :class:`NotAuthenticated` for a disabled account or a name held by another
        source (the same answer as a wrong password)."""
        known = self._lookup(principal.name)
        if principal.source != "local" and (known is None or _stale(known, principal)):
            known = self._record(principal)
        if known is None or known.disabled or known.source != principal.source:
            if known is not None and known.source != principal.source:
                log.warning(
                    "refused %s identity %r: the name belongs to a %s account",
                    principal.source,
                    principal.name,
                    known.source,
                )
            raise NotAuthenticated(REFUSED)
        is_admin = known.is_admin or bool(principal.groups & self._admin_groups)
        return (
            principal if principal.is_admin == is_admin else replace(principal, is_admin=is_admin)
        )

    def forget(self, name: str) -> None:
        with self._lock:
            self._known.pop(name, None)

    def _lookup(self, name: str) -> _Known | None:
        now = time.monotonic()
        with self._lock:
            known = self._known.get(name)
        if known is not None and known.until > now:
            return known
        with self._store.session() as session:
            user = session.get(User, name)
            return None if user is None else self._remember(user)

    def _record(self, principal: Principal) -> _Known:
        if not USER_NAME.match(principal.name):
            log.warning(
                "refused %s identity %r: not a valid user name", principal.source, principal.name
            )
            raise NotAuthenticated(REFUSED)
        try:
            return self._write(principal)
        except IntegrityError:  # another process made the row first (PostgreSQL): read it
            self.forget(principal.name)
            known = self._lookup(principal.name)
            assert known is not None
            return known

    def _write(self, principal: Principal) -> _Known:
        groups = sorted(principal.groups)
        with self._store.session(write=True) as session:
            user = session.get(User, principal.name)
            if user is None:
                user = User(
                    name=principal.name,
                    source=principal.source,
                    display_name=principal.display_name,
                    groups=groups,
                    last_seen=utcnow(),
                )
                session.add(user)
            elif user.source == principal.source:
                user.display_name, user.groups, user.last_seen = (
                    principal.display_name,
                    groups,
                    utcnow(),
                )
            session.flush()
            return self._remember(user)

    def _remember(self, user: User) -> _Known:
        known = _Known(
            user.source,
            user.disabled,
            user.is_admin,
            user.display_name,
            frozenset(user.groups or ()),
            time.monotonic() + self._cache_seconds,
        )
        with self._lock:
            self._known[user.name] = known
        return known


def _stale(known: _Known, principal: Principal) -> bool:
    """Whether the row should be rewritten: its source now reports other names or groups."""
    return known.source == principal.source and (
        known.display_name != principal.display_name or known.groups != principal.groups
    )
