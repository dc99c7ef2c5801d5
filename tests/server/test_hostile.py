"""The server against hostile and unlucky clients, over real sockets, as a process and as a container.

One test (at least) per finding of issue 13, each written so that it failed against the server before the
fix: header bombs, caches fed with large distinct values, slow-loris, the early 413 that a client sending
its whole body first never saw, negative .npy shapes, a 503 that leaked the model's path, forged log lines,
memory spent before validation, plain-text errors, loose parsing, unclear messages, shutdown with
keep-alive connections open, and a killed worker. The limits' exact boundaries are tested too: at the
limit is served, one past it is refused.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import resource
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pytest
from sklearn_server.app import NOT_READY
from sklearn_server.config import HttpLimits

from tests.server import models
from tests.server.live import LiveServer, live_server

TARGETS = [
    pytest.param("process", id="process"),
    pytest.param("container", id="container", marks=pytest.mark.container),
]
LIMITS = HttpLimits()
FAST_TIMEOUTS = {
    "INFERENCE_HEADER_TIMEOUT_SECONDS": "2",
    "INFERENCE_BODY_TIMEOUT_SECONDS": "2",
    "INFERENCE_KEEP_ALIVE_SECONDS": "3",
}
"""Short read timeouts, so the tests of the timeouts take seconds (the sweep adds up to one more)."""
ROW = b"5.1,3.5,1.4,0.2"
MIB = 1024 * 1024


@pytest.fixture(scope="module", params=TARGETS)
def server(
    request: pytest.FixtureRequest, iris_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    """The iris model with short read timeouts, once per module and target."""
    with live_server(request.param, iris_dir, FAST_TIMEOUTS, tmp_path_factory.mktemp("logs")) as live:
        yield live


@pytest.fixture(params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    """For tests that start a server of their own (other settings, other model, or they stop it)."""
    return str(request.param)


# --- helpers ------------------------------------------------------------------------------------------------


def exchange(
    server: LiveServer, data: bytes, *, timeout: float = 30.0, method: str = "GET"
) -> http.client.HTTPResponse:
    """Send raw bytes on a new connection and read one response with http.client's own parser."""
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    with contextlib.suppress(OSError):  # the server may answer and stop reading before all is sent
        sock.sendall(data)
    return read_response(sock, method)


def read_response(sock: socket.socket, method: str = "GET") -> http.client.HTTPResponse:
    response = http.client.HTTPResponse(sock, method=method)
    try:
        response.begin()
        response.body = response.read()  # type: ignore[attr-defined]
    finally:
        sock.close()
    return response


def error_of(response: http.client.HTTPResponse) -> str:
    assert response.getheader("content-type") == "application/json"
    message: str = json.loads(response.body)["error"]  # type: ignore[attr-defined]
    return message


def get(path: str, *headers: bytes) -> bytes:
    return b"\r\n".join([f"GET {path} HTTP/1.1".encode(), b"Host: test", *headers, b"", b""])


def post_csv(body: bytes, *headers: bytes) -> bytes:
    head = [b"POST /invocations HTTP/1.1", b"Host: test", b"Content-Type: text/csv", *headers]
    return b"\r\n".join([*head, b"Content-Length: %d" % len(body), b"", body])


def ping(server: LiveServer, timeout: float = 10.0) -> tuple[int | None, float]:
    """(status or None on a connection error, seconds) of one GET /ping on a new connection."""
    started = time.monotonic()
    connection = server.connection(timeout)
    try:
        connection.request("GET", "/ping")
        status: int | None = connection.getresponse().status
    except OSError:
        status = None
    finally:
        connection.close()
    return status, time.monotonic() - started


def headers_of_total_size(size: int, *, fixed: list[bytes]) -> list[bytes]:
    """Header lines that, with ``fixed``, make a header section of exactly ``size`` bytes (name, value, 4)."""
    used = sum(len(line) + 2 for line in fixed)  # "Name: value" + CRLF = name + value + 4
    padding = size - used - len(b"X-Pad: ") - 2
    return [*fixed, b"X-Pad: " + b"p" * padding]


