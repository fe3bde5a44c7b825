"""The only way the suites talk to a server: a ``requests`` session bound to a base URL and to
one set of credentials, and the redacted record of an exchange that reports show as evidence."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin

import requests

EXCERPT = 2000
"""Characters of a request or response body kept as evidence."""

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "x-auth-token", "cookie",
                            "set-cookie"})
USER_AGENT = "nimbo-conformance/0.1"


@dataclass(frozen=True)
class Credentials:
    """One way of authenticating (at most one of them is set; none means anonymous)."""

    user: str | None = None
    password: str | None = None
    token: str | None = None
    bearer: str | None = None
    cert: str | None = None
    key: str | None = None

    def apply(self, session: requests.Session) -> None:
        if self.user is not None:
            session.auth = (self.user, self.password or "")
        if self.token is not None:
            session.headers["X-Auth-Token"] = self.token
        if self.bearer is not None:
            session.headers["Authorization"] = f"Bearer {self.bearer}"
        if self.cert is not None:
            session.cert = (self.cert, self.key) if self.key else self.cert


class Client:
    """HTTP against one endpoint. Paths are resolved against ``base_url``; absolute URLs are
    used as given. ``last_response`` is the evidence of a failure that names none."""

    def __init__(self, base_url: str, credentials: Credentials | None = None, *,
                 verify: bool | str = True, timeout: float = 30.0,
                 user_agent: str = USER_AGENT, principal: str | None = None) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.principal = principal or (credentials.user if credentials else None)
        """The name the server knows this client's user by (in ACLs), when known."""
        self.timeout = timeout
        self.session = requests.Session()
        self.session.verify = verify
        self.session.headers["User-Agent"] = user_agent
        (credentials or Credentials()).apply(self.session)
        self.last_response: requests.Response | None = None

    @property
    def authenticated(self) -> bool:
        """Credentials other than a client certificate are sent."""
        return self.session.auth is not None or any(
            h in self.session.headers for h in ("Authorization", "X-Auth-Token"))

    def url(self, path: str) -> str:
        return urljoin(self.base_url, path.lstrip("/")) if "://" not in path else path

    def request(self, method: str, path: str, *, headers: Mapping[str, str] | None = None,
                data: str | bytes | None = None, params: Any = None,
                allow_redirects: bool = False, anonymous: bool = False) -> requests.Response:
        """One exchange. A header set to "" is not sent (to drop a session default);
        ``anonymous`` sends no credentials (a client certificate excepted)."""
        send = {k: (None if v == "" else v) for k, v in (headers or {}).items()}
        if anonymous:
            send.update({"Authorization": None, "X-Auth-Token": None})
        body = data.encode() if isinstance(data, str) else data
        request = requests.Request(method, self.url(path), headers=send, data=body,
                                   params=params, auth=_no_auth if anonymous else None)
        prepared = self.session.prepare_request(request)
        response = self.session.send(prepared, timeout=self.timeout,
                                     allow_redirects=allow_redirects)
        self.last_response = response
        return response

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> requests.Response:
        return self.request("DELETE", path, **kwargs)

    def close(self) -> None:
        self.session.close()


def _no_auth(request: requests.PreparedRequest) -> requests.PreparedRequest:
    return request


# --- evidence -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """The reportable part of a request or response."""

    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""
    method: str | None = None
    url: str | None = None
    status: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.method is not None:
            out["method"] = self.method
            out["url"] = self.url
        if self.status is not None:
            out["status"] = self.status
        out["headers"] = self.headers
        out["body"] = self.body
        return out


@dataclass(frozen=True)
class Exchange:
    """A request and its response, credentials redacted and bodies cut to an excerpt."""

    request: Message
    response: Message

    def as_dict(self) -> dict[str, Any]:
        return {"request": self.request.as_dict(), "response": self.response.as_dict()}

    def as_text(self) -> str:
        """The exchange roughly as it was on the wire."""
        lines = [f"> {self.request.method} {self.request.url}"]
        lines += [f"> {k}: {v}" for k, v in self.request.headers.items()]
        if self.request.body:
            lines += [">", *(f"> {line}" for line in self.request.body.splitlines())]
        lines.append(f"< {self.response.status}")
        lines += [f"< {k}: {v}" for k, v in self.response.headers.items()]
        if self.response.body:
            lines += ["<", *(f"< {line}" for line in self.response.body.splitlines())]
        return "\n".join(lines)


def redact(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: ("<redacted>" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def excerpt(body: bytes | str | None) -> str:
    if body is None:
        return ""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    if len(text) > EXCERPT:
        return text[:EXCERPT] + f"... [{len(text) - EXCERPT} more characters]"
    return text


def exchange_of(response: requests.Response) -> Exchange:
    prepared = response.request
    body = prepared.body
    request = Message(headers=redact(prepared.headers), body=excerpt(body),
                      method=prepared.method, url=prepared.url)
    answer = Message(headers=redact(response.headers), body=excerpt(response.content),
                     status=response.status_code)
    return Exchange(request, answer)
