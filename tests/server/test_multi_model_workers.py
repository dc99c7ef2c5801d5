"""Multi-model mode's processes (the real entrypoint): one worker holds every model, and a worker that dies
is replaced by one that loads the same models before it accepts a connection."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.server import models
from tests.server.targets import HttpClient, ServeProcess, serve_process, wait_until_ready

IRIS_CSV = b"5.1,3.5,1.4,0.2\n6.3,3.3,6.0,2.5"
CSV = {"Content-Type": "text/csv"}


@pytest.fixture
def models_root(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    models.write_joblib(root / "iris" / "model", models.iris_model())
    return root


@pytest.fixture
def served(models_root: Path, tmp_path: Path) -> Iterator[ServeProcess]:
    env = {
        "SAGEMAKER_MULTI_MODEL": "true",
        "INFERENCE_MULTI_MODEL_DIR": str(models_root),
        "SAGEMAKER_MODEL_SERVER_WORKERS": "2",
    }
    with serve_process(models_root, env, tmp_path) as process:
        yield process


@pytest.fixture
def client(served: ServeProcess) -> Iterator[HttpClient]:
    with HttpClient("process", served.base_url) as client:
        wait_until_ready(client, served)
        yield client


def load_iris(client: HttpClient, models_root: Path) -> int:
    body = orjson.dumps({"model_name": "iris", "url": str(models_root / "iris" / "model")})
    return client.request("POST", "/models", content=body).status_code


def test_multi_model_mode_runs_one_worker_whatever_the_worker_setting(
    served: ServeProcess, client: HttpClient
) -> None:
    assert len(served.worker_pids()) == 1
    assert "with 1 workers" in served.log()


def test_a_replacement_worker_reloads_the_models_its_predecessor_held(
    served: ServeProcess, client: HttpClient, models_root: Path
) -> None:
    assert load_iris(client, models_root) == 200
    expected = client.request("POST", "/models/iris/invoke", headers=CSV, content=IRIS_CSV).json()
    (worker,) = served.worker_pids()

    os.kill(worker, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while served.worker_pids() in ([], [worker]) and time.monotonic() < deadline:
        time.sleep(0.05)
    answer = client.request("POST", "/models/iris/invoke", headers=CSV, content=IRIS_CSV)

    assert served.worker_pids() not in ([], [worker])
    assert expected == [0, 2]
    assert (answer.status_code, answer.json()) == (200, expected)
    assert [model["modelName"] for model in client.request("GET", "/models").json()["models"]] == ["iris"]
    assert "reloaded 1 of the 1 models the previous worker held" in served.log()
