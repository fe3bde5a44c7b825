"""OCCI views: parse, call the service, render. Nothing else happens here.

Plain Flask views rather than Flask-RESTful resources: OCCI negotiates five media types with
different shapes for the same resource (headers vs body, locations vs full entities) and
routes by runtime locations (user mixins), which Flask-RESTful's per-type ``representations``
and static resource routing would fight rather than help.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

from flask import Blueprint, Response, current_app, redirect, request
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import LimitedStream

from auth.flask import challenge, current_principal
from gateway import __version__
from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NimboError,
    NotAcceptable,
    NotFound,
    NotImplementedByServer,
    ParseError,
)
from gateway.hardening import base_url, incident, whole_body
from occi.core import ActionRequest, Category, Entity, Kind, Mixin, RenderContext
from occi.http.errors import extra_headers, status_for
from occi.infrastructure import COMPUTE, KINDS
from occi.rendering import JSON, OCCI_JSON, TEXT_PLAIN, Rendered, Renderer
from occi.rendering.json import JsonRenderer, entity_text
from occi.rendering.negotiation import negotiate, occi_version_ok, parser_for, renderer_for

if TYPE_CHECKING:
    from gateway.services.entities import OcciService, Page
    from gateway.services.mixins import MixinService

log = logging.getLogger(__name__)
bp = Blueprint("occi", __name__)

SERVER_HEADER = f"nimbostratus/{__version__} OCCI/1.2 OCCI/1.1"
# Flask routes HEAD to every GET view; it must read like GET (Werkzeug drops the body).
READ_METHODS = ("GET", "HEAD")
KIND_LOCATIONS: dict[str, Kind] = {k.location: k for k in KINDS if k.location}
UNREAD_BODY_DRAIN = 16 * 1024 * 1024
RENDERING_MEMO_ENTRIES = 512  # per process; a rendering is about the size of its body
# per process: the JSON texts of listed entities (about 0.8 KB a compute), as many as the
# entity cache holds by default (gateway.defaults entity_cache_size)
JSON_TEXT_MEMO_ENTRIES = 10_000
_Key = TypeVar("_Key")
_Made = TypeVar("_Made")
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


# --- plumbing ---------------------------------------------------------------------------


class RenderingMemo:
    """The last renderings of entity objects, kept by the object itself.

    A GET of one entity renders the model object the entity cache hands out, the same object
    for every request until the next write (gateway.services.entity_cache); rendering it was
    a third of the view's work. A rendering is a pure function of the object, the media type
    and the base URL, so it is kept with the object and served again while the cache serves
    that object. Another object (after a write, for another principal, or with the cache
    off) is a miss: entries are found by the object's identity, never by its id or content.
    An entry holds its object, so the object's ``id()`` cannot be reused while the entry
    lives. At ``capacity`` entries all are dropped."""

    def __init__(self, capacity: int, text_capacity: int) -> None:
        self.capacity = capacity
        self.text_capacity = text_capacity
        self._entries: dict[tuple[int, str, str], tuple[Entity, Rendered]] = {}
        self._texts: dict[int, tuple[Entity, str]] = {}

    def entity(self, renderer: Renderer, entity: Entity, ctx: RenderContext) -> Rendered:
        key = (id(entity), renderer.media_type, ctx.base_url)
        return _kept(
            self._entries, key, entity, self.capacity, lambda: renderer.entity(entity, ctx)
        )

    def collection(
        self, renderer: Renderer, entities: Sequence[Entity], ctx: RenderContext
    ) -> Rendered:
        """A collection; a JSON one is joined from its members' JSON texts, each kept with its
        object as renderings are (a listing of 1,000 computes spent two thirds of its CPU
        making them). Other renderings of a collection list locations: made afresh."""
        if isinstance(renderer, JsonRenderer):
            return renderer.collection(entities, ctx, self._json_text)
        return renderer.collection(entities, ctx)

    def _json_text(self, entity: Entity) -> str:
        return _kept(
            self._texts, id(entity), entity, self.text_capacity, lambda: entity_text(entity)
        )


def _kept(
    entries: dict[_Key, tuple[Entity, _Made]],
    key: _Key,
    entity: Entity,
    capacity: int,
    make: Callable[[], _Made],
) -> _Made:
    """What ``make`` makes of ``entity``, kept in ``entries`` under ``key`` with the object
    itself: served again only for that very object; at ``capacity`` entries all are dropped
    (dict operations are atomic: threads need no lock)."""
    found = entries.get(key)
    if found is not None and found[0] is entity:
        return found[1]
    made = make()
    if len(entries) >= capacity:
        entries.clear()
    entries[key] = (entity, made)
    return made


_RENDERINGS = RenderingMemo(RENDERING_MEMO_ENTRIES, JSON_TEXT_MEMO_ENTRIES)


def _services() -> tuple[OcciService, MixinService]:
    ext = current_app.extensions["nimbostratus"]
    return ext.occi, ext.mixins


def _renderer() -> Renderer:
    return renderer_for(negotiate(request.headers.get("Accept")))


def _ctx() -> RenderContext:
    return RenderContext(base_url=base_url())


def _headers() -> list[tuple[str, str]]:
    return list(request.headers.items())


def _body() -> bytes:
    return whole_body(cache=True)


def _parser():  # type: ignore[no-untyped-def]
    return parser_for(request.headers.get("Content-Type"))


def _respond(
    rendered: Rendered, status: int = 200, extra: Sequence[tuple[str, str]] = ()
) -> Response:
    response = Response(rendered.body, status=status, content_type=rendered.content_type)
    for name, value in [*rendered.headers, *extra]:
        response.headers.add(name, value)
    return response


def _is_json(renderer: Renderer) -> bool:
    return renderer.media_type in (OCCI_JSON, JSON)


@bp.before_request
def _check_version() -> None:
    if not occi_version_ok(request.headers.get("User-Agent")):
        raise NotImplementedByServer(
            "this server speaks OCCI 1.2 (and 1.1); the client asks for a newer version"
        )


@bp.after_app_request
def _server_header(response: Response) -> Response:
    # gunicorn writes its own Server field from the string our gunicorn config sets
    # (gateway.gunicorn_conf); a second one from the app would be a duplicate.
    if "gunicorn" not in request.environ.get("SERVER_SOFTWARE", ""):
        response.headers["Server"] = SERVER_HEADER
    # Werkzeug upper-cases reason phrases ("201 CREATED"); OCCI checkers (pOCCI) match the
    # RFC 9110 spelling ("201 Created").
    line = _STATUS_LINES.get(response.status_code)
    if line is not None and response.status != line:
        response.status = line
    if response.status_code >= 400 and 0 < (request.content_length or 0) <= UNREAD_BODY_DRAIN:
        _drain_unread_body()
    if request.blueprint != "cdmi":  # CDMI answers name their own types
        response.headers.setdefault(
            "Accept",
            ", ".join(("text/plain", "text/occi", "text/uri-list", "application/occi+json")),
        )
    return response


def _drain_unread_body() -> None:
    """Read and drop what a refused request's body still holds (up to UNREAD_BODY_DRAIN).

    gunicorn drains at most 64 KiB of a body the application left unread and then closes the
    connection, though it has answered ``Connection: keep-alive`` (it ignores an application's
    ``Connection`` header): the client's next request on it fails. A body announced longer
    than the bound is not drained at all: the connection is lost either way (clients retry on
    a new one), and the answer (a refusal decided before the body, such as a CDMI upload over
    its quota) goes out at once instead of after the bound's worth of reading."""
    stream: Any
    try:
        stream = request.stream
    except HTTPException:  # over MAX_CONTENT_LENGTH: werkzeug will not hand the stream out
        stream = LimitedStream(request.environ["wsgi.input"], request.content_length or 0)
    drained = 0
    with contextlib.suppress(OSError, HTTPException, ValueError):
        while drained < UNREAD_BODY_DRAIN:
            chunk = stream.read(65536)
            if not chunk:
                break
            drained += len(chunk)


