"""Serving a WSGI application on 127.0.0.1 in a thread, for real HTTP conversations."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from werkzeug.serving import make_server

WSGIApp = Callable[..., Any]


@contextmanager
def serving(app: WSGIApp) -> Iterator[str]:
    """``app`` on a free loopback port (threaded) for the duration; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name="wsgi", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
