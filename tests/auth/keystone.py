"""What the Keystone tests share: rOCCI-api's expressions and User-Agent, the token records in
Redis, and Keystone's error documents."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from werkzeug.test import TestResponse

from gateway.hardening import SECURITY_HEADERS
from tests.gateway.conftest import Node, basic

# rOCCI-api's own expressions (Keystone::KEYSTONE_URI_REGEXP, KEYSTONE_VERSION_REGEXP).
KEYSTONE_URI_REGEXP = re.compile(r"^(Keystone|snf-auth) uri=([\"'])(.+)([\"'])$")
KEYSTONE_VERSION_REGEXP = re.compile(r"^v([0-9]).*$")
ROCCI = {"User-Agent": "rOCCI-cli/4.3.13 rOCCI-api/4.3.13 OCCI/1.1"}


def key_of(token: str) -> str:
    return "nimbo:auth-token:" + hashlib.sha256(token.encode()).hexdigest()


def stored(node: Node, token: str) -> dict[str, Any]:
    """The token's record in Redis."""
    raw = node.connection.get(key_of(token))
    assert raw is not None
    record: dict[str, Any] = json.loads(raw)
    return record


def keystone_error(response: TestResponse, status: int) -> str:
    """The message of a Keystone error document of ``status``."""
    assert response.status_code == status, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["code"] == status and error["title"]
    message: str = error["message"]
    return message


def assert_security_headers(*responses: TestResponse) -> None:
    """Every response carries the gateway's security headers, with their values."""
    for response in responses:
        for name, value in SECURITY_HEADERS:
            assert response.headers.get(name) == value, name


def audited_auth_requests(node: Node) -> tuple[list[tuple[str, str, int]], str]:
    """(user, path, status) of every audit record under /auth/, oldest first, and the whole
    audit log as text (to search for secrets); read by an admin from the loopback address."""
    audit = node.client.get(
        "/admin/audit", headers=basic("root"), environ_overrides={"REMOTE_ADDR": "::1"}
    )
    assert audit.status_code == 200, audit.get_data(as_text=True)
    records = audit.get_json()["records"]
    found = [
        (r["user"], r["path"], r["status"])
        for r in reversed(records)
        if r["path"].startswith("/auth/")
    ]
    return found, json.dumps(records)
