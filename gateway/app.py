"""The application factory: one Flask app serving OCCI at the root and CDMI under ``cdmi_root``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask

import auth.flask
from auth.local import LocalAuthenticator, UserRecord
from backends.blobfs import FilesystemBlobStore
from cdmi.http.views import bp as cdmi_blueprint
from gateway.config import Config, load_config
from gateway.queue import JobQueue, connect
from gateway.services.catalog import Catalog
from gateway.services.cdmi import CdmiService
from gateway.services.cdmi_exports import OcciExports
from gateway.services.entities import OcciService
from gateway.services.mixins import MixinService
from gateway.store.db import Store
from gateway.store.models import User
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
    authenticator: LocalAuthenticator
    cdmi: CdmiService


def user_lookup(store: Store):  # type: ignore[no-untyped-def]
    def lookup(name: str) -> UserRecord | None:
        with store.session() as session:
            user = session.get(User, name)
            if user is None:
                return None
            return UserRecord(user.name, user.password_hash, user.is_admin, user.disabled)

    return lookup


def build(config: Config) -> Nimbo:
    store = Store(config.effective_database_url)
    store.create_schema()
    queue = JobQueue(connect(config.effective_redis_url), config)
    catalog = Catalog(store, config)
    occi = OcciService(store, queue, catalog, config)
    return Nimbo(
        config,
        store,
        queue,
        catalog,
        occi,
        MixinService(store, catalog),
        LocalAuthenticator(user_lookup(store)),
        CdmiService(
            store,
            FilesystemBlobStore(config.effective_blob_dir),
            config,
            exports=OcciExports(store, occi),
        ),
    )


def create_app(config: Config | None = None, nimbo: Nimbo | None = None) -> Flask:
    config = config or load_config()
    nimbo = nimbo or build(config)
    logging.basicConfig(level=config.log_level)
    app = Flask("nimbostratus")
    app.config.update(
        NIMBO_PUBLIC_URL=config.public_url,
        NIMBO_AUTH_REALM=config.auth_realm,
        NIMBO_PAGE_DEFAULT=config.page_max,
        MAX_CONTENT_LENGTH=config.max_body_bytes,
        NIMBO_CDMI_ROOT=config.cdmi_root,
        NIMBO_CDMI_MAX_JSON=config.cdmi_max_json_bytes,
        NIMBO_CDMI_REQUIRE_VERSION=config.cdmi_require_version_header,
    )
    app.extensions["nimbostratus"] = nimbo
    auth.flask.init_app(app, nimbo.authenticator)
    app.register_blueprint(cdmi_blueprint, url_prefix=config.cdmi_root.rstrip("/"))
    app.register_blueprint(occi_blueprint)
    return app
