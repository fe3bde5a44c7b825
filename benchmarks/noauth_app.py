"""The baseline of ``benchmarks/auth.py``: nimbo itself, with authentication that checks nothing.

The same application as ``nimbo up`` serves (same configuration from the ``NIMBO_*``
environment, same store, same rendering and entity cache), except that its chain holds one
authenticator that takes any credentials as the configured principal without looking at
them. The difference between this app and a real method is therefore exactly what that
method costs per request. Served by ``gunicorn --config python:gateway.gunicorn_conf ...
noauth_app:app``; never use it outside a benchmark.
"""

from __future__ import annotations

import os

from auth.chain import AuthChain
from auth.credentials import Credentials
from auth.principal import Principal
from gateway.app import build, create_app
from gateway.config import load_config


class Unchecked:
    """Any credentials are ``NIMBO_BENCH_PRINCIPAL`` (an admin)."""

    name = "unchecked"
    offers = "anything"

    def __init__(self, user: str) -> None:
        self._principal = Principal(user, user, is_admin=True)

    def authenticate(self, credentials: Credentials) -> Principal:
        return self._principal

    def challenge(self, base_url: str) -> None:
        return None


config = load_config()
nimbo = build(config)
nimbo.auth = AuthChain([Unchecked(os.environ.get("NIMBO_BENCH_PRINCIPAL", "admin"))])
app = create_app(config, nimbo)