def render_error(error: NimboError) -> Response:
    """The one error rendering of the OCCI side, in the negotiated type when possible."""
    status = status_for(error)
    try:
        renderer = _renderer()
    except NotAcceptable:
        renderer = renderer_for(TEXT_PLAIN)
    return _respond(
        renderer.error(status, error.message), status, extra_headers(error, challenge())
    )


@bp.app_errorhandler(NimboError)
def _nimbo_error(error: NimboError) -> Response:
    if status_for(error) >= 500:
        log.warning("%s %s: %s", request.method, request.path, error.message)
    return render_error(error)


@bp.app_errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Any:
    if error.code == 405:
        allowed = tuple(error.valid_methods or ()) if hasattr(error, "valid_methods") else ()
        return render_error(MethodNotAllowed(f"{request.method} is not allowed here", allowed))
    if error.code == 413:
        from gateway.errors import PayloadTooLarge

        return render_error(PayloadTooLarge("request body too large"))
    if error.code and 300 <= error.code < 400:
        return Response.force_type(error.get_response(), request.environ)
    return render_error(
        InvalidRequest(error.description or "bad request")
        if error.code == 400
        else NotFound(f"nothing at {request.path}")
    )


@bp.app_errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    failure = NimboError(incident(error))  # logged with its traceback; the client gets an id
    rendered = renderer_for(TEXT_PLAIN).error(500, failure.message)
    return _respond(rendered, 500)


