"""HTTP/1.1 on one connection: httptools parses, this module enforces the limits and calls the ASGI app.

Why not uvicorn (measured, issue 13): it bounds neither the header section nor the time a client takes to
send a request, its header parsing grows with the square of a header's size, an early 413 closes the socket
with unread data (a client that sends its whole body before reading gets a reset, not the 413), and its
own errors are plain text. Here every resource a client can make a worker hold has a bound
(``config.HttpLimits``), and breaking one gets the status HTTP names, in the JSON error format:

- request line over ``max_request_line_bytes``: 414; header section over ``max_header_bytes`` or more than
  ``max_header_count`` lines: 431 (a header that keeps growing across reads is cut off at the limit plus
  one read, so parsing stays linear);
- headers not complete ``header_timeout_seconds`` after the request's first byte, or the body not complete
  ``body_timeout_seconds`` after the headers: 408;
- a body over the payload limit: 413 as soon as Content-Length says so, or as soon as a chunked body
  crosses it;
- malformed framing (the parser refuses it, e.g. Content-Length with Transfer-Encoding): 400;
  a transfer coding other than chunked: 501; an ``Expect`` other than ``100-continue``: 417;
  HTTP/1.1 without exactly one Host: 400.

After such a final answer the connection is closed the way nginx does it ("lingering close"): the answer
is sent with ``Connection: close``, the sending side is shut down, and whatever the client still sends is
read and dropped for up to ``LINGER_SECONDS``. A client that sends its whole body before reading the
answer (``http.client``, urllib, a load balancer) then gets the 413 instead of a connection reset.

Requests on one connection are answered in order; a pipelined request waits (the socket stops being read)
until the one before it is answered. The app sees a complete body: it is at most the payload limit.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections import deque
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Final, cast

import httptools
import orjson

from sklearn_server.config import (
    ENV_BODY_TIMEOUT,
    ENV_HEADER_TIMEOUT,
    ENV_MAX_HEADER_BYTES,
    ENV_MAX_HEADER_COUNT,
    ENV_MAX_REQUEST_LINE_BYTES,
)
from sklearn_server.errors import PayloadTooLargeError
from sklearn_server.logs import printable

if TYPE_CHECKING:
    from sklearn_server.http_server import HttpServer

logger = logging.getLogger("sklearn_server.http")

LINGER_SECONDS: Final = 5.0
"""How long a connection closed after a refusal keeps reading (and dropping) what the client still sends."""
HEADER_SLACK_BYTES: Final = 4096
"""Allowance for line endings and spacing when a header section is measured by the bytes read."""

# What the connection is reading (the answering side is ``HttpConnection.current``).
WAITING: Final = 0  # for a request's first byte: a new connection, or keep-alive between requests
HEADERS: Final = 1  # the request line and headers
BODY: Final = 2  # the body
CLOSING: Final = 3  # a final answer was sent; reading and dropping until the client closes (lingering)

_STATUS_LINES: Final = {
    status.value: b"HTTP/1.1 %d %s\r\n" % (status.value, status.phrase.encode()) for status in HTTPStatus
}
_CONTINUE: Final = b"HTTP/1.1 100 Continue\r\n\r\n"
_CLOSE: Final = b"connection: close\r\n"
_KEEP_ALIVE_10: Final = b"connection: keep-alive\r\n"
_ASGI: Final = {"version": "3.0", "spec_version": "2.3"}


class RefusalError(Exception):
    """A request the HTTP layer answers itself, with ``status`` and a JSON error, then closes."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_response(status: int, message: str, date: bytes, *, close: bool = True) -> bytes:
    body = orjson.dumps({"error": message})
    return b"".join(
        (
            _STATUS_LINES.get(status, b"HTTP/1.1 %d \r\n" % status),
            b"content-type: application/json\r\ncontent-length: %d\r\n" % len(body),
            date,
            _CLOSE if close else b"",
            b"\r\n",
            body,
        )
    )


