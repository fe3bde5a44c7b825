"""CDMI views: read the request, call the service, write the answer. Nothing else happens here.

Plain Flask views rather than Flask-RESTful resources: one URL space serves four CDMI media
types plus plain HTTP with the stored media type, and bodies stream in both directions, which
Flask-RESTful's JSON-in/JSON-out resources would get in the way of.

A request is a CDMI request when its ``Content-Type`` or ``Accept`` names a CDMI type or it
carries ``X-CDMI-Specification-Version``; otherwise it is plain HTTP (CDMI 1.1.1 §5.6).
"""

from __future__ import annotations

import base64
import codecs
import json
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from flask import Blueprint, Response, current_app, g, request, stream_with_context
from werkzeug.exceptions import HTTPException

from auth.flask import challenge, current_principal
from cdmi.http.errors import error_body
from cdmi.paths import BY_ID, CAPABILITIES, DOMAINS, ID_ROOT, PATH, Target, target
from cdmi.request import (
    SUPPORTED_VERSIONS,
    VERSION_HEADER,
    CdmiType,
    MediaType,
    Unsatisfiable,
    accepted_cdmi,
    byte_range,
    check_accept,
    content_range,
    is_legacy,
    media_type,
    negotiate_version,
    selection,
)
from gateway import audit, json_limits
from gateway.errors import (
    InvalidRequest,
    MethodNotAllowed,
    NimboError,
    NotFound,
    PayloadTooLarge,
)
from gateway.hardening import base_url, body_chunks, incident, whole_body
from gateway.services.cdmi_state import Redirect
from occi.http.errors import extra_headers, status_for

if TYPE_CHECKING:
    from gateway.services.cdmi import CdmiService
    from gateway.services.cdmi_state import ReadResult, ValueRead, Written

log = logging.getLogger(__name__)
bp = Blueprint("cdmi", __name__)
METHODS = ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]
CHUNK = 1 << 20
UNLIMITED = 1 << 62


def _service() -> CdmiService:
    return current_app.extensions["nimbostratus"].cdmi


# --- plumbing ---------------------------------------------------------------------------


@bp.before_request
def _negotiate() -> None:
    g.cdmi_mode = VERSION_HEADER in request.headers  # also when negotiation fails below
    g.cdmi_version = negotiate_version(request.headers.get(VERSION_HEADER))
    g.cdmi_content = media_type(request.headers.get("Content-Type"))
    accepted = accepted_cdmi(request.headers.get("Accept"))
    g.cdmi_mode = bool(
        g.cdmi_version
        or (g.cdmi_content is not None and g.cdmi_content.cdmi is not None)
        or accepted
    )
    if (
        g.cdmi_mode
        and g.cdmi_version is None
        and current_app.config.get("NIMBO_CDMI_REQUIRE_VERSION")
    ):
        raise InvalidRequest(f"CDMI requests must carry {VERSION_HEADER}")
    if g.cdmi_content is not None and g.cdmi_content.cdmi is not None:
        request.max_content_length = current_app.config["NIMBO_CDMI_MAX_JSON"]
    else:
        request.max_content_length = UNLIMITED


@bp.after_request
def _version_header(response: Response) -> Response:
    if g.get("cdmi_mode"):
        # the negotiated version; none in common: ours, listed (the client may retry)
        response.headers[VERSION_HEADER] = g.get("cdmi_version") or (
            ", ".join(SUPPORTED_VERSIONS) if VERSION_HEADER in request.headers else "1.1.1"
        )
    return response


def _error(error: NimboError) -> Response:
    status = status_for(error)
    if status >= 500:
        log.warning("%s %s: %s", request.method, request.path, error.message)
    response = Response(json.dumps(error_body(error)), status, mimetype="application/json")
    for name, value in extra_headers(error, challenge()):
        response.headers[name] = value
    return response


@bp.errorhandler(NimboError)
def _nimbo_error(error: NimboError) -> Response:
    return _error(error)


@bp.errorhandler(Redirect)
def _moved(redirect: Redirect) -> Response:
    return _redirect(redirect.location)


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    return _error(NimboError(incident(error)))  # logged with its traceback; the client: an id


@bp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> Response:
    if error.code == 413:
        return _error(
            PayloadTooLarge(
                "request body too large for a CDMI JSON body; send big values by plain HTTP PUT"
            )
        )
    if error.code == 405:
        return _error(MethodNotAllowed(f"{request.method} is not allowed here", tuple(METHODS[:5])))
    if error.code == 400:
        return _error(InvalidRequest(error.description or "bad request"))
    return _error(NotFound(f"nothing at {request.path}"))


def _redirect(location: str) -> Response:
    response = _empty(301)
    response.headers["Location"] = _absolute(location)
    return response


def _empty(status: int) -> Response:
    """A response without a body, and so without a Content-Type."""
    response = Response(status=status)
    del response.headers["Content-Type"]
    return response


def _absolute(path: str) -> str:
    return base_url().rstrip("/") + path


