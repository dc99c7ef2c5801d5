"""A real HTTP server on 127.0.0.1 that answers POSTs as scripted and records what it received."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import ClassVar


class ScriptedHandler(http.server.BaseHTTPRequestHandler):
    """Answers POSTs with the scripted (status, body) pairs in order, and records what it received."""

    script: ClassVar[list[tuple[int, bytes]]] = []
    received: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        status, body = type(self).script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status >= 400 else "text/csv")
        if "X-Amzn-SageMaker-Custom-Attributes" in self.headers:
            self.send_header(
                "X-Amzn-SageMaker-Custom-Attributes", self.headers["X-Amzn-SageMaker-Custom-Attributes"]
            )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def scripted_server() -> Iterator[str]:
    """The base URL; set ``ScriptedHandler.script`` first, read ``ScriptedHandler.received`` after."""
    ScriptedHandler.script = []
    ScriptedHandler.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
