"""The CDMI suite object, clause names, media types, shared fixtures and helpers of its checks.

The URL of a run is the CDMI root (e.g. ``https://cloud.example/cdmi/``): paths of checks are
relative to it. Everything a run writes lives in one container named after the run's prefix,
``<root><prefix>/``, deleted at the end (with what was made in it, newest first).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from conformance.framework import Context, Suite

SUITE = Suite("cdmi", title="CDMI 1.1.1")

VERSION = "1.1.1"
VERSION_HEADER = "X-CDMI-Specification-Version"
OBJECT = "application/cdmi-object"
CONTAINER = "application/cdmi-container"
CAPABILITY = "application/cdmi-capability"
QUEUE = "application/cdmi-queue"

TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
"""CDMI 1.1.1 §5.14: UTC, ISO 8601, six fraction digits."""

TEXT_VALUE = "Hello CDMI conformance: 0123456789"
BINARY_VALUE = bytes(range(256)) + b"\x00\xff\xfe"


# Clauses: CDMI 1.1.1 (ISO/IEC 17826:2016) by clause number and name, numbered by the clause
# order of SNIA's 1.1 source (README.md says how); "notes" points to docs/cdmi-notes.md where the
# standard is silent or contradicts itself.


def cdmi(section: str, name: str = "") -> str:
    return f"CDMI 1.1.1 §{section}" + (f", {name}" if name else "")


VERSION_CLAUSE = ("CDMI 1.1.1 request and response headers of every CDMI operation "
                  "(X-CDMI-Specification-Version); notes §2")


# --- requests ---------------------------------------------------------------------------------


def headers(*, content: str | None = None, accept: str | None = None,
            version: str | None = VERSION) -> dict[str, str]:
    """CDMI request headers (a None entry is left out)."""
    out: dict[str, str] = {}
    if version is not None:
        out[VERSION_HEADER] = version
    if content is not None:
        out["Content-Type"] = content
    if accept is not None:
        out["Accept"] = accept
    return out


def get(ctx: Context, path: str, *, accept: str | None = None,
        client: Any = None) -> requests.Response:
    """A CDMI GET (version header, ``accept`` if given)."""
    return (client or ctx.client).get(path, headers=headers(accept=accept))


def put(ctx: Context, path: str, body: Any, *, content: str = OBJECT,
        client: Any = None) -> requests.Response:
    """A CDMI PUT of ``body`` (a dict is sent as JSON, a str as it is)."""
    data = body if isinstance(body, str) else json.dumps(body)
    return (client or ctx.client).put(path, headers=headers(content=content, accept=content),
                                      data=data)


def media_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type", "").split(";")[0].strip().lower()


def document(ctx: Context, response: requests.Response) -> dict[str, Any]:
    """The JSON object in ``response``'s body, or the check fails."""
    try:
        value = json.loads(response.content)
    except ValueError as exc:
        ctx.fail(f"the body is not JSON: {exc}", response)
    if not isinstance(value, dict):
        ctx.fail("the body is not a JSON object", response)
    return value


def keys_in_order(response: requests.Response) -> list[str]:
    """The top-level field names of a JSON body in the order sent ([] if not JSON)."""
    names: list[str] = []
    try:
        json.loads(response.content, object_pairs_hook=_outermost(names))
    except ValueError:
        return []
    return names


