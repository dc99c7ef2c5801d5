"""The real inference image, built once per test session and run the way SageMaker runs it.

``running_container(model_dir, env)`` starts ``IMAGE serve`` with a read-only root filesystem, a tmpfs /tmp,
the image's non-root user and the model mounted read-only at /opt/ml/model, waits until /ping answers 200 and
yields the base URL. The contract suite runs over HTTP against it exactly as against the local process.

The image is built from inference_image/ on a local debootstrap base (scripts/build-base-image.sh, no registry
needed) and tagged by a hash of what goes into it, so a rerun with nothing changed starts at once. Set
BASE_IMAGE to build on another base instead (e.g. python:3.11-slim-bookworm where a registry is reachable).

Without podman these tests skip, unless REQUIRE_CONTAINER_TESTS=1 (CI), where that is a failure.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import shutil
import ssl
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE_DIR = ROOT / "inference_image"
CONTAINERS_CONF = ROOT / "tests" / "container" / "containers.conf"
LOCAL_BASE_IMAGE = "localhost/ml-inference-base:bookworm"
IMAGE_REPOSITORY = "localhost/ml-inference"
TEST_TAG_PREFIX = "test-"
TEST_FLAVOUR = "full"
"""The image flavour the suite builds: the full one, as the contract suite runs every model kind (XGBoost,
LightGBM and ONNX included) in the container."""
DEFAULT_FLAVOUR = "sklearn"
"""The Dockerfile's default flavour: scikit-learn and pandas, no XGBoost, LightGBM or ONNX Runtime."""
CONTAINER_PORT = 8080
CONTAINER_MODEL_DIR = "/opt/ml/model"
CONTAINER_MULTI_MODEL_DIR = "/opt/ml/models"
"""Where SageMaker puts the models of a multi-model endpoint, one ``<name>/model`` directory each."""

STARTUP_TIMEOUT_SECONDS = 60.0
"""Bound on the wait for the first 200 on /ping (generous: CI machines are shared; the target is ~1 s)."""
BUILD_TIMEOUT_SECONDS = 900
_IGNORED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis"}


class ContainerUnavailableError(RuntimeError):
    """podman is missing, or the image could not be built; the message says why."""


@dataclass(frozen=True)
class Container:
    """A running container: its id (for podman commands) and the base URL of its server."""

    id: str
    url: str


def podman(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run podman with this sandbox's containers.conf (unless the caller chose one with CONTAINERS_CONF)."""
    return subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        check=check,
        timeout=timeout,
        env=podman_environment(),
    )


def podman_environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


MARKER_CA = ROOT / "tests" / "container" / "marker-ca.pem"
"""A self-signed certificate that nothing trusts, added to every test build's CA bundle: the image test
looks for it in the image, so "no build-time CA is kept" is checked on every run, not only behind a proxy."""


def host_ca_bundle() -> Path:
    """The CA bundle pip should trust inside the build: CA_BUNDLE, else this host's default OpenSSL bundle
    (behind a TLS-intercepting proxy only that one knows the proxy's CA), else certifi's."""
    configured = os.environ.get("CA_BUNDLE") or ssl.get_default_verify_paths().cafile
    if configured and Path(configured).is_file():
        return Path(configured)
    import certifi

    return Path(certifi.where())


_ca_bundles: list[Path] = []


def build_ca_bundle() -> Path:
    """The bundle passed to the test build as its secret: the host's bundle plus ``MARKER_CA``."""
    if not _ca_bundles:
        handle, name = tempfile.mkstemp(prefix="ml-inference-ca-", suffix=".pem")
        with os.fdopen(handle, "wb") as bundle:
            bundle.write(host_ca_bundle().read_bytes().rstrip(b"\n") + b"\n" + MARKER_CA.read_bytes())
        _ca_bundles.append(Path(name))
    return _ca_bundles[0]


def base_image() -> str:
    return os.environ.get("BASE_IMAGE") or LOCAL_BASE_IMAGE


def image_inspect(reference: str) -> dict[str, Any]:
    """``podman image inspect`` of one image, as a dict."""
    (info,) = json.loads(podman("image", "inspect", reference).stdout)
    result: dict[str, Any] = info
    return result


# --- building ---------------------------------------------------------------------------------------------


_built: dict[str, str | ContainerUnavailableError] = {}


def built_image(flavour: str = TEST_FLAVOUR) -> str:
    """The tag of the real image of ``flavour`` (the Dockerfile's FLAVOUR; default: full), built at most once
    per session (a failure is remembered, not retried)."""
    if flavour not in _built:
        try:
            _built[flavour] = _build_test_image(flavour)
        except ContainerUnavailableError as error:
            _built[flavour] = error
    outcome = _built[flavour]
    if isinstance(outcome, ContainerUnavailableError):
        _unavailable(str(outcome))
    return outcome