# --- row 1: header size, count and request line ---------------------------------------------------------


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 431)], ids=["at-the-limit", "one-byte-over"])
def test_the_header_section_is_limited_to_max_header_bytes(
    server: LiveServer, extra: int, status: int
) -> None:
    lines = headers_of_total_size(LIMITS.max_header_bytes + extra, fixed=[b"Host: test"])

    response = exchange(server, b"\r\n".join([b"GET /ping HTTP/1.1", *lines, b"", b""]))

    assert response.status == status
    if status == 431:
        assert "INFERENCE_MAX_HEADER_BYTES" in error_of(response)


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 431)], ids=["at-the-limit", "one-line-over"])
def test_the_header_lines_are_limited_to_max_header_count(
    server: LiveServer, extra: int, status: int
) -> None:
    lines = [b"Host: test", *(b"X-Line-%d: 1" % i for i in range(LIMITS.max_header_count - 1 + extra))]

    response = exchange(server, b"\r\n".join([b"GET /ping HTTP/1.1", *lines, b"", b""]))

    assert response.status == status
    if status == 431:
        assert "INFERENCE_MAX_HEADER_COUNT" in error_of(response)


@pytest.mark.parametrize(("extra", "status"), [(0, 404), (1, 414)], ids=["at-the-limit", "one-byte-over"])
def test_the_request_line_is_limited_to_max_request_line_bytes(
    server: LiveServer, extra: int, status: int
) -> None:
    target = "/" + "a" * (LIMITS.max_request_line_bytes - len("GET / HTTP/1.1") + extra)

    response = exchange(server, get(target))

    assert len(f"GET {target} HTTP/1.1") == LIMITS.max_request_line_bytes + extra
    assert response.status == status  # 404: read in full, and no such path


