"""A tiny CDMI server (not ours: a WSGI toy, everything in memory, CDMI root at ``/``) that
can be broken on purpose, to show that each check of the CDMI suite can fail.

``make_app(breaks)`` builds it; ``breaks`` names faults from ``BREAKS``. Unbroken it is good
enough for the checks the tests aim at. Users ``toy`` and ``toy2`` (Basic, password = name).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

BREAKS = frozenset({
    "version-not-echoed", "unsupported-version-ok", "wrong-content-type", "no-406",
    "capability-booleans", "value-range-ignored", "children-range-ignored", "no-301",
    "slashless-container-ok", "delete-nonempty-409", "children-missing", "base64-garbled",
    "update-drops-mimetype", "bad-base64-ok", "no-206", "plain-wrong-type", "bad-crc",
    "corrupt-id-found", "container-by-id-404", "fields-ignored", "metadata-merged",
    "size-settable", "short-times", "bad-json-500", "acl-ignored", "acl-grant-ignored",
    "grant-allows-write", "copy-same-id", "container-copy-shallow", "move-keeps-source",
    "container-move-drops-children", "snapshot-live", "no-snapshots-field",
})
SNAPSHOTS = "cdmi_snapshots/"

VERSION = "X-CDMI-Specification-Version"
OBJECT, CONTAINER = "application/cdmi-object", "application/cdmi-container"
CAPABILITY = "application/cdmi-capability"
USERS = {"toy": "toy", "toy2": "toy2"}
STORAGE = ("cdmi_size", "cdmi_ctime", "cdmi_atime", "cdmi_mtime", "cdmi_acount",
           "cdmi_mcount", "cdmi_owner", "cdmi_acl")
CAPABILITIES = {
    "": {"cdmi_dataobjects": "true", "cdmi_object_access_by_ID": "true",
         "cdmi_post_dataobject_by_ID": "true", "cdmi_security_access_control": "true"},
    "container/": {"cdmi_list_children": "true", "cdmi_list_children_range": "true",
                   "cdmi_create_container": "true", "cdmi_delete_container": "true",
                   "cdmi_post_dataobject": "true", "cdmi_acl": "true",
                   "cdmi_copy_dataobject": "true", "cdmi_move_dataobject": "true",
                   "cdmi_copy_container": "true", "cdmi_move_container": "true",
                   "cdmi_snapshot": "true"},
    "dataobject/": {"cdmi_read_value": "true", "cdmi_read_value_range": "true",
                    "cdmi_modify_value": "true", "cdmi_modify_value_range": "true",
                    "cdmi_size": "true", "cdmi_ctime": "true", "cdmi_atime": "true",
                    "cdmi_mtime": "true", "cdmi_acl": "true"},
}


class Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def crc16(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def new_id(bad_crc: bool) -> str:
    raw = bytearray([0, 0x00, 0xE0, 0xF0, 0, 24, 0, 0]) + uuid.uuid4().bytes
    crc = crc16(bytes(raw)) ^ (0x0101 if bad_crc else 0)
    raw[6:8] = crc.to_bytes(2, "big")
    return raw.hex().upper()


def now(short: bool) -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ" if short else
                                      "%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Node:
    container: bool
    id: str
    owner: str
    value: bytes = b""
    mimetype: str = "text/plain"
    encoding: str = "utf-8"
    metadata: dict[str, Any] = field(default_factory=dict)
    acl: list[dict[str, str]] = field(default_factory=list)
    ctime: str = ""
    mtime: str = ""


def mask(value: str) -> int:
    return int(value, 16)


class Toy:
    def __init__(self, breaks: Iterable[str]) -> None:
        self.breaks = set(breaks)
        assert not self.breaks - BREAKS, self.breaks - BREAKS
        self.nodes: dict[str, Node] = {"": self.node(True, "toy", [])}

    def node(self, container: bool, owner: str, acl: list[dict[str, str]]) -> Node:
        stamp = now("short-times" in self.breaks)
        return Node(container, new_id("bad-crc" in self.breaks), owner,
                    acl=acl or [{"acetype": "0x00", "identifier": "OWNER@",
                                 "aceflags": "0x03", "acemask": "0x001F07FF"}],
                    ctime=stamp, mtime=stamp)

    # --- permissions ---

    def allowed(self, node: Node, user: str, bits: int) -> bool:
        if user == node.owner or "acl-ignored" in self.breaks:
            return True
        granted = 0
        for ace in node.acl:
            if ace["identifier"] in (user, "EVERYONE@"):
                granted |= mask(ace["acemask"])
        if "acl-grant-ignored" in self.breaks:
            granted = 0
        if "grant-allows-write" in self.breaks and granted:
            granted |= 0x2 | 0x40
        return granted & bits == bits

    def inherited(self, parent: Node, container: bool) -> list[dict[str, str]]:
        flag = 0x2 if container else 0x1
        return [a for a in parent.acl if mask(a["aceflags"]) & flag]

    # --- the application ---

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Refused as exc:
            response = Response(json.dumps({"error": str(exc)}), exc.status,
                                content_type="application/json")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        user = None
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            user = name if USERS.get(name) == password else None
        if user is None:
            return Response("who are you?", 401, {"WWW-Authenticate": 'Basic realm="toy"'})
        version = self.version(request)
        response = self.route(request, user)
        if version and "version-not-echoed" not in self.breaks:
            response.headers[VERSION] = version
        return response

    def version(self, request: Request) -> str | None:
        header = request.headers.get(VERSION)
        if header is None:
            return None
        offered = [v.strip() for v in header.split(",")]
        for ours in ("1.1.1", "1.1"):
            if ours in offered:
                return ours
        if "unsupported-version-ok" in self.breaks:
            return "1.1.1"
        raise Refused(400, "no common version")

    def route(self, request: Request, user: str) -> Response:
        raw = request.environ.get("REQUEST_URI", "").split("?")[0].lower()
        if "%2f" in raw:
            raise Refused(400, "encoded slash")
        path = request.path.lstrip("/")
        query = [q for q in unquote(request.query_string.decode()).split(";") if q]
        if path.startswith("cdmi_capabilities/"):
            return self.capability(request, path.removeprefix("cdmi_capabilities/"))
        if path.startswith("cdmi_objectid/"):
            rest = path.removeprefix("cdmi_objectid/")
            if not rest:
                if request.method != "POST":
                    raise Refused(400, "not listable")
                return self.put_object(request, user, f"cdmi_objectid/{uuid.uuid4()}", query)
            ident, slash, _ = rest.partition("/")
            path = self.by_id(ident, container=bool(slash))
        elif path and not path.endswith("/") and path + "/" in self.nodes:
            if "no-301" not in self.breaks:
                return Response(status=301, headers={"Location": f"/{path}/"})
            path += "/"
        cdmi = self.is_cdmi(request)
        if request.method == "GET":
            return self.get(request, user, path, query, cdmi)
        if request.method == "DELETE":
            return self.delete(request, user, path)
        if request.method == "POST":
            return self.post(request, user, path)
        if request.method == "PUT":
            return self.put(request, user, path, query)
        raise Refused(405, "no")

    def by_id(self, ident: str, *, container: bool) -> str:
        ident = ident.upper()
        raw = bytearray(bytes.fromhex(ident)) if re.fullmatch(r"[0-9A-F]+", ident) else b""
        ok = len(raw) >= 8 and "bad-crc" not in self.breaks
        if ok:
            stated = int.from_bytes(raw[6:8], "big")
            raw[6:8] = b"\0\0"
            ok = crc16(bytes(raw)) == stated
        for path, node in self.nodes.items():
            same = node.id == ident or ("corrupt-id-found" in self.breaks
                                        and node.id[:-1] == ident[:-1])
            if same and (ok or "corrupt-id-found" in self.breaks or "bad-crc" in self.breaks):
                if node.container and "container-by-id-404" in self.breaks:
                    break
                return path
        raise Refused(404, "no such ID")

    def is_cdmi(self, request: Request) -> bool:
        types = request.headers.get("Content-Type", "") + request.headers.get("Accept", "")
        return VERSION in request.headers or "application/cdmi-" in types

    # --- reads ---

    def capability(self, request: Request, rest: str) -> Response:
        if rest not in CAPABILITIES:
            raise Refused(404, "no such capability")
        values: dict[str, Any] = dict(CAPABILITIES[rest])
        if "capability-booleans" in self.breaks:
            values = {k: True for k in values}
        children = ["container/", "dataobject/"] if rest == "" else []
        doc = {"objectType": CAPABILITY, "objectID": new_id("bad-crc" in self.breaks),
               "objectName": rest or "cdmi_capabilities/", "parentURI": "/",
               "capabilities": values, "childrenrange": f"0-{len(children) - 1}"
               if children else "", "children": children}
        return self.json(request, doc, CAPABILITY)

    def json(self, request: Request, doc: dict[str, Any], media: str,
             status: int = 200) -> Response:
        accept = request.headers.get("Accept", "")
        if "application/cdmi-" in accept and media not in accept and \
                "no-406" not in self.breaks:
            raise Refused(406, "not that")
        if "wrong-content-type" in self.breaks:
            media = "application/json"
        return Response(json.dumps(doc), status, content_type=media)

    def find(self, user: str, path: str, bits: int = 0x1) -> Node:
        node = self.nodes.get(path)
        if node is None or not (self.allowed(node, user, 0x1) or self.allowed(node, user, bits)):
            raise Refused(404, "not found")
        if not self.allowed(node, user, bits):
            raise Refused(403, "forbidden")
        return node

    def document(self, path: str, node: Node, query: list[str]) -> dict[str, Any]:
        parent = path[:-1].rpartition("/")[0] if path.endswith("/") else path.rpartition("/")[0]
        name = path[len(parent):].lstrip("/")
        meta = {"cdmi_size": str(len(node.value)), "cdmi_ctime": node.ctime,
                "cdmi_atime": node.mtime, "cdmi_mtime": node.mtime, "cdmi_owner": node.owner,
                "cdmi_acl": node.acl, **node.metadata}
        doc: dict[str, Any] = {
            "objectType": CONTAINER if node.container else OBJECT, "objectID": node.id,
            "objectName": name, "parentURI": f"/{parent}/" if parent else "/",
            "capabilitiesURI": "/cdmi_capabilities/" + ("container/" if node.container
                                                         else "dataobject/"),
            "completionStatus": "Complete"}
        if path.startswith("cdmi_objectid/"):
            for key in ("objectName", "parentURI"):
                del doc[key]
        if not node.container:
            doc["mimetype"] = node.mimetype
        doc["metadata"] = meta
        prefixes = [q.split(":", 1)[1] for q in query if q.startswith("metadata:")]
        if prefixes and "fields-ignored" not in self.breaks:
            doc["metadata"] = {k: v for k, v in meta.items()
                               if any(k.startswith(p) for p in prefixes)}
        if node.container:
            children = sorted(p[len(path):] for p in self.nodes
                              if p.startswith(path) and p != path
                              and "/" not in p[len(path):].rstrip("/"))
            ranges = [q.split(":", 1)[1] for q in query if q.startswith("children:")]
            first = 0
            if ranges and "children-range-ignored" not in self.breaks:
                first, last = (int(x) for x in ranges[0].split("-"))
                children = children[first:last + 1]
            snapshots = sorted(f"/{p}" for p in self.nodes if p.startswith(path + SNAPSHOTS)
                               and p.endswith("/") and p.count("/") == path.count("/") + 2)
            if snapshots and "no-snapshots-field" not in self.breaks:
                doc["snapshots"] = snapshots
            doc["childrenrange"] = f"{first}-{first + len(children) - 1}" if children else ""
            if "children-missing" not in self.breaks:
                doc["children"] = children
        else:
            value, encoding, start = node.value, node.encoding, 0
            ranges = [q.split(":", 1)[1] for q in query if q.startswith("value:")]
            if ranges and "value-range-ignored" not in self.breaks:
                start, last = (int(x) for x in ranges[0].split("-"))
                value, encoding = value[start:last + 1], "base64"
            doc["valuetransferencoding"] = encoding
            doc["valuerange"] = f"{start}-{start + len(value) - 1}" if value else ""
            if encoding == "base64":
                data = value[1:] if "base64-garbled" in self.breaks else value
                doc["value"] = base64.b64encode(data).decode()
            else:
                doc["value"] = value.decode()
        fields = [q.split(":", 1)[0] for q in query]
        if fields and "fields-ignored" not in self.breaks:
            doc = {k: v for k, v in doc.items() if k in fields}
        return doc

    def get(self, request: Request, user: str, path: str, query: list[str],
            cdmi: bool) -> Response:
        node = self.find(user, path)
        if cdmi or node.container:
            media = CONTAINER if node.container else OBJECT
            return self.json(request, self.document(path, node, query), media)
        headers = {"Accept-Ranges": "bytes"}
        mimetype = "text/html" if "plain-wrong-type" in self.breaks else node.mimetype
        match = re.fullmatch(r"bytes=(\d+)-(\d+)", request.headers.get("Range", ""))
        if match and "no-206" not in self.breaks:
            start, last = int(match.group(1)), int(match.group(2))
            size = len(node.value)
            if start >= size:
                return Response(status=416, headers={"Content-Range": f"bytes */{size}"})
            last = min(last, size - 1)
            headers["Content-Range"] = f"bytes {start}-{last}/{size}"
            return Response(node.value[start:last + 1], 206, headers, content_type=mimetype)
        return Response(node.value, 200, headers, content_type=mimetype)

    # --- writes ---

    def parent_of(self, user: str, path: str) -> Node:
        trimmed = path[:-1] if path.endswith("/") else path
        parent_path = trimmed.rpartition("/")[0]
        parent = self.nodes.get(parent_path + "/" if parent_path else "")
        if parent is None:
            raise Refused(404, "no parent")
        if not self.allowed(parent, user, 0x2):
            raise Refused(403, "cannot add here")
        name = trimmed.rpartition("/")[2]
        if name.startswith("cdmi_"):
            raise Refused(400, "reserved name")
        return parent

    def body(self, request: Request) -> dict[str, Any]:
        data = request.get_data()
        if not data.strip():
            return {}
        try:
            body = json.loads(data)
        except ValueError:
            if "bad-json-500" in self.breaks:
                raise Refused(500, "oops") from None
            raise Refused(400, "bad JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "not an object")
        if "copy" in body and "value" in body:
            raise Refused(400, "two operations")
        return body

    def user_metadata(self, given: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, value in given.items():
            if name in STORAGE and not (name == "cdmi_size" and "size-settable" in self.breaks):
                continue
            if name.startswith("cdmi_") and name != "cdmi_size":
                raise Refused(400, "reserved metadata")
            out[name] = value
        return out

    def put(self, request: Request, user: str, path: str, query: list[str]) -> Response:
        ctype = request.headers.get("Content-Type", "").split(";")[0].strip()
        if ctype == CONTAINER or (not ctype and path.endswith("/")):
            if not path.endswith("/") and "slashless-container-ok" not in self.breaks:
                raise Refused(400, "a container URL ends with '/'")
            body = self.body(request) if ctype else {}
            if path in self.nodes:
                if "snapshot" in body:
                    self.snapshot(self.find(user, path, 0x10), path, str(body["snapshot"]))
                return Response(status=204)
            parent = self.parent_of(user, path)
            if "copy" in body or "move" in body:
                self.copy_or_move(user, path, body)
                return self.json(request, self.document(path, self.nodes[path], []), CONTAINER,
                                 201)
            acl = body.get("metadata", {}).get("cdmi_acl") or self.inherited(parent, True)
            node = self.node(True, user, acl)
            node.metadata = self.user_metadata(body.get("metadata", {}))
            self.nodes[path] = node
            return self.json(request, self.document(path, node, []), CONTAINER, 201)
        if ctype.startswith("application/cdmi-") and ctype != OBJECT:
            raise Refused(400, f"{ctype} is not offered")
        if path.endswith("/"):
            raise Refused(400, "a data object URL does not end with '/'")
        if ctype == OBJECT:
            return self.put_object(request, user, path, query)
        if path in self.nodes:
            node = self.find(user, path, 0x2)
        else:
            node = self.node(False, user, self.inherited(self.parent_of(user, path), False))
        node.value, node.mimetype = request.get_data(), ctype or "application/octet-stream"
        node.encoding = "utf-8" if ctype.startswith("text/") else "base64"
        node.mtime = now("short-times" in self.breaks)
        created = path not in self.nodes
        self.nodes[path] = node
        return Response(status=201 if created else 204)

    def put_object(self, request: Request, user: str, path: str,
                   query: list[str]) -> Response:
        body = self.body(request)
        value: bytes | None = None
        if "value" in body:
            encoding = body.get("valuetransferencoding", "utf-8")
            if encoding == "base64":
                try:
                    value = base64.b64decode(body["value"], validate=True)
                except (binascii.Error, ValueError):
                    if "bad-base64-ok" not in self.breaks:
                        raise Refused(400, "bad base64") from None
                    value = body["value"].encode()
            else:
                value = body["value"].encode()
        if path in self.nodes:
            node = self.find(user, path, 0x2)
            node.mtime = now("short-times" in self.breaks)
            ranges = [q.split(":", 1)[1] for q in query if q.startswith("value:")]
            if ranges and value is not None:
                start = int(ranges[0].split("-")[0])
                padded = node.value.ljust(start, b"\0")
                value = padded[:start] + value + padded[start + len(value):]
            if value is not None:
                node.value = value
            if "mimetype" in body or "update-drops-mimetype" in self.breaks:
                node.mimetype = body.get("mimetype", "application/octet-stream")
            if "metadata" in body:
                given = body["metadata"]
                if "cdmi_acl" in given:
                    node.acl = given["cdmi_acl"]
                names = [q.split(":", 1)[1] for q in query if q.startswith("metadata:")]
                user_meta = self.user_metadata(given)
                if names or "metadata-merged" in self.breaks:
                    node.metadata.update(user_meta)
                else:
                    node.metadata = user_meta
            return Response(status=204)
        parent = None if path.startswith("cdmi_objectid/") else self.parent_of(user, path)
        if "copy" in body or "move" in body:
            self.copy_or_move(user, path, body)
            return self.json(request, self.document(path, self.nodes[path], []), OBJECT, 201)
        given = body.get("metadata", {})
        acl = given.get("cdmi_acl") or (self.inherited(parent, False) if parent else [])
        node = self.node(False, user, acl)
        node.value = value or b""
        node.mimetype = body.get("mimetype", "text/plain")
        node.encoding = body.get("valuetransferencoding", "utf-8")
        node.metadata = self.user_metadata(given)
        self.nodes[path] = node
        doc = self.document(path, node, [])
        for key in ("valuetransferencoding", "valuerange", "value"):
            doc.pop(key, None)
        response = self.json(request, doc, OBJECT, 201)
        response.headers["Location"] = f"/cdmi_objectid/{node.id}"
        return response

    # --- copy, move, snapshots ---

    def copy_or_move(self, user: str, path: str, body: dict[str, Any]) -> None:
        """``path`` made from the object (and descendants) named by body's copy or move."""
        moving = "move" in body
        source = str(body["move" if moving else "copy"]).lstrip("/")
        if source not in self.nodes or self.nodes[source].container != path.endswith("/"):
            raise Refused(400, f"no such source {source!r}")
        self.find(user, source, 0x40 if moving else 0x1)
        below = sorted(p for p in self.nodes if p.startswith(source) and p != source
                       and SNAPSHOTS not in p[len(source):])
        if (moving and "container-move-drops-children" in self.breaks) or (
                not moving and "container-copy-shallow" in self.breaks):
            below = []
        for old in [source, *below]:
            new = path + old[len(source):]
            if moving and "move-keeps-source" not in self.breaks:
                self.nodes[new] = self.nodes.pop(old)
            else:
                self.nodes[new] = self.duplicate(self.nodes[old], same_id=moving or (
                    "copy-same-id" in self.breaks))
        if moving:  # what was left below the source (its snapshots) goes with it
            for rest in [p for p in self.nodes if p.startswith(source)
                         and "move-keeps-source" not in self.breaks]:
                del self.nodes[rest]
        if "metadata" in body:
            self.nodes[path].metadata = self.user_metadata(body["metadata"])

    def duplicate(self, node: Node, *, same_id: bool) -> Node:
        copied = self.node(node.container, node.owner, list(node.acl))
        copied.value, copied.mimetype, copied.encoding = node.value, node.mimetype, node.encoding
        copied.metadata = dict(node.metadata)
        if same_id:
            copied.id = node.id
        return copied

    def snapshot(self, node: Node, path: str, name: str) -> None:
        """``path``'s subtree, but its snapshots, as it is now at ``path``/cdmi_snapshots/name/
        (the fault "snapshot-live" shares the nodes: later changes show in the snapshot)."""
        holder = path + SNAPSHOTS
        if holder not in self.nodes:
            self.nodes[holder] = self.node(True, node.owner, list(node.acl))
        for old in sorted(p for p in self.nodes if p.startswith(path)
                          and not p.startswith(holder)):
            new = f"{holder}{name}/" + old[len(path):]
            live = "snapshot-live" in self.breaks
            self.nodes[new] = self.nodes[old] if live else self.duplicate(self.nodes[old],
                                                                          same_id=False)

    def post(self, request: Request, user: str, path: str) -> Response:
        parent = self.find(user, path, 0x2)
        if not parent.container:
            raise Refused(400, "POST into a container only")
        child = f"{path}{uuid.uuid4().hex}"
        node = self.node(False, user, self.inherited(parent, False))
        node.value = request.get_data()
        node.mimetype = request.headers.get("Content-Type", "application/octet-stream")
        self.nodes[child] = node
        return Response(status=201, headers={"Location": f"/cdmi_objectid/{node.id}"})

    def delete(self, request: Request, user: str, path: str) -> Response:
        node = self.find(user, path, 0x40)
        if path == "":
            raise Refused(400, "the root stays")
        below = [p for p in self.nodes if p.startswith(path) and p != path]
        if node.container and below and "delete-nonempty-409" in self.breaks \
                and VERSION in request.headers:  # a plain DELETE (the cleanup's) still works
            raise Refused(409, "not empty")
        for p in [*below, path]:
            del self.nodes[p]
        return Response(status=204)


def make_app(breaks: Iterable[str] = ()) -> Toy:
    return Toy(breaks)
