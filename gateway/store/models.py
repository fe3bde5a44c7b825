"""Tables of the state store."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Double,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Long enough for federated names: an EGI Check-in subject is 64 hex digits and "@egi.eu".
USER_NAME_MAX = 255
# Groups come from the same sources (LDAP groups, OIDC entitlements such as EGI's URNs).
GROUP_NAME_MAX = 255


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    """An account. ``source`` is the authenticator that owns the name: ``local`` accounts have
    an scrypt password hash (see :mod:`auth.passwords`); accounts of external identities
    (``ldap``, ``oidc``, ``x509``) are made at their first request, with no password, and
    remember the display name and groups their source last reported."""

    __tablename__ = "users"

    name: Mapped[str] = mapped_column(String(USER_NAME_MAX), primary_key=True)
    password_hash: Mapped[str] = mapped_column(String(256), default="")
    source: Mapped[str] = mapped_column(String(16), default="local")
    display_name: Mapped[str] = mapped_column(String(255), default="")
    groups: Mapped[list[Any]] = mapped_column(JSON, default=list)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Host(Base):
    """A hypervisor host with a worker; capacity is what placement may hand out."""

    __tablename__ = "hosts"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    uri: Mapped[str] = mapped_column(String(1024))
    cores: Mapped[int] = mapped_column(Integer)
    memory_mib: Mapped[int] = mapped_column(BigInteger)
    # Sums over the entities placed here, kept by triggers (gateway.store.host_load).
    cores_used: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    memory_used_mib: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_seen: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Image(Base):
    """An OS template (``os_tpl``): registered bytes with a checksum."""

    __tablename__ = "images"

    term: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(255), default="")
    source: Mapped[str] = mapped_column(Text)  # a local path or a URL
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)  # sha256:HEX
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    owner: Mapped[str | None] = mapped_column(String(USER_NAME_MAX), nullable=True)  # None: public
    state: Mapped[str] = mapped_column(String(16), default="ready")  # ready | saving | error
    origin_compute: Mapped[str | None] = mapped_column(String(64), nullable=True)
    group: Mapped[str | None] = mapped_column(  # see gateway.services.tenancy
        "group", String(GROUP_NAME_MAX), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserMixin(Base):
    """A mixin made through the query interface (a tag)."""

    __tablename__ = "user_mixins"

    type_id: Mapped[str] = mapped_column(String(512), primary_key=True)
    scheme: Mapped[str] = mapped_column(String(512))
    term: Mapped[str] = mapped_column(String(128))
    title: Mapped[str] = mapped_column(String(255), default="")
    location: Mapped[str] = mapped_column(String(512), unique=True)
    depends: Mapped[list[Any]] = mapped_column(JSON, default=list)
    owner: Mapped[str] = mapped_column(String(USER_NAME_MAX), ForeignKey("users.name"))
    group: Mapped[str | None] = mapped_column(  # see gateway.services.tenancy
        "group", String(GROUP_NAME_MAX), nullable=True
    )


class EntityRow(Base):
    """Every OCCI entity (resources and links) of every kind.

    ``attributes`` holds the client-visible attributes except the state pair, which lives in
    its own columns because workers write it. Compute sizing is duplicated into ``cores`` and
    ``memory_mib`` so that placement can sum them in SQL.
    """

    __tablename__ = "entities"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(255), index=True)
    owner: Mapped[str] = mapped_column(String(USER_NAME_MAX), ForeignKey("users.name"), index=True)
    # The group whose members may see (and under group_policy "full" change) the entity; a
    # link's is its source compute's. See gateway.services.tenancy.
    group: Mapped[str | None] = mapped_column(
        "group", String(GROUP_NAME_MAX), nullable=True, index=True
    )
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(16))
    state_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), ForeignKey("hosts.name"), index=True)
    cores: Mapped[int] = mapped_column(Integer, default=0)
    memory_mib: Mapped[int] = mapped_column(BigInteger, default=0)
    source: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    target: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    target_id: Mapped[str | None] = mapped_column(String(64), index=True, nullable=True)
    deleting: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        Index("ix_entities_owner_kind", "owner", "kind", "created_at"),
        # a group's entities by kind (the group half of a listing's visibility condition).
        # The name is from when the quota check summed cores and memory from it.
        Index("ix_entities_group_load", "group", "kind", "cores", "memory_mib"),
    )


class EntityMixin(Base):
    """Mixins attached to an entity, in order (provider templates, context mixins, tags)."""

    __tablename__ = "entity_mixins"

    entity_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("entities.id", ondelete="CASCADE"), primary_key=True
    )
    mixin: Mapped[str] = mapped_column(String(512), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class Operation(Base):
    """One asynchronous change asked of a host: what, for which entity, and how it ended."""

    __tablename__ = "operations"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    entity_id: Mapped[str] = mapped_column(String(64), index=True)
    verb: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")  # queued|running|done|failed
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class Lease(Base):
    """An IP address handed to a network interface; unique per network by constraint."""

    __tablename__ = "leases"

    network_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    link_id: Mapped[str] = mapped_column(String(64), unique=True)
    mac: Mapped[str] = mapped_column(String(17))

    __table_args__ = (UniqueConstraint("network_id", "mac"),)


class Meta(Base):
    """Small counters, e.g. ``catalog_version`` bumped whenever images or user mixins change."""

    __tablename__ = "meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class CdmiObjectRow(Base):
    """A CDMI container or data object; its value lives in the blob store under ``id``.

    ``path`` is the object's path below the CDMI root (``""`` for the root, ``a/b/`` for a
    container, ``a/b/c`` for a data object) and None for an object reachable by ID only. It is
    unique, so a lookup by path is one indexed read; a move rewrites the paths of the subtree.
    ``metadata_`` holds user (and data-system) metadata only: storage-system metadata is made
    from the columns when rendered.
    """

    __tablename__ = "cdmi_objects"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # container | dataobject
    parent_id: Mapped[str | None] = mapped_column(
        String(80), ForeignKey("cdmi_objects.id", ondelete="CASCADE"), nullable=True
    )
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    path: Mapped[str | None] = mapped_column(String(1024), unique=True, nullable=True)
    owner: Mapped[str] = mapped_column(String(USER_NAME_MAX))
    group: Mapped[str | None] = mapped_column(  # GROUP@ in ACLs; see gateway.services.tenancy
        "group", String(GROUP_NAME_MAX), nullable=True
    )
    mimetype: Mapped[str] = mapped_column(String(255), default="text/plain")
    encoding: Mapped[str] = mapped_column(String(16), default="utf-8")
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, default=dict)
    acl: Mapped[list[Any]] = mapped_column(JSON, default=list)
    exports: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    extra: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    completion: Mapped[str] = mapped_column(String(255), default="Complete")
    ctime: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    mtime: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    atime: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    acount: Mapped[int] = mapped_column(BigInteger, default=0)
    mcount: Mapped[int] = mapped_column(BigInteger, default=0)

    __table_args__ = (Index("ix_cdmi_objects_parent_name", "parent_id", "name"),)


class CdmiExport(Base):
    """A CDMI container exported to OCCI (``OCCI/iSCSI``): the storage entity that carries it.

    The worker that provisions ``storage_id`` fills the volume with an image of the
    container's subtree (see :mod:`gateway.services.cdmi_exports`)."""

    __tablename__ = "cdmi_exports"

    container_id: Mapped[str] = mapped_column(
        String(80), ForeignKey("cdmi_objects.id", ondelete="CASCADE"), primary_key=True
    )
    storage_id: Mapped[str] = mapped_column(String(64), unique=True)
    protocol: Mapped[str] = mapped_column(String(32), default="OCCI/iSCSI")


