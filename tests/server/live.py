"""A running server, process or container, with what the hostile suite needs besides HTTP.

The log (to see what was logged and how), the workers' pids on this host (to watch their memory), and
signals (to stop it under load). ``live_server(target, ...)`` starts one of either kind and stops it.
"""

from __future__ import annotations

import contextlib
import http.client
import signal
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from tests.server import container_target
from tests.server.targets import (
    DEFAULT_ENV,
    HttpClient,
    child_pids,
    serve_process,
    wait_until_ready,
)


@dataclass
class LiveServer:
    target: str
    host: str
    port: int
    log: Callable[[], str]
    main_pid: Callable[[], int]
    send_signal: Callable[[signal.Signals], None]
    wait: Callable[[float], int]
    """Wait for the server to exit, at most that many seconds; its exit status."""
    running: Callable[[], bool]

    def connection(self, timeout: float = 30.0) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def worker_pids(self) -> list[int]:
        return child_pids(self.main_pid())

    def workers_memory_mb(self, field: str = "VmRSS") -> int:
        """The sum over the workers of ``field`` from /proc/PID/status: VmRSS now, VmHWM the peak."""
        total_kb = 0
        for pid in self.worker_pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith(field + ":"):
                        total_kb += int(line.split()[1])
        return total_kb // 1024


@contextlib.contextmanager
def live_server(
    target: str,
    model_dir: Path,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    open_files: int | None = None,
    wait_ready: bool = True,
) -> Iterator[LiveServer]:
    """The real server as ``target`` ("process" or "container") with ``env``; stopped on exit."""
    if target == "process":
        with serve_process(model_dir, env, log_dir, open_files=open_files) as served:
            if wait_ready:
                with HttpClient("process", served.base_url) as client:
                    wait_until_ready(client, served)
            yield LiveServer(
                target="process",
                host="127.0.0.1",
                port=served.port,
                log=served.log,
                main_pid=lambda: served.process.pid,
                send_signal=served.process.send_signal,
                wait=served.process.wait,
                running=lambda: served.process.poll() is None,
            )
        return
    # One --ulimit replaces all of containers.conf's default_ulimits, so nproc is restated (FIELD-NOTES).
    run_args = (
        [f"--ulimit=nofile={open_files}:{open_files}", "--ulimit=nproc=20000:20000"] if open_files else []
    )
    with container_target.started_container(
        model_dir, {**DEFAULT_ENV, **env}, wait_for_ping=wait_ready, run_args=run_args
    ) as container:
        host, port = container.url.removeprefix("http://").rsplit(":", 1)

        def kill(sig: signal.Signals, container_id: str = container.id) -> None:
            container_target.podman("kill", "--signal", sig.name, container_id)

        def wait(timeout: float, container_id: str = container.id) -> int:
            try:
                waited = container_target.podman("wait", container_id, timeout=timeout)
            except subprocess.TimeoutExpired:
                raise TimeoutError(f"the container did not exit within {timeout:g} s") from None
            return int(waited.stdout.strip())

        pid = container_target.host_pid(container.id)
        yield LiveServer(
            target="container",
            host=host,
            port=int(port),
            log=lambda: container_target.logs(container.id),
            main_pid=lambda: pid,
            send_signal=kill,
            wait=wait,
            running=lambda: container_target.is_running(container.id),
        )