class Request:
    """One request: its ASGI scope, its whole body, and the ``receive`` and ``send`` the app is given."""

    __slots__ = (
        "body",
        "connection",
        "head",
        "headers",
        "keep_alive",
        "parts",
        "response_started",
        "scope",
        "status",
    )

    def __init__(
        self, connection: HttpConnection, scope: dict[str, Any], body: bytes, keep_alive: bool
    ) -> None:
        self.connection = connection
        self.scope = scope
        self.body: bytes | None = body
        self.keep_alive = keep_alive
        self.head = scope["method"] == "HEAD"
        self.response_started = False
        self.status = 500
        self.headers: list[tuple[bytes, bytes]] = []
        self.parts: list[bytes] = []

    async def receive(self) -> dict[str, Any]:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.connection.wait_closed()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.response_started = True
            self.status = message["status"]
            self.headers = message.get("headers", [])
        elif message["type"] == "http.response.body":
            body = message.get("body", b"")
            if message.get("more_body", False):  # the app sends no streams; should one come, it is joined
                self.parts.append(body)
                return
            await self.connection.respond(self, b"".join([*self.parts, body]) if self.parts else body)


class HttpConnection(asyncio.Protocol):
    """One client connection; ``HttpServer`` makes one per accepted socket and sweeps their deadlines."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.limits = server.limits
        self.loop = server.loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.reading = WAITING
        self.since = server.now
        """When the current reading state began (the sweep's clock): what timeouts and eviction go by."""
        self.served = 0
        self.current: Request | None = None
        self.queue: deque[Request | RefusalError] = deque()
        self.closed = False
        self.client_eof = False
        self.close_after: bool = False
        self._closed_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._write_paused = False
        self._task: asyncio.Task[None] | None = None
        self.client = ""
        # The request being read.
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._bytes_read_in_headers = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._expect_continue = False

    # --- asyncio.Protocol ---------------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's
        peer = transport.get_extra_info("peername")
        self.client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "unknown"
        self.since = self.server.now
        self.server.connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connection_lost(self)
        for waiter in (self._closed_waiter, self._drain_waiter):
            if waiter is not None and not waiter.done():
                waiter.set_result(None)

    def eof_received(self) -> bool:
        """The client shut down its sending side: answer what it sent in full, then close."""
        self.client_eof = True
        if self.reading == CLOSING or (self.current is None and not self.queue):
            self.close()
        return True  # keep the transport open for the answer

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self.reading == CLOSING:
            return  # lingering: read and dropped
        began_in_headers = self.reading == HEADERS
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if isinstance(cause, RefusalError):
                self._refuse(cause)
            else:
                logger.exception("the HTTP layer failed on a request from %s", self.client)
                self._refuse(RefusalError(500, "internal server error"))
            return
        except httptools.HttpParserUpgrade:
            # A protocol upgrade (h2c, websocket) is not offered: a request completed before it is answered,
            # and then the connection closes; nothing after the upgrade request is read.
            self.close_after = True
            self.parser = _NO_PARSER
            if self.current is None and not self.queue:
                self._refuse(RefusalError(400, "protocol upgrades are not supported; send plain HTTP/1.1"))
            return
        except httptools.HttpParserError as error:
            reason = printable(str(error.args[0]) if error.args else type(error).__name__)
            self._refuse(RefusalError(400, f"malformed HTTP request: {reason}"))
            return
        if began_in_headers and self.reading == HEADERS:
            # A header still incomplete after another read: count it, so that one growing header (which
            # httptools buffers without telling us) is cut off at the limit instead of parsed quadratically.
            self._bytes_read_in_headers += len(data)
            limits = self.limits
            if self._bytes_read_in_headers > (
                limits.max_request_line_bytes + limits.max_header_bytes + HEADER_SLACK_BYTES
            ):
                self._refuse(RefusalError(431, _header_section_too_large(limits.max_header_bytes)))

    # --- httptools callbacks (raising RefusalError aborts the parse) -------------------------------------

    def on_message_begin(self) -> None:
        self.reading = HEADERS
        self.since = self.server.now
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._bytes_read_in_headers = 0
        self._body = []
        self._body_size = 0
        self._expect_continue = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.limits.max_request_line_bytes:
            raise RefusalError(414, _request_line_too_long(self.limits.max_request_line_bytes))

    def on_header(self, name: bytes, value: bytes) -> None:
        headers = self._headers
        self._header_bytes += len(name) + len(value) + 4
        if len(headers) >= self.limits.max_header_count:
            count = self.limits.max_header_count
            raise RefusalError(431, f"more than {count} header lines ({ENV_MAX_HEADER_COUNT})")
        if self._header_bytes > self.limits.max_header_bytes:
            raise RefusalError(431, _header_section_too_large(self.limits.max_header_bytes))
        headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        parser = self.parser
        method = parser.get_method()
        line_bytes = len(method) + len(self._url) + 10  # SP target SP HTTP/1.1
        if line_bytes > self.limits.max_request_line_bytes:
            raise RefusalError(414, _request_line_too_long(self.limits.max_request_line_bytes))
        self.reading = BODY
        self.since = self.server.now
        version = parser.get_http_version()
        hosts = 0
        declared: int | None = None
        for name, value in self._headers:
            if name == b"host":
                hosts += 1
            elif name == b"content-length":
                declared = int(value)  # the parser has already refused anything but digits
            elif name == b"transfer-encoding" and value.strip().lower() != b"chunked":
                shown = printable(value)
                raise RefusalError(501, f"Transfer-Encoding {shown} is not supported; only chunked is")
            elif name == b"expect":
                if value.strip().lower() != b"100-continue":
                    shown = printable(value)
                    raise RefusalError(417, f"Expect: {shown} is not supported; only 100-continue is")
                self._expect_continue = True
        if hosts > 1 or (hosts == 0 and version == "1.1"):
            raise RefusalError(400, "an HTTP/1.1 request needs exactly one Host header")
        limit = self.server.max_payload_bytes
        if declared is not None and declared > limit:
            raise RefusalError(413, PayloadTooLargeError.for_size(f"{declared} bytes", limit).message)
        if self._expect_continue and self.current is None and self.transport is not None:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        limit = self.server.max_payload_bytes
        if self._body_size > limit:
            raise RefusalError(413, PayloadTooLargeError.for_size(f"over {limit} bytes", limit).message)
        self._body.append(body)

    def on_message_complete(self) -> None:
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            shown = printable(self._url)
            raise RefusalError(400, f"the request target is not a valid URL: {shown}") from None
        raw_path: bytes = parsed.path or b"/"
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = urllib.parse.unquote(path)
        parser = self.parser
        version = parser.get_http_version()
        scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": version,
            "method": parser.get_method().decode("ascii"),
            "scheme": "http",
            "path": path,
            "raw_path": raw_path,
            "query_string": parsed.query or b"",
            "root_path": "",
            "headers": self._headers,
            "client": None,
            "server": None,
        }
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        request = Request(self, scope, body, keep_alive=parser.should_keep_alive())
        self._body = []
        self.reading = WAITING
        self.since = self.server.now
        if self.current is None:
            self._start(request)
        else:
            self.queue.append(request)
            if self.transport is not None:
                self.transport.pause_reading()

    # --- answering ----------------------------------------------------------------------------------------

    def _start(self, request: Request) -> None:
        self.current = request
        self._task = self.loop.create_task(self._run(request))  # held: the loop keeps only a weak reference

    async def _run(self, request: Request) -> None:
        try:
            await self.server.app(request.scope, request.receive, request.send)
        except Exception:
            method, path = request.scope["method"], printable(request.scope["raw_path"])
            logger.exception("unexpected error answering %s %s", method, path)
        if self.current is request:  # the app returned without a complete response
            if request.response_started:
                self.close()
            else:
                request.status, request.headers = 500, [(b"content-type", b"application/json")]
                await self.respond(request, b'{"error":"internal server error"}')

    async def respond(self, request: Request, body: bytes) -> None:
        """Send the app's response for ``request`` and move on to the next request, or close."""
        if self.current is not request:
            return
        transport = self.transport
        close = not request.keep_alive or self.close_after or self.server.shutting_down or self.client_eof
        if transport is not None and not self.closed:
            parts = [_STATUS_LINES.get(request.status) or b"HTTP/1.1 %d \r\n" % request.status]
            for name, value in request.headers:
                if name == b"connection":
                    close = close or value.lower() == b"close"
                    continue
                parts += (name, b": ", value, b"\r\n")
            parts.append(self.server.date_header)
            if close:
                parts.append(_CLOSE)
            elif request.scope["http_version"] == "1.0":
                parts.append(_KEEP_ALIVE_10)
            parts.append(b"\r\n")
            if not request.head:
                parts.append(body)
            transport.write(b"".join(parts))
            if self._write_paused:
                self._drain_waiter = self.loop.create_future()
                await self._drain_waiter
                self._drain_waiter = None
        self.served += 1
        self.current = None
        if self.closed:
            return
        if close:
            self._linger()
        elif self.queue:
            following = self.queue.popleft()
            if not self.queue and self.transport is not None:
                self.transport.resume_reading()
            if isinstance(following, RefusalError):
                self._refuse(following)
            else:
                self._start(following)
        elif self.client_eof:
            self.close()

    def _refuse(self, refusal: RefusalError) -> None:
        """Answer ``refusal`` after the requests before it, then close (lingering)."""
        if self.reading == CLOSING or self.closed:
            return
        self.parser = _NO_PARSER
        if self.current is not None:
            self.queue.append(refusal)
            self.reading = WAITING
            if self.transport is not None:
                self.transport.pause_reading()
            return
        log = logger.warning if refusal.status in (500, 503) else logger.info
        log("%d from the HTTP layer to %s: %s", refusal.status, self.client, refusal.message)
        if self.transport is not None:
            self.transport.write(error_response(refusal.status, refusal.message, self.server.date_header))
        self.served += 1
        self._linger()

    def _linger(self) -> None:
        """Shut down our sending side, then read and drop what the client still sends (``LINGER_SECONDS``)."""
        self.reading = CLOSING
        self.since = self.server.now
        self.queue.clear()
        transport = self.transport
        if transport is None or self.closed:
            return
        if self.client_eof or not transport.can_write_eof():
            self.close()
            return
        transport.write_eof()
        transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()

    def abort(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.abort()

    async def wait_closed(self) -> None:
        if self.closed:
            return
        if self._closed_waiter is None:
            self._closed_waiter = self.loop.create_future()
        await self._closed_waiter

    # --- the server's sweep ---------------------------------------------------------------------------------

    def check_deadline(self, now: float) -> None:
        """Called about once a second: enforce the read timeouts, keep-alive, lingering and shutdown."""
        if self.closed:
            return
        limits = self.limits
        waited = now - self.since
        if self.reading == CLOSING:
            if waited > LINGER_SECONDS:
                self.close()
        elif self.current is not None or self.queue:
            return  # answering: bounded by the app's own timeout
        elif self.reading == HEADERS:
            if waited > limits.header_timeout_seconds:
                self._refuse(RefusalError(408, _too_slow("headers", limits.header_timeout_seconds)))
        elif self.reading == BODY:
            if waited > limits.body_timeout_seconds:
                self._refuse(RefusalError(408, _too_slow("body", limits.body_timeout_seconds)))
        elif waited > (limits.keep_alive_seconds if self.served else limits.header_timeout_seconds):
            self.close()

    def shutdown_deadline(self) -> None:
        """The graceful shutdown is over: answer whatever is still unanswered with a 503, and close."""
        if self.closed:
            return
        if self.reading in (HEADERS, BODY) and self.current is None and not self.queue:
            self._refuse(RefusalError(503, _SHUTTING_DOWN))
        elif self.current is not None and not self.current.response_started and self.transport is not None:
            self.transport.write(error_response(503, _SHUTTING_DOWN, self.server.date_header))
            self.close()
        else:
            self.close()

    def is_idle(self) -> bool:
        """Nothing unanswered and no request begun."""
        return self.reading == WAITING and self.current is None and not self.queue

    def evictable(self) -> tuple[int, float] | None:
        """(priority, since) when this connection may be closed to make room, lower first; None when not."""
        if self.closed or self.current is not None or self.queue:
            return None
        if self.reading == CLOSING:
            return (0, self.since)
        if self.reading != WAITING or not self.served:
            return (1, self.since)  # mid-request, or never sent a byte: the slowloris suspects
        return (2, self.since)  # idle keep-alive


class _NoParser:
    """Stands in for the parser once the connection stops parsing (after a refusal)."""

    def feed_data(self, data: bytes) -> None:
        pass


_NO_PARSER: Final[Any] = _NoParser()


_SHUTTING_DOWN: Final = "the server is shutting down; send the request again"


def _request_line_too_long(limit: int) -> str:
    return f"the request line is over {limit} bytes ({ENV_MAX_REQUEST_LINE_BYTES})"


def _header_section_too_large(limit: int) -> str:
    return f"the header section is over {limit} bytes ({ENV_MAX_HEADER_BYTES})"


def _too_slow(part: str, seconds: float) -> str:
    variable = ENV_HEADER_TIMEOUT if part == "headers" else ENV_BODY_TIMEOUT
    return f"the request {part} took over {seconds:g} s ({variable})"
