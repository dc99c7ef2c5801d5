"""`make demo` as a user runs it: scripts/demo.py end to end, and stopped halfway."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from scripts.demo_server import ContainerEngine, find_container_engine
from tests.support.cdk import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]


def demo_environment() -> dict[str, str]:
    return {**os.environ, "PATH": os.pathsep.join([str(ROOT / ".venv" / "bin"), os.environ["PATH"]])}


def is_running(pid: str) -> bool:
    return Path(f"/proc/{pid}").exists()


def processes_pointed_at(endpoint_url: str) -> list[str]:
    """The command lines of processes whose environment names this local AWS: the CDK CLI, node, the app.

    Only this demo's: other test runs on the machine have their own moto server on another port.
    """
    marker = f"AWS_ENDPOINT_URL={endpoint_url}".encode()
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if marker in (process / "environ").read_bytes().split(b"\0"):
                found.append((process / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue  # ended meanwhile, or not ours to read
    return found


def container_exists(engine: ContainerEngine, name: str) -> bool:
    inspected = subprocess.run(
        [engine.name, "container", "inspect", name], capture_output=True, env=engine.env, check=False
    )
    return inspected.returncode == 0


@pytest.fixture(scope="module")
def engine() -> ContainerEngine | None:
    """The engine the demo will choose; None (a local process) fails where containers are required."""
    found = find_container_engine()
    if found is None and os.environ.get("REQUIRE_CONTAINER_TESTS") == "1":
        pytest.fail("REQUIRE_CONTAINER_TESTS=1, but there is no podman and no docker engine", pytrace=False)
    return found


@pytest.fixture(scope="module")
def demo_output(demo_model_artifact: Path, engine: ContainerEngine | None) -> str:
    completed = subprocess.run(
        DEMO, capture_output=True, text=True, timeout=900, check=False, env=demo_environment(), cwd="/"
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_the_demo_reads_back_an_endpoint_in_service(demo_output: str) -> None:
    assert re.search(r"status\s+InService", demo_output)
    assert all(f"[{step}/9]" in demo_output for step in range(1, 10))


def test_the_demo_trains_its_model_with_the_images_train_and_deploys_and_serves_that_model(
    demo_output: str, engine: ContainerEngine | None
) -> None:
    where = f"{engine.name} container" if engine else "local process (no container engine)"
    assert re.search(r"\[4/9\] train the model with the image's `train` .*: done in", demo_output)
    assert re.search(
        rf"{re.escape(where)}: [0-9.]+ s; train accuracy 0\.9\d\d; the model is /opt/ml/model/model.joblib",
        demo_output,
    )
    assert (
        "cdk deploy SageMakerStack EcsStack (imageUri=localhost/ml-inference:local, the trained model)"
        in demo_output
    )


def test_the_demo_compiles_the_trained_model_and_serves_it_with_onnx_runtime(demo_output: str) -> None:
    assert re.search(r"\[5/9\] compile it to ONNX, .*: done in", demo_output)
    assert "compiled: model.onnx verified on 150 rows" in demo_output
    assert "server: serving model.onnx with ONNX Runtime, compiled from model.joblib" in demo_output


def test_the_demo_prints_the_predictions_of_csv_and_json_rows(demo_output: str) -> None:
    assert re.search(r"text/csv\s+5\.1,3\.5,1\.4,0\.2\s+-> 0", demo_output)
    assert re.search(r"application/json\s+\[6\.9, 3\.1, 5\.4, 2\.1\]\s+-> 2", demo_output)


def test_the_demo_serves_from_a_container_wherever_an_engine_runs(
    demo_output: str, engine: ContainerEngine | None
) -> None:
    expected = "the container answered" if engine else "the local server answered"
    assert expected in demo_output


def test_the_demo_stops_its_moto_server(demo_output: str) -> None:
    (moto_pid,) = re.findall(r"moto server on \S+ \(pid (\d+)\)", demo_output)
    assert not is_running(moto_pid)


def test_the_demo_leaves_no_container_behind(demo_output: str, engine: ContainerEngine | None) -> None:
    if engine is None:
        pytest.skip("no container engine: the demo ran a local process")
    (name,) = re.findall(r"container (ml-inference-demo-\S+) on http://127\.0\.0\.1:\d+", demo_output)
    assert not container_exists(engine, name)


def server_takes_port_zero() -> bool:
    """Whether the server binds a free port itself for SAGEMAKER_BIND_TO_PORT=0 (and logs which)."""
    checked = subprocess.run(
        [sys.executable, "-c", "from sklearn_server.config import ServerConfig as C; "
         "C.from_env({'SAGEMAKER_BIND_TO_PORT': '0'})"],
        cwd=ROOT / "inference_image", capture_output=True, check=False, timeout=60,
    )  # fmt: skip
    return checked.returncode == 0


def test_the_demo_without_a_container_serves_from_a_local_process_and_stops_it(
    demo_model_artifact: Path,
) -> None:
    if not server_takes_port_zero():
        pytest.skip("the server does not take SAGEMAKER_BIND_TO_PORT=0 yet, which the local process needs")
    completed = subprocess.run(
        [*DEMO, "--no-container"], capture_output=True, text=True, timeout=900, check=False,
        env=demo_environment(), cwd="/",
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "the local server answered 3 CSV and 2 JSON rows" in completed.stdout
    (server_pid,) = re.findall(r"server pid (\d+) on http://127\.0\.0\.1:\d+", completed.stdout)
    assert not is_running(server_pid)


def test_interrupting_the_demo_stops_what_it_started(demo_model_artifact: Path) -> None:
    process = subprocess.Popen(
        [*DEMO, "--no-container"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=demo_environment(),
        start_new_session=True,
    )
    assert process.stdout is not None
    moto = None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        moto = moto or re.search(r"moto server on (\S+) \(pid (\d+)\)", line)
        if "[6/9] cdk deploy" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    assert "interrupted: everything started was stopped" in stderr
    assert moto is not None
    endpoint_url, moto_pid = moto.groups()
    assert not is_running(moto_pid)
    assert processes_pointed_at(endpoint_url) == []
