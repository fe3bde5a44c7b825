"""The application factory: one Flask app serving OCCI at the root and CDMI under ``cdmi_root``."""

from __future__ import annotations

import contextlib
import inspect
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Flask

import auth.flask
from auth.chain import AuthChain
from backends.blobfs import FilesystemBlobStore
from cdmi.http.views import bp as cdmi_blueprint
from gateway import audit, hardening, tokens_http
from gateway.audit import AuditLog
from gateway.authentication import build_chain
from gateway.config import Config, load_config
from gateway.queue import JobQueue, connect
from gateway.ratelimit import RateLimiter
from gateway.services.accounts import Accounts
from gateway.services.catalog import Catalog
from gateway.services.cdmi import CdmiService
from gateway.services.cdmi_exports import OcciExports
from gateway.services.entities import OcciService
from gateway.services.mixins import MixinService
from gateway.store.db import Store
from occi.http.views import bp as occi_blueprint


@dataclass
class Nimbo:
    """Everything a request handler may reach, stored in ``app.extensions['nimbostratus']``."""

    config: Config
    store: Store
    queue: JobQueue
    catalog: Catalog
    occi: OcciService
    mixins: MixinService
    accounts: Accounts
    auth: AuthChain
    cdmi: CdmiService
    limiter: RateLimiter
    audit: AuditLog


def build(config: Config) -> Nimbo:
    store = Store(config.effective_database_url)
    store.create_schema()
    queue = JobQueue(connect(config.effective_redis_url), config)
    catalog = Catalog(store, config)
    occi = OcciService(store, queue, catalog, config)
    accounts = Accounts(store, admin_groups=_names(config.auth_admin_groups))
    limiter = RateLimiter(queue.connection, config)
    return Nimbo(
        config,
        store,
        queue,
        catalog,
        occi,
        MixinService(store, catalog),
        accounts,
        limiter.guard(build_chain(config, accounts)),
        CdmiService(
            store,
            FilesystemBlobStore(config.effective_blob_dir),
            config,
            exports=OcciExports(store, occi),
        ),
        limiter=limiter,
        audit=AuditLog(store, queue.connection, config),
    )


class GatewayFlask(Flask):
    """Flask, remembering which hooks and views are coroutine functions.

    Flask asks ``inspect.iscoroutinefunction`` of every ``before_request``, ``after_request``
    and teardown hook and of the view on every request (about ten times a request here), and
    the answer for a function never changes. Remembered per function object, weakly: a
    callback made for one request (``after_this_request``) is forgotten with it, and a bound
    method (a new object each time) is simply asked again.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._synchronous: weakref.WeakKeyDictionary[Callable[..., Any], bool] = (
            weakref.WeakKeyDictionary()
        )

    def ensure_sync(self, func: Callable[..., Any]) -> Callable[..., Any]:
        try:
            synchronous = self._synchronous[func]
        except (KeyError, TypeError):  # TypeError: no weak reference to it possible
            synchronous = not inspect.iscoroutinefunction(func)
            with contextlib.suppress(TypeError):
                self._synchronous[func] = synchronous
        return func if synchronous else super().ensure_sync(func)


def _names(value: str) -> frozenset[str]:
    return frozenset(n.strip() for n in value.split(",") if n.strip())


def create_app(config: Config | None = None, nimbo: Nimbo | None = None) -> Flask:
    config = config or load_config()
    nimbo = nimbo or build(config)
    logging.basicConfig(level=config.log_level)
    app = GatewayFlask("nimbostratus")
    app.config.update(
        NIMBO_PUBLIC_URL=config.public_url,
        NIMBO_PAGE_DEFAULT=config.page_max,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        NIMBO_CDMI_ROOT=config.cdmi_root,
        NIMBO_CDMI_MAX_JSON=config.cdmi_max_json_bytes,
        NIMBO_CDMI_REQUIRE_VERSION=config.cdmi_require_version_header,
    )
    app.extensions["nimbostratus"] = nimbo
    hardening.init_app(app, config)
    issues_tokens = nimbo.auth.find("token") is not None
    public_paths = tokens_http.PUBLIC_PATHS if issues_tokens else ()
    auth.flask.init_app(app, nimbo.auth, public_paths=public_paths)
    nimbo.limiter.init_app(app)  # around the authentication hook
    audit.init_app(app, nimbo.audit, config.cdmi_root)
    if issues_tokens:
        app.register_blueprint(tokens_http.bp)
    app.register_blueprint(cdmi_blueprint, url_prefix=config.cdmi_root.rstrip("/"))
    app.register_blueprint(occi_blueprint)
    return app