def built_image_if_any(flavour: str = TEST_FLAVOUR) -> str | None:
    """The image's tag if this session built (or found) it, else None; never builds."""
    outcome = _built.get(flavour)
    return outcome if isinstance(outcome, str) else None


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("REQUIRE_CONTAINER_TESTS") == "1":
        pytest.fail(f"container tests required (REQUIRE_CONTAINER_TESTS=1) but {reason}", pytrace=False)
    pytest.skip(reason)


def _build_test_image(flavour: str) -> str:
    if shutil.which("podman") is None:
        raise ContainerUnavailableError(
            "podman is not installed (scripts/ensure-container-tools.sh installs it)"
        )
    base = base_image()
    _ensure_base_image(base)
    tag = f"{IMAGE_REPOSITORY}:{TEST_TAG_PREFIX}{_content_hash(base, flavour)}"
    if podman("image", "exists", tag, check=False).returncode != 0:
        env = {"IMAGE": tag, "BASE_IMAGE": base, "ENGINE": "podman", "CONTEXT": str(IMAGE_DIR)}
        env["FLAVOUR"] = flavour
        env["CA_BUNDLE"] = str(build_ca_bundle())
        _run_script("build-image.sh", env)
        _remove_other_test_images(keep=tag)
    return tag


def _ensure_base_image(base: str) -> None:
    if podman("image", "exists", base, check=False).returncode == 0:
        return
    if base != LOCAL_BASE_IMAGE:
        return  # a public base: the build pulls it
    if os.geteuid() != 0:
        raise ContainerUnavailableError(
            f"{base} is missing and building it needs root (debootstrap): run scripts/build-base-image.sh "
            "as root, or set BASE_IMAGE to a python:3.11 slim image your registry serves"
        )
    _run_script("build-base-image.sh", {"BASE_IMAGE": base, "ENGINE": "podman"})


def _run_script(name: str, extra_env: Mapping[str, str]) -> None:
    completed = subprocess.run(
        [str(ROOT / "scripts" / name)],
        capture_output=True,
        text=True,
        check=False,
        timeout=BUILD_TIMEOUT_SECONDS,
        env={**podman_environment(), **extra_env},
    )
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).splitlines()
        raise ContainerUnavailableError(f"scripts/{name} failed:\n" + "\n".join(output[-60:]))


def _content_hash(base: str, flavour: str) -> str:
    """Hash of everything the image is built from: inference_image/, the build script, the base image and the
    flavour."""
    digest = hashlib.sha256()
    digest.update(image_inspect(base)["Id"].encode() if _is_local(base) else base.encode())
    digest.update(f"FLAVOUR={flavour}\0".encode())
    for path in [ROOT / "scripts" / "build-image.sh", *sorted(_build_inputs())]:
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _is_local(reference: str) -> bool:
    return podman("image", "exists", reference, check=False).returncode == 0


def _build_inputs() -> Iterator[Path]:
    for path in IMAGE_DIR.rglob("*"):
        relative = path.relative_to(IMAGE_DIR)
        if path.is_file() and not _IGNORED_NAMES.intersection(relative.parts) and path.suffix != ".pyc":
            yield path


KEPT_TEST_IMAGES: Final = 3
"""Test images kept besides the current one: other checkouts on this machine (worktrees, a second clone)
test their own images at the same time, so the newest few stay."""


def _remove_other_test_images(keep: str) -> None:
    """Remove old test images, never one a container uses (no --force) and never the newest few."""
    listed = podman(
        "images", "--sort", "created", "--format", "{{.Repository}}:{{.Tag}}", check=False
    ).stdout.split()
    others = [
        ref for ref in listed if ref.startswith(f"{IMAGE_REPOSITORY}:{TEST_TAG_PREFIX}") and ref != keep
    ]
    stale = others[KEPT_TEST_IMAGES:]  # newest first
    if stale:
        podman("rmi", *stale, check=False)


# --- running ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def running_container(model_dir: Path, env: dict[str, str]) -> Iterator[str]:
    """Run the real image as SageMaker does (``IMAGE serve``) and yield its base URL once /ping is 200.

    ``env`` becomes the container's environment; SM_MODEL_DIR is dropped (the model is mounted at
    /opt/ml/model) and SAGEMAKER_BIND_TO_PORT, when set, is the port published. The container is removed on
    exit; its logs are printed when startup or the body of the ``with`` fails.
    """
    with started_container(model_dir, env) as container:
        yield container.url


