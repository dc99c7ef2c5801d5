"""Training jobs for the tests: an /opt/ml tree written as SageMaker writes it, and ``train`` run on it as a
local process or in the real image (read-only, non-root, /opt/ml mounted, as SageMaker runs it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.datasets import load_iris

from tests.server import container_target

ROOT = Path(__file__).resolve().parents[2]
TRAIN = ROOT / "inference_image" / "train"
IRIS_COLUMNS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]


def iris_frame() -> pd.DataFrame:
    """Iris with named columns, the target ``species`` (0, 1, 2) first."""
    features, labels = load_iris(return_X_y=True)
    frame = pd.DataFrame(features, columns=IRIS_COLUMNS)
    frame.insert(0, "species", labels)
    return frame


@dataclass(frozen=True)
class Job:
    """An /opt/ml tree: ``root`` is what is mounted at /opt/ml."""

    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def failure(self) -> Path:
        return self.root / "output" / "failure"

    @property
    def metrics(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.root / "output" / "data" / "metrics.json").read_text())
        return loaded


def write_job(
    root: Path,
    *,
    hyperparameters: Mapping[str, Any],
    channels: Mapping[str, pd.DataFrame],
    header: bool = True,
    code: Mapping[str, str] | None = None,
) -> Job:
    """Write the tree SageMaker mounts: each hyperparameter JSON-encoded into a string (as the SageMaker
    Python SDK sends them), inputdataconfig.json, resourceconfig.json, each channel as a CSV file, and the
    user's ``code`` files in code/. model/ and output/ are writable by the image's non-root user."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    encoded = {name: json.dumps(value) for name, value in hyperparameters.items()}
    (config / "hyperparameters.json").write_text(json.dumps(encoded))
    data_config = {name: {"ContentType": "text/csv", "TrainingInputMode": "File"} for name in channels}
    (config / "inputdataconfig.json").write_text(json.dumps(data_config))
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    for name, frame in channels.items():
        folder = root / "input" / "data" / name
        folder.mkdir(parents=True)
        frame.to_csv(folder / f"{name}.csv", index=False, header=header)
    if code:
        (root / "code").mkdir()
        for name, text in code.items():
            (root / "code" / name).write_text(text)
    for writable in (root / "model", root / "output"):
        writable.mkdir()
        writable.chmod(0o777)
    for path in [root, *root.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o555 if path.is_dir() else 0o644)
    return Job(root)


def train_locally(job: Job, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``inference_image/train`` as a local process, on the tree (SAGEMAKER_BASE_DIR)."""
    environment = {**os.environ, "SAGEMAKER_BASE_DIR": str(job.root), **(env or {})}
    if "SAGEMAKER_SUBMIT_DIRECTORY" not in environment and (job.root / "code").is_dir():
        environment["SAGEMAKER_SUBMIT_DIRECTORY"] = str(job.root / "code")
    return subprocess.run(
        [sys.executable, str(TRAIN)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def train_in_container(job: Job, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``podman run IMAGE train`` as SageMaker runs it: the image's non-root user, a read-only root, a tmpfs
    /tmp, no network, the tree at /opt/ml (its code/ at /opt/ml/code, where the SDK puts it)."""
    image = container_target.built_image()
    return container_target.podman(
        "run",
        "--rm",
        "--read-only",
        "--tmpfs",
        "/tmp",
        "--network",
        "none",
        "--volume",
        f"{job.root}:/opt/ml",
        *(f"--env={name}={value}" for name, value in (env or {}).items()),
        image,
        "train",
        check=False,
        timeout=300,
    )


RANDOM_FOREST_SCRIPT = """\
# A script-mode training script as AWS's scikit-learn examples write one: arguments from the hyperparameters,
# data and model folders from SM_* variables.
import argparse
import json
import os
import sys

import joblib
import pandas as pd
from sklearn.ensemble import RandomForestClassifier

parser = argparse.ArgumentParser()
parser.add_argument("--n_estimators", type=int, default=10)
parser.add_argument("--max_depth", type=int, default=None)
parser.add_argument("--model-dir", default=os.environ["SM_MODEL_DIR"])
parser.add_argument("--train", default=os.environ["SM_CHANNEL_TRAIN"])
args = parser.parse_args()

frame = pd.read_csv(os.path.join(args.train, "train.csv"))
model = RandomForestClassifier(n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=0)
model.fit(frame.drop(columns="species"), frame["species"])
joblib.dump(model, os.path.join(args.model_dir, "model.joblib"))
seen = {
    "argv": sys.argv[1:],
    "hps": json.loads(os.environ["SM_HPS"]),
    "channels": json.loads(os.environ["SM_CHANNELS"]),
    "hp_n_estimators": os.environ.get("SM_HP_N_ESTIMATORS"),
}
with open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "seen.json"), "w") as file:
    json.dump(seen, file)
"""

FAILING_SCRIPT = """\
import sys

print("loading data", flush=True)
print("the label column is missing", file=sys.stderr)
sys.exit(3)
"""