# --- query interface --------------------------------------------------------------------


@bp.route("/-/", methods=["GET", "POST", "PUT", "DELETE"])
@bp.route("/.well-known/org/ogf/occi/-/", methods=["GET", "POST", "PUT", "DELETE"])
def query_interface() -> Response:
    occi, mixins = _services()
    principal = current_principal()
    renderer = _renderer()
    if request.method in READ_METHODS:
        registry = occi.registry(principal)
        wanted, _attrs = _parser().filters(_body(), _headers())
        categories = registry.categories()
        if wanted:
            found: list[Category] = []
            for ref in wanted:
                category = registry.find(ref.type_id)
                if category is None:
                    raise InvalidRequest(f"unknown category {ref.type_id} in filter")
                found.extend(c for c in registry.related(category) if c not in found)
            categories = found
        return _respond(renderer.categories(categories, _ctx()))
    refs = _parser().categories(_body(), _headers())
    if request.method == "DELETE":
        mixins.remove(principal, refs)
    else:  # POST, and MART's PUT
        mixins.add(principal, refs, _parser().category_attributes(_body(), _headers()))
    return _respond(renderer.ok())


# --- collections and entities -----------------------------------------------------------


@bp.route("/", methods=["GET", "POST"])
def root() -> Response:
    occi, _ = _services()
    principal = current_principal()
    renderer = _renderer()
    if request.method in READ_METHODS:
        return _respond(_RENDERINGS.collection(renderer, occi.everything(principal), _ctx()))
    return _create(renderer, None)


@bp.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
def dispatch(path: str) -> Any:
    full = "/" + path
    prefix, _, entity_id = full.rpartition("/")
    kind = KIND_LOCATIONS.get(prefix + "/")
    if kind is not None:  # kind locations are fixed (no user mixin may take one): no catalog
        return _entity(kind, entity_id) if entity_id else _collection(kind)
    occi, _ = _services()
    registry = occi.registry(current_principal())
    if full.endswith("/"):
        category = registry.by_location(full)
        if category is None:
            raise NotFound(f"no collection at {full}")
        return _collection(category)
    if registry.by_location(full + "/") is not None:
        return redirect(full + "/", code=301)
    raise NotFound(f"nothing at {full}")


@bp.route(f"{COMPUTE.location}<compute_id>/console", methods=["GET", "POST", "PUT", "DELETE"])
def console(compute_id: str) -> Response:
    """The end of a compute's serial console log, as text/plain (UTF-8) whatever the ``Accept``
    (a log is no OCCI rendering); ``?bytes=N``: its last N bytes. Compute renderings advertise
    this location in the attribute :data:`~occi.infrastructure.CONSOLE_ATTRIBUTE` (which says
    why an attribute and not a ``Link`` header)."""
    if request.method not in READ_METHODS:
        raise MethodNotAllowed(f"{request.method} is not defined on a console", READ_METHODS)
    occi, _ = _services()
    text = occi.console(current_principal(), compute_id, _console_bytes())
    return Response(text, content_type="text/plain; charset=utf-8")


def _console_bytes() -> int | None:
    raw = request.args.get("bytes")
    if raw is None:
        return None
    if not re.fullmatch(r"[0-9]+", raw):
        raise InvalidRequest(f"bytes must be a positive whole number, not {raw[:40]!r}")
    return int(raw)


def _collection(category: Kind | Mixin) -> Response:
    occi, _ = _services()
    principal = current_principal()
    renderer = _renderer()
    action = request.args.get("action")
    if request.method in READ_METHODS:
        categories, attributes = _parser().filters(_body(), _headers())
        from gateway.services.entities import Filter

        flt = (
            Filter([c.type_id for c in categories], attributes or None)
            if categories or attributes
            else None
        )
        entities = occi.collection(
            principal, category, full=_is_json(renderer), flt=flt, page=_page()
        )
        return _respond(_RENDERINGS.collection(renderer, entities, _ctx()))
    if request.method == "POST" and action:
        occi.act_on_collection(principal, category, _action_request(category, action))
        return _respond(renderer.ok())
    if isinstance(category, Kind):
        if request.method == "POST":
            return _create(renderer, category)
        if request.method == "DELETE":
            occi.delete_collection(principal, category)
            return _respond(renderer.ok())
        raise MethodNotAllowed(
            f"{request.method} is not defined on a kind collection", ("GET", "POST", "DELETE")
        )
    return _mixin_collection(category, renderer)


