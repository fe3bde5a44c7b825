"""HTTP Basic against an LDAP directory (python-ldap): search the user's DN, bind as it.

The flow for ``user:password`` that no earlier authenticator claimed:

1. an empty password is refused before anything is sent (a simple bind with a DN and no
   password is an *anonymous* bind, which a directory accepts: RFC 4513 section 5.1.2);
2. the service account (``ldap_bind_dn``; none: anonymous) searches ``ldap_user_base`` with
   ``ldap_user_filter``, the name escaped (RFC 4515) so it cannot change the filter: exactly
   one entry, else the name is unknown here (``None``: the chain answers its one refusal);
3. a bind as that entry's DN checks the password: refused -> ``NotAuthenticated(REFUSED)``;
4. the groups are read with ``ldap_group_filter`` under ``ldap_group_base``.

A successful check is remembered for ``ldap_cache_seconds`` as an HMAC of the password under a
per-process random key, as :mod:`auth.local` does; a wrong password never matches an entry.
Each thread keeps two connections (searches as the service account; binds as users) and opens
them again once when the server went away (a restarted slapd). Every python-ldap error is
translated here into :class:`~gateway.errors.ServiceUnavailable` (503: the directory cannot
answer; local users are not affected) and nothing from ``ldap`` leaves this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

import ldap
from ldap.filter import escape_filter_chars

from auth.chain import REFUSED
from auth.credentials import Credentials
from auth.login_cache import LoginCache
from auth.principal import Principal
from gateway.errors import ConfigurationError, NotAuthenticated, ServiceUnavailable

log = logging.getLogger(__name__)

T = TypeVar("T")

_UNREACHABLE = (ldap.SERVER_DOWN, ldap.CONNECT_ERROR, ldap.TIMEOUT)
# a user's bind refused: a wrong password (49), an entry that cannot bind with one (48), an
# account the directory disabled (389-DS and others answer 53)
_REFUSED_BINDS = (ldap.INVALID_CREDENTIALS, ldap.INAPPROPRIATE_AUTH, ldap.UNWILLING_TO_PERFORM)


@dataclass(frozen=True)
class LdapSettings:
    """The ``ldap_*`` settings (see :mod:`gateway.defaults` for their meaning)."""

    url: str
    user_base: str
    start_tls: bool = False
    ca_file: str = ""
    bind_dn: str = ""
    bind_password: str = field(default="", repr=False)
    user_filter: str = "(uid={user})"
    name_attr: str = "uid"
    display_name_attr: str = "cn"
    group_base: str = ""
    group_filter: str = "(|(member={dn})(memberUid={user}))"
    group_name_attr: str = "cn"
    timeout: float = 5.0
    cache_seconds: float = 60.0

    def __post_init__(self) -> None:
        scheme = self.url.partition("://")[0].lower()
        if scheme not in ("ldap", "ldaps", "ldapi"):
            raise ConfigurationError(
                f"ldap_url: {self.url!r} is not an ldap://, ldaps:// or ldapi:// URL"
            )
        if self.start_tls and scheme != "ldap":
            raise ConfigurationError("ldap_start_tls applies to ldap:// URLs only")
        if not self.user_base:
            raise ConfigurationError("ldap_user_base: the DN to search users under is empty")
        _check_template("ldap_user_filter", self.user_filter, required="user")
        _check_template("ldap_group_filter", self.group_filter)
        if self.timeout <= 0:
            raise ConfigurationError("ldap_timeout must be positive")

    @classmethod
    def from_settings(cls, values: Mapping[str, Any]) -> LdapSettings:
        """From the resolved configuration (``Config.as_dict()``): every ``ldap_<field>``."""
        return cls(**{f.name: values[f"ldap_{f.name}"] for f in fields(cls)})


def _check_template(setting: str, template: str, *, required: str = "") -> None:
    try:
        template.format(user="u", dn="d")
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigurationError(
            f"{setting}: {template!r} may use only {{user}} and {{dn}} ({exc})"
        ) from exc
    if required and f"{{{required}}}" not in template:
        raise ConfigurationError(f"{setting}: {template!r} must contain {{{required}}}")
    if not (template.startswith("(") and template.endswith(")")):
        raise ConfigurationError(f"{setting}: {template!r} is not an LDAP filter in parentheses")


@dataclass(frozen=True)
class DirectoryEntry:
    """A person found in the directory."""

    dn: str
    name: str
    display_name: str


class Directory:
    """The python-ldap boundary: searches and binds, each thread on its own connections."""

    def __init__(self, settings: LdapSettings) -> None:
        self.settings = settings
        self._local = threading.local()

    # --- what the authenticators ask -------------------------------------------------------

    def find_user(self, user: str) -> DirectoryEntry | None:
        """The one entry ``ldap_user_filter`` finds for the name ``user`` (None: none or many)."""
        return self.find_matching(self.settings.user_filter, name=user, user=user)

    def find_matching(
        self, template: str, *, name: str = "", **values: str
    ) -> DirectoryEntry | None:
        """The one entry the filter ``template`` finds with ``values`` escaped into it."""
        escaped = {key: escape_filter_chars(value) for key, value in values.items()}
        return self.find(template.format(**escaped), name=name)

    def find(self, filterstr: str, *, name: str = "") -> DirectoryEntry | None:
        """The one entry under ``ldap_user_base`` matching ``filterstr`` (already escaped).

        Its name is the value of ``ldap_name_attr`` equal to ``name`` but for case (so that
        ``ALICE`` is the account ``alice``), else the attribute's first value."""
        s = self.settings

        def search(conn: Any) -> list[tuple[str | None, dict[str, list[bytes]]]] | None:
            try:
                return conn.search_ext_s(
                    s.user_base,
                    ldap.SCOPE_SUBTREE,
                    filterstr,
                    [s.name_attr, s.display_name_attr],
                    timeout=s.timeout,
                    sizelimit=2,
                )
            except ldap.SIZELIMIT_EXCEEDED:
                return None

        found = self._run("search", "searching for a user", search)
        entries = [(dn, attrs) for dn, attrs in found or () if dn]
        if found is None or len(entries) > 1:
            log.warning("LDAP filter %s matches several entries: refused", filterstr)
            return None
        if not entries:
            return None
        dn, attrs = entries[0]
        names = _values(attrs, s.name_attr)
        if not names:
            log.warning("LDAP entry %s has no %s: refused", dn, s.name_attr)
            return None
        chosen = next((n for n in names if n.casefold() == name.casefold()), names[0])
        return DirectoryEntry(dn, chosen, _first(attrs, s.display_name_attr))

    def check_password(self, dn: str, password: str) -> bool:
        """Whether a simple bind as ``dn`` with ``password`` succeeds."""
        if not password:  # an unauthenticated bind "succeeds" with any DN (RFC 4513 5.1.2)
            return False

        def bind(conn: Any) -> bool:
            try:
                conn.simple_bind_s(dn, password)
            except _REFUSED_BINDS as exc:
                log.debug("LDAP bind as %s refused: %s", dn, _describe(exc))
                return False
            return True

        return self._run("bind", "checking a password", bind)

    def groups_of(self, entry: DirectoryEntry) -> frozenset[str]:
        """The names of the groups ``ldap_group_filter`` finds for ``entry``."""
        s = self.settings
        if not s.group_base:
            return frozenset()
        filterstr = s.group_filter.format(
            dn=escape_filter_chars(entry.dn), user=escape_filter_chars(entry.name)
        )
        found = self._run(
            "search",
            "reading groups",
            lambda conn: conn.search_ext_s(
                s.group_base, ldap.SCOPE_SUBTREE, filterstr, [s.group_name_attr], timeout=s.timeout
            ),
        )
        return frozenset(
            name for dn, attrs in found if dn for name in _values(attrs, s.group_name_attr)
        )

    def close(self) -> None:
        """Close this thread's connections."""
        for role in ("search", "bind"):
            self._drop(role)

    # --- connections -----------------------------------------------------------------------

    def _run(
        self, role: str, doing: str, operation: Callable[[Any], T], *, retry: bool = True
    ) -> T:
        """``operation(connection)`` on this thread's ``role`` connection, every ldap error
        translated. A connection opened earlier that fails as unreachable is opened again
        once: the server may have restarted since."""
        reused = getattr(self._local, role, None) is not None
        try:
            return operation(self._connection(role))
        except _UNREACHABLE as exc:
            self._drop(role)
            if not (retry and reused):
                raise self._unreachable(exc) from exc
            log.info("LDAP connection to %s lost (%s); reconnecting", self.settings.url, exc)
        except ldap.LDAPError as exc:
            self._drop(role)
            log.warning("LDAP error while %s at %s: %s", doing, self.settings.url, exc)
            raise ServiceUnavailable(
                f"the LDAP directory {self.settings.url} answered an error while {doing} "
                f"({_describe(exc)}); local users are not affected"
            ) from exc
        return self._run(role, doing, operation, retry=False)

    def _connection(self, role: str) -> Any:
        conn = getattr(self._local, role, None)
        if conn is None:
            conn = self._open(bind_service=role == "search")
            setattr(self._local, role, conn)
        return conn

    def _open(self, *, bind_service: bool) -> Any:
        s = self.settings
        conn = ldap.initialize(s.url)
        conn.set_option(ldap.OPT_PROTOCOL_VERSION, ldap.VERSION3)
        conn.set_option(ldap.OPT_REFERRALS, 0)
        conn.set_option(ldap.OPT_NETWORK_TIMEOUT, s.timeout)
        conn.set_option(ldap.OPT_TIMEOUT, s.timeout)
        conn.timeout = s.timeout  # the synchronous calls' wait for an answer
        if s.start_tls or s.url.lower().startswith("ldaps:"):
            conn.set_option(ldap.OPT_X_TLS_REQUIRE_CERT, ldap.OPT_X_TLS_DEMAND)
            if s.ca_file:
                conn.set_option(ldap.OPT_X_TLS_CACERTFILE, s.ca_file)
            conn.set_option(ldap.OPT_X_TLS_NEWCTX, 0)  # last: applies the options above
        if s.start_tls:
            conn.start_tls_s()
        if bind_service and s.bind_dn:
            try:
                conn.simple_bind_s(s.bind_dn, s.bind_password)
            except ldap.INVALID_CREDENTIALS as exc:
                log.error("LDAP %s refused the service account %s", s.url, s.bind_dn)
                raise ServiceUnavailable(
                    f"the LDAP directory {s.url} refused this gateway's service account "
                    "(ldap_bind_dn, ldap_bind_password); local users are not affected"
                ) from exc
        return conn

    def _drop(self, role: str) -> None:
        conn = getattr(self._local, role, None)
        setattr(self._local, role, None)
        if conn is not None:
            with contextlib.suppress(ldap.LDAPError):  # it is gone either way
                conn.unbind_s()

    def _unreachable(self, exc: ldap.LDAPError) -> ServiceUnavailable:
        log.warning("LDAP directory %s unreachable: %s", self.settings.url, exc)
        return ServiceUnavailable(
            f"the LDAP directory {self.settings.url} cannot be reached ({_describe(exc)}); "
            "local users are not affected"
        )


