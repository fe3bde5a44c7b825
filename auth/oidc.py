"""OpenID Connect bearer tokens: JWT access tokens verified against their issuer's published keys.

A request with ``Authorization: Bearer <JWT>`` is this authenticator's to judge: it either
yields a :class:`~auth.principal.Principal` or raises :class:`~gateway.errors.NotAuthenticated`
with a message that says what was wrong (expired, not yet valid, wrong issuer, wrong audience,
bad signature, unsupported algorithm, unknown key id); no later authenticator gets the token.

Several issuers may be trusted (EGI Check-in beside one INDIGO IAM per virtual organisation):
the flat ``oidc_*`` settings describe the first, each entry of ``oidc_issuers`` one more
(:func:`auth.oidc_issuers.issuer_settings`). Each has its own audience, algorithms, keys, key
cache and claim mapping. The token's ``iss``, read from its payload *before* anything is
verified, only picks which issuer's settings judge it; an ``iss`` no issuer has is refused at
once, and nothing is fetched for it (a token cannot make us fetch from an address it names).
Everything below is then checked against the picked issuer alone, so a key of one issuer never
verifies a token claiming another.

What is checked, in order:

- the header's ``alg`` is one of the issuer's pinned algorithms (asymmetric only: ``none`` and
  the HMAC family are refused when the configuration is read, so a token signed with the
  issuer's public key as an HMAC secret can never verify), and it fits the key: an RSA key
  verifies RS*/PS* only, an EC key the ES* of its curve, an OKP key EdDSA;
- the signature, against the key named by ``kid`` in the issuer's JWKS
  (:class:`IssuerKeys`: fetched over HTTP, cached, fetched again for an unknown ``kid`` at
  most once per ``refetch_seconds``, so forged key ids cannot make us hammer the issuer);
- ``iss`` exactly, ``aud`` names one of the issuer's audiences, ``exp`` present and not past,
  ``nbf``/``iat`` not in the future, each with ``leeway`` seconds of clock skew.

Users of different issuers never share a name (:class:`auth.oidc_issuers.ClaimMapping`): the
first issuer (the flat ``oidc_issuer``, else the first entry) may keep bare names, as a single
issuer always did; every other one has a ``user_prefix`` (``wlcg:`` makes ``sub`` ``alice`` the
user ``wlcg:alice``), no prefix may be the start of another, and a bare name of the first issuer
that begins with another's prefix is refused. The same ``sub`` from two issuers is thus two
users, whatever it is. Groups are not namespaced: a group is the same group whichever issuer
reports it (a VO in Check-in and in the VO's own IAM), so ``auth_admin_groups`` holds for every
issuer; each issuer's ``group_pattern`` bounds which groups it may report.

A verified token is remembered per process under its SHA-256 until its ``exp`` or for
``cache_seconds``, whichever comes first, so a client that sends the same token again costs a
hash and a dictionary lookup. When the issuer's keys cannot be fetched, bearer requests of that
issuer get :class:`~gateway.errors.ServiceUnavailable` (503); requests with other credentials
(or tokens of other issuers) never touch it.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import jwt

from auth.credentials import Credentials
from auth.oidc_issuers import CURVES, KEY_TYPES, IssuerSettings, http_url, shown
from auth.principal import Principal
from gateway.errors import ConfigurationError, NotAuthenticated, ServiceUnavailable

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 1 << 20
"""Largest discovery document or JWKS read from an issuer."""
MAX_CACHED_TOKENS = 10000
"""Verified tokens remembered per process; past this, expired ones are dropped, then all."""

# --- the issuer's keys ----------------------------------------------------------------------


def fetch_json(url: str, timeout: float) -> Any:
    """The JSON document at ``url``; every failure is ServiceUnavailable."""
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read(MAX_DOCUMENT_BYTES + 1)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        raise ServiceUnavailable(
            f"the identity provider cannot be reached: {url}: {reason}"
        ) from exc
    if len(body) > MAX_DOCUMENT_BYTES:
        raise ServiceUnavailable(f"the identity provider sent more than 1 MiB from {url}")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise ServiceUnavailable(f"the identity provider sent no JSON from {url}") from exc


Fetch = Callable[[str, float], Any]


class IssuerKeys:
    """The issuer's signing keys (its JWKS), fetched over HTTP and cached.

    The keys are used for ``cache_seconds``, then fetched again. A key id that is not in the
    set (the issuer rotated its keys) causes one fetch, at most one per ``refetch_seconds``
    whatever the number of requests: forged key ids cannot cause a storm of fetches. When a
    fetch fails, the keys already held serve for another ``cache_seconds`` (the issuer may be
    down for a while); a request that needs a key not held (or any key, when none is held)
    gets ServiceUnavailable, and the next fetch is tried ``refetch_seconds`` later.
    """

    def __init__(
        self,
        *,
        issuer: str,
        jwks_url: str = "",
        cache_seconds: float = 900.0,
        refetch_seconds: float = 10.0,
        timeout: float = 5.0,
        fetch: Fetch = fetch_json,
    ) -> None:
        self._issuer = issuer
        self._configured_url = jwks_url
        self._jwks_url = jwks_url
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._timeout = timeout
        self._fetch = fetch
        self._lock = threading.Lock()
        self._keys: tuple[Mapping[str, Any], ...] = ()
        self._verifiers: dict[tuple[str, str], jwt.PyJWK] = {}
        self._fetched = float("-inf")  # monotonic time of the last successful fetch
        self._attempted = float("-inf")  # ... and of the last attempt
        self._failure: ServiceUnavailable | None = None
        self.fetches = 0  # successful fetches of the JWKS, for tests and metrics

    def key(self, kid: str | None, alg: str) -> jwt.PyJWK:
        """The key that verifies a token of ``alg`` signed with key ``kid``."""
        keys = self._current()
        found = _named(keys, kid)
        if not found and self._refetch(stale_only=False):
            found = _named(self._keys, kid)
        if not found:
            if kid is None:
                raise NotAuthenticated("the issuer publishes no key for the bearer token")
            raise NotAuthenticated(
                f"unknown key id {kid!r}: the issuer does not publish the bearer token's key"
            )
        fitting = [jwk for jwk in found if _fits(jwk, alg)]
        if not fitting:
            raise NotAuthenticated(
                f"the bearer token's algorithm {alg} does not fit its key "
                f"(key type {found[0].get('kty')!r}): unsupported algorithm for that key"
            )
        if len(fitting) > 1:
            raise NotAuthenticated(
                "the bearer token names no key id (kid) and the issuer publishes several keys "
                f"for {alg}"
            )
        return self._verifier(fitting[0], alg)

    def _current(self) -> tuple[Mapping[str, Any], ...]:
        if time.monotonic() - self._fetched >= self._cache_seconds:
            self._refetch(stale_only=True)
        return self._keys

    def _refetch(self, *, stale_only: bool) -> bool:
        """Fetch the keys again if allowed now; whether a fetch happened."""
        with self._lock:
            now = time.monotonic()
            if stale_only and now - self._fetched < self._cache_seconds:
                return False  # another thread fetched them meanwhile
            if now - self._attempted < self._refetch_seconds:
                if self._keys or self._failure is None:
                    return False
                raise self._failure
            self._attempted = now
            try:
                keys = self._download()
            except ServiceUnavailable as exc:
                self._failure = exc
                usable = bool(self._keys) and now - self._fetched < 2 * self._cache_seconds
                if not usable:
                    self._keys, self._verifiers = (), {}
                elif stale_only:  # the keys held still verify the tokens they verified
                    log.warning("%s; using the keys fetched before", exc.message)
                    return False
                raise  # an unknown kid cannot be told from a rotation: 503, not 401
            self._keys, self._verifiers, self._failure = keys, {}, None
            self._fetched = now
            self.fetches += 1
            return True

    def _download(self) -> tuple[Mapping[str, Any], ...]:
        if not self._jwks_url:
            self._jwks_url = self._discover()
        try:
            document = self._fetch(self._jwks_url, self._timeout)
        except ServiceUnavailable:
            self._jwks_url = self._configured_url  # discover again next time
            raise
        keys = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(keys, list):
            raise ServiceUnavailable(
                f"the identity provider's JWKS at {self._jwks_url} holds no keys"
            )
        return tuple(k for k in keys if isinstance(k, dict) and k.get("use", "sig") == "sig")

    def _discover(self) -> str:
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = self._fetch(url, self._timeout)
        if not isinstance(document, dict) or document.get("issuer") != self._issuer:
            raise ServiceUnavailable(
                f"the discovery document at {url} is not the issuer {self._issuer}'s"
            )
        jwks_uri = document.get("jwks_uri")
        try:
            return http_url(jwks_uri if isinstance(jwks_uri, str) else "", "jwks_uri")
        except ConfigurationError as exc:
            raise ServiceUnavailable(f"the discovery document at {url}: {exc.message}") from exc

    def _verifier(self, jwk: Mapping[str, Any], alg: str) -> jwt.PyJWK:
        cache_key = (json.dumps(jwk, sort_keys=True), alg)
        verifier = self._verifiers.get(cache_key)
        if verifier is None:
            try:
                verifier = jwt.PyJWK(dict(jwk), algorithm=alg)
            except jwt.PyJWTError as exc:
                log.warning("the issuer's key %r is unusable: %s", jwk.get("kid"), exc)
                raise NotAuthenticated(
                    f"the issuer's key {jwk.get('kid')!r} cannot verify {alg} tokens"
                ) from exc
            self._verifiers[cache_key] = verifier
        return verifier


def _named(keys: Iterable[Mapping[str, Any]], kid: str | None) -> list[Mapping[str, Any]]:
    """The keys of id ``kid`` (every key when the token names none)."""
    return [k for k in keys if kid is None or k.get("kid") == kid]


def _fits(jwk: Mapping[str, Any], alg: str) -> bool:
    """Whether ``jwk`` may verify ``alg``: right key type and curve, and its own ``alg``."""
    if jwk.get("kty") != KEY_TYPES.get(alg) or jwk.get("alg", alg) != alg:
        return False
    curves = CURVES.get(alg)
    return curves is None or jwk.get("crv") in curves


# --- the authenticator ----------------------------------------------------------------------

_REASONS: tuple[tuple[type[jwt.PyJWTError], str], ...] = (
    (jwt.ExpiredSignatureError, "the bearer token has expired: get a new one from your provider"),
    (
        jwt.ImmatureSignatureError,
        "the bearer token is not yet valid (its nbf or iat lies in the future)",
    ),
    (jwt.InvalidSignatureError, "the bearer token's signature does not verify (bad signature)"),
    (jwt.InvalidAlgorithmError, "the bearer token's algorithm is not accepted (unsupported)"),
)


@dataclass(frozen=True)
class Issuer:
    """A trusted issuer at run time: its settings and its own keys."""

    settings: IssuerSettings
    keys: IssuerKeys


class OidcAuthenticator:
    """Verifies OpenID Connect bearer tokens (JWT access tokens) of the trusted issuers."""

    name = "oidc"
    offers = "OpenID Connect bearer tokens"

    def __init__(
        self,
        issuers: Iterable[Issuer],
        *,
        realm: str,
        leeway: float = 30.0,
        cache_seconds: float = 60.0,
    ) -> None:
        self._issuers: dict[str, Issuer] = {}
        for issuer in issuers:
            if issuer.settings.issuer in self._issuers:
                raise ConfigurationError(f"{issuer.settings.label}: issuer listed twice")
            self._issuers[issuer.settings.issuer] = issuer
        if not self._issuers:
            raise ConfigurationError("oidc_issuer is empty: name the issuer whose tokens count")
        self._realm = realm
        self._leeway = leeway
        self._cache_seconds = cache_seconds
        self._cache: dict[bytes, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    @property
    def issuers(self) -> tuple[str, ...]:
        """The trusted issuers' ``iss``, first one first."""
        return tuple(self._issuers)

    def challenge(self, base_url: str) -> str:
        return f'Bearer realm="{self._realm}"'

    def authenticate(self, credentials: Credentials) -> Principal | None:
        token = credentials.bearer
        if token is None:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        now = time.time()
        with self._lock:
            cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            return cached[0]
        claims = self.verify(token)
        principal = self._issuers[claims["iss"]].settings.claims.principal(claims)
        self._remember(digest, principal, min(float(claims["exp"]), now + self._cache_seconds))
        return principal

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` once every check passed; NotAuthenticated says which failed."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"the bearer token is not a well-formed JWT: {exc}") from exc
        issuer = self._issuer_of(token)
        settings = issuer.settings
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in settings.algorithms:
            raise NotAuthenticated(
                f"the bearer token's algorithm {alg!r} is not accepted (unsupported algorithm): "
                f"this server accepts {', '.join(settings.algorithms)}"
                + ("" if len(self._issuers) == 1 else f" from {settings.issuer}")
            )
        if kid is not None and not isinstance(kid, str):
            raise NotAuthenticated("the bearer token's key id (kid) is not a string")
        key = issuer.keys.key(kid, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=settings.audiences,
                issuer=settings.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(self._reason(exc, settings)) from exc
        return claims

    def _issuer_of(self, token: str) -> Issuer:
        """The trusted issuer the token claims to come from (its ``iss``, not yet verified:
        it only chooses whose keys and rules verify the token; an untrusted one fetches
        nothing)."""
        try:
            unverified = jwt.decode(
                token,
                options={
                    "verify_signature": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "verify_aud": False,
                    "verify_iss": False,
                },
            )
        except jwt.PyJWTError as exc:
            raise NotAuthenticated(f"the bearer token is not a well-formed JWT: {exc}") from exc
        iss = unverified.get("iss")
        if iss is None:
            raise NotAuthenticated("the bearer token lacks the required claim 'iss'")
        if not isinstance(iss, str):
            raise NotAuthenticated("the bearer token has the wrong issuer: its iss is not a string")
        issuer = self._issuers.get(iss)
        if issuer is None:
            raise NotAuthenticated(
                f"the bearer token has the wrong issuer: issuer {shown(iss)} is not trusted "
                f"here; this server accepts {', '.join(self._issuers)}"
            )
        return issuer

    def _reason(self, exc: jwt.PyJWTError, settings: IssuerSettings) -> str:
        if isinstance(exc, jwt.MissingRequiredClaimError):
            return f"the bearer token lacks the required claim {exc.claim!r}"
        if isinstance(exc, jwt.InvalidIssuerError):
            return f"the bearer token has the wrong issuer: this server accepts {settings.issuer}"
        if isinstance(exc, jwt.InvalidAudienceError):
            return "the bearer token has the wrong audience: its aud names none of " + ", ".join(
                settings.audiences
            )
        for cls, reason in _REASONS:
            if isinstance(exc, cls):
                return reason
        return f"the bearer token was not accepted: {exc}"

    def _remember(self, digest: bytes, principal: Principal, until: float) -> None:
        with self._lock:
            if len(self._cache) >= MAX_CACHED_TOKENS:
                now = time.time()
                self._cache = {d: e for d, e in self._cache.items() if e[1] > now}
                if len(self._cache) >= MAX_CACHED_TOKENS:
                    self._cache.clear()
            self._cache[digest] = (principal, until)
