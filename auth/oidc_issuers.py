"""The trusted OpenID Connect issuers as configured, and how each maps claims to a principal.

The flat ``oidc_*`` settings describe the first issuer, each entry of ``oidc_issuers`` one more
(:func:`issuer_settings`); every entry is checked when the configuration is read, and an error
names the entry and the key. Each issuer has its own audience, algorithms (asymmetric only),
key URL and :class:`ClaimMapping`. Users of different issuers never share a name: the first
issuer may keep bare names, every other has a ``user_prefix``, no prefix begins another, and a
bare name that begins with another issuer's prefix is refused. Verification itself is
:mod:`auth.oidc`'s.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from auth.principal import Principal
from gateway.defaults import DEFAULTS
from gateway.errors import ConfigurationError, NotAuthenticated

# Asymmetric JWS algorithms -> the JWK key type that verifies them (RFC 7518, RFC 8037).
KEY_TYPES: dict[str, str] = {
    **dict.fromkeys(("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"), "RSA"),
    **dict.fromkeys(("ES256", "ES384", "ES512"), "EC"),
    "EdDSA": "OKP",
}
# ... and the curves an EC or OKP key must be on for them.
CURVES: dict[str, tuple[str, ...]] = {
    "ES256": ("P-256",),
    "ES384": ("P-384",),
    "ES512": ("P-521",),
    "EdDSA": ("Ed25519", "Ed448"),
}
DISPLAY_CLAIMS = ("name", "preferred_username")


# --- configuration --------------------------------------------------------------------------


def pinned_algorithms(value: str, setting: str = "oidc_algorithms") -> tuple[str, ...]:
    """The comma-separated algorithms as a tuple; refuses ``none``, HS* and unknowns."""
    names = tuple(dict.fromkeys(n.strip() for n in value.split(",") if n.strip()))
    if not names:
        raise ConfigurationError(f"{setting} is empty: name at least one, e.g. RS256")
    for name in names:
        if name.lower() == "none":
            raise ConfigurationError(f"{setting}: 'none' (unsigned tokens) is never accepted")
        if name.upper().startswith("HS"):
            raise ConfigurationError(
                f"{setting}: {name} is a shared-secret algorithm; an issuer's public keys "
                "cannot verify it, and accepting it would let anyone sign with the public key"
            )
        if name not in KEY_TYPES:
            raise ConfigurationError(
                f"{setting}: unknown algorithm {name!r}; choose from {', '.join(KEY_TYPES)}"
            )
    return names


def group_pattern(value: str, setting: str = "oidc_group_pattern") -> re.Pattern[str] | None:
    """The group pattern compiled (None when empty); it must hold exactly one group."""
    if not value:
        return None
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ConfigurationError(f"{setting} is not a regular expression: {exc}") from exc
    if pattern.groups != 1:
        raise ConfigurationError(
            f"{setting} must hold exactly one group (it holds {pattern.groups}): "
            "the group's text becomes the group name"
        )
    return pattern


def http_url(value: str, setting: str) -> str:
    """``value`` if it is an http(s) URL with a host, else a ConfigurationError."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{setting} must be an http(s) URL, not {value!r}")
    return value


# --- claims -> principal --------------------------------------------------------------------


@dataclass(frozen=True)
class ClaimMapping:
    """Which claims name the user and the groups, and how entitlements become groups.

    The user name is ``user_prefix`` followed by the user claim. An issuer without a prefix
    refuses names that begin with one of ``reserved`` (the other issuers' prefixes): they
    are theirs."""

    user_claim: str = "sub"
    groups_claim: str = "eduperson_entitlement"
    pattern: re.Pattern[str] | None = None
    user_prefix: str = ""
    reserved: tuple[str, ...] = ()

    def principal(self, claims: Mapping[str, Any]) -> Principal:
        value = claims.get(self.user_claim)
        if not isinstance(value, str) or not value:
            raise NotAuthenticated(
                f"the bearer token lacks the user claim {self.user_claim!r} (a string)"
            )
        if not self.user_prefix and value.startswith(self.reserved):
            prefix = next(p for p in self.reserved if value.startswith(p))
            raise NotAuthenticated(
                f"the bearer token's user {shown(value)} is refused: names beginning with "
                f"{prefix!r} belong to the users of another trusted issuer"
            )
        name = self.user_prefix + value
        display = next(
            (v for c in DISPLAY_CLAIMS if isinstance(v := claims.get(c), str) and v), name
        )
        return Principal(name=name, display_name=display, groups=self.groups(claims), source="oidc")

    def groups(self, claims: Mapping[str, Any]) -> frozenset[str]:
        value = claims.get(self.groups_claim)
        if isinstance(value, str):
            values = value.replace(",", " ").split()
        elif isinstance(value, list):
            values = [v for v in value if isinstance(v, str)]
        else:
            values = []
        if self.pattern is None:
            return frozenset(v for v in values if v)
        matches = (self.pattern.fullmatch(v) for v in values)
        return frozenset(m.group(1) for m in matches if m and m.group(1))