def _describe(exc: ldap.LDAPError) -> str:
    detail = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
    desc, info = str(detail.get("desc", type(exc).__name__)), str(detail.get("info", ""))
    return f"{desc}: {info}" if info else desc


def _values(attrs: Mapping[str, list[bytes]], name: str) -> list[str]:
    for key, values in attrs.items():
        if key.lower() == name.lower():
            return [v.decode("utf-8", "replace") for v in values]
    return []


def _first(attrs: Mapping[str, list[bytes]], name: str) -> str:
    values = _values(attrs, name)
    return values[0] if values else ""


class LdapAuthenticator:
    """Checks HTTP Basic credentials against an LDAP directory."""

    name = "ldap"
    offers = "HTTP Basic"

    def __init__(
        self, settings: LdapSettings, *, realm: str, directory: Directory | None = None
    ) -> None:
        self.settings = settings
        self.directory = directory or Directory(settings)
        self._realm = realm
        self._logins = LoginCache()

    def challenge(self, base_url: str) -> str:
        return f'Basic realm="{self._realm}"'

    def authenticate(self, credentials: Credentials) -> Principal | None:
        if credentials.basic is None or not credentials.basic[0]:
            return None
        user, password = credentials.basic
        if not password:
            raise NotAuthenticated(REFUSED)
        cached = self._logins.find(user, password)
        if cached is not None:
            return cached
        entry = self.directory.find_user(user)
        if entry is None:
            # as long as a wrong password takes: a bind that cannot succeed
            self.directory.check_password(self._nobody(), os.urandom(16).hex())
            return None
        if not self.directory.check_password(entry.dn, password):
            raise NotAuthenticated(REFUSED)
        principal = self.principal(entry)
        self._logins.remember(user, password, principal, self.settings.cache_seconds)
        return principal

    def principal(self, entry: DirectoryEntry, *, source: str = "ldap") -> Principal:
        """The principal of a directory entry, with its groups."""
        return Principal(
            name=entry.name,
            display_name=entry.display_name or entry.name,
            groups=self.directory.groups_of(entry),
            source=source,
        )

    def forget(self, user: str) -> None:
        self._logins.forget(user)

    def _nobody(self) -> str:
        return f"{self.settings.name_attr}=nimbo-no-such-user,{self.settings.user_base}"
