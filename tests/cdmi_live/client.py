"""A small typed CDMI 1.1.1 client over ``requests``, for the live tests.

No CDMI client library on PyPI runs on Python 3 any more (libcdmi 0.1.2 and cdmi-client 0.3
are Python 2 only), so this speaks the protocol itself: JSON bodies with the CDMI media types,
the ``X-CDMI-Specification-Version`` header on every request, 1.x query selectors
(``?value:0-3;metadata:cdmi_``) and access by object ID under ``cdmi_objectid/``.

Methods return the :class:`requests.Response` unchanged: the tests assert on status codes,
headers and bodies themselves, including the error cases.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

import requests

VERSION_HEADER: Final = "X-CDMI-Specification-Version"
OBJECT: Final = "application/cdmi-object"
CONTAINER: Final = "application/cdmi-container"
CAPABILITY: Final = "application/cdmi-capability"
OBJECT_ID_DIR: Final = "cdmi_objectid"
TIMEOUT: Final = 30.0

Encoding = Literal["utf-8", "base64"]


class CdmiClient:
    """CDMI requests below ``root`` (``http://host:port/cdmi/``) as one user.

    ``version`` is sent as ``X-CDMI-Specification-Version`` unless a call passes its own
    (``version=None`` sends no header at all)."""

    def __init__(self, session: requests.Session, root: str, version: str = "1.1.1") -> None:
        if not root.endswith("/"):
            raise ValueError("the CDMI root URL ends with '/'")
        self.session = session
        self.root = root
        self.version = version

    # --- URLs -----------------------------------------------------------------------------

    def url(self, path: str) -> str:
        """``path`` below the root (no leading ``/``); an absolute URL is used as is."""
        if path.startswith(("http://", "https://")):
            return path
        return self.root + path.lstrip("/")

    @staticmethod
    def by_id(object_id: str, rest: str = "") -> str:
        """The path of an object reached by its ID (``cdmi_objectid/<ID>[/rest]``)."""
        return f"{OBJECT_ID_DIR}/{object_id}" + (f"/{rest}" if rest else "")

    # --- the one request method -----------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | bytes | str | None = None,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        version: str | Literal[False] | None = False,
        query: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One CDMI request. ``body`` as a mapping is sent as JSON; bytes and str as they are
        (to send broken JSON). ``version=False`` means the client's version."""
        sent: dict[str, str] = {}
        chosen = self.version if version is False else version
        if chosen is not None:
            sent[VERSION_HEADER] = chosen
        if content_type is not None:
            sent["Content-Type"] = content_type
        if accept is not None:
            sent["Accept"] = accept
        sent.update(headers or {})
        data: bytes | None
        if body is None:
            data = None
        elif isinstance(body, bytes):
            data = body
        elif isinstance(body, str):
            data = body.encode()
        else:
            data = json.dumps(body).encode()
        url = self.url(path) + (f"?{query}" if query else "")
        return self.session.request(method, url, data=data, headers=sent, timeout=TIMEOUT)

    # --- containers -----------------------------------------------------------------------

    def create_container(
        self, path: str, metadata: Mapping[str, Any] | None = None
    ) -> requests.Response:
        body: dict[str, Any] = {}
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self.request("PUT", path, body, content_type=CONTAINER, accept=CONTAINER)

    # --- data objects ---------------------------------------------------------------------

    def create_object(
        self,
        path: str,
        value: str | bytes,
        *,
        mimetype: str = "text/plain",
        encoding: Encoding = "utf-8",
        metadata: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """Create or replace a data object. Bytes are sent base64-encoded whatever
        ``encoding`` says; str values are sent as given (so a test can send bad base64)."""
        if isinstance(value, bytes):
            text = base64.b64encode(value).decode("ascii")
            encoding = "base64"
        else:
            text = value
        body: dict[str, Any] = {
            "mimetype": mimetype,
            "valuetransferencoding": encoding,
            "value": text,
        }
        if metadata is not None:
            body["metadata"] = dict(metadata)
        return self.request("PUT", path, body, content_type=OBJECT, accept=OBJECT)

    def update(self, path: str, fields: Mapping[str, Any], *, query: str = "") -> requests.Response:
        """CDMI update of a data object (present fields replace, absent ones stay)."""
        return self.request("PUT", path, fields, content_type=OBJECT, query=query)

    def update_container(
        self, path: str, fields: Mapping[str, Any], *, query: str = ""
    ) -> requests.Response:
        return self.request("PUT", path, fields, content_type=CONTAINER, query=query)

    # --- reads and deletes ----------------------------------------------------------------

    def get(self, path: str, query: str = "", *, accept: str | None = None) -> requests.Response:
        return self.request("GET", path, accept=accept, query=query)

    def read(self, path: str, query: str = "") -> dict[str, Any]:
        """The JSON document of a successful CDMI read (field order kept: dicts keep it)."""
        response = self.get(path, query)
        if response.status_code != 200:
            raise AssertionError(
                f"GET {response.url} answered {response.status_code}: {response.text[:500]}"
            )
        return document(response)

    def delete(self, path: str) -> requests.Response:
        return self.request("DELETE", path)


def document(response: requests.Response) -> dict[str, Any]:
    """The JSON object in a CDMI response body."""
    parsed = json.loads(response.content)
    if not isinstance(parsed, dict):
        raise AssertionError(f"a CDMI body is a JSON object, got {type(parsed).__name__}")
    return parsed


def value_bytes(doc: Mapping[str, Any]) -> bytes:
    """A data object's value as bytes, decoded per its ``valuetransferencoding``."""
    value = doc["value"]
    if not isinstance(value, str):
        raise AssertionError(f"value is a JSON string, got {type(value).__name__}")
    if doc.get("valuetransferencoding") == "base64":
        return base64.b64decode(value, validate=True)
    return value.encode("utf-8")


def ace(identifier: str, mask: int, *, acetype: int = 0, flags: int = 0) -> dict[str, str]:
    """One ``cdmi_acl`` entry in the spec's hex-string form."""
    return {
        "acetype": f"0x{acetype:02X}",
        "identifier": identifier,
        "aceflags": f"0x{flags:02X}",
        "acemask": f"0x{mask:08X}",
    }