def shown(value: str) -> str:
    """``value`` quoted for a message, cut short when long (it comes from a client)."""
    return repr(value if len(value) <= 120 else value[:120] + "...")


# --- the trusted issuers --------------------------------------------------------------------

ENTRY_KEYS = (
    "issuer",
    "audience",
    "jwks_url",
    "algorithms",
    "user_claim",
    "groups_claim",
    "group_pattern",
    "user_prefix",
)
"""The keys of an ``oidc_issuers`` entry."""
USER_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+:-]*$")
"""A user_prefix: the start of a user name (gateway.services.accounts.USER_NAME)."""


@dataclass(frozen=True)
class IssuerSettings:
    """One trusted issuer as configured; ``label`` says where (``oidc_issuer``,
    ``oidc_issuers[1] (https://...)``) for messages."""

    label: str
    issuer: str
    jwks_url: str
    audiences: tuple[str, ...]
    algorithms: tuple[str, ...]
    claims: ClaimMapping


def issuer_settings(values: Mapping[str, Any]) -> tuple[IssuerSettings, ...]:
    """Every issuer the ``oidc`` method trusts, from the resolved settings
    (``Config.as_dict()``): the flat ``oidc_*`` settings first, when ``oidc_issuer`` is set
    or ``oidc_issuers`` is empty, then each entry of ``oidc_issuers`` in order.

    An entry's key left out takes the default of the flat setting of the same name (not its
    configured value); ``issuer`` and ``audience`` are required. Raises ConfigurationError,
    naming the entry and the key, for anything wrong: an unknown key, an issuer listed twice,
    a URL that is not http(s), a bad pattern, ``none`` or HS* among the algorithms, and two
    issuers that could give the same user name (see :class:`ClaimMapping`)."""
    entries = values.get("oidc_issuers") or []
    if not isinstance(entries, list):
        raise ConfigurationError("oidc_issuers must be a list of tables ([[oidc_issuers]])")
    issuers = []
    if values.get("oidc_issuer") or not entries:
        issuers.append(_flat_issuer(values))
    for number, entry in enumerate(entries):
        issuers.append(_entry_issuer(number, entry, first=not issuers))
    return _apart(issuers)


def _flat_issuer(values: Mapping[str, Any]) -> IssuerSettings:
    issuer = http_url(values["oidc_issuer"], "oidc_issuer")
    audiences = _names(values["oidc_audience"])
    if not audiences:
        raise ConfigurationError("oidc_audience is empty: name the audience of this server")
    return IssuerSettings(
        label="oidc_issuer",
        issuer=issuer,
        jwks_url=values["oidc_jwks_url"] and http_url(values["oidc_jwks_url"], "oidc_jwks_url"),
        audiences=audiences,
        algorithms=pinned_algorithms(values["oidc_algorithms"]),
        claims=ClaimMapping(
            user_claim=values["oidc_user_claim"],
            groups_claim=values["oidc_groups_claim"],
            pattern=group_pattern(values["oidc_group_pattern"]),
        ),
    )