def _outermost(names: list[str]) -> Any:
    """An object_pairs_hook that remembers the names of the last (outermost) object."""

    def hook(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names[:] = [k for k, _ in items]
        return dict(items)

    return hook


def expect_last_fields(ctx: Context, path: str, accept: str, *names: str) -> None:
    """A CDMI read of ``path`` sends ``names`` as its last fields, in that order."""
    _, response = read(ctx, path, accept=accept)
    ctx.expect(keys_in_order(response)[-len(names):] == list(names),
               f"... {', '.join(names)} at the end", response)


def resolve(ctx: Context, uri: str) -> str:
    """An absolute URL for a URI from a body or a Location: absolute URLs stay; a path that
    starts with the root's path is taken as a server path; any other as relative to the root
    (CDMI bodies give URIs relative to the root; many servers send server paths)."""
    if "://" in uri:
        return uri
    root = ctx.client.base_url
    root_path = urlsplit(root).path or "/"
    if uri.startswith(root_path):
        return urljoin(root, uri)
    return urljoin(root, uri.lstrip("/"))


def expect_version_echo(ctx: Context, response: requests.Response) -> None:
    echoed = response.headers.get(VERSION_HEADER, "")
    ctx.expect(echoed, f"a CDMI answer carries {VERSION_HEADER}", response)


# --- what the run made ------------------------------------------------------------------------


@dataclass
class Made:
    """Something the run created: its path below the root, its URL, the create answer."""

    path: str
    url: str
    response: requests.Response
    document: dict[str, Any] = field(default_factory=dict)

    @property
    def object_id(self) -> str:
        return str(self.document.get("objectID", ""))


def work_path(ctx: Context, name: str = "") -> str:
    """A path in the run's container."""
    return f"{ctx.settings.prefix}/{name}"


def cleaned_up(ctx: Context, path: str, response: requests.Response) -> requests.Response:
    """``response`` to a create of ``path``: when it made something, that is deleted at the end
    of the run (whether or not the check wanted it made)."""
    if response.status_code < 300:
        ctx.created(ctx.client.url(path))
    return response


def try_create(ctx: Context, path: str, body: Any, *, content: str = OBJECT,
               client: Any = None) -> requests.Response:
    """A CDMI PUT of ``body`` to a new ``path`` (see :func:`put`), cleaned up if it made
    something."""
    return cleaned_up(ctx, path, put(ctx, path, body, content=content, client=client))


def refused_create(ctx: Context, name: str, body: Any, *, content: str = OBJECT) -> str:
    """A CDMI create of ``name`` in the run's container must be refused with 400; its path."""
    ctx.need("work")
    path = work_path(ctx, name)
    ctx.expect_status(try_create(ctx, path, body, content=content), 400)
    return path


def create_container(ctx: Context, path: str, body: dict[str, Any] | None = None) -> Made:
    """CDMI create of container ``path`` (ends in '/'); fails unless 201 + a CDMI body."""
    response = try_create(ctx, path, body or {}, content=CONTAINER)
    ctx.expect_status(response, 201, what=f"CDMI create of container {path}")
    return Made(path, ctx.client.url(path), response, document(ctx, response))


def create_object(ctx: Context, path: str, body: dict[str, Any]) -> Made:
    """CDMI create of data object ``path``; fails unless 201 + a CDMI body."""
    response = try_create(ctx, path, body)
    ctx.expect_status(response, 201, what=f"CDMI create of data object {path}")
    return Made(path, ctx.client.url(path), response, document(ctx, response))


def plain_create(ctx: Context, path: str, data: bytes, content_type: str = "text/plain", *,
                 what: str = "plain create") -> Made:
    """A plain HTTP PUT of ``data`` as ``content_type`` to a new ``path``; fails unless 201."""
    response = cleaned_up(ctx, path, ctx.client.put(path, headers={"Content-Type": content_type},
                                                    data=data))
    ctx.expect_status(response, 201, what=what)
    return Made(path, ctx.client.url(path), response)


def created_at_location(ctx: Context, response: requests.Response) -> str:
    """The Location of a POST create (empty if none), cleaned up if the POST made something."""
    location = response.headers.get("Location", "")
    if response.status_code < 300 and location:
        ctx.created(resolve(ctx, location))
    return location


def delete(ctx: Context, path: str, *, accept: str | None = None) -> requests.Response:
    """A CDMI DELETE (version header, ``accept`` if given)."""
    return ctx.client.delete(path, headers=headers(accept=accept))


def expect_gone(ctx: Context, path: str, what: str = "GET after the delete") -> None:
    ctx.expect_status(get(ctx, path), 404, what=what)


def expect_missing_fields(ctx: Context, doc: dict[str, Any], response: requests.Response,
                          fields: tuple[str, ...], what: str = "fields missing") -> None:
    missing = [f for f in fields if f not in doc]
    ctx.expect(not missing, f"{what}: {missing}", response)


def read(ctx: Context, path: str, *, accept: str | None = None,
         client: Any = None) -> tuple[dict[str, Any], requests.Response]:
    """CDMI read of ``path``: its document and the response (fails unless 200)."""
    response = get(ctx, path, accept=accept, client=client)
    ctx.expect_status(response, 200)
    return document(ctx, response), response


def value_bytes(ctx: Context, doc: dict[str, Any], response: requests.Response) -> bytes:
    """The value of a data object's CDMI document, decoded per its valuetransferencoding."""
    value = doc.get("value")
    ctx.expect(isinstance(value, str), "a string value field", response)
    encoding = str(doc.get("valuetransferencoding", "utf-8")).lower()
    if encoding == "base64":
        try:
            return base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError):
            ctx.fail("valuetransferencoding base64 but the value is not base 64", response)
    ctx.expect(encoding == "utf-8", f"valuetransferencoding utf-8 or base64, not {encoding!r}",
               response)
    return str(value).encode("utf-8")


