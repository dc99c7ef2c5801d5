"""The demo's child processes: started and stopped as whole sessions, and race-free ports.

Ports: a server binds port 0 itself and says which port it got; we read that from its log. Choosing a free
port in advance (bind 127.0.0.1:0, close, hand the number over) races with every other process on a busy
machine: another one can take the port in between, and the server then fails with "Address already in use".
A server that binds port 0 cannot lose that race.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def wait_for_announced_port(
    process: subprocess.Popen[Any],
    log_path: Path,
    announcement: re.Pattern[str],
    *,
    timeout: float,
    name: str,
) -> int:
    """The port ``process`` announces in ``log_path`` (the first group of ``announcement``).

    Raises:
        RuntimeError: the process exited first, or said nothing within ``timeout`` seconds; the message ends
            with the log's last lines.
    """
    deadline = time.monotonic() + timeout
    while True:
        log = log_path.read_text(errors="replace") if log_path.exists() else ""
        found = announcement.search(log)
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode} before it listened:\n{_tail(log)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{name} did not name its port within {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(0.1)


def _tail(log: str, lines: int = 20) -> str:
    return "\n".join(log.splitlines()[-lines:])


_INTERRUPTS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def started_session(args: Sequence[str], **popen_options: Any) -> Iterator[subprocess.Popen[Any]]:
    """Start ``args`` in a session of its own; stop the whole session when the ``with`` ends, however it ends.

    An interrupt (SIGINT, SIGTERM) that arrives while the child is being started is held until the child is
    known, then delivered: otherwise Ctrl-C at that moment leaves a running child that nothing stops.
    """
    held: list[int] = []
    in_main_thread = threading.current_thread() is threading.main_thread()  # where signal handlers live
    previous = {
        signum: signal.signal(signum, lambda signum, _frame: held.append(signum))
        for signum in (_INTERRUPTS if in_main_thread else ())
    }
    process = None
    try:
        process = subprocess.Popen(args, start_new_session=True, **popen_options)
        _restore_handlers(previous)
        _deliver(held)
        yield process
    finally:
        _restore_handlers(previous)
        _deliver(held)  # when Popen itself failed: the interrupt still counts
        if process is not None:
            stop_session(process)


def _deliver(held: list[int]) -> None:
    while held:
        signal.raise_signal(held.pop(0))


def run_in_session(
    args: Sequence[str], *, timeout: float, **popen_options: Any
) -> subprocess.CompletedProcess[str]:
    """Like ``subprocess.run(args, capture_output=True, text=True)``, in a session stopped as a whole on a
    timeout or an interrupt."""
    with started_session(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen_options
    ) as process:
        stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _restore_handlers(handlers: dict[int, Any]) -> None:
    for signum, handler in handlers.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


def stop_session(process: subprocess.Popen[Any]) -> None:
    """SIGTERM the session ``process`` leads (started with ``start_new_session=True``), SIGKILL after 10 s.

    A session, not only the process: the CDK CLI runs node and the app, a shell script runs podman, and an
    interrupted run must stop all of them.
    """
    if process.returncode is not None:
        return  # reaped already: its process group id may belong to someone else by now
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
