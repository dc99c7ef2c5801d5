"""The server under test, behind one small client, on every target the contract suite runs against.

- ``asgi``: the ASGI app in this process with the model already loaded (httpx.ASGITransport).
- ``process``: the real ``inference_image/serve`` entrypoint as a subprocess on a free port.
- ``container``: the real image, run read-only and non-root (tests/server/container_target.py); those
  tests carry the ``container`` marker.

conftest.py turns these into the ``server`` and ``serve_model`` fixtures.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVE = ROOT / "inference_image" / "serve"
sys.path.insert(0, str(SERVE.parent))

from sklearn_server.app import InferenceApp  # noqa: E402
from sklearn_server.config import (  # noqa: E402
    CONTAINER_ENV_NAMES,
    ENV_MULTI_MODEL,
    ENV_MULTI_MODEL_DIR,
    ENV_SKOPS_TRUSTED_TYPES,
    ENV_USE_COMPILED,
    LIMIT_ENV_NAMES,
    MULTI_MODEL_ENV_NAMES,
    ServerConfig,
)
from sklearn_server.model import find_model_source, load_model  # noqa: E402
from sklearn_server.registry import ModelRegistry  # noqa: E402

from tests.server import container_target  # noqa: E402  (its tests skip, or fail in CI, without podman)

STARTUP_TIMEOUT_S = 30.0
"""Bound on waiting for a server to answer 200 on /ping (the target is about 1 s)."""
REQUEST_TIMEOUT_S = 30.0
DEFAULT_ENV = {"SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
"""Every target runs two workers, so /execution-parameters and batching look the same everywhere."""


@dataclass(frozen=True)
class Call:
    """One request for ``Client.request_many``."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes | None = None


class Client(Protocol):
    """What every target offers the tests: httpx-like requests, several at once, and the base URL."""

    target: str
    base_url: str

    def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, content: Any = None
    ) -> httpx.Response: ...

    def request_many(self, calls: Sequence[Call]) -> list[httpx.Response]: ...


class HttpClient:
    """A server reached over a real socket."""

    def __init__(self, target: str, base_url: str) -> None:
        self.target = target
        self.base_url = base_url
        self._client = httpx.Client(base_url=base_url, timeout=REQUEST_TIMEOUT_S)

    def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, content: Any = None
    ) -> httpx.Response:
        return self._client.request(method, path, headers=headers, content=content)

    def request_many(self, calls: Sequence[Call]) -> list[httpx.Response]:
        async def send_all() -> list[httpx.Response]:
            limits = httpx.Limits(max_connections=len(calls))
            async with httpx.AsyncClient(
                base_url=self.base_url, timeout=REQUEST_TIMEOUT_S, limits=limits
            ) as client:
                return await asyncio.gather(
                    *(
                        client.request(c.method, c.path, headers=dict(c.headers), content=c.content)
                        for c in calls
                    )
                )

        return asyncio.run(send_all())

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsgiClient:
    """The ASGI app in this process, driven by one event loop that runs while a request is in flight."""

    target = "asgi"
    base_url = "http://asgi"

    def __init__(self, app: InferenceApp) -> None:
        self.app = app
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url=self.base_url, timeout=REQUEST_TIMEOUT_S
        )

    def request(
        self, method: str, path: str, *, headers: Mapping[str, str] | None = None, content: Any = None
    ) -> httpx.Response:
        return self._loop.run_until_complete(
            self._client.request(method, path, headers=headers, content=content)
        )

    def request_many(self, calls: Sequence[Call]) -> list[httpx.Response]:
        async def send_all() -> list[httpx.Response]:
            return await asyncio.gather(
                *(
                    self._client.request(c.method, c.path, headers=dict(c.headers), content=c.content)
                    for c in calls
                )
            )

        return self._loop.run_until_complete(send_all())

    def call_soon(self, callback: Callable[..., Any], *args: Any) -> None:
        """Run ``callback`` on the app's loop, from any thread (as a worker's model loader does)."""
        self._loop.call_soon_threadsafe(callback, *args)

    def close(self) -> None:
        self._loop.run_until_complete(self._client.aclose())
        self.app.close()
        self._loop.close()


# --- targets ------------------------------------------------------------------------------------------------