def _mixin_collection(mixin: Mixin, renderer: Renderer) -> Response:
    occi, _ = _services()
    principal = current_principal()
    body = _body()
    if request.method == "DELETE":
        locations = _parser().locations(body, _headers()) if body or _has_locations() else None
        occi.dissociate(principal, mixin, locations or None)
        return _respond(renderer.ok())
    locations = _parser().locations(body, _headers())
    members = occi.associate(principal, mixin, locations, replace=request.method == "PUT")
    return _respond(_RENDERINGS.collection(renderer, members, _ctx()))


def _has_locations() -> bool:
    return any(name.lower() in ("x-occi-location", "location") for name, _ in _headers())


def _create(renderer: Renderer, kind: Kind | None) -> Response:
    occi, _ = _services()
    requests = _parser().entities(_body(), _headers())
    created = occi.create(current_principal(), kind, requests)
    return _created(renderer, created)


def _created(renderer: Renderer, created: Sequence[Entity]) -> Response:
    ctx = _ctx()
    locations = [ctx.absolute(e.location) for e in created]
    rendered = renderer.locations(locations, ctx)
    extra = (
        [("Location", locations[0])]
        if not any(name.lower() == "location" for name, _ in rendered.headers)
        else []
    )
    return _respond(rendered, 201, extra)


def _entity(kind: Kind, entity_id: str) -> Response:
    occi, _ = _services()
    principal = current_principal()
    renderer = _renderer()
    if request.method in READ_METHODS:
        return _respond(_RENDERINGS.entity(renderer, occi.get(principal, kind, entity_id), _ctx()))
    if request.method == "DELETE":
        occi.delete(principal, kind, entity_id)
        return _respond(renderer.ok())
    action = request.args.get("action")
    if request.method == "POST" and action:
        result = occi.act(principal, kind, entity_id, _action_request(kind, action))
        if isinstance(result, Mixin):
            return _respond(renderer.categories([result], _ctx()))
        return _respond(renderer.entity(result, _ctx()))
    requests = _parser().entities(_body(), _headers())
    if len(requests) != 1:
        raise InvalidRequest("exactly one entity is expected at an entity's location")
    if request.method == "PUT":
        entity, created = occi.replace(principal, kind, entity_id, requests[0])
        if created:
            return _created(renderer, [entity])
        return _respond(renderer.entity(entity, _ctx()))
    return _respond(renderer.entity(occi.update(principal, kind, entity_id, requests[0]), _ctx()))


def _action_request(category: Kind | Mixin, term: str) -> ActionRequest:
    """The invocation in the body; its term must match ``?action=``. An empty request (no body,
    no Category field) means the action of that term without parameters."""
    candidates = (
        [a for a in category.actions if a.term == term] if isinstance(category, Kind) else []
    )
    try:
        invocation = _parser().action(_body(), _headers())
    except ParseError:
        if _body().strip() or any(n.lower().endswith("category") for n, _ in _headers()):
            raise
        if not candidates:
            raise InvalidRequest(f"action {term} is not defined here") from None
        return ActionRequest(action=candidates[0].type_id)
    if invocation.action.rsplit("#", 1)[-1] != term:
        raise InvalidRequest(
            f"the body invokes {invocation.action}, the URL asks for ?action={term}"
        )
    return invocation


_PAGE = re.compile(r"(?:^|[&;])(page|number)=([^&;]*)")


def _page() -> Page | None:
    from gateway.services.entities import Page

    raw = request.query_string.decode("latin-1")
    values = dict(_PAGE.findall(raw))
    if not values:
        return None
    try:
        page = int(values.get("page", "1"))
        number = int(values.get("number", str(current_app.config["NIMBO_PAGE_DEFAULT"])))
    except ValueError:
        raise InvalidRequest("page and number must be whole numbers") from None
    if page < 1 or number < 1:
        raise InvalidRequest("page and number start at 1")
    return Page(page, number)