def _target() -> Target:
    prefix = current_app.config["NIMBO_CDMI_ROOT"].rstrip("/")
    below = request.path[len(prefix) + 1 :]
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or ""
    raw_path = raw.split("?", 1)[0].lower()
    return target(below, encoded_slash="%2f" in raw_path or "%5c" in raw_path)


def _query() -> Any:
    return selection(unquote(request.query_string.decode("latin-1")))


def _media(produced: CdmiType) -> str:
    """The response type in the flavour the client used (``+json`` or not)."""
    accepted = check_accept(request.headers.get("Accept"), produced)
    flavour: MediaType | None = accepted or g.cdmi_content
    if flavour is not None and flavour.cdmi is not None:
        return flavour.render(produced)
    return str(produced)


def _json_body() -> dict[str, Any]:
    data = whole_body(cache=False)
    if not data.strip():
        return {}
    try:
        body = json_limits.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("a CDMI request body is a JSON object")
    for operation in ("move", "copy"):  # the audit log tells them from creates
        if isinstance(body.get(operation), str):
            audit.note(action=operation, detail=f"from {body[operation][:900]}")
    return body


def _chunks() -> Iterator[bytes]:
    return body_chunks(CHUNK)


def _partial() -> bool:
    return request.headers.get("X-CDMI-Partial", "").strip().lower() == "true"


# --- rendering --------------------------------------------------------------------------


def _json_stream(result: ReadResult, service: CdmiService) -> Iterator[bytes]:
    doc = dict(result.document)
    value = result.value
    tail: dict[str, Any] = {}
    if result.children_range is not None:
        tail["childrenrange"] = result.children_range
    if result.children is not None:
        tail["children"] = result.children
    if value is not None:
        doc["valuetransferencoding"] = value.encoding  # the client needs it to read the value
        selected = _query()
        if selected.everything or "valuerange" in selected.fields or selected.value_range:
            doc["valuerange"] = value.range_text
    doc.update(tail)
    head = json.dumps(doc, ensure_ascii=False)
    if value is None or not _wants_value():
        yield head.encode()
        return
    yield (head[:-1] + (", " if doc else "") + '"value": "').encode()
    yield from _value_text(service.value(value), value)
    yield b'"}'


def _wants_value() -> bool:
    return bool(g.get("cdmi_wants_value", True))


def _value_text(chunks: Iterator[bytes], value: ValueRead) -> Iterator[bytes]:
    """The value as the inside of a JSON string, streamed: base64 in whole groups, UTF-8
    escaped with characters never split across chunks."""
    if value.encoding == "base64":
        carry = b""
        for chunk in chunks:
            data = carry + chunk
            cut = len(data) - len(data) % 3
            carry = data[cut:]
            if cut:
                yield base64.b64encode(data[:cut])
        if carry:
            yield base64.b64encode(carry)
        return
    decoder = codecs.getincrementaldecoder("utf-8")()
    for chunk in chunks:
        text = decoder.decode(chunk)
        if text:
            yield json.dumps(text, ensure_ascii=False)[1:-1].encode()
    rest = decoder.decode(b"", final=True)
    if rest:
        yield json.dumps(rest, ensure_ascii=False)[1:-1].encode()


def _cdmi_response(result: ReadResult, status: int = 200) -> Response:
    service = _service()
    media = _media(result.media)
    body = _json_stream(result, service)
    if result.value is None or result.value.end - result.value.start <= CHUNK:
        return Response(b"".join(body), status, content_type=media)
    return Response(stream_with_context(body), status, content_type=media)


def _written(written: Written) -> Response:
    if not written.created:
        return _empty(204)
    service = _service()
    location = _absolute(service.uri_of(written.state))
    if not g.cdmi_mode:
        response = _empty(201)
        response.headers["Location"] = location
        return response
    result = service.read_after_write(current_principal(), written.state)
    response = _cdmi_response(result, 201)
    response.headers["Location"] = location
    return response


# --- views ------------------------------------------------------------------------------


@bp.route("", methods=METHODS, strict_slashes=False)
def no_slash_root() -> Response:
    if request.path.endswith("/"):
        return cdmi("")
    return _redirect(current_app.config["NIMBO_CDMI_ROOT"])


