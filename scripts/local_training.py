"""`make train`: run the image's `train` on a local /opt/ml tree, as a SageMaker training job runs it.

    make train                      # the demo job: iris, LogisticRegression, built-in trainer (build/opt_ml)
    make train OPT_ML=path/to/tree  # your own tree: input/config/*.json, input/data/<channel>/, code/

The container runs as SageMaker runs it: the image's non-root user, a read-only root filesystem, a tmpfs /tmp,
no network, the tree mounted at /opt/ml. Without podman or docker the same `train` runs as a local process
(SAGEMAKER_BASE_DIR=<tree>), as `make demo` falls back for serving. Then model/ is packed into model.tar.gz,
as SageMaker packs /opt/ml/model, ready for ModelArtifact.from_asset (or `cdk deploy -c modelArtifact=...`).
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.demo_server import ContainerEngine, build_image, find_container_engine
from scripts.local_aws import ROOT
from scripts.processes import started_session

DEMO_TREE = ROOT / "build" / "opt_ml"
DEMO_OUTPUT = ROOT / "build" / "train" / "model.tar.gz"
DEMO_HYPERPARAMETERS = {"estimator": "LogisticRegression", "max_iter": 1000, "header": False, "target": 0}
"""The demo's job: the model `make model` trains on the host, trained by the image's built-in trainer
instead. No header and the target first, as SageMaker's built-in algorithms read CSV, so the model serves
plain rows."""


@dataclass(frozen=True)
class TrainingRun:
    """A finished training run: where the model went, its metrics, how long `train` took."""

    model_dir: Path
    metrics: dict[str, Any]
    seconds: float
    where: str


class TrainingFailedError(RuntimeError):
    """`train` exited non-zero; the message holds output/failure."""


def write_demo_tree(tree: Path) -> Path:
    """The demo job's /opt/ml: iris as CSV (no header, species first) and the hyperparameters, each value
    JSON-encoded into a string as the SageMaker Python SDK writes them."""
    from sklearn.datasets import load_iris

    if tree.exists():
        shutil.rmtree(tree)
    config = tree / "input" / "config"
    config.mkdir(parents=True)
    encoded = {name: json.dumps(value) for name, value in DEMO_HYPERPARAMETERS.items()}
    (config / "hyperparameters.json").write_text(json.dumps(encoded, indent=2))
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}}, indent=2)
    )
    (config / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
    features, labels = load_iris(return_X_y=True)
    data = tree / "input" / "data" / "train"
    data.mkdir(parents=True)
    rows = (
        ",".join([str(label), *(f"{value:g}" for value in row)])
        for row, label in zip(features, labels, strict=True)
    )
    (data / "iris.csv").write_text("\n".join(rows) + "\n")
    return tree


def prepare_tree(tree: Path) -> None:
    """Fresh model/ and output/ folders, writable by the image's user (SageMaker gives each job new ones);
    everything else readable by it."""
    for name in ("model", "output"):
        shutil.rmtree(tree / name, ignore_errors=True)
        (tree / name).mkdir(parents=True)
        (tree / name).chmod(0o777)
    for path in [tree, *tree.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))


def train(
    tree: Path,
    engine: ContainerEngine | None,
    image: str | None,
    env: Mapping[str, str] | None = None,
    *,
    indent: str = "",
) -> TrainingRun:
    """Run `train` on ``tree`` in the container (or as a local process without an engine); its log lines are
    printed as they come, each after ``indent``.

    Raises:
        TrainingFailedError: it exited non-zero; the message holds output/failure.
    """
    prepare_tree(tree)
    env = dict(env or {})
    began = time.monotonic()
    if engine is not None and image is not None:
        where = f"{engine.name} container"
        command = [
            engine.name, "run", "--rm", "--read-only", "--tmpfs", "/tmp", "--network", "none",
            "--volume", f"{tree.resolve()}:/opt/ml",
            *(f"--env={name}={value}" for name, value in env.items()),
            image, "train",
        ]  # fmt: skip
        exit_code = _run_printing(command, engine.env, indent)
    else:
        where = "local process (no container engine)"
        local_env = {**os.environ, "SAGEMAKER_BASE_DIR": str(tree.resolve()), **env}
        if (tree / "code").is_dir():
            local_env.setdefault("SAGEMAKER_SUBMIT_DIRECTORY", str((tree / "code").resolve()))
        train_entry = ROOT / "inference_image" / "train"
        exit_code = _run_printing([sys.executable, str(train_entry)], local_env, indent)
    seconds = time.monotonic() - began
    if exit_code != 0:
        failure = tree / "output" / "failure"
        reason = failure.read_text().strip() if failure.is_file() else "(no output/failure written)"
        raise TrainingFailedError(f"train exited with code {exit_code}: {reason}")
    metrics_file = tree / "output" / "data" / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return TrainingRun(model_dir=tree / "model", metrics=metrics, seconds=seconds, where=where)


def _run_printing(command: list[str], env: Mapping[str, str], indent: str) -> int:
    """Run ``command`` in a session of its own (Ctrl-C stops it whole), printing its output as it comes."""
    with started_session(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=dict(env)
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            print(f"{indent}{line.rstrip()}", flush=True)
        return process.wait()


def pack(model_dir: Path, output: Path) -> Path:
    """model.tar.gz of ``model_dir``'s contents, as SageMaker packs /opt/ml/model (with fixed times, so the
    same model packs to the same bytes and CDK sees the same asset)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with (
        output.open("wb") as raw,
        gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for path in sorted(model_dir.rglob("*")):
            if path.is_file():
                info = tarfile.TarInfo(path.relative_to(model_dir).as_posix())
                data = path.read_bytes()
                info.size, info.mode = len(data), 0o644
                archive.addfile(info, io.BytesIO(data))
    return output


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--opt-ml", type=Path, help="your own /opt/ml tree; default: the demo job in build/opt_ml"
    )
    parser.add_argument("--output", type=Path, default=DEMO_OUTPUT, help="model.tar.gz to write")
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="e.g. SAGEMAKER_PROGRAM=train.py"
    )
    parser.add_argument("--no-container", action="store_true", help="run train as a local process")
    args = parser.parse_args(argv)
    env = dict(item.split("=", 1) for item in args.env)
    tree = args.opt_ml or write_demo_tree(DEMO_TREE)
    engine = None if args.no_container else find_container_engine()
    image = None
    if engine is not None:
        with tempfile.TemporaryDirectory(prefix="ml-inference-train-") as work:
            print(f"building the image ({engine.name}) ...", flush=True)
            image = build_image(engine, Path(work))
    try:
        run = train(tree, engine, image, env)
    except TrainingFailedError as error:
        print(f"\ntraining failed: {error}", file=sys.stderr)
        return 1
    archive = pack(run.model_dir, args.output)
    scores = json.dumps(run.metrics.get("scores", {}))
    print(f"\ntrained in {run.seconds:.1f} s ({run.where}); scores: {scores}")
    print(f"wrote {archive} ({archive.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
