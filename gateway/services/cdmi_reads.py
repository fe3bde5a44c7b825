"""CDMI reads: objects and containers as documents, value ranges, children, snapshots, the
server-made capability and domain objects, and the batched read counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from auth.principal import Principal
from cdmi import acl, capabilities, extents
from cdmi.model import (
    CAPABILITIES_DIR,
    CONTAINER,
    DATAOBJECT,
    DEFAULT_DOMAIN,
    DOMAINS_DIR,
    SNAPSHOTS_DIR,
    ObjectState,
    document,
)
from cdmi.paths import CAPABILITIES, DOMAINS, Target
from cdmi.request import CdmiType, Selection
from gateway.errors import Forbidden, InvalidRequest, NotFound
from gateway.services.cdmi_core import CdmiCore
from gateway.services.cdmi_state import (
    UPDATE_ACCESSED,
    ReadResult,
    Redirect,
    T,
    ValueRead,
    virtual_state,
)
from gateway.services.tenancy import acl_subject, scope_condition


class CdmiReads(CdmiCore):
    """The reads of the CDMI service."""

    def read(self, principal: Principal, target: Target, selection: Selection) -> ReadResult:
        """A CDMI read of a container or data object (capabilities and domains: see
        :meth:`read_special`)."""
        self._flush_access()
        with self.store.read() as reader:
            seen = self._seen_state(reader, target, principal)
            if seen is None:
                self._check_slash(reader, target, principal)
                raise NotFound(f"nothing at {self.root_uri}{self._shown(target)}")
            state, held = self.access.overlay(seen[0]), seen[1]
            if state.kind == CONTAINER and not target.slash:
                self._check_slash(reader, target, principal)
            if state.kind == DATAOBJECT and target.slash:
                raise NotFound(f"{self.uri_of(state)} is a data object, not a container")
            children = None
            children_range = None
            if state.kind == CONTAINER and (
                selection.wants("children") or selection.wants("childrenrange")
            ):
                children, children_range = self._children(reader, principal, state, selection)
            snapshots = self._snapshots(reader, state) if state.kind == CONTAINER else []
        readable_meta = held & acl.READ_METADATA == acl.READ_METADATA  # as _may (see _held)
        readable_value = held & acl.READ_OBJECT == acl.READ_OBJECT
        if not (readable_meta or readable_value):
            raise Forbidden(f"{principal.name} may not read {self._describe(state)}")
        self.access.record(state.id)
        doc = document(
            state, self.root_uri, state.parent_id, selection, metadata_readable=readable_meta
        )
        if snapshots and selection.wants("snapshots"):
            doc["snapshots"] = snapshots
        result = ReadResult(state, doc, media=state.media)
        if state.kind == CONTAINER:
            if not readable_value:
                children = children_range = None
            if selection.wants("childrenrange") and children_range is not None:
                result.children_range = children_range
            if selection.wants("children") and children is not None:
                result.children = children
            return result
        if readable_value and (
            selection.wants("value") or selection.wants("valuerange") or selection.value_range
        ):
            result.value = self._value_read(state, selection)
        return result

    def _value_read(self, state: ObjectState, selection: Selection) -> ValueRead:
        if selection.value_range is None:
            gap = extents.first_gap(state.written, 0, state.size)
            return ValueRead(state.id, 0, state.size, state.encoding, gap)
        first, last = selection.value_range
        if first >= state.size and not (first == 0 and state.size == 0):
            raise InvalidRequest(
                f"value range starts at {first}, past the end of the value ({state.size} bytes)"
            )
        end = min(last + 1, state.size)
        # A slice of UTF-8 may cut a character: ranges are always sent in base64.
        return ValueRead(
            state.id, first, end, "base64", extents.first_gap(state.written, first, end)
        )

    def _children(
        self, reader: Connection, principal: Principal, state: ObjectState, selection: Selection
    ) -> tuple[list[str], str]:
        query = (
            select(T.name, T.kind, T.owner, T.group, T.acl)
            .where(T.parent_id == state.id, T.name != SNAPSHOTS_DIR)
            .order_by(T.name)
        )
        scope = scope_condition(principal, T.group)
        rows = reader.execute(query if scope is None else query.where(scope)).all()
        names = []
        who = acl_subject(principal)
        policy = self.tenancy.group_aces()
        for name, kind, owner, group, stored_acl in rows:
            # A user lists what exists for them (see _sees): in the root, what they may read.
            aces = (*acl.from_stored(stored_acl or []), *policy)
            if state.path == "":
                if not acl.allowed(aces, who, owner, acl.READ_OBJECT, group):
                    continue
            elif not acl.granted(aces, who, owner, acl.ALL_PERMS, group):
                continue
            names.append(f"{name}/" if kind == CONTAINER else str(name))
        first = 0
        if selection.children_range is not None:
            first, last = selection.children_range
            names = names[first : last + 1]
        if len(names) > capabilities.CHILDREN_MAX:
            raise InvalidRequest(
                f"{len(names)} children; list at most {capabilities.CHILDREN_MAX} per request "
                "with ?children:<first>-<last>"
            )
        text = f"{first}-{first + len(names) - 1}" if names else ""
        return names, text

    def _snapshots(self, reader: Connection, state: ObjectState) -> list[str]:
        if state.path is None:
            return []
        prefix = f"{state.path}{SNAPSHOTS_DIR}/"
        rows = reader.execute(
            select(T.path)
            .where(T.parent_id == select(T.id).where(T.path == prefix).scalar_subquery())
            .order_by(T.path)
        ).scalars()
        return [self.root_uri + str(path) for path in rows]

    def read_after_write(self, principal: Principal, state: ObjectState) -> ReadResult:
        """The body of a 201: the object as created, without its value."""
        result = ReadResult(
            state, document(state, self.root_uri, state.parent_id, Selection()), media=state.media
        )
        if state.kind == CONTAINER:
            with self.store.read() as reader:
                result.children, result.children_range = self._children(
                    reader, principal, state, Selection()
                )
        return result

    def value(self, read: ValueRead) -> Iterator[bytes]:
        """The bytes of a value read, streamed from the blob store."""
        if read.end <= read.start:
            return iter(())
        return self.blobs.read(read.object_id, read.start, read.end)

    def plain_reader(
        self, principal: Principal, state: ObjectState
    ) -> Callable[[int, int], Iterator[bytes]]:
        """For a plain-HTTP read of a data object :meth:`read` returned: a byte-range reader
        of its value (the value's own bytes, so reading it takes READ_OBJECT)."""
        self._require(state, principal, acl.READ_OBJECT, "read")
        return lambda start, end: self.value(ValueRead(state.id, start, end, "base64"))

    def read_special(self, target: Target, *, legacy: bool) -> ReadResult:
        """Capability objects and the domain tree (server-made, read-only)."""
        if target.kind == CAPABILITIES:
            node = capabilities.TREE.get(
                target.rest if target.rest.endswith("/") or not target.rest else target.rest + "/"
            )
            if node is None:
                raise NotFound(f"no capability object {target.rest!r}")
            if not target.slash:
                raise Redirect(f"{self.root_uri}{CAPABILITIES_DIR}/{node.path}")
            return self._capability(node, legacy=legacy)
        if target.kind == DOMAINS:
            if target.rest not in self.domain_ids:
                raise NotFound(f"no domain {target.rest!r}")
            if not target.slash:
                raise Redirect(f"{self.root_uri}{DOMAINS_DIR}/{target.rest}/")
            return self._domain(target.rest)
        raise NotFound("not a server-made object")

    def _capability(self, node: capabilities.CapabilityNode, *, legacy: bool) -> ReadResult:
        root = f"{self.root_uri}{CAPABILITIES_DIR}/"
        doc: dict[str, Any] = {
            "objectType": str(CdmiType.CAPABILITY),
            "objectID": self.capability_ids[node.path],
        }
        if node.path:
            doc["objectName"] = node.path
            doc["parentURI"] = root
            doc["parentID"] = self.capability_ids[""]
        else:
            doc["objectName"] = f"{CAPABILITIES_DIR}/"
            doc["parentURI"] = self.root_uri
            doc["parentID"] = self.root_id
        doc["capabilities"] = capabilities.values(node, legacy=legacy)
        state = virtual_state(doc["objectID"], "capability")
        children = list(node.children)
        return ReadResult(
            state,
            doc,
            children=children,
            children_range=f"0-{len(children) - 1}" if children else "",
            media=CdmiType.CAPABILITY,
        )

    def _domain(self, rest: str) -> ReadResult:
        root = f"{self.root_uri}{DOMAINS_DIR}/"
        doc: dict[str, Any] = {
            "objectType": str(CdmiType.DOMAIN),
            "objectID": self.domain_ids[rest],
        }
        if rest:
            doc |= {"objectName": rest, "parentURI": root, "parentID": self.domain_ids[""]}
        else:
            doc |= {
                "objectName": f"{DOMAINS_DIR}/",
                "parentURI": self.root_uri,
                "parentID": self.root_id,
            }
        doc["domainURI"] = self.root_uri + DEFAULT_DOMAIN
        doc["capabilitiesURI"] = f"{self.root_uri}{CAPABILITIES_DIR}/domain/"
        doc["completionStatus"] = "Complete"
        doc["metadata"] = (
            {"cdmi_domain_enabled": "true", "cdmi_domain_delete_reassign": ""} if rest else {}
        )
        children = ["default/"] if not rest else []
        return ReadResult(
            virtual_state(doc["objectID"], "domain"),
            doc,
            children=children,
            children_range="0-0" if children else "",
            media=CdmiType.DOMAIN,
        )

    def special_for_id(self, object_id: str) -> Target | None:
        """The server-made object with this ID, as a target (served by ID like any other)."""
        for path, known in self.capability_ids.items():
            if known == object_id:
                return Target(CAPABILITIES, rest=path, slash=True)
        for rest, known in self.domain_ids.items():
            if known == object_id:
                return Target(DOMAINS, rest=rest, slash=True)
        return None

    def _flush_access(self) -> None:
        due = self.access.take_due()
        if not due:
            return
        counts = [
            {"object_id": object_id, "reads": count, "moment": moment}
            for object_id, (count, moment) in due.items()
        ]
        with self.store.session(write=True) as session:
            # Core on the session's connection: the ORM built and ran one UPDATE per object,
            # each with a synchronisation of the session, under the write lock.
            session.connection().execute(UPDATE_ACCESSED, counts)

    def flush(self) -> None:
        """Write every pending access count now (tests, shutdown)."""
        self.access.last_flush = 0.0
        self._flush_access()

