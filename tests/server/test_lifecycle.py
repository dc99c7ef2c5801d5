"""The real ``serve`` entrypoint as a process: refusing to start, failing fast, restarts, SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sklearn

from tests.server import models
from tests.server.targets import (
    SERVE,
    HttpClient,
    ServeProcess,
    serve_process,
    server_environment,
    wait_until_ready,
)

CSV = {"Content-Type": "text/csv"}
FAIL_FAST_S = 20.0
"""Bound on how long a server with a bad model may take to exit (it takes about a second)."""


def run_serve(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SERVE), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=FAIL_FAST_S,
        check=False,
    )


def exit_watching_ping(served: ServeProcess) -> tuple[int, set[int]]:
    """Poll /ping until the process exits (bounded); its exit code and every /ping status seen."""
    statuses: set[int] = set()
    deadline = time.monotonic() + FAIL_FAST_S
    with httpx.Client(base_url=served.base_url, timeout=2) as client:
        while served.process.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                statuses.add(client.get("/ping").status_code)
            time.sleep(0.05)
    assert served.process.poll() is not None, f"serve still running after {FAIL_FAST_S} s:\n{served.log()}"
    return served.process.returncode, statuses


def replaced(served: ServeProcess, victim: int) -> bool:
    pids = served.worker_pids()
    return len(pids) == 2 and victim not in pids


def test_any_command_but_serve_or_train_is_refused(tmp_path: Path) -> None:
    completed = run_serve(["predict"], server_environment(tmp_path, {}), tmp_path)

    assert completed.returncode == 2
    assert "the image runs `serve` or `train` (got `predict`)" in completed.stderr


def test_a_bad_environment_value_exits_2_naming_variable_value_and_allowed(tmp_path: Path) -> None:
    env = server_environment(tmp_path, {"SAGEMAKER_MODEL_SERVER_WORKERS": "zero"})

    completed = run_serve(["serve"], env, tmp_path)

    assert completed.returncode == 2
    assert "SAGEMAKER_MODEL_SERVER_WORKERS='zero' is not valid: must be a whole number" in completed.stderr


def test_a_missing_model_exits_1_naming_the_directory(tmp_path: Path) -> None:
    empty = tmp_path / "model"
    empty.mkdir()

    completed = run_serve(["serve"], server_environment(empty, {}), tmp_path)

    assert completed.returncode == 1
    assert f"no model file in {empty}" in completed.stderr
    assert "model.joblib, model.skops" in completed.stderr


def test_an_ambiguous_model_exits_1_naming_both_files(tmp_path: Path) -> None:
    model_dir = models.write_ambiguous(tmp_path / "model")

    completed = run_serve(["serve"], server_environment(model_dir, {}), tmp_path)

    assert completed.returncode == 1
    assert "both model.joblib and model.skops are present" in completed.stderr


def test_a_corrupt_model_exits_quickly_and_is_never_healthy(tmp_path: Path) -> None:
    model_dir = models.write_corrupt(tmp_path / "model")

    with serve_process(model_dir, {}, tmp_path) as served:
        code, statuses = exit_watching_ping(served)

    assert code == 1
    assert 200 not in statuses
    assert f"{model_dir / 'model.joblib'} cannot be loaded" in served.log()


def test_an_untrusted_skops_model_is_refused_naming_the_type(tmp_path: Path) -> None:
    model_dir = models.write_skops(tmp_path / "model", models.untrusted_skops_model())

    with serve_process(model_dir, {}, tmp_path) as served:
        code, statuses = exit_watching_ping(served)

    assert code == 1
    assert 200 not in statuses
    assert "types skops does not trust: _operator.neg" in served.log()


def test_predict_proba_on_a_model_without_it_is_refused(tmp_path: Path) -> None:
    model_dir = models.write_regressor(tmp_path / "model")

    with serve_process(model_dir, {"INFERENCE_PREDICT_METHOD": "predict_proba"}, tmp_path) as served:
        code, _ = exit_watching_ping(served)

    assert code == 1
    assert "LinearRegression, which has no predict_proba method" in served.log()


def test_a_scikit_learn_version_mismatch_is_logged_as_a_warning(tmp_path: Path) -> None:
    old = {"sklearn_version": "0.24.2"}
    model_dir = models.write_joblib(tmp_path / "model", models.iris_model(), metadata=old)

    with serve_process(model_dir, {}, tmp_path) as served, HttpClient("process", served.base_url) as client:
        wait_until_ready(client, served)

    assert "WARNING" in served.log()
    running = sklearn.__version__
    assert f"trained with scikit-learn 0.24.2 but this server runs scikit-learn {running}" in served.log()


def test_a_worker_that_dies_is_replaced(tmp_path: Path, iris_dir: Path) -> None:
    with serve_process(iris_dir, {}, tmp_path) as served:
        with HttpClient("process", served.base_url) as client:
            wait_until_ready(client, served)
        victim, survivor = served.worker_pids()

        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not replaced(served, victim):
            time.sleep(0.05)

        assert survivor in served.worker_pids()
        assert victim not in served.worker_pids()
        assert len(served.worker_pids()) == 2
        while time.monotonic() < deadline and served.log().count("LogisticRegression, predict") < 3:
            time.sleep(0.05)
    assert "starting a replacement" in served.log()
    assert served.log().count("LogisticRegression, predict") == 3  # the replacement loaded the model too


def test_sigterm_finishes_in_flight_requests_refuses_new_ones_and_exits_0(tmp_path: Path) -> None:
    model_dir = models.write_joblib(tmp_path / "model", models.sleepy_model())
    request = (
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\nContent-Length: 9\r\n\r\n"
        b"0.6,0,0,0"
    )

    with serve_process(model_dir, {}, tmp_path) as served:
        with HttpClient("process", served.base_url) as client:
            wait_until_ready(client, served)
        in_flight = [socket.create_connection(("127.0.0.1", served.port), timeout=30) for _ in range(6)]
        for connection in in_flight:
            connection.sendall(request)
        time.sleep(0.5)  # every request is read and predicting (0.6 s per row, batched per worker)

        served.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        time.sleep(0.5)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", served.port), timeout=2).close()
        answers = []
        for connection in in_flight:
            with connection:
                answers.append(connection.makefile("rb").readline())
        code = served.process.wait(30)
        exited_after = time.monotonic() - sent

    assert answers == [b"HTTP/1.1 200 OK\r\n"] * 6
    assert code == 0
    assert exited_after < 25
    assert "SIGTERM received" in served.log()


def test_the_startup_log_names_the_model_and_the_workers(tmp_path: Path, iris_dir: Path) -> None:
    with serve_process(iris_dir, {}, tmp_path) as served, HttpClient("process", served.base_url) as client:
        wait_until_ready(client, served)

    log = served.log()
    assert f"serving {iris_dir / 'model.joblib'}" in log
    assert "with 2 workers" in log
    assert log.count("LogisticRegression, predict, 4 features") == 2
