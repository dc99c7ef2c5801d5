"""The demo's container handling (scripts/demo_server.py, scripts/container-env.sh) against the real engine.

A fresh machine is reproduced without touching the machine's images: CONTAINERS_STORAGE_CONF points podman
at a new, empty storage under the test's temporary folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.demo_server import ContainerEngine, find_container_engine, running_container

pytestmark = [pytest.mark.integration, pytest.mark.container]

NOFILE_ABOVE_ANY_KERNEL_LIMIT = 1 << 31
"""Above fs.nr_open on every kernel: no runtime can set it, so the container is created but cannot start."""


@pytest.fixture
def podman_engine() -> ContainerEngine:
    if shutil.which("podman") is None:
        if os.environ.get("REQUIRE_CONTAINER_TESTS") == "1":
            pytest.fail("REQUIRE_CONTAINER_TESTS=1, but podman is not installed", pytrace=False)
        pytest.skip("podman is not installed")
    os.environ.pop("ENGINE", None)
    engine = find_container_engine()
    assert engine is not None
    return engine


@pytest.fixture
def empty_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A new, empty container storage for podman, as on a machine that has never built an image."""
    # The run root holds unix sockets, whose paths must stay short: under tmp_path each run took 20 s longer.
    with tempfile.TemporaryDirectory(prefix="run-") as runroot:
        conf = tmp_path / "storage.conf"
        conf.write_text(
            f'[storage]\ndriver = "overlay"\ngraphroot = "{tmp_path / "graph"}"\nrunroot = "{runroot}"\n'
        )
        monkeypatch.setenv("CONTAINERS_STORAGE_CONF", str(conf))
        monkeypatch.delenv("CONTAINERS_CONF", raising=False)
        monkeypatch.setenv("ENGINE", "podman")
        yield tmp_path


def tiny_root_filesystem(directory: Path) -> Path:
    """The host's ``true`` and the libraries it loads: enough to run a container without any image."""
    true = Path(shutil.which("true") or "/bin/true").resolve()
    directory.mkdir()
    (directory / "true").write_bytes(true.read_bytes())
    (directory / "true").chmod(0o755)
    linked = subprocess.run(["ldd", str(true)], capture_output=True, text=True, check=False).stdout
    for library in (word for word in linked.split() if word.startswith("/")):
        target = directory / library.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(library, target)
    return directory


def containers_named(engine: ContainerEngine, prefix: str) -> list[str]:
    listed = subprocess.run(
        [engine.name, "ps", "--all", "--format", "{{.Names}}"],
        capture_output=True,
        text=True,
        env=engine.env,
        check=True,
    )
    return [name for name in listed.stdout.split() if name.startswith(prefix)]


def test_the_engine_environment_runs_a_container_on_an_empty_storage(empty_storage: Path) -> None:
    engine = find_container_engine()
    assert engine is not None
    images = subprocess.run(["podman", "images", "--quiet"], capture_output=True, text=True, env=engine.env)
    assert images.stdout.split() == []
    rootfs = tiny_root_filesystem(empty_storage / "rootfs")

    ran = subprocess.run(
        ["podman", "run", "--rm", "--network=none", "--rootfs", str(rootfs), "/true"],
        capture_output=True,
        text=True,
        env=engine.env,
        check=False,
        timeout=120,
    )

    assert ran.returncode == 0, ran.stderr


def test_a_containers_conf_the_caller_chose_is_kept(
    empty_storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTAINERS_CONF", str(empty_storage / "mine.conf"))
    engine = find_container_engine()
    assert engine is not None
    assert engine.env["CONTAINERS_CONF"] == str(empty_storage / "mine.conf")


def test_a_container_that_cannot_start_is_removed(
    podman_engine: ContainerEngine, tmp_path: Path, demo_model_artifact: Path
) -> None:
    from tests.server.container_target import built_image

    conf = tmp_path / "containers.conf"
    settings = tomllib.loads(Path(podman_engine.env.get("CONTAINERS_CONF", os.devnull)).read_text())
    settings.setdefault("containers", {})["default_ulimits"] = [
        f"nofile={NOFILE_ABOVE_ANY_KERNEL_LIMIT}:{NOFILE_ABOVE_ANY_KERNEL_LIMIT}"
    ]
    conf.write_text(
        "".join(
            f"[{section}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())
            for section, values in settings.items()
        )
    )
    failing = ContainerEngine("podman", {**podman_engine.env, "CONTAINERS_CONF": str(conf)})
    prefix = f"ml-inference-demo-{os.getpid()}-"

    with (
        pytest.raises(RuntimeError, match="podman run failed"),
        running_container(failing, built_image(), tmp_path),
    ):
        pass

    assert containers_named(podman_engine, prefix) == []


def test_a_container_that_exits_before_answering_is_removed(
    podman_engine: ContainerEngine, tmp_path: Path
) -> None:
    from tests.server.container_target import built_image

    empty_model_dir = tmp_path / "model"
    empty_model_dir.mkdir(mode=0o755)
    prefix = f"ml-inference-demo-{os.getpid()}-"

    with (
        pytest.raises(RuntimeError, match="stopped before /ping answered 200"),
        running_container(podman_engine, built_image(), empty_model_dir),
    ):
        pass

    assert containers_named(podman_engine, prefix) == []
