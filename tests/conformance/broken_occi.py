"""A tiny OCCI server (not ours: a WSGI toy, text renderings only, everything in memory) that
can be broken on purpose, to show that each check of the suite can fail.

``make_app(breaks)`` builds it; ``breaks`` names faults from ``BREAKS``. Unbroken it is good
enough for the checks the tests aim at when run with ``renderings=("text/plain",)``. Computes
start "inactive" and turn "active" on their second read, so the suite's polling is exercised.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.wrappers import Request, Response

INFRA = "http://schemas.ogf.org/occi/infrastructure#"
ACTION = "http://schemas.ogf.org/occi/infrastructure/{}/action#"
TPL = "http://toy.example/occi/os_tpl#"

BREAKS = frozenset({
    "qi-500", "well-known-differs", "qi-filter-ignored", "user-mixin-refused",
    "entity-bound", "no-compute-actions", "wrong-content-type", "no-406", "no-server-version",
    "no-501", "uri-list-entity", "no-ok-body", "create-no-location", "title-dropped",
    "update-ignored", "put-drops-links", "delete-500", "state-bogus", "never-active",
    "links-not-rendered", "action-state-ignored", "undefined-action-ok", "stop-ignored",
    "mixin-post-ignored", "mixin-put-appends", "filter-ignored", "no-413", "bad-json-500",
    "unterminated-quote-ok", "missing-size-ok", "not-found-200", "no-challenge",
    "put-create-404", "collection-action-everyone", "save-no-template", "ssh-key-dropped",
    "userdata-dropped",
})

CREDENTIALS = "http://schemas.ogf.org/occi/infrastructure/credentials#"
CONTEXT = "http://schemas.ogf.org/occi/infrastructure/compute#"
CONTEXT_MIXINS = {  # contextualization mixins: type id -> (location, its attribute)
    CREDENTIALS + "ssh_key": ("/mixin/ssh_key/", "occi.credentials.ssh.publickey"),
    CONTEXT + "user_data": ("/mixin/user_data/", "occi.compute.userdata"),
}

KINDS = {"compute": ("start stop restart suspend save", ("active", "inactive")),
         "storage": ("online offline", ("online", "offline")),
         "network": ("up down", ("active", "inactive")),
         "storagelink": ("", ("active", "active")),
         "networkinterface": ("", ("active", "active"))}


class BadRequest(Exception):
    pass


class Conflict(Exception):
    pass


@dataclass
class Thing:
    kind: str
    attributes: dict[str, Any]
    mixins: list[str] = field(default_factory=list)
    reads: int = 0
    touched: bool = False


def split(value: str, sep: str) -> list[str]:
    out, cur, quoted = [], "", False
    for ch in value:
        if ch == '"' and not cur.endswith("\\"):
            quoted = not quoted
        if ch == sep and not quoted:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if quoted:
        raise BadRequest("unterminated quote")
    return [x for x in [*out, cur.strip()] if x]


def unquote(value: str) -> str:
    value = value.strip()
    return re.sub(r"\\(.)", r"\1", value[1:-1]) if value.startswith('"') else value


class Toy:
    def __init__(self, breaks: Iterable[str]) -> None:
        self.breaks = set(breaks)
        unknown = self.breaks - BREAKS
        assert not unknown, unknown
        self.things: dict[str, Thing] = {}
        self.user_mixins: dict[str, str] = {}  # type id -> location
        self.saved: dict[str, str] = {}  # OS templates made by save: type id -> location

    # --- reading requests ---

    def fields(self, request: Request) -> list[tuple[str, str]]:
        kind = request.headers.get("Content-Type", "text/plain").split(";")[0]
        if kind == "text/occi" or request.method == "GET":
            raw = [(k, v) for k, v in request.headers.items()]
        else:
            raw = []
            for line in request.get_data(as_text=True).splitlines():
                if not line.strip():
                    continue
                name, sep, value = line.partition(":")
                if not sep:
                    raise BadRequest(f"bad line {line!r}")
                raw.append((name, value))
        out = []
        for name, value in raw:
            name = name.strip().lower()
            if name in ("category", "link", "x-occi-attribute", "x-occi-location"):
                try:
                    values = split(value, ",")
                except BadRequest:
                    if "unterminated-quote-ok" not in self.breaks:
                        raise
                    values = [value.strip()]
                out += [(name, v) for v in values]
        return out

    def categories(self, request: Request) -> list[tuple[str, str, str, dict[str, str]]]:
        out = []
        for name, value in self.fields(request):
            if name != "category":
                continue
            parts = split(value, ";")
            params = {k.strip(): unquote(v) for k, _, v in (p.partition("=") for p in parts[1:])}
            if "scheme" not in params or params.get("class") not in ("kind", "mixin", "action"):
                raise BadRequest("category needs scheme and class")
            out.append((parts[0], params["scheme"], params["class"], params))
        return out

    def attributes(self, request: Request) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in self.fields(request):
            if name == "x-occi-attribute":
                key, _, raw = value.partition("=")
                out[key.strip()] = unquote(raw) if raw.strip().startswith('"') else (
                    float(raw) if "." in raw else int(raw))
        return out

    # --- rendering ---

    def answer(self, request: Request, lines: list[str], status: int = 200,
               **headers: str) -> Response:
        accept = request.headers.get("Accept", "text/plain").split(",")[0].split(";")[0]
        accept = "text/plain" if accept in ("", "*/*") else accept.strip()
        if accept not in ("text/plain", "text/occi", "text/uri-list"):
            if "no-406" not in self.breaks:
                return self.error(406, "text/plain, text/occi or text/uri-list only")
            accept = "text/plain"
        if accept == "text/uri-list":
            listing = [v for line in lines if line.startswith("X-OCCI-Location: ")
                       for v in [line.split(": ", 1)[1]]]
            if len(listing) != len(lines) and "uri-list-entity" not in self.breaks:
                return self.error(400, "uri-list is for listings")
            body = "".join(f"{x}\r\n" for x in listing)
        elif accept == "text/occi":
            grouped: dict[str, list[str]] = {}
            for line in lines:
                name, _, value = line.partition(": ")
                grouped.setdefault(name, []).append(value)
            headers.update({k: ", ".join(v) for k, v in grouped.items()})
            body = "" if "no-ok-body" in self.breaks else "OK"
        else:
            body = "".join(f"{line}\r\n" for line in lines)
        if "wrong-content-type" in self.breaks:
            accept = "text/html"
        return Response(body, status=status, content_type=accept, headers=headers)

    def error(self, status: int, message: str) -> Response:
        return Response(f"# {message}\r\n", status=status, content_type="text/plain")

    def qi(self, request: Request) -> list[str]:
        lines = []
        for term, (actions, _) in KINDS.items():
            scheme = ACTION.format(term)
            acts = " ".join(scheme + a for a in actions.split())
            if term == "compute" and "no-compute-actions" in self.breaks:
                acts = ""
            lines.append(f'Category: {term}; scheme="{INFRA}"; class="kind"; '
                         f'location="/{term}/"' + (f'; actions="{acts}"' if acts else ""))
        entity_location = '; location="/entity/"' if "entity-bound" in self.breaks else ""
        lines.append('Category: entity; scheme="http://schemas.ogf.org/occi/core#"; '
                     f'class="kind"{entity_location}')
        lines.append(f'Category: img; scheme="{TPL}"; class="mixin"; rel="{INFRA}os_tpl"; '
                     'location="/os_tpl/img/"')
        for type_id, location in self.saved.items():
            scheme, _, term = type_id.rpartition("#")
            lines.append(f'Category: {term}; scheme="{scheme}#"; class="mixin"; '
                         f'rel="{INFRA}os_tpl"; location="{location}"')
        for type_id, (location, attribute) in CONTEXT_MIXINS.items():
            scheme, _, term = type_id.rpartition("#")
            lines.append(f'Category: {term}; scheme="{scheme}#"; class="mixin"; '
                         f'location="{location}"; attributes="{attribute}{{required}}"')
        for type_id, location in self.user_mixins.items():
            scheme, _, term = type_id.rpartition("#")
            lines.append(f'Category: {term}; scheme="{scheme}#"; class="mixin"; '
                         f'location="{location}"')
        wanted = request.headers.get("Category")
        if wanted and "qi-filter-ignored" not in self.breaks:
            term = wanted.split(";")[0].strip()
            lines = [line for line in lines if line.startswith(f"Category: {term};")]
        return lines

    def entity_lines(self, request: Request, ident: str, thing: Thing) -> list[str]:
        base = request.host_url.rstrip("/")
        lines = [f'Category: {thing.kind}; scheme="{INFRA}"; class="kind"']
        for mixin in thing.mixins:
            scheme, _, term = mixin.rpartition("#")
            lines.append(f'Category: {term}; scheme="{scheme}#"; class="mixin"')
        if "links-not-rendered" not in self.breaks:
            for link_id, link in self.things.items():
                if link.attributes.get("occi.core.source") == f"/{thing.kind}/{ident}":
                    lines.append(f'Link: <{link.attributes["occi.core.target"]}>; '
                                 f'rel="{INFRA}x"; self="/{link.kind}/{link_id}"')
        for action in KINDS[thing.kind][0].split():
            lines.append(f'Link: <{base}/{thing.kind}/{ident}?action={action}>; '
                         f'rel="{ACTION.format(thing.kind)}{action}"')
        attributes = {"occi.core.id": f"urn:uuid:{ident}", **thing.attributes}
        for key, value in attributes.items():
            rendered = json.dumps(value) if isinstance(value, str) else repr(value)
            lines.append(f"X-OCCI-Attribute: {key}={rendered}")
        return lines

    # --- the application ---

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except BadRequest as exc:
            response = self.error(400, str(exc))
        except Conflict as exc:
            response = self.error(409, str(exc))
        if "no-server-version" not in self.breaks:
            response.headers["Server"] = "toy/1.0 OCCI/1.2"
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if "Authorization" not in request.headers:
            headers = {} if "no-challenge" in self.breaks else {
                "WWW-Authenticate": 'Basic realm="toy"'}
            return Response("# who are you?\r\n", status=401, headers=headers)
        if "OCCI/9" in request.headers.get("User-Agent", "") and "no-501" not in self.breaks:
            return self.error(501, "OCCI 1.2 only")
        ctype = request.headers.get("Content-Type", "").split(";")[0]
        if request.method in ("POST", "PUT") and ctype not in ("text/plain", "text/occi",
                                                               "application/occi+json",
                                                               "text/uri-list", ""):
            return self.error(406, f"{ctype} is not spoken here")
        if ctype == "application/occi+json":
            if "bad-json-500" in self.breaks:
                return self.error(500, "oops")
            try:
                document = json.loads(request.get_data(as_text=True))
            except ValueError as exc:
                raise BadRequest("bad JSON") from exc
            if "kind" not in document:
                raise BadRequest("kind missing")
            return self.error(406, "JSON not implemented")
        path = request.path
        if path in ("/-/", "/.well-known/org/ogf/occi/-/"):
            return self.query_interface(request)
        parts = path.strip("/").split("/")
        if path.endswith("/") and len(parts) == 1 and parts[0] in KINDS:
            return self.collection(request, parts[0])
        if path in self.user_mixins.values():
            return self.mixin_collection(request, path)
        if len(parts) == 2 and parts[0] in KINDS and parts[1] in self.things:
            return self.entity(request, parts[0], parts[1])
        if len(parts) == 2 and parts[0] in KINDS and request.method == "PUT" \
                and "put-create-404" not in self.breaks:
            return self.create(request, parts[0], parts[1])
        if "not-found-200" in self.breaks:
            return self.answer(request, [])
        return self.error(404, "nothing here")

    def query_interface(self, request: Request) -> Response:
        if request.method == "GET":
            if "qi-500" in self.breaks:
                return self.error(500, "oops")
            lines = self.qi(request)
            if "well-known" in request.path and "well-known-differs" in self.breaks:
                lines = lines[:2]
            return self.answer(request, lines, Accept="text/plain, text/occi, text/uri-list")
        if request.method not in ("POST", "DELETE"):
            return self.error(405, "no")
        for term, scheme, _, params in self.categories(request):
            type_id = scheme + term
            if request.method == "DELETE":
                self.user_mixins.pop(type_id, None)
                self.saved.pop(type_id, None)
                continue
            if "user-mixin-refused" in self.breaks or scheme.startswith(
                    "http://schemas.ogf.org/"):
                raise BadRequest("reserved scheme")
            if not params.get("location", "").endswith("/"):
                raise BadRequest("location needed")
            self.user_mixins[type_id] = params["location"]
        return self.answer(request, [])

    def collection(self, request: Request, kind: str) -> Response:
        base = request.host_url.rstrip("/")
        if request.method == "GET":
            found = [(i, t) for i, t in self.things.items() if t.kind == kind]
            wanted = self.attributes(request) if "filter-ignored" not in self.breaks else {}
            found = [(i, t) for i, t in found
                     if all(t.attributes.get(k) == v for k, v in wanted.items())]
            category = request.headers.get("Category", "")
            if category and not category.startswith(f"{kind};"):
                found = []
            page, number = request.args.get("page"), request.args.get("number")
            if number is not None:
                if int(number) > 100 and "no-413" not in self.breaks:
                    return self.error(413, "too many")
                start = (int(page or 1) - 1) * int(number)
                found = found[start:start + int(number)]
            return self.answer(request, [f"X-OCCI-Location: {base}/{kind}/{i}" for i, _ in found])
        if request.method != "POST":
            return self.error(405, "no")
        return self.create(request, kind, str(uuid.uuid4()))

    def create(self, request: Request, kind: str, ident: str) -> Response:
        """A ``kind`` entity ``ident`` from the request (POST to the collection or PUT)."""
        categories = self.categories(request)
        if [t for t, _, c, _ in categories if c == "kind"] != [kind]:
            raise BadRequest(f"a {kind} kind is needed")
        attributes = self.attributes(request)
        if "title-dropped" in self.breaks:
            attributes.pop("occi.core.title", None)
        if kind == "storage" and "occi.storage.size" not in attributes and \
                "missing-size-ok" not in self.breaks:
            raise BadRequest("occi.storage.size is required")
        for fault, attribute in (("ssh-key-dropped", "occi.credentials.ssh.publickey"),
                                 ("userdata-dropped", "occi.compute.userdata")):
            if fault in self.breaks:
                attributes.pop(attribute, None)
        attributes[f"occi.{kind}.state"] = KINDS[kind][1][1]
        mixins = [s + t for t, s, c, _ in categories if c == "mixin"]
        self.things[ident] = Thing(kind, attributes, mixins)
        location = f"{request.host_url.rstrip('/')}/{kind}/{ident}"
        if "create-no-location" in self.breaks:
            return self.answer(request, [], status=201)
        return self.answer(request, [f"X-OCCI-Location: {location}"], status=201,
                           Location=location)

    def entity(self, request: Request, kind: str, ident: str) -> Response:
        thing = self.things[ident]
        if request.method == "GET":
            thing.reads += 1
            if kind == "compute" and thing.reads >= 2 and not thing.touched \
                    and "never-active" not in self.breaks:
                thing.attributes["occi.compute.state"] = "active"
            if "state-bogus" in self.breaks:
                thing.attributes[f"occi.{kind}.state"] = "pending"
            return self.answer(request, self.entity_lines(request, ident, thing))
        if request.method == "DELETE":
            if "delete-500" in self.breaks:
                return self.error(500, "oops")
            del self.things[ident]
            return self.answer(request, [])
        if request.method == "POST" and "action" in request.args:
            return self.action(request, kind, ident, thing)
        if request.method in ("POST", "PUT"):
            if "update-ignored" not in self.breaks:
                thing.attributes.update(self.attributes(request))
            if request.method == "PUT" and "put-drops-links" in self.breaks:
                for link_id in [i for i, t in self.things.items()
                                if t.attributes.get("occi.core.source") == f"/{kind}/{ident}"]:
                    del self.things[link_id]
            return self.answer(request, self.entity_lines(request, ident, thing))
        return self.error(405, "no")

    def action(self, request: Request, kind: str, ident: str, thing: Thing) -> Response:
        term = request.args["action"]
        if term not in KINDS[kind][0].split():
            if "undefined-action-ok" in self.breaks:
                return self.answer(request, [])
            raise BadRequest(f"no action {term}")
        if [t for t, _, c, _ in self.categories(request) if c == "action"] != [term]:
            raise BadRequest("the body names another action")
        self.perform(kind, thing, term, self.attributes(request))
        return self.answer(request, self.entity_lines(request, ident, thing))

    def perform(self, kind: str, thing: Thing, term: str, params: dict[str, Any]) -> None:
        """Action ``term`` on ``thing`` (BadRequest/409 if it cannot be done)."""
        state_key = f"occi.{kind}.state"
        target = {"start": "active", "stop": "inactive", "up": "active", "down": "inactive",
                  "online": "online", "offline": "offline"}.get(term)
        if kind == "compute" and thing.attributes[state_key] == target and \
                "action-state-ignored" not in self.breaks:
            raise Conflict(f"already {target}")
        thing.touched = True
        if term == "save" and "save-no-template" not in self.breaks:
            name = str(params.get("name") or uuid.uuid4().hex[:8])
            self.saved[f"{TPL}{name}"] = f"/os_tpl/{name}/"
        if target and not (term == "stop" and "stop-ignored" in self.breaks):
            thing.attributes[state_key] = target

    def mixin_collection(self, request: Request, path: str) -> Response:
        type_id = next(t for t, p in self.user_mixins.items() if p == path)
        base = request.host_url.rstrip("/")
        if request.method == "POST" and "action" in request.args:
            term = request.args["action"]
            if [t for t, _, c, _ in self.categories(request) if c == "action"] != [term]:
                raise BadRequest("the body names another action")
            everyone = "collection-action-everyone" in self.breaks
            for thing in self.things.values():
                if thing.kind == "compute" and (everyone or type_id in thing.mixins):
                    self.perform(thing.kind, thing, term, self.attributes(request))
            return self.answer(request, [])
        if request.method in ("POST", "PUT", "DELETE"):
            named = [v.split("/")[-1] for n, v in self.fields(request) if n == "x-occi-location"]
            if request.method == "PUT" and "mixin-put-appends" not in self.breaks:
                for thing in self.things.values():
                    if type_id in thing.mixins:
                        thing.mixins.remove(type_id)
            for ident in named:
                mixins = self.things[ident].mixins
                if request.method == "DELETE":
                    if type_id in mixins:
                        mixins.remove(type_id)
                elif type_id not in mixins and "mixin-post-ignored" not in self.breaks:
                    mixins.append(type_id)
        members = [f"X-OCCI-Location: {base}/{t.kind}/{i}" for i, t in self.things.items()
                   if type_id in t.mixins]
        return self.answer(request, members)


def make_app(breaks: Iterable[str] = ()) -> Toy:
    return Toy(breaks)