def test_a_header_bomb_is_cut_off_while_ping_keeps_answering(server: LiveServer) -> None:
    """Two connections each stream a 64 MB header. Parsed as it grew (quadratically), that stalled both
    workers for many seconds; cut off at the limit it costs nothing."""
    statuses: list[int | None] = []

    def bomb() -> None:
        sock = socket.create_connection((server.host, server.port), timeout=30)
        chunk = b"a" * 65536
        with contextlib.suppress(OSError):
            sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\nX-Bomb: ")
            for _ in range(64 * MIB // len(chunk)):
                sock.sendall(chunk)
        try:
            statuses.append(read_response(sock).status)
        except OSError:
            statuses.append(None)

    bombers = [threading.Thread(target=bomb) for _ in range(2)]
    for bomber in bombers:
        bomber.start()
    pings = []
    while any(bomber.is_alive() for bomber in bombers) or len(pings) < 10:
        pings.append(ping(server))
    for bomber in bombers:
        bomber.join(60)

    assert statuses == [431, 431]
    assert [status for status, _ in pings] == [200] * len(pings)
    assert max(seconds for _, seconds in pings) < 5.0  # generous for a busy machine; it was 18 s


# --- row 2: caches keyed on raw header values -------------------------------------------------------------


def test_distinct_large_header_values_do_not_grow_the_workers_memory(server: LiveServer) -> None:
    before = server.workers_memory_mb()
    connection = server.connection()
    try:
        for i in range(600):
            value = b"text/%d-" % i + b"x" * 28_000
            connection.putrequest("POST", "/invocations")
            connection.putheader("Content-Type", value)
            connection.putheader("Accept", value)
            connection.putheader("Content-Length", str(len(ROW)))
            connection.endheaders(ROW)
            response = connection.getresponse()
            response.read()
            assert response.status == 415
    finally:
        connection.close()
    grown = server.workers_memory_mb() - before

    assert grown < 64, f"the workers grew by {grown} MB"  # it was 520 MB per worker


# --- row 3: read timeouts and slow-loris --------------------------------------------------------------------


def test_headers_sent_too_slowly_get_a_408(server: LiveServer) -> None:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(b"GET /ping HTTP/1.1\r\nHost: test\r\n")  # and never the blank line

    response = read_response(sock)

    assert response.status == 408
    assert "INFERENCE_HEADER_TIMEOUT_SECONDS" in error_of(response)


def test_a_body_sent_too_slowly_gets_a_408(server: LiveServer) -> None:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(post_csv(ROW * 4)[:-10])  # ten bytes short, forever

    response = read_response(sock)

    assert response.status == 408
    assert "INFERENCE_BODY_TIMEOUT_SECONDS" in error_of(response)


def test_a_connection_that_never_sends_a_byte_is_closed(server: LiveServer) -> None:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    started = time.monotonic()

    received = sock.recv(1)
    sock.close()

    assert received == b""  # closed, without an answer to a request never made
    assert time.monotonic() - started < 20


def test_an_idle_keep_alive_connection_is_closed(server: LiveServer) -> None:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(get("/ping"))
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()

    assert response.status == 200
    assert response.getheader("connection") is None  # kept alive
    assert sock.recv(1) == b""  # then closed after INFERENCE_KEEP_ALIVE_SECONDS (3 s here)
    sock.close()


def test_slowloris_with_1024_open_files_cannot_starve_the_health_check(
    target: str, iris_dir: Path, tmp_path: Path
) -> None:
    """2,000 connections trickle header bytes at a server allowed 1,024 open files (a common container
    engine default). Before, 50-75% of health checks failed and nothing was logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 2200:
        pytest.skip(f"this test process may open only {hard} files; the attack needs 2,200")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    attackers: list[socket.socket] = []
    try:
        with live_server(target, iris_dir, {}, tmp_path, open_files=1024) as server:
            for _ in range(2000):
                with contextlib.suppress(OSError):
                    sock = socket.create_connection((server.host, server.port), timeout=5)
                    sock.setblocking(False)
                    with contextlib.suppress(OSError):
                        sock.send(b"POST /invocations HTTP/1.1\r\nHost: test\r\n")
                    attackers.append(sock)
            pings = []
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                for sock in attackers:  # one more header byte on each, now and then
                    with contextlib.suppress(OSError):
                        sock.send(b"X")
                pings.append(ping(server, timeout=5)[0])
                time.sleep(0.2)
            log = server.log()
    finally:
        for sock in attackers:
            sock.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    answered = pings.count(200) / len(pings)
    assert answered >= 0.95, f"only {answered:.0%} of {len(pings)} health checks answered"
    assert "INFERENCE_MAX_CONNECTIONS" in log  # the shedding is logged


# --- row 4: the early 413, read by a client that sends its whole body first ---------------------------------


@pytest.mark.parametrize(
    "size", [6 * MIB + 1, 12 * 1000 * 1000, 100 * 1000 * 1000], ids=["6MiB+1", "12MB", "100MB"]
)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_http_client_reads_the_413_of_an_oversized_body(server: LiveServer, size: int, chunked: bool) -> None:
    body = b"1" * size
    connection = server.connection(timeout=60)
    try:
        if chunked:
            pieces = (body[i : i + MIB] for i in range(0, size, MIB))
            connection.request("POST", "/invocations", body=pieces, headers={"Content-Type": "text/csv"},
                               encode_chunked=True)  # fmt: skip
        else:
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()

    assert response.status == 413
    assert "SAGEMAKER_MAX_PAYLOAD_IN_MB=6" in json.loads(payload)["error"]


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 413)], ids=["exactly-6MiB", "one-byte-over"])
def test_the_body_is_limited_to_exactly_the_payload_limit(
    server: LiveServer, extra: int, status: int
) -> None:
    rows = ROW + b"\n"
    body = rows * (6 * MIB // len(rows))
    body += b" " * (6 * MIB - len(body) + extra)  # trailing blanks: still valid CSV

    connection = server.connection(timeout=60)
    try:
        connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
        response = connection.getresponse()
        response.read()
    finally:
        connection.close()

    assert len(body) == 6 * MIB + extra
    assert response.status == status


# --- rows 5 to 11 -------------------------------------------------------------------------------------------


def test_a_negative_npy_shape_is_a_400(server: LiveServer) -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<f8", "fortran_order": False, "shape": (-1, -4)})
    body = buffer.getvalue() + b"\0" * 32
    request = b"\r\n".join([
        b"POST /invocations HTTP/1.1", b"Host: test", b"Content-Type: application/x-npy",
        b"Content-Length: %d" % len(body), b"", body,
    ])  # fmt: skip

    response = exchange(server, request)

    assert response.status == 400
    assert "negative dimension" in error_of(response)


def test_a_model_failing_to_load_gets_the_same_503_as_a_model_loading(target: str, tmp_path: Path) -> None:
    model_dir = models.write_truncated(tmp_path / "model", seconds=2.0)
    bodies = set()
    with live_server(target, model_dir, {}, tmp_path, wait_ready=False) as server:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                response = exchange(server, get("/ping"), timeout=5)
            except OSError:
                if not server.running():
                    break  # it failed fast, as it should
                time.sleep(0.05)  # not listening yet
                continue
            if response.status != 503:
                break
            bodies.add(response.body)  # type: ignore[attr-defined]
            time.sleep(0.1)
        code = server.wait(60)
        log = server.log()

    assert code == 1
    assert bodies == {json.dumps({"error": NOT_READY}, separators=(",", ":")).encode()}
    assert "model.joblib cannot be loaded: the file ends early" in log  # the reason is in the log only


def test_a_path_with_a_line_break_cannot_forge_a_log_line(server: LiveServer) -> None:
    response = exchange(server, get("/x%0aFORGED%0d%0aFORGED-TOO"))

    log = server.log()
    assert response.status == 404
    assert not any(line.startswith("FORGED") for line in log.splitlines())
    assert "/x\\nFORGED\\r\\nFORGED-TOO" in log


def test_a_large_body_of_the_wrong_width_is_refused_before_it_is_parsed(server: LiveServer) -> None:
    body = b"1\n" * (3 * MIB - 1) + b"1"  # 6 MB, one column, 3.1 million rows; the model wants 4
    before = server.workers_memory_mb("VmHWM")

    response = exchange(server, post_csv(body))

    peak_growth = server.workers_memory_mb("VmHWM") - before
    assert response.status == 400
    assert error_of(response) == "expected 4 features, got 1"
    assert peak_growth < 100, f"the workers' peak memory grew by {peak_growth} MB"  # it was 644 MB


def test_malformed_framing_gets_a_json_400(server: LiveServer) -> None:
    response = exchange(server, b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n"
                                b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")  # fmt: skip

    assert response.status == 400
    assert error_of(response).startswith("malformed HTTP request")


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (post_csv(b"5_1,3.5,1.4,0.2"), 400, "CSV row 1, column 1 is not a number: '5_1'"),
        (post_csv(ROW, b"Content-Type: application/json"), 400, "two Content-Type headers"),
        (b"GET /ping HTTP/1.1\r\n\r\n", 400, "needs exactly one Host header"),
        (get("/ping", b"Host: other"), 400, "needs exactly one Host header"),
        (post_csv(b"\x1f\x8b\x08\x00garbage", b"Content-Encoding: gzip"), 415, "Content-Encoding 'gzip'"),
        (post_csv(ROW, b"Transfer-Encoding: gzip"), 400, "malformed HTTP request"),
        (post_csv(ROW, b"Expect: something-else"), 417, "only 100-continue is"),
    ],
    ids=[
        "underscore-number",
        "two-content-types",
        "no-host",
        "two-hosts",
        "gzip-body",
        "gzip-transfer",
        "unknown-expect",
    ],
)
def test_loose_input_is_refused_by_name(
    server: LiveServer, request_bytes: bytes, status: int, message: str
) -> None:
    response = exchange(server, request_bytes)

    assert response.status == status
    assert message in error_of(response)


@pytest.mark.parametrize(("length", "status"), [(1024, 200), (1025, 400)], ids=["1024", "1025"])
def test_custom_attributes_are_limited_to_1024_characters(
    server: LiveServer, length: int, status: int
) -> None:
    value = b"a" * length

    response = exchange(server, post_csv(ROW, b"X-Amzn-SageMaker-Custom-Attributes: " + value))

    assert response.status == status
    if status == 200:
        assert response.getheader("x-amzn-sagemaker-custom-attributes") == value.decode()
    else:
        assert error_of(response) == (
            "X-Amzn-SageMaker-Custom-Attributes is 1025 characters long; at most 1024 are allowed"
        )


# --- HTTP/1.1 that the new layer must still get right ------------------------------------------------------


class OneStream:
    """Hands http.client's response parser the same buffered stream each time: responses share it (and
    closing a response must not close it)."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def makefile(self, mode: str) -> OneStream:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def close(self) -> None:
        pass