def _entry_issuer(number: int, entry: Any, *, first: bool) -> IssuerSettings:
    label = f"oidc_issuers[{number}]"
    if not isinstance(entry, dict):
        raise ConfigurationError(
            f"{label} must be a table (TOML [[oidc_issuers]], a JSON object), not {entry!r}"
        )
    issuer = entry.get("issuer")
    if not isinstance(issuer, str) or not issuer:
        raise ConfigurationError(f"{label}: issuer is required (the exact iss of its tokens)")
    label = f"{label} ({issuer})"
    unknown = sorted(set(entry) - set(ENTRY_KEYS))
    if unknown:
        raise ConfigurationError(
            f"{label}: unknown key(s) {', '.join(map(str, unknown))}; "
            f"an entry holds {', '.join(ENTRY_KEYS)}"
        )
    http_url(issuer, f"{label}: issuer")
    jwks_url = _entry_text(entry, "jwks_url", label, "")
    audiences = _names(_entry_text(entry, "audience", label, ""))
    if not audiences:
        raise ConfigurationError(
            f"{label}: audience is required: the audience(s) this server answers to"
        )
    user_prefix = _entry_text(entry, "user_prefix", label, "")
    if user_prefix and not USER_PREFIX.match(user_prefix):
        raise ConfigurationError(
            f"{label}: user_prefix {user_prefix!r} must begin with a letter or digit and hold "
            "only letters, digits and . _ @ + : -"
        )
    if not user_prefix and not first:
        raise ConfigurationError(
            f"{label}: user_prefix is required: only the first issuer keeps bare user names, "
            "every other needs its own prefix (e.g. 'wlcg:') so that the same sub from two "
            "issuers never becomes one user"
        )
    user_claim = _entry_text(entry, "user_claim", label, _default("oidc_user_claim"))
    groups_claim = _entry_text(entry, "groups_claim", label, _default("oidc_groups_claim"))
    for key, value in (("user_claim", user_claim), ("groups_claim", groups_claim)):
        if not value:
            raise ConfigurationError(f"{label}: {key} is empty: name a claim")
    return IssuerSettings(
        label=label,
        issuer=issuer,
        jwks_url=jwks_url and http_url(jwks_url, f"{label}: jwks_url"),
        audiences=audiences,
        algorithms=pinned_algorithms(
            _entry_text(entry, "algorithms", label, _default("oidc_algorithms")),
            f"{label}: algorithms",
        ),
        claims=ClaimMapping(
            user_claim=user_claim,
            groups_claim=groups_claim,
            pattern=group_pattern(
                _entry_text(entry, "group_pattern", label, _default("oidc_group_pattern")),
                f"{label}: group_pattern",
            ),
            user_prefix=user_prefix,
        ),
    )


def _entry_text(entry: Mapping[str, Any], key: str, label: str, default: str) -> str:
    """The string ``entry[key]`` (a list of strings for audience and algorithms is joined)."""
    value = entry.get(key, default)
    listed = key in ("audience", "algorithms") and isinstance(value, list)
    if listed and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if not isinstance(value, str):
        raise ConfigurationError(f"{label}: {key} must be a string, not {value!r}")
    return value


def _default(setting: str) -> str:
    value: str = DEFAULTS[setting].default
    return value


def _names(value: str) -> tuple[str, ...]:
    return tuple(n.strip() for n in value.split(",") if n.strip())


def _apart(issuers: list[IssuerSettings]) -> tuple[IssuerSettings, ...]:
    """``issuers`` once no two share an issuer or could give the same user name; the one
    without a user_prefix (the first, if any) reserves the others' prefixes."""
    for later, one in enumerate(issuers):
        for other in issuers[:later]:
            if one.issuer == other.issuer:
                raise ConfigurationError(
                    f"{one.label}: issuer {one.issuer} is already configured as {other.label}: "
                    "each issuer is listed once"
                )
            mine, theirs = one.claims.user_prefix, other.claims.user_prefix
            if mine and theirs and (mine.startswith(theirs) or theirs.startswith(mine)):
                raise ConfigurationError(
                    f"{one.label}: user_prefix {mine!r} overlaps the user_prefix {theirs!r} of "
                    f"{other.label} (one begins the other): the two issuers could give the "
                    "same user names"
                )
    prefixes = tuple(i.claims.user_prefix for i in issuers if i.claims.user_prefix)
    return tuple(
        i
        if i.claims.user_prefix or not prefixes
        else replace(i, claims=replace(i.claims, reserved=prefixes))
        for i in issuers
    )
