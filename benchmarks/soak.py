"""A soak: steady load with faults injected, for ten minutes, watching errors and memory.

    .venv/bin/python benchmarks/soak.py                  # 600 s, the figures README quotes
    .venv/bin/python benchmarks/soak.py --duration 60    # a quick look

The real ``serve`` process (2 workers, the iris model) takes, all at once:

- **load**: wrk, 16 connections POSTing one CSV row, for the whole duration;
- **slow clients**: every second 20 new connections that trickle header bytes and never finish (they get
  a 408 after INFERENCE_HEADER_TIMEOUT_SECONDS, 10 s by default, or are shed at the connection cap);
- **oversized bodies**: every 2 s a 12 MB body sent whole by ``http.client``, which must read a 413;
- **worker kills**: every 60 s one worker gets SIGKILL (the supervisor replaces it);
- **a health check**: GET /ping every 0.5 s.

It prints what each client saw and the workers' memory over time. Connections open on a worker when it is
killed are reset: wrk counts those as socket errors, and the report says how many kills there were. This is
a script, not a test: nothing here asserts a timing; it exits 1 if a health check or a 413 failed for any
reason but a kill, or if memory kept growing.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCHMARKS))

from run import WRK_SCRIPT, children, port_from_log, proc_kb, start_ours, stop, train_model  # noqa: E402

KILL_EVERY_S = 60.0
MEMORY_GROWTH_LIMIT = 1.25
"""Exit 1 if the workers' memory at the end is more than this times what it was after the warm-up."""


@dataclass
class Tally:
    """What one kind of client saw, by outcome, safe to update from several threads."""

    outcomes: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, outcome: str) -> None:
        with self.lock:
            self.outcomes[outcome] += 1


def health_checks(port: int, stop_at: float, tally: Tally) -> None:
    while time.monotonic() < stop_at:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/ping")
            tally.add(str(connection.getresponse().status))
        except OSError as error:
            tally.add(type(error).__name__)
        finally:
            connection.close()
        time.sleep(0.5)


def oversized_bodies(port: int, stop_at: float, tally: Tally) -> None:
    body = b"1" * 12_000_000
    while time.monotonic() < stop_at:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
            response = connection.getresponse()
            response.read()
            tally.add(str(response.status))
        except OSError as error:
            tally.add(type(error).__name__)
        finally:
            connection.close()
        time.sleep(2)


def slow_clients(port: int, stop_at: float, tally: Tally) -> None:
    """20 new trickling connections a second; each lives 15 s unless the server ends it first."""
    open_ones: list[tuple[float, socket.socket]] = []
    while time.monotonic() < stop_at:
        now = time.monotonic()
        for _ in range(20):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.setblocking(False)
                sock.send(b"POST /invocations HTTP/1.1\r\nHost: soak\r\n")
                open_ones.append((now, sock))
            except OSError as error:
                tally.add(f"connect {type(error).__name__}")
        kept = []
        for opened, sock in open_ones:
            ended = server_ended(sock)
            if ended:
                tally.add(ended)
                sock.close()
                continue
            with contextlib.suppress(OSError):
                sock.send(b"X")
            if now - opened > 15:
                tally.add("gave up after 15 s")
                sock.close()
            else:
                kept.append((opened, sock))
        open_ones = kept
        time.sleep(1)
    for _, sock in open_ones:
        sock.close()


def server_ended(sock: socket.socket) -> str | None:
    """How the server ended a slow client's connection (its answer's status, or a close); None: not yet."""
    try:
        received = sock.recv(4096)
    except BlockingIOError:
        return None
    except OSError as error:
        return type(error).__name__
    if not received:
        return "closed without an answer"
    return received.split(b" ", 2)[1].decode(errors="replace") if b" " in received else "garbled answer"


def workers_rss_mb(pid: int) -> float:
    return sum(proc_kb(worker, "status", "VmRSS:") for worker in children(pid)) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds (default: 600)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        model_dir.mkdir()
        train_model(model_dir)
        script = work / "post.lua"
        script.write_text(WRK_SCRIPT)
        log = work / "serve.log"
        process = start_ours(model_dir, log)
        try:
            port = port_from_log(log, process)
            return soak(process, port, args.duration, script, log)
        finally:
            stop(process)


def soak(process: subprocess.Popen[bytes], port: int, duration: float, script: Path, log: Path) -> int:
    time.sleep(2)
    wrk = subprocess.Popen(
        ["wrk", "--threads", "1", "--connections", "16", "--duration", f"{duration:g}s", "--timeout", "10s",
         "--script", str(script), f"http://127.0.0.1:{port}/invocations"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    started = time.monotonic()
    stop_at = started + duration
    tallies = {name: Tally() for name in ("health check", "oversized body", "slow client")}
    threads = [
        threading.Thread(target=health_checks, args=(port, stop_at, tallies["health check"])),
        threading.Thread(target=oversized_bodies, args=(port, stop_at, tallies["oversized body"])),
        threading.Thread(target=slow_clients, args=(port, stop_at, tallies["slow client"])),
    ]
    for thread in threads:
        thread.start()
    memory: list[tuple[float, float]] = []
    kills = 0
    next_kill = started + KILL_EVERY_S
    while time.monotonic() < stop_at:
        now = time.monotonic()
        memory.append((now - started, workers_rss_mb(process.pid)))
        if now >= next_kill and children(process.pid):
            os.kill(children(process.pid)[0], signal.SIGKILL)
            kills += 1
            next_kill += KILL_EVERY_S
        time.sleep(min(10.0, max(0.0, stop_at - time.monotonic())))
    for thread in threads:
        thread.join(60)
    output, _ = wrk.communicate(timeout=120)
    return report(output, tallies, memory, kills, log)


def report(
    wrk_output: str, tallies: dict[str, Tally], memory: list[tuple[float, float]], kills: int, log: Path
) -> int:
    print(wrk_output)
    for name, tally in tallies.items():
        print(f"{name:<15} " + ", ".join(f"{outcome}: {n}" for outcome, n in tally.outcomes.most_common()))
    print(f"worker kills: {kills}; replacements logged: {log.read_text().count('starting a replacement')}")
    print("workers' RSS (MB) over time: " + ", ".join(f"{t:.0f}s {mb:.0f}" for t, mb in memory))
    problems = []
    checks = tallies["health check"].outcomes
    if set(checks) - {"200"}:
        problems.append(f"health checks other than 200: {dict(checks)}")
    refused = tallies["oversized body"].outcomes
    if set(refused) - {"413"}:
        problems.append(f"oversized bodies answered other than 413: {dict(refused)}")
    warm, last = memory[min(3, len(memory) - 1)][1], memory[-1][1]
    if last > warm * MEMORY_GROWTH_LIMIT:
        problems.append(f"the workers grew from {warm:.0f} MB to {last:.0f} MB")
    errors = re.search(r"Socket errors: (.*)", wrk_output)
    print(
        f"wrk socket errors: {errors.group(1) if errors else 'none'} (expected only around the {kills} kills)"
    )
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
