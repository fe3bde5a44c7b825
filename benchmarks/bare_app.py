"""The baseline of ``benchmarks/occi_api.py``: a bare Flask app replaying captured responses.

It answers the benchmark's requests with the bytes nimbo sent for them (body, status and the
headers the application set; gunicorn adds Server, Date, Connection and Content-Length), so
the difference to nimbo is the work nimbo does per request: auth, routing, negotiation, the
store and rendering. The capture is a JSON file named by ``NIMBO_BENCH_CAPTURE``::

    {"<name>": {"status": 200, "headers": [["Content-Type", "text/plain"], ...],
                "body": "<base64>"}, ...}

with the names ``query_interface``, ``compute``, ``listing`` and ``create``. Served by
``gunicorn --config python:gateway.gunicorn_conf ... bare_app:app``, like nimbo.
"""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from flask import Flask, Response, request


@dataclass(frozen=True)
class Captured:
    """One response as nimbo sent it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def load_capture(path: Path) -> dict[str, Captured]:
    raw = json.loads(path.read_text())
    return {
        name: Captured(
            entry["status"], [(k, v) for k, v in entry["headers"]], base64.b64decode(entry["body"])
        )
        for name, entry in raw.items()
    }


CAPTURED = load_capture(Path(os.environ["NIMBO_BENCH_CAPTURE"]))
app = Flask("bare")


def _replay(name: str) -> Response:
    captured = CAPTURED[name]
    return Response(captured.body, status=captured.status, headers=captured.headers)


@app.get("/-/")
def query_interface() -> Response:
    return _replay("query_interface")


@app.get("/compute/<compute_id>")
def compute(compute_id: str) -> Response:
    return _replay("compute")


@app.route("/compute/", methods=["GET", "POST"])
def compute_collection() -> Response:
    if request.method == "POST":
        request.get_data()
        return _replay("create")
    return _replay("listing")
