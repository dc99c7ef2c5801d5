"""examples/dataframe-pipeline, run as its README says: train and pack, unpack, serve, invoke."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import joblib
import numpy as np
import pandas as pd

from tests.server.targets import HttpClient, serve_process, wait_until_ready

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dataframe-pipeline"


def run_example(script: str, *args: str, cwd: Path) -> str:
    completed = subprocess.run(
        [sys.executable, str(EXAMPLE / script), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    return completed.stdout


def test_the_example_trains_packs_serves_and_answers_every_request_shape(tmp_path: Path) -> None:
    run_example("train.py", "--output", "build/model.tar.gz", cwd=tmp_path)
    model_dir = tmp_path / "build" / "model"
    with tarfile.open(tmp_path / "build" / "model.tar.gz") as archive:
        archive.extractall(model_dir, filter="data")

    with serve_process(model_dir, {}, tmp_path) as served:
        with HttpClient("process", served.base_url) as client:
            wait_until_ready(client, served)
        lines = run_example("invoke.py", "--url", served.base_url, cwd=tmp_path).splitlines()

    answers = {line["shape"]: line for line in map(json.loads, lines)}
    predictions = [answers[shape]["answer"] for shape in ("dataframe_split", "dataframe_records", "instances",
                                                          "inputs", "csv with a header")]  # fmt: skip
    model = joblib.load(model_dir / "model.joblib")
    sent = pd.DataFrame(
        [["rome", "plus", 35, 2.25], ["oslo", "pro", 47, np.nan]], columns=["city", "plan", "age", "income"]
    )
    assert predictions == [model.predict(sent).tolist()] * 5
    assert answers["an unknown column"]["status"] == 400
    assert "unknown column 'salary'" in answers["an unknown column"]["answer"]["error"]
    assert answers["text in a number column"]["status"] == 400
    assert "column 'age'" in answers["text in a number column"]["answer"]["error"]
