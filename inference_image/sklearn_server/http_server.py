"""One worker's HTTP server: accepts connections on the shared socket, bounds them, and stops gracefully.

- **Deadlines** are swept once a second (``SWEEP_SECONDS``) instead of arming a timer per request: a request
  costs a worker about 100 us of CPU, and two timer operations per request would show. The timeouts are
  seconds long, so a second of granularity is fine.
- **Connections** are capped per worker (``HttpLimits.max_connections``, by default the open-file limit
  less a reserve). At the cap, the connections that have waited longest without a complete request (the
  slow-loris suspects), then the oldest idle keep-alive connections, are closed to make room for the new
  one, and a warning says so. Without this, a few thousand trickling connections exhaust the file
  descriptors and the health check cannot even be accepted.
- **Shutdown** (SIGTERM or SIGINT, or ``stop()``): stop accepting; answer every request that arrives on an
  open connection in the next ``DRAIN_SECONDS`` (with ``Connection: close``), then close the idle
  connections; let requests in flight finish until ``GRACEFUL_SHUTDOWN_S``; then answer whatever is still
  unanswered with a 503 and close.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import resource
import signal
import socket
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final

from sklearn_server.config import ENV_MAX_CONNECTIONS, HttpLimits
from sklearn_server.http_protocol import HttpConnection

logger = logging.getLogger("sklearn_server.http")

SWEEP_SECONDS: Final = 1.0
DRAIN_SECONDS: Final = 2.0
"""After SIGTERM, how long requests that arrive on already-open connections are still answered."""
GRACEFUL_SHUTDOWN_S: Final = 20.0
"""After SIGTERM, how long requests in flight may take before they are answered with a 503."""
RESERVED_FILES: Final = 64
"""File descriptors kept free of connections: the model, logs, pipes, the BLAS runtime."""
MAX_DEFAULT_CONNECTIONS: Final = 10_000
EVICTION_SHARE: Final = 0.1
"""At the connection cap, this share of it is closed at once, so the search for victims is rare."""
WARNING_INTERVAL_S: Final = 10.0

App = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


def default_max_connections() -> int:
    """The open-file limit less a reserve, at most MAX_DEFAULT_CONNECTIONS (at least 16)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_DEFAULT_CONNECTIONS
    return max(16, min(soft - RESERVED_FILES, MAX_DEFAULT_CONNECTIONS))


def raise_open_file_limit() -> None:
    """Raise the soft open-file limit to the hard one, as Go's runtime does: many container engines leave the
    soft limit at 1024 while allowing far more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class HttpServer:
    """Serves ``app`` (ASGI) on ``listener`` within ``limits`` until stopped."""

    def __init__(
        self, app: App, limits: HttpLimits, listener: socket.socket, *, max_payload_bytes: int
    ) -> None:
        self.app = app
        self.limits = limits
        self.listener = listener
        self.max_payload_bytes = max_payload_bytes
        self.max_connections = limits.max_connections or default_max_connections()
        self.loop = asyncio.get_running_loop()
        self.now = self.loop.time()
        self.date_header = _date_header()
        self.connections: set[HttpConnection] = set()
        self.shutting_down = False
        self._stop = asyncio.Event()
        self._all_closed = asyncio.Event()
        self._evicted = 0
        self._last_warning = -WARNING_INTERVAL_S

    async def serve(self) -> None:
        """Serve until SIGTERM/SIGINT or ``stop()``, then shut down gracefully (see the module docstring)."""
        loop = self.loop
        server = await loop.create_server(lambda: HttpConnection(self), sock=self.listener, backlog=2048)
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._on_signal, sig)
        sweeper = loop.create_task(self._sweep())
        try:
            await self._stop.wait()
            await self._shutdown(server)
        finally:
            sweeper.cancel()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)  # stopped already: a late signal must not kill the exit

    def stop(self) -> None:
        """Begin the graceful shutdown (call on the loop's thread)."""
        self._stop.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        if self.shutting_down:  # a second signal: answer what is left at once
            logger.warning("%s again: closing %d connections now", sig.name, len(self.connections))
            for connection in list(self.connections):
                connection.shutdown_deadline()
            return
        self.stop()

    async def _shutdown(self, server: asyncio.AbstractServer) -> None:
        self.shutting_down = True
        self.now = self.loop.time()
        server.close()
        if self.connections:
            await self._wait_all_closed(DRAIN_SECONDS)
            for connection in list(self.connections):
                if connection.is_idle():
                    connection.close()
        if self.connections:
            await self._wait_all_closed(GRACEFUL_SHUTDOWN_S - DRAIN_SECONDS)
        if self.connections:
            logger.warning(
                "%d connections still open after %.0f s: answering 503",
                len(self.connections),
                GRACEFUL_SHUTDOWN_S,
            )
            for connection in list(self.connections):
                connection.shutdown_deadline()
            await self._wait_all_closed(2.0)
            for connection in list(self.connections):
                connection.abort()

    async def _wait_all_closed(self, timeout: float) -> None:
        self._all_closed.clear()
        if not self.connections:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._all_closed.wait(), max(timeout, 0.0))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.now = now = self.loop.time()
            self.date_header = _date_header()
            for connection in list(self.connections):
                connection.check_deadline(now)

    # --- the connection registry ------------------------------------------------------------------------

    def connection_made(self, connection: HttpConnection) -> None:
        self.connections.add(connection)
        if len(self.connections) > self.max_connections:
            self._make_room()

    def connection_lost(self, connection: HttpConnection) -> None:
        self.connections.discard(connection)
        if not self.connections:
            self._all_closed.set()

    def _make_room(self) -> None:
        """Close the least useful connections: lingering ones, then the longest-waiting unanswered ones,
        then the oldest idle ones. Connections being answered are never closed."""
        ranked = sorted(
            ((rank, connection) for connection in self.connections if (rank := connection.evictable())),
            key=lambda ranked_connection: ranked_connection[0],
        )
        count = max(1, int(self.max_connections * EVICTION_SHARE))
        for _, connection in ranked[:count]:
            self.connections.discard(connection)  # gone now, not when the loop reports it: no double count
            connection.abort()
        self._evicted += min(count, len(ranked))
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL_S:
            logger.warning(
                "%d connections open, over this worker's limit of %d (%s, or the open-file limit): closed %d "
                "that waited longest without a complete request, or idled",
                len(self.connections),
                self.max_connections,
                ENV_MAX_CONNECTIONS,
                self._evicted,
            )
            self._last_warning, self._evicted = now, 0


def _date_header() -> bytes:
    return b"date: %s\r\n" % email.utils.formatdate(usegmt=True).encode()
