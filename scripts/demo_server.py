"""The demo's inference server: the real image in podman or docker, else the same server as a local process.

The engine, and the environment it needs on this host, come from scripts/container-env.sh: the build scripts
make the same choice (scripts/lib/container-engine.sh), from a check that works on an empty container storage.
Ports are race-free: the container publishes to a host port the engine picks (``127.0.0.1::8080``, then
``<engine> port``); the local process binds port 0 and logs the port it got. A container gets its name
before it is started, so it is removed on success, on failure and on Ctrl-C, also when ``run`` fails after
creating it.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import ssl
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from scripts.local_aws import LOCAL_IMAGE, ROOT
from scripts.processes import run_in_session, started_session, wait_for_announced_port

CONTAINER_PORT = 8080
STARTUP_TIMEOUT_SECONDS = 60.0
SERVER_ANNOUNCEMENT = re.compile(r"serving \S+ on port (\d+) with \d+ workers")
SERVING_PATH = re.compile(r"serving model\.\w+(?: with ONNX Runtime|, not model\.onnx).*")
"""The server's start-up line saying whether the compiled model (ONNX Runtime) or the native one serves."""
DEMO_FLAVOUR = "full"
"""The image flavour the demo builds: the one with ONNX Runtime, so the compiled model serves."""
"""The server's INFO line once it listens; with SAGEMAKER_BIND_TO_PORT=0 it names the port it bound."""
_BUILD_LOG_LINE = re.compile(r"^(build-image|build-base-image|container-env): (?!\S+ build )")


@dataclass(frozen=True)
class ContainerEngine:
    """podman or docker, with the environment it needs on this host and what the choice said."""

    name: str
    env: dict[str, str]
    notes: list[str] = field(default_factory=list)


def find_container_engine() -> ContainerEngine | None:
    """The engine scripts/container-env.sh chooses (ENGINE overrides), or None without podman or docker."""
    completed = run_in_session([str(ROOT / "scripts" / "container-env.sh")], timeout=300)
    if completed.returncode != 0:
        raise RuntimeError(f"scripts/container-env.sh failed: {completed.stderr.strip()}")
    values = dict(line.split("=", 1) for line in completed.stdout.splitlines() if "=" in line)
    name = values.pop("ENGINE", "")
    if not name:
        return None
    return ContainerEngine(name, {**os.environ, **values}, completed.stderr.splitlines())


def build_image(engine: ContainerEngine, workdir: Path) -> str:
    """Build LOCAL_IMAGE with scripts/build-image.sh and return its image id.

    The id, not the tag, is what runs: another build of the same tag (a second demo at the same time) cannot
    swap the image in between.
    """
    iidfile = workdir / "image.id"
    env = {**engine.env, "ENGINE": engine.name, "IMAGE": LOCAL_IMAGE, "FLAVOUR": DEMO_FLAVOUR}
    ca_bundle = env.get("CA_BUNDLE") or ssl.get_default_verify_paths().cafile
    if ca_bundle and Path(ca_bundle).is_file():
        env["CA_BUNDLE"] = ca_bundle  # a build secret: trusted during pip install, never stored in the image
    _run_showing_progress([str(ROOT / "scripts" / "build-image.sh"), "--iidfile", str(iidfile)], env)
    return iidfile.read_text().strip()


def _run_showing_progress(args: list[str], env: dict[str, str]) -> None:
    """Run ``args``, print the scripts' own log lines as they come, and the output's tail on failure."""
    tail: deque[str] = deque(maxlen=30)
    # A session of its own, stopped as a whole on Ctrl-C: the shell script, and the engine's build under it.
    with started_session(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            tail.append(line.rstrip())
            if _BUILD_LOG_LINE.match(line):
                print(f"      {line.rstrip()}", flush=True)
        process.wait()
    if process.returncode != 0:
        output = "\n".join(tail)
        raise RuntimeError(f"{' '.join(args)} failed with exit code {process.returncode}:\n{output}")


@contextlib.contextmanager
def running_container(engine: ContainerEngine, image: str, model_dir: Path) -> Iterator[str]:
    """Run ``image serve`` with the model at /opt/ml/model; yield its URL once /ping is 200; remove it."""
    name = f"ml-inference-demo-{os.getpid()}-{secrets.token_hex(4)}"
    try:
        started = _engine(
            engine,
            "run", "--detach", "--name", name, "--read-only", "--tmpfs", "/tmp",
            "--publish", f"127.0.0.1::{CONTAINER_PORT}",  # the engine picks a free host port: no race
            "--volume", f"{model_dir}:/opt/ml/model:ro",
            image, "serve",
        )  # fmt: skip
        if started.returncode != 0:
            raise RuntimeError(f"{engine.name} run failed: {started.stderr.strip()}")
        published = _engine(engine, "port", name, f"{CONTAINER_PORT}/tcp")
        url = f"http://{published.stdout.split()[0]}"
        print(f"      container {name} on {url}", flush=True)
        _wait_for_ping(
            url,
            alive=lambda: (
                _engine(engine, "inspect", "--format", "{{.State.Running}}", name).stdout.strip() == "true"
            ),
            logs=lambda: _container_logs(engine, name),
        )
        print_serving_path(_container_logs(engine, name))
        yield url
    finally:
        # A container that never started is removed as well (podman leaves it in state Created).
        stop = ["--time", "5"] if engine.name == "podman" else []
        _engine(engine, "rm", "--force", *stop, name)


def print_serving_path(logs: str) -> None:
    """Print which model serves, as the server's start-up log says (one line; its workers all say it)."""
    found = SERVING_PATH.search(logs)
    print(f"      server: {found.group(0) if found else 'serving the native model'}", flush=True)


def _engine(engine: ContainerEngine, *args: str) -> subprocess.CompletedProcess[str]:
    return run_in_session([engine.name, *args], env=engine.env, timeout=120)


def _container_logs(engine: ContainerEngine, name: str) -> str:
    logs = _engine(engine, "logs", name)
    return logs.stdout + logs.stderr


@contextlib.contextmanager
def running_local_process(model_dir: Path, log_path: Path) -> Iterator[str]:
    """The same server as a local process, on a port it binds itself; yield its URL once /ping is 200."""
    print("      no container engine: running the same server as a local process", flush=True)
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": "0"}
    with (
        log_path.open("wb") as log,
        started_session(
            [sys.executable, str(ROOT / "inference_image" / "serve"), "serve"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        ) as process,
    ):
        port = wait_for_announced_port(
            process, log_path, SERVER_ANNOUNCEMENT, timeout=STARTUP_TIMEOUT_SECONDS, name="the server"
        )
        if port == 0:
            raise RuntimeError("the server logged port 0: it binds no port of its own for port 0")
        url = f"http://127.0.0.1:{port}"
        print(f"      server pid {process.pid} on {url}", flush=True)
        _wait_for_ping(url, alive=lambda: process.poll() is None, logs=log_path.read_text)
        print_serving_path(log_path.read_text())
        yield url


def _wait_for_ping(
    url: str, *, alive: Callable[[], bool], logs: Callable[[], str], timeout: float = STARTUP_TIMEOUT_SECONDS
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if not alive():
            raise RuntimeError(f"the server stopped before /ping answered 200:\n{logs()[-3000:]}")
        time.sleep(0.2)
    raise RuntimeError(f"/ping did not answer 200 within {timeout:.0f} s:\n{logs()[-3000:]}")