def server_environment(model_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """This process's environment minus any server setting it happens to carry, plus the test's own.

    The port is 0: the server binds a free one itself and names it in its log, so no other process can
    take it between a choice and the bind (two test runs at once on one machine both pass).
    """
    inherited = {
        name: value
        for name, value in os.environ.items()
        if name not in CONTAINER_ENV_NAMES
        and name not in (ENV_SKOPS_TRUSTED_TYPES, ENV_USE_COMPILED)
        and name not in LIMIT_ENV_NAMES
        and name not in MULTI_MODEL_ENV_NAMES
    }
    return {
        **inherited,
        **DEFAULT_ENV,
        **env,
        "SM_MODEL_DIR": str(model_dir),
        "SAGEMAKER_BIND_TO_PORT": "0",
    }


_LISTENING = re.compile(r"listening on port (\d+)")


@dataclass
class ServeProcess:
    """``inference_image/serve`` running as a subprocess; its stderr goes to ``log_path``."""

    process: subprocess.Popen[bytes]
    log_path: Path
    _port: int | None = None

    @property
    def port(self) -> int:
        """The port the server bound (read from its log; waits for the line, bounded)."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while self._port is None:
            found = _LISTENING.search(self.log())
            if found:
                self._port = int(found.group(1))
            elif self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"serve never said which port it listens on:\n{self.log()}")
            else:
                time.sleep(0.02)
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait(5)

    def worker_pids(self) -> list[int]:
        return child_pids(self.process.pid)


def child_pids(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in children.read_text().split()] if children.exists() else []


@contextlib.contextmanager
def serve_process(
    model_dir: Path, env: Mapping[str, str], log_dir: Path, *, open_files: int | None = None
) -> Iterator[ServeProcess]:
    """Start the real entrypoint exactly as the README says; stop it (SIGTERM, bounded) on exit.

    ``open_files`` sets the open-file limit (soft and hard) of the server, as a container engine would.
    """
    log_path = Path(tempfile.mkstemp(prefix="serve-", suffix=".log", dir=log_dir)[1])

    def limit_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(SERVE), "serve"],
            env=server_environment(model_dir, env),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=log_dir,
            preexec_fn=limit_open_files if open_files is not None else None,
        )
    served = ServeProcess(process, log_path)
    try:
        yield served
    finally:
        served.stop()


def wait_until_ready(client: Client, served: ServeProcess | None = None) -> None:
    """Poll /ping until 200, failing early when the process exits and after STARTUP_TIMEOUT_S."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    last = "no answer"
    while time.monotonic() < deadline:
        if served is not None and served.process.poll() is not None:
            pytest.fail(
                f"serve exited with {served.process.returncode} before /ping was 200:\n{served.log()}"
            )
        try:
            status = client.request("GET", "/ping").status_code
            if status == 200:
                return
            last = f"/ping answered {status}"
        except httpx.TransportError as error:
            last = f"{type(error).__name__}: {error}"
        time.sleep(0.05)
    pytest.fail(f"/ping did not answer 200 within {STARTUP_TIMEOUT_S:g} s ({last})")


def asgi_app(model_dir: Path, env: Mapping[str, str], *, load: bool = True) -> InferenceApp:
    """The app as a worker builds it, from the same environment variables, with the model loaded."""
    config = ServerConfig.from_env({**DEFAULT_ENV, **env, "SM_MODEL_DIR": str(model_dir)})
    app = InferenceApp(config)
    if load:
        app.model_loaded(load_model(find_model_source(config), config))
    return app


def load_in_background(client: AsgiClient, model_dir: Path, env: Mapping[str, str]) -> threading.Thread:
    """Load the model on a thread and hand it to the app on its loop, the way a worker does."""
    config = ServerConfig.from_env({**DEFAULT_ENV, **env, "SM_MODEL_DIR": str(model_dir)})

    def load() -> None:
        model = load_model(find_model_source(config), config)
        client.call_soon(client.app.model_loaded, model)

    thread = threading.Thread(target=load, daemon=True)
    thread.start()
    return thread


ServeModel = Callable[..., Client]
"""``serve_model(model_dir, env=None, wait_ready=True) -> Client``, stopped when the test ends."""


@contextlib.contextmanager
def start_target(
    target: str, model_dir: Path, env: Mapping[str, str], log_dir: Path, *, wait_ready: bool = True
) -> Iterator[Client]:
    if target == "asgi":
        asgi = AsgiClient(asgi_app(model_dir, env, load=wait_ready))
        if not wait_ready:
            load_in_background(asgi, model_dir, env)
        try:
            yield asgi
        finally:
            asgi.close()
    elif target == "process":
        with serve_process(model_dir, env, log_dir) as served:
            client = HttpClient("process", served.base_url)
            try:
                if wait_ready:
                    wait_until_ready(client, served)
                yield client
            finally:
                client.close()
    elif target == "container":
        if not wait_ready:
            with container_target.started_container(
                model_dir, {**DEFAULT_ENV, **env}, wait_for_ping=False
            ) as ctr:
                client = HttpClient("container", ctr.url)
                try:
                    yield client
                finally:
                    client.close()
            return
        with container_target.running_container(model_dir, {**DEFAULT_ENV, **env}) as url:
            client = HttpClient("container", url)
            try:
                yield client
            finally:
                client.close()
    else:  # pragma: no cover
        raise ValueError(f"unknown target {target!r}")


@contextlib.contextmanager
def start_multi_model_target(
    target: str, models_root: Path, env: Mapping[str, str], log_dir: Path
) -> Iterator[tuple[Client, str]]:
    """The server in multi-model mode as ``target``, serving from ``models_root``; yields the client and the
    path under which the server sees ``models_root`` (what a ``POST /models`` url starts with)."""
    env = {**env, ENV_MULTI_MODEL: "true"}
    if target == "asgi":
        config = ServerConfig.from_env({**DEFAULT_ENV, **env, ENV_MULTI_MODEL_DIR: str(models_root)})
        asgi = AsgiClient(InferenceApp(config, registry=ModelRegistry(config)))
        try:
            yield asgi, str(models_root)
        finally:
            asgi.close()
    elif target == "process":
        multi_model_env = {**env, ENV_MULTI_MODEL_DIR: str(models_root)}
        with (
            serve_process(models_root, multi_model_env, log_dir) as served,
            HttpClient("process", served.base_url) as client,
        ):
            wait_until_ready(client, served)
            yield client, str(models_root)
    elif target == "container":
        with (
            container_target.started_container(
                models_root, {**DEFAULT_ENV, **env}, mount_at=container_target.CONTAINER_MULTI_MODEL_DIR
            ) as ctr,
            HttpClient("container", ctr.url) as client,
        ):
            yield client, container_target.CONTAINER_MULTI_MODEL_DIR
    else:  # pragma: no cover
        raise ValueError(f"unknown target {target!r}")