def test_pipelined_requests_are_answered_in_order(server: LiveServer) -> None:
    rows = [b"5.1,3.5,1.4,0.2", b"7.7,3.0,6.1,2.3", b"6.2,2.9,4.3,1.3"] * 50
    requests = b"".join(post_csv(row, b"Accept: text/csv") for row in rows) + get(
        "/ping", b"Connection: close"
    )
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(requests)
    answers = []
    with sock, sock.makefile("rb") as stream:
        for _ in range(len(rows) + 1):
            response = http.client.HTTPResponse(OneStream(stream))  # type: ignore[arg-type]
            response.begin()
            answers.append(response.read())

    assert answers == [b"0\n", b"2\n", b"1\n"] * 50 + [b'{"status":"ok"}']


def test_head_answers_headers_only(server: LiveServer) -> None:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall(b"HEAD /ping HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    sock.close()

    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 15\r\n" in received
    assert received.endswith(b"\r\n\r\n")  # and no body after the headers


def test_expect_100_continue_is_answered_before_the_body(server: LiveServer) -> None:
    sock = socket.create_connection((server.host, server.port), timeout=30)
    head = post_csv(ROW, b"Expect: 100-continue")
    sock.sendall(head[: -len(ROW)])

    interim = sock.recv(64)
    sock.sendall(ROW)
    response = read_response(sock)

    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert response.status == 200


# --- row 12: SIGTERM with keep-alive connections open, and a body still arriving ----------------------------


def test_requests_on_open_keep_alive_connections_after_sigterm_are_answered(
    target: str, iris_dir: Path, tmp_path: Path
) -> None:
    with live_server(target, iris_dir, {}, tmp_path) as server:
        connections = [server.connection() for _ in range(20)]
        for connection in connections:
            connection.request("GET", "/ping")
            connection.getresponse().read()

        server.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        answers = []
        for connection in connections:
            try:
                connection.request("POST", "/invocations", body=ROW, headers={"Content-Type": "text/csv"})
                response = connection.getresponse()
                answers.append((response.status, response.getheader("connection"), response.read()))
            except OSError as error:
                answers.append((0, type(error).__name__, b""))
            finally:
                connection.close()
        code = server.wait(30)

    assert answers == [(200, "close", b"[0]")] * 20
    assert code == 0


def test_a_client_still_sending_its_body_at_sigterm_gets_an_answer(
    target: str, iris_dir: Path, tmp_path: Path
) -> None:
    with live_server(target, iris_dir, FAST_TIMEOUTS, tmp_path) as server:
        sock = socket.create_connection((server.host, server.port), timeout=30)
        sock.sendall(post_csv(ROW * 8)[:-20])
        time.sleep(0.3)

        server.send_signal(signal.SIGTERM)
        response = read_response(sock)
        code = server.wait(30)

    assert response.status == 408
    assert "INFERENCE_BODY_TIMEOUT_SECONDS" in error_of(response)
    assert code == 0


# --- row 13: a worker killed under load ---------------------------------------------------------------------


def test_a_killed_worker_is_replaced_without_a_single_503(
    target: str, iris_dir: Path, tmp_path: Path
) -> None:
    """A replacement loads the model before it accepts connections, so only the killed worker's own
    connections can fail, and /ping never says 503 (it did for about 0.1 s)."""
    with live_server(target, iris_dir, {}, tmp_path) as server:
        statuses: list[int | None] = []
        stop = threading.Event()

        def poll() -> None:
            while not stop.is_set():
                statuses.append(ping(server, timeout=10)[0])

        pollers = [threading.Thread(target=poll) for _ in range(2)]
        for poller in pollers:
            poller.start()
        time.sleep(0.5)
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and "starting a replacement" not in server.log():
            time.sleep(0.05)
        while time.monotonic() < deadline and server.log().count("LogisticRegression, predict") < 3:
            time.sleep(0.05)
        time.sleep(0.5)
        stop.set()
        for poller in pollers:
            poller.join(30)
        workers = server.worker_pids()

    assert 503 not in statuses
    assert statuses.count(None) <= 2  # at most the pings in flight on the killed worker
    assert len(workers) == 2
    assert victim not in workers
