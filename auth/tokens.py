"""Issued tokens: short-lived opaque ``X-Auth-Token`` values for OCCI clients that expect them.

``POST /auth/tokens`` (see :mod:`gateway.tokens_http`) authenticates a request by any other
method and gives back a random token (``secrets.token_urlsafe(32)``). Redis keeps, under the
token's SHA-256 (never the token itself), the principal it stands for, for ``ttl`` seconds: every
API process sharing that Redis accepts it, and it disappears by itself when it expires.

A token cannot get a new token (no endless renewal: a client must prove who it is again). A
checked token is remembered per process for ``cache_seconds``: a revocation (``DELETE
/auth/tokens``) takes effect at once in the process that revoked it and within
``cache_seconds`` in the others. The stored principal's groups and admin flag are those of the
moment of issue; the chain's admit step still refuses a disabled account and recomputes admin
rights on every request.

Tenants (Keystone v2.0's word, for the EGI world's rOCCI clients; Keystone v3's projects, see
:mod:`gateway.tokens_http`): a principal's tenants are its groups, or the one tenant
:data:`DEFAULT_TENANT` when it has none. A token may be *scoped* to one of them; the record
keeps the tenant, and a request with the token acts in that group: its principal's
``scope_group`` (:func:`scoped`) is the tenant, so what it creates belongs to the group and it
may give nothing another group (:mod:`gateway.services.tenancy`). It sees only what its user
sees in that group (the user's own things there, the group's shared ones under the group
policy); admins see everything. :data:`DEFAULT_TENANT` of a principal without
groups is no group: such a token acts as an unscoped one. The one way a token gets another
token is rescoping (:meth:`issue` with ``until``, the older token's :meth:`expiry`): the new
one never outlives the old one, so rescoping renews nothing.

Keystone v3 federation (an OpenID Connect access token in, an unscoped token out, see
:mod:`gateway.tokens_http`): the record also keeps the Keystone ``methods`` that proved the
identity and the :class:`Federation` (identity provider and protocol) it came through, so that
a token rescoped from it is rendered as Keystone renders a federated token.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from auth.credentials import Credentials
from auth.principal import Principal
from gateway.errors import NotAuthenticated, ServiceUnavailable

KEY_PREFIX = "nimbo:auth-token:"
UNKNOWN = "unknown or expired token: get a new one with POST /auth/tokens"
MAX_TOKEN_LENGTH = 512
"""Longer X-Auth-Token values are refused without asking Redis (ours have 43 characters)."""
MAX_CACHED_TOKENS = 10000
REDIS_TIMEOUT = 5.0
"""Seconds a Redis command of the token store may take before the request gets a 503."""
DEFAULT_TENANT = "default"
"""The tenant of a principal without groups (Keystone's name of its default domain)."""


def tenants_of(principal: Principal) -> list[str]:
    """The tenants ``principal`` may scope a token to: its groups, sorted, else
    :data:`DEFAULT_TENANT` alone."""
    return sorted(principal.groups) or [DEFAULT_TENANT]


def scoped(principal: Principal, tenant: str | None) -> Principal:
    """``principal`` acting in the group of ``tenant`` (the scope of its token): its
    ``scope_group`` is the tenant when that is one of its groups, else None (an unscoped
    token, or :data:`DEFAULT_TENANT` of a principal without groups)."""
    group = tenant if tenant is not None and tenant in principal.groups else None
    return principal if principal.scope_group == group else replace(principal, scope_group=group)


def connect(url: str) -> redis.Redis:
    """A Redis client for the token store: short timeouts and few retries, so that a request
    whose token cannot be checked gets its 503 quickly instead of hanging."""
    return redis.Redis.from_url(
        url,
        socket_timeout=REDIS_TIMEOUT,
        socket_connect_timeout=REDIS_TIMEOUT,
        retry=Retry(ExponentialBackoff(cap=0.1, base=0.01), retries=2),
    )


@contextmanager
def redis_errors() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise ServiceUnavailable(f"the token store (Redis) is unavailable: {exc}") from exc


@dataclass(frozen=True)
class Federation:
    """Where a federated token came from: the identity provider and protocol named in
    ``/auth/v3/OS-FEDERATION/identity_providers/<idp>/protocols/<protocol>/auth``."""

    identity_provider: str
    protocol: str


@dataclass(frozen=True)
class IssuedToken:
    """A token as given to its holder, once."""

    token: str
    principal: Principal
    issued_at: datetime
    expires_at: datetime
    tenant: str | None = None
    """The tenant the token is scoped to (see :func:`tenants_of`); None: unscoped."""
    methods: tuple[str, ...] = ()
    """Keystone's names of the methods that proved the identity (empty: not recorded)."""
    federation: Federation | None = None
    """The identity provider and protocol of a federated token (and of one rescoped from it)."""


@dataclass(frozen=True)
class TokenRecord:
    """What the token store holds for a token (never the token itself)."""

    principal: Principal
    issued: float
    expires: float
    """UNIX times."""
    tenant: str | None = None
    methods: tuple[str, ...] = ()
    federation: Federation | None = None


def _key(token: str) -> str:
    return KEY_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _dump(record: TokenRecord) -> str:
    principal, federation = record.principal, record.federation
    return json.dumps(
        {
            "name": principal.name,
            "display_name": principal.display_name,
            "groups": sorted(principal.groups),
            "admin": principal.is_admin,
            "source": principal.source,
            "issued": record.issued,
            "expires": record.expires,
            "tenant": record.tenant,
            "methods": list(record.methods),
            "federation": None if federation is None else asdict(federation),
        }
    )


def _load(raw: bytes | str) -> TokenRecord:
    stored = json.loads(raw)
    principal = Principal(
        name=stored["name"],
        display_name=stored["display_name"],
        groups=frozenset(stored["groups"]),
        is_admin=bool(stored["admin"]),
        source=stored["source"],
    )
    federation = stored.get("federation")  # records of older processes have neither
    tenant = stored.get("tenant")
    return TokenRecord(
        scoped(principal, tenant),
        float(stored["issued"]),
        float(stored["expires"]),
        tenant,
        tuple(stored.get("methods") or ()),
        None if not federation else Federation(**federation),
    )


class TokenAuthenticator:
    """Accepts ``X-Auth-Token`` values issued by :meth:`issue`, kept in Redis."""

    name = "token"
    offers = "X-Auth-Token (from POST /auth/tokens)"

    def __init__(self, connection: redis.Redis, *, ttl: int, cache_seconds: float = 5.0) -> None:
        if ttl <= 0:
            raise ValueError("a token needs a positive lifetime")
        self._redis = connection
        self.ttl = ttl
        self._cache_seconds = cache_seconds
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._revocations = 0  # a check that began before a revocation is not remembered
        self._lock = threading.Lock()

    def challenge(self, base_url: str) -> str:
        # rOCCI-server 2's form (single quotes), which EGI clients parse.
        return f"Keystone uri='{base_url.rstrip('/')}/auth/'"

    def authenticate(self, credentials: Credentials) -> Principal | None:
        token = credentials.auth_token
        if token is None:
            return None
        if len(token) > MAX_TOKEN_LENGTH:
            raise NotAuthenticated(UNKNOWN)
        key = _key(token)
        now = time.time()
        with self._lock:
            cached, revocations = self._cache.get(key), self._revocations
        if cached is not None and cached[1] > now:
            return cached[0]
        with redis_errors():
            raw = self._redis.get(key)
        if raw is None:
            raise NotAuthenticated(UNKNOWN)
        record = _load(raw)
        if record.expires <= now:  # Redis ends the key at once, but not to the microsecond
            raise NotAuthenticated(UNKNOWN)
        principal = record.principal
        self._remember(key, principal, min(record.expires, now + self._cache_seconds), revocations)
        return principal

    def issue(
        self,
        principal: Principal,
        *,
        tenant: str | None = None,
        until: float | None = None,
        methods: Sequence[str] = (),
        federation: Federation | None = None,
    ) -> IssuedToken:
        """A new token for ``principal``, valid for ``ttl`` seconds in every API process, or
        until ``until`` (a UNIX time: the :meth:`expiry` of the token being rescoped) when
        that comes sooner; scoped to ``tenant`` (the caller checked it is one of
        :func:`tenants_of` ``principal``): requests with it act in that group (:func:`scoped`).
        ``methods`` and ``federation`` are recorded for Keystone's renderings of it."""
        principal = scoped(principal, tenant)
        token = secrets.token_urlsafe(32)
        issued = time.time()
        expires = issued + self.ttl if until is None else min(issued + self.ttl, until)
        lifetime_ms = int((expires - issued) * 1000)  # rounded down: never past ``expires``
        if lifetime_ms <= 0:
            raise NotAuthenticated(UNKNOWN)
        record = TokenRecord(principal, issued, expires, tenant, tuple(methods), federation)
        with redis_errors():
            self._redis.set(_key(token), _dump(record), px=lifetime_ms, nx=True)
        return IssuedToken(
            token,
            principal,
            datetime.fromtimestamp(issued, UTC),
            datetime.fromtimestamp(expires, UTC),
            tenant,
            record.methods,
            federation,
        )

    def record(self, token: str) -> TokenRecord:
        """What the store holds for ``token``, read from Redis, never from the process's
        cache, so a token revoked by another process is known as such; NotAuthenticated
        when it is unknown, revoked or expired."""
        if len(token) > MAX_TOKEN_LENGTH:
            raise NotAuthenticated(UNKNOWN)
        with redis_errors():
            raw = self._redis.get(_key(token))
        if raw is None:
            raise NotAuthenticated(UNKNOWN)
        record = _load(raw)
        if record.expires <= time.time():
            raise NotAuthenticated(UNKNOWN)
        return record

    def expiry(self, token: str) -> float:
        """When ``token`` expires (a UNIX time), as :meth:`record` reads it."""
        return self.record(token).expires

    def revoke(self, token: str) -> bool:
        """End ``token`` now; whether it was valid."""
        key = _key(token)
        with redis_errors():
            deleted = bool(self._redis.delete(key))
        with self._lock:
            self._cache.pop(key, None)
            self._revocations += 1
        return deleted

    def _remember(self, key: str, principal: Principal, until: float, revocations: int) -> None:
        with self._lock:
            if revocations != self._revocations:
                return
            if len(self._cache) >= MAX_CACHED_TOKENS:
                now = time.time()
                self._cache = {k: e for k, e in self._cache.items() if e[1] > now}
                if len(self._cache) >= MAX_CACHED_TOKENS:
                    self._cache.clear()
            self._cache[key] = (principal, until)