class QuotaLimit(Base):
    """A quota override of one user or group (``nimbo quota set``): ``maximum`` of
    ``resource`` (see :mod:`gateway.services.quotas`), None for unlimited. Resources without
    a row take the defaults of the settings ``quota_user_defaults``/``quota_group_defaults``."""

    __tablename__ = "quota_limits"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # user | group
    name: Mapped[str] = mapped_column(String(USER_NAME_MAX), primary_key=True)
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    maximum: Mapped[float | None] = mapped_column(Float, nullable=True)


class QuotaUse(Base):
    """What one user or group holds of one resource (the quota check's use), kept by the
    triggers of :mod:`gateway.store.quota_use`: ``amount`` in the resource's unit (GiB for
    memory and storage). No row means nothing held."""

    __tablename__ = "quota_use"

    scope: Mapped[str] = mapped_column(String(8), primary_key=True)  # user | group
    name: Mapped[str] = mapped_column(String(USER_NAME_MAX), primary_key=True)  # or a group
    resource: Mapped[str] = mapped_column(String(32), primary_key=True)
    amount: Mapped[float] = mapped_column(Double, default=0.0)


class AuditRecord(Base):
    """One state-changing request, refused login or admin command (see :mod:`gateway.audit`):
    who (``principal`` and the ``source`` that vouched for it; for a refused login the name
    tried and no source), from where, what (``method``, ``path``, ``action``), to which entity
    or object (``kind``, ``entity``), the HTTP ``status`` and the operations it queued."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    principal: Mapped[str] = mapped_column(String(USER_NAME_MAX), default="")
    source: Mapped[str] = mapped_column(String(16), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(1024))
    action: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(64), default="")
    entity: Mapped[str] = mapped_column(String(1024), default="", index=True)
    status: Mapped[int] = mapped_column(Integer)
    operations: Mapped[list[Any]] = mapped_column(JSON, default=list)
    detail: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_audit_log_principal_at", "principal", "at"),)
