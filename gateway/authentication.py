"""The authentication chain of a gateway, built from the setting ``auth_methods``.

Each method name maps to a factory that imports its authenticator lazily (python-ldap and the
JWT libraries are loaded only where configured). A factory gets the resolved configuration and
the accounts service and returns an :class:`~auth.chain.Authenticator`.
"""

from __future__ import annotations

from collections.abc import Callable

from auth.chain import AuthChain, Authenticator
from gateway.config import Config
from gateway.errors import ConfigurationError
from gateway.services.accounts import Accounts

Factory = Callable[[Config, Accounts], Authenticator]


def _local(config: Config, accounts: Accounts) -> Authenticator:
    from auth.local import LocalAuthenticator

    return LocalAuthenticator(accounts.local_user, realm=config.auth_realm)


def _oidc(config: Config, accounts: Accounts) -> Authenticator:
    from auth.oidc import Issuer, IssuerKeys, OidcAuthenticator
    from auth.oidc_issuers import issuer_settings

    issuers = [
        Issuer(
            settings,
            IssuerKeys(  # one per issuer: a key of one never verifies a token of another
                issuer=settings.issuer,
                jwks_url=settings.jwks_url,
                cache_seconds=config.oidc_jwks_cache_seconds,
                refetch_seconds=config.oidc_jwks_refetch_seconds,
                timeout=config.oidc_http_timeout,
            ),
        )
        for settings in issuer_settings(config.as_dict())
    ]
    return OidcAuthenticator(
        issuers,
        realm=config.auth_realm,
        leeway=config.oidc_leeway,
        cache_seconds=config.oidc_token_cache_seconds,
    )


def _token(config: Config, accounts: Accounts) -> Authenticator:
    from auth.tokens import TokenAuthenticator, connect

    if config.auth_token_ttl <= 0:
        raise ConfigurationError("auth_token_ttl must be a positive number of seconds")
    return TokenAuthenticator(
        connect(config.effective_redis_url),
        ttl=config.auth_token_ttl,
        cache_seconds=config.auth_token_cache_seconds,
    )


def _ldap(config: Config, accounts: Accounts) -> Authenticator:
    from auth.ldap import LdapAuthenticator, LdapSettings

    return LdapAuthenticator(LdapSettings.from_settings(config.as_dict()), realm=config.auth_realm)


def _x509(config: Config, accounts: Accounts) -> Authenticator:
    from auth.x509 import from_settings

    return from_settings(config.as_dict())


FACTORIES: dict[str, Factory] = {
    "local": _local,
    "ldap": _ldap,
    "x509": _x509,
    "oidc": _oidc,
    "token": _token,
}


def method_names(config: Config) -> list[str]:
    names = [n.strip() for n in config.auth_methods.split(",") if n.strip()]
    unknown = [n for n in names if n not in FACTORIES]
    if unknown or not names:
        raise ConfigurationError(
            f"auth_methods: {', '.join(unknown) or 'empty'}; choose from {', '.join(FACTORIES)}"
        )
    if len(set(names)) != len(names):
        raise ConfigurationError(f"auth_methods names a method twice: {config.auth_methods}")
    return names


def build_chain(config: Config, accounts: Accounts) -> AuthChain:
    return AuthChain(
        [FACTORIES[name](config, accounts) for name in method_names(config)], admit=accounts.admit
    )