# --- capabilities -----------------------------------------------------------------------------


def claims(capabilities: dict[str, Any], name: str) -> bool:
    """Whether a capability is offered: "true" (booleans, sent by some servers, tolerated) or
    a non-empty, non-"false" value."""
    value = capabilities.get(name)
    if isinstance(value, bool):
        return value
    return value is not None and str(value).strip().lower() not in ("", "false", "0")


def require(ctx: Context, capabilities: dict[str, Any], *names: str) -> None:
    """Skip unless every capability in ``names`` is claimed (what is not claimed is not
    required: CDMI 1.1.1 §12.1)."""
    missing = [n for n in names if not claims(capabilities, n)]
    if missing:
        ctx.skip(f"not claimed by the server, so not required: {', '.join(missing)}")


def read_capabilities(ctx: Context, uri: str) -> dict[str, Any]:
    doc, response = read(ctx, resolve(ctx, uri), accept=CAPABILITY)
    capabilities = doc.get("capabilities")
    if not isinstance(capabilities, dict):
        ctx.fail("a capability object with a capabilities field (a JSON object)", response)
    return dict(capabilities)


@SUITE.fixture("system-capabilities")
def system_capabilities(ctx: Context) -> dict[str, Any]:
    """The system-wide capabilities (``<root>cdmi_capabilities/``)."""
    return read_capabilities(ctx, ctx.client.url("cdmi_capabilities/"))


# --- the run's objects --------------------------------------------------------------------------


@SUITE.fixture("work", writes=True)
def work(ctx: Context) -> Made:
    """The run's container, ``<root><prefix>/``: everything else is made in it."""
    return create_container(ctx, work_path(ctx))


def capabilities_of(ctx: Context, made: Made, what: str) -> dict[str, Any]:
    """The capabilities named by the capabilitiesURI of ``made`` (``what``: "the container")."""
    uri = made.document.get("capabilitiesURI")
    if not isinstance(uri, str) or not uri:
        ctx.fail(f"{what} has no capabilitiesURI", made.response)
    return read_capabilities(ctx, uri)


@SUITE.fixture("container-capabilities", writes=True)
def container_capabilities(ctx: Context) -> dict[str, Any]:
    return capabilities_of(ctx, ctx.need("work"), "the container")


@SUITE.fixture("text-object", writes=True)
def text_object(ctx: Context) -> Made:
    """A UTF-8 data object made in CDMI with user metadata."""
    ctx.need("work")
    return create_object(ctx, work_path(ctx, "text.txt"), {
        "mimetype": "text/plain", "value": TEXT_VALUE,
        "metadata": {"colour": "blue", "shape": "round"}})


@SUITE.fixture("object-capabilities", writes=True)
def object_capabilities(ctx: Context) -> dict[str, Any]:
    return capabilities_of(ctx, ctx.need("text-object"), "the data object")
