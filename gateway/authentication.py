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


FACTORIES: dict[str, Factory] = {
    "local": _local,
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