@contextlib.contextmanager
def started_container(
    model_dir: Path,
    env: Mapping[str, str],
    *,
    wait_for_ping: bool = True,
    run_args: Sequence[str] = (),
    mount_at: str = CONTAINER_MODEL_DIR,
    live_mount: bool = False,
    flavour: str = TEST_FLAVOUR,
) -> Iterator[Container]:
    """Like ``running_container``, but yields the container's id as well, for podman commands.

    ``run_args`` are more ``podman run`` options, e.g. ``--ulimit=nofile=1024:1024``. ``mount_at`` is where
    ``model_dir`` appears in the container (``CONTAINER_MULTI_MODEL_DIR`` for a multi-model endpoint).
    ``live_mount`` mounts ``model_dir`` itself rather than a readable copy, so what the test writes into it
    later appears in the container, as SageMaker adds models while it runs; the test then keeps it
    readable by the container's user. ``flavour``: the image's (default: the full one the suite tests).
    """
    image = built_image(flavour)
    container_env = {name: value for name, value in env.items() if name != "SM_MODEL_DIR"}
    container_port = int(container_env.get("SAGEMAKER_BIND_TO_PORT") or CONTAINER_PORT)
    mounted = contextlib.nullcontext(model_dir) if live_mount else _world_readable_copy(model_dir)
    with mounted as mount:
        started = podman(
            "run",
            "--detach",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--volume",
            f"{mount}:{mount_at}:ro",
            "--publish",
            f"127.0.0.1::{container_port}",  # podman picks a free host port: no race with other tests
            *(f"--env={name}={value}" for name, value in container_env.items()),
            *run_args,
            image,
            "serve",
            check=False,
        )
        if started.returncode != 0:
            pytest.fail(f"podman run failed: {started.stderr.strip()}")
        container_id = started.stdout.strip()
        try:
            container = Container(container_id, _published_url(container_id, container_port))
            if wait_for_ping:
                wait_until_healthy(container)
            yield container
        except BaseException:
            print_logs(container_id)
            raise
        finally:
            podman("rm", "--force", "--time", "5", container_id, check=False)


def _published_url(container_id: str, container_port: int) -> str:
    address = podman("port", container_id, f"{container_port}/tcp").stdout.strip().splitlines()[0]
    return f"http://{address}"


def wait_until_healthy(container: Container, timeout: float = STARTUP_TIMEOUT_SECONDS) -> None:
    """Poll /ping until it answers 200; fail early if the container exits, and after ``timeout`` seconds."""
    host, port = container.url.removeprefix("http://").rsplit(":", 1)
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection(host, int(port), timeout=2)
        try:
            connection.request("GET", "/ping")
            status = connection.getresponse().status
            if status == 200:
                return
            last = f"/ping answered {status}"
        except OSError as error:
            last = f"{type(error).__name__}: {error}"
        finally:
            connection.close()  # also when the request raised: a leaked socket is an error under -W error
        if not is_running(container.id):
            pytest.fail(f"container {container.id[:12]} exited before /ping answered 200 ({last})")
        time.sleep(0.05)
    pytest.fail(f"/ping did not answer 200 within {timeout:g} s ({last})")


def host_pid(container_id: str) -> int:
    """The host's pid of the container's first process (the server's supervisor)."""
    return int(podman("container", "inspect", "--format", "{{.State.Pid}}", container_id).stdout.strip())


def logs(container_id: str) -> str:
    completed = podman("logs", container_id, check=False)
    return completed.stdout + completed.stderr


def is_running(container_id: str) -> bool:
    inspected = podman("container", "inspect", "--format", "{{.State.Running}}", container_id, check=False)
    return inspected.stdout.strip() == "true"


def print_logs(container_id: str) -> None:
    logs = podman("logs", container_id, check=False)
    print(f"--- logs of container {container_id[:12]} ---\n{logs.stdout}{logs.stderr}--- end of logs ---")


@contextlib.contextmanager
def _world_readable_copy(model_dir: Path) -> Iterator[Path]:
    """A copy of the model directory the container's non-root user can read.

    pytest's tmp_path directories are private to their owner (0700), and the container runs as uid 10001.
    Files the owner cannot read stay unreadable, so tests of unreadable models keep their meaning.
    """
    with tempfile.TemporaryDirectory(prefix="model-mount-") as parent:
        target = Path(parent) / "model"
        if model_dir.is_dir():
            shutil.copytree(model_dir, target)
        else:
            target.mkdir()
        Path(parent).chmod(0o755)
        for path in [target, *target.rglob("*")]:
            mode = stat.S_IMODE(path.lstat().st_mode)
            if path.is_symlink() or not mode & stat.S_IRUSR:
                continue
            readable = stat.S_IRGRP | stat.S_IROTH
            if path.is_dir():
                readable |= stat.S_IXGRP | stat.S_IXOTH
            path.chmod(mode | readable)
        yield target