@bp.route("/<path:subpath>", methods=METHODS)
def cdmi(subpath: str) -> Response:
    del subpath  # the raw request path is used, with its trailing slash
    where = _target()
    method = request.method
    if method == "PATCH":
        raise MethodNotAllowed(
            "PATCH is CDMI 2.0; this server speaks 1.x: update with PUT",
            ("GET", "HEAD", "PUT", "POST", "DELETE"),
        )
    if method in ("GET", "HEAD"):
        return _get(where)
    principal = current_principal()
    service = _service()
    if where.kind in (CAPABILITIES, DOMAINS):
        raise InvalidRequest(
            f"{method} on server-made objects is not offered (no cdmi_create_domain or such "
            "capability)"
        )
    if where.kind == BY_ID and service.special_for_id(where.object_id):
        raise InvalidRequest("server-made objects are read-only")
    content = g.cdmi_content
    if method == "DELETE":
        service.delete(principal, where)
        return _empty(204)
    if method == "POST":
        return _post(where)
    # PUT
    cdmi_type = content.cdmi if content is not None else None
    if cdmi_type == CdmiType.CONTAINER:
        if where.kind == PATH and not where.slash:
            raise InvalidRequest("a container URL ends with '/'")
        return _written(service.put_container(principal, where, _json_body(), _query()))
    if cdmi_type == CdmiType.OBJECT:
        if where.slash:
            raise InvalidRequest(
                f"{CdmiType.OBJECT} is for data objects; a URL ending in '/' names a container"
            )
        return _written(
            service.put_object(principal, where, _json_body(), _query(), partial=_partial())
        )
    if cdmi_type is not None:
        raise InvalidRequest(f"PUT of {cdmi_type} is not offered here (its capability is absent)")
    if g.cdmi_version and content is None and request.content_length:
        raise InvalidRequest("a CDMI request with a body needs a Content-Type")
    if where.slash:
        if request.content_length:
            raise InvalidRequest("a plain PUT of a container URL takes no body")
        return _written(service.put_container(principal, where, {}, _query()))
    mimetype = content.raw if content is not None else None
    charset = content.charset if content is not None else None
    written = service.put_plain(
        principal,
        where,
        _chunks(),
        mimetype,
        charset,
        content_range(request.headers.get("Content-Range")),
        partial=_partial(),
        declared=request.content_length,  # None for a chunked body
    )
    if written.created and request.headers.get("Content-Range"):
        response = _empty(201)
        response.headers["Location"] = _absolute(service.uri_of(written.state))
        return response
    return _written(written)


def _post(where: Target) -> Response:
    principal = current_principal()
    service = _service()
    content = g.cdmi_content
    cdmi_type = content.cdmi if content is not None else None
    if cdmi_type == CdmiType.OBJECT or (
        cdmi_type is None and where.kind == ID_ROOT and g.cdmi_mode
    ):
        written = service.post_object(principal, where, _json_body())
        return _written(written)
    if cdmi_type == CdmiType.CONTAINER:
        raise InvalidRequest("POST of a container is not offered here; create it with PUT")
    if cdmi_type is not None:
        raise InvalidRequest(f"POST of {cdmi_type} is not offered here (its capability is absent)")
    mimetype = content.raw if content is not None else None
    charset = content.charset if content is not None else None
    written = service.post_plain(
        principal, where, _chunks(), mimetype, charset, declared=request.content_length
    )
    response = _empty(201)
    response.headers["Location"] = _absolute(service.uri_of(written.state))
    return response


def _get(where: Target) -> Response:
    service = _service()
    if where.kind == ID_ROOT:
        raise InvalidRequest("cdmi_objectid/ is not listable; read an object by its ID")
    if where.kind == BY_ID:
        special = service.special_for_id(where.object_id)
        if special is not None and not where.rest:
            where = special
    if where.kind in (CAPABILITIES, DOMAINS):
        current_principal()
        result = service.read_special(where, legacy=is_legacy(g.cdmi_version))
        g.cdmi_mode = True
        return _cdmi_response(_selected(result))
    principal = current_principal()
    query = _query()
    if g.cdmi_mode:
        result = service.read(principal, where, query)
        g.cdmi_wants_value = query.wants("value") or query.value_range is not None
        return _cdmi_response(result)
    # plain HTTP: a data object's own bytes; a container reads as CDMI (the spec leaves it open)
    result = service.read(principal, where, query)
    if result.state.kind != "dataobject":
        g.cdmi_mode = True
        return _cdmi_response(result)
    state = result.state
    reader = service.plain_reader(principal, state)
    return _plain_value(state.size, state.mimetype, state.encoding, reader)


def _selected(result: ReadResult) -> ReadResult:
    query = _query()
    if query.everything:
        return result
    result.document = {k: v for k, v in result.document.items() if k in query.fields}
    if not query.wants("children"):
        result.children = None
    if not query.wants("childrenrange"):
        result.children_range = None
    return result


def _plain_value(size: int, mimetype: str, encoding: str, reader: Any) -> Response:
    content_type = mimetype or "application/octet-stream"
    if encoding == "utf-8" and content_type.startswith("text/") and "charset" not in content_type:
        content_type += "; charset=utf-8"
    try:
        span = byte_range(request.headers.get("Range"), size)
    except Unsatisfiable:
        response = _empty(416)
        response.headers["Content-Range"] = f"bytes */{size}"
        return response
    headers = {"Accept-Ranges": "bytes"}
    if span is None:
        start, end, status = 0, size, 200
    else:
        start, end = span
        status = 206
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
    headers["Content-Length"] = str(end - start)
    body = reader(start, end) if request.method != "HEAD" else iter(())
    return Response(
        body, status, headers=headers, content_type=content_type, direct_passthrough=True
    )
