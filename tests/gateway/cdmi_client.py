"""A small CDMI client over the Flask test client, for the gateway's CDMI tests."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from werkzeug.test import TestResponse

from tests.gateway.conftest import Node

VERSION = {"X-CDMI-Specification-Version": "1.1.1"}
OBJECT = "application/cdmi-object"
CONTAINER = "application/cdmi-container"


class Cdmi:
    def __init__(self, node: Node, user: str = "alice", root: str = "/cdmi/") -> None:
        self.node, self.user, self.root = node, user, root

    def as_user(self, user: str) -> Cdmi:
        return Cdmi(self.node, user, self.root)

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                **kwargs: Any) -> TestResponse:
        url = path if path.startswith("/") else self.root + path
        return self.node.request(method, url, user=self.user, headers=headers, **kwargs)

    def cdmi(self, method: str, path: str, body: Any = None, *, media: str | None = None,
             headers: Mapping[str, str] | None = None) -> TestResponse:
        all_headers = dict(VERSION)
        if media:
            all_headers["Content-Type"] = media
            all_headers.setdefault("Accept", media)
        all_headers.update(headers or {})
        data = json.dumps(body) if body is not None and not isinstance(body, str | bytes) else body
        return self.request(method, path, headers=all_headers, data=data)

    def mkdir(self, path: str, body: Any = None) -> TestResponse:
        response = self.cdmi("PUT", path, body if body is not None else {}, media=CONTAINER)
        assert response.status_code in (201, 204), response.get_data(as_text=True)
        return response

    def put(self, path: str, body: Any) -> TestResponse:
        return self.cdmi("PUT", path, body, media=OBJECT)

    def get(self, path: str, *, accept: str | None = None) -> TestResponse:
        headers = dict(VERSION)
        if accept:
            headers["Accept"] = accept
        return self.request("GET", path, headers=headers)

    def read(self, path: str) -> dict[str, Any]:
        response = self.get(path)
        assert response.status_code == 200, response.get_data(as_text=True)
        document: dict[str, Any] = json.loads(response.get_data())
        return document
