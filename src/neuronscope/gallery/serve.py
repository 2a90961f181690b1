"""``serve``: a built gallery over HTTP on 127.0.0.1 only (the files also work without it)."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path

from ..errors import NeuronscopeError

HOST = "127.0.0.1"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:
        pass


def make_server(folder: str | Path, port: int = 8000, quiet: bool = True) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``folder`` bound to 127.0.0.1:``port`` (0 picks a free port); not started."""
    folder = Path(folder)
    if not (folder / "index.html").is_file():
        raise NeuronscopeError(f"'{folder}' holds no gallery (no index.html): build one with `neuronscope microscope --out {folder}`")
    handler = functools.partial(_QuietHandler if quiet else http.server.SimpleHTTPRequestHandler, directory=str(folder))
    try:
        return http.server.ThreadingHTTPServer((HOST, port), handler)
    except OSError as error:
        raise NeuronscopeError(f"cannot serve on {HOST}:{port} ({error.strerror}); choose another --port") from None


def serve_in_background(folder: str | Path, port: int = 0) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Start serving in a daemon thread; returns the server (``shutdown()`` it) and its base URL."""
    server = make_server(folder, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{HOST}:{server.server_address[1]}/"
