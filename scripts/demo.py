"""`make demo`: the main job on one machine, no AWS account needed.

1. local AWS: a moto server process;
2. build the image, its full flavour, which holds ONNX Runtime (podman or docker; without either, steps 3
   and 7 run as local processes);
3. train the model with the image's `train` on a local /opt/ml tree, as a SageMaker training job runs it
   (scripts/local_training.py);
4. compile it: ``ml-inference-pack model.joblib --sample <the training rows> --compile onnx`` converts it to
   ONNX, checks that both answer alike on the sample, and packs model.tar.gz (README, "Compiled inference");
5. the real CDK CLI: `cdk bootstrap`, then `cdk deploy SageMakerStack EcsStack` into it with that model
   (the model.tar.gz asset is published for real; the stacks run the locally built image, context
   ``imageUri``, because image assets cannot be pushed to a local emulator);
6. read back what was deployed (boto3);
7. run the same image's `serve` with the compiled model at /opt/ml/model (scripts/demo_server.py), which says
   whether ONNX Runtime or scikit-learn serves, and why;
8. invoke it with CSV and JSON rows and print the predictions.

Everything started here is stopped on exit, on failure and on Ctrl-C (moto by PID, the container by name).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml_inference_cdk.invoke import invoke_url
from scripts.demo_server import (
    DEMO_FLAVOUR,
    ContainerEngine,
    build_image,
    find_container_engine,
    running_container,
    running_local_process,
)
from scripts.local_aws import LOCAL_IMAGE, LocalAws, bootstrap, deploy, moto_server
from scripts.local_training import TrainingRun, write_demo_tree
from scripts.local_training import train as train_in_image

SAMPLE_CSV = "5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3\n7.7,3.0,6.1,2.3\n"
SAMPLE_JSON = {"instances": [[5.0, 3.4, 1.5, 0.2], [6.9, 3.1, 5.4, 2.1]]}

T = TypeVar("T")


class StepFailedError(Exception):
    """A step of the demo failed; the message names it."""


class Progress:
    """One line per step, with its duration; a failure names the step."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.number = 0
        self.started = time.monotonic()

    def step(self, title: str, action: Callable[[], T]) -> T:
        self.number += 1
        print(f"[{self.number}/{self.total}] {title} ...", flush=True)
        began = time.monotonic()
        try:
            result = action()
        except Exception as error:
            print(
                f"[{self.number}/{self.total}] {title}: FAILED after {time.monotonic() - began:.1f} s",
                flush=True,
            )
            raise StepFailedError(f"step {self.number} ({title}) failed: {error}") from error
        print(f"[{self.number}/{self.total}] {title}: done in {time.monotonic() - began:.1f} s", flush=True)
        return result


# --- read back ---


def read_back(local: LocalAws, outputs: dict[str, dict[str, str]]) -> dict[str, Any]:
    sagemaker = local.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["SageMakerStack"]["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    variant = config["ProductionVariants"][0]
    model = sagemaker.describe_model(ModelName=variant["ModelName"])
    found = {
        "endpoint": endpoint["EndpointName"],
        "status": endpoint["EndpointStatus"],
        "variant": f"{variant['VariantName']}: {variant.get('InstanceType')} "
        f"x {variant.get('InitialInstanceCount')}",
        "image": model["PrimaryContainer"]["Image"],
        "model_data": model["PrimaryContainer"]["ModelDataUrl"],
    }
    for key, value in found.items():
        print(f"      {key:<11} {value}")
    if "EcsStack" in outputs:
        ecs = local.client("ecs")
        clusters = ecs.list_clusters()["clusterArns"]
        services = [arn for cluster in clusters for arn in ecs.list_services(cluster=cluster)["serviceArns"]]
        found["ecs_services"] = services
        print(
            f"      {'ecs':<11} {len(services)} service(s): "
            f"{', '.join(s.rsplit('/', 1)[-1] for s in services)}"
        )
    if found["status"] != "InService":
        raise RuntimeError(f"endpoint status is {found['status']}, expected InService")
    return found


# --- the server (scripts/demo_server.py) ---


def build(engine: ContainerEngine, work: Path) -> str:
    for note in engine.notes:  # e.g. that podman needs the sandbox containers.conf on this host
        print(f"      {note}", flush=True)
    return build_image(engine, work)


def train_model(engine: ContainerEngine | None, image: str | None, work: Path) -> TrainingRun:
    """The demo job in ``work`` (two demos at once do not share a tree)."""
    run = train_in_image(write_demo_tree(work / "opt_ml"), engine, image, indent="      ")
    scores: dict[str, float] = dict(run.metrics.get("scores", {}))
    shown = ", ".join(
        f"{channel} {run.metrics.get('metric')} {value:.3f}" for channel, value in scores.items()
    )
    print(
        f"      {run.where}: {run.seconds:.1f} s; {shown}; the model is /opt/ml/model/model.joblib",
        flush=True,
    )
    return run


def compile_model(run: TrainingRun, work: Path) -> Path:
    """model.tar.gz of the trained model, compiled to ONNX and verified on the training rows, with the
    console script a user runs (``ml-inference-pack``, installed with the package)."""
    sample = work / "sample.csv"
    training_rows = (work / "opt_ml" / "input" / "data" / "train" / "iris.csv").read_text().splitlines()
    sample.write_text("".join(row.split(",", 1)[1] + "\n" for row in training_rows))  # the label goes
    archive = work / "model.tar.gz"
    command = [
        str(Path(sys.executable).parent / "ml-inference-pack"),
        *[str(run.model_dir / "model.joblib"), "--sample", str(sample)],
        *["--compile", "onnx", "--output", str(archive)],
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    for line in (completed.stdout + completed.stderr).splitlines():
        print(f"      {line}", flush=True)
    if completed.returncode != 0:
        raise RuntimeError(f"ml-inference-pack exited with {completed.returncode}")
    return archive


def unpack_model(directory: Path, model: Path) -> Path:
    model_dir = directory / "served-model"
    model_dir.mkdir()
    with tarfile.open(model) as archive:
        archive.extractall(model_dir, filter="data")
    model_dir.chmod(0o755)
    for path in model_dir.iterdir():
        path.chmod(0o644)  # the container's non-root user reads the mounted model
    return model_dir


def invoke_samples(url: str) -> dict[str, Any]:
    csv = invoke_url(url, SAMPLE_CSV.encode(), content_type="text/csv", accept="text/csv")
    as_json = invoke_url(
        url, json.dumps(SAMPLE_JSON).encode(), content_type="application/json", accept="application/json"
    )
    csv_predictions = csv.body.decode().split()
    json_predictions = json.loads(as_json.body)
    for row, prediction in zip(SAMPLE_CSV.splitlines(), csv_predictions, strict=True):
        print(f"      text/csv          {row:<22} -> {prediction}")
    for row, prediction in zip(SAMPLE_JSON["instances"], json_predictions, strict=True):
        print(f"      application/json  {row!s:<22} -> {prediction}")
    return {"csv": csv_predictions, "json": json_predictions}


# --- main ---


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stacks", nargs="+", default=["SageMakerStack", "EcsStack"], help="stacks to deploy"
    )
    parser.add_argument("--no-container", action="store_true", help="run the server as a local process")
    args = parser.parse_args()

    # Clean up on Ctrl-C and on `kill` alike (SIGINT is restored too: a shell may start us with it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    progress = Progress(total=9)
    engine = None if args.no_container else find_container_engine()
    try:
        with (
            tempfile.TemporaryDirectory(prefix="ml-inference-demo-") as scratch,
            contextlib.ExitStack() as cleanup,
        ):
            work = Path(scratch)
            local = progress.step(
                "start a local AWS (moto server)",
                lambda: cleanup.enter_context(moto_server(work / "moto.log")),
            )
            print(f"      moto server on {local.endpoint_url} (pid {local.pid})")
            progress.step("cdk bootstrap (real CDK CLI)", lambda: bootstrap(local, work))
            image = None
            if engine:
                image = progress.step(
                    f"build the inference image, flavour {DEMO_FLAVOUR} ({engine.name})",
                    lambda: build(engine, work),
                )
            else:
                progress.step("build the inference image: skipped (no podman or docker)", lambda: None)
            trained = progress.step(
                "train the model with the image's `train` on a local /opt/ml (built-in trainer)",
                lambda: train_model(engine, image, work),
            )
            model = progress.step(
                "compile it to ONNX, verified on the training rows (ml-inference-pack --compile onnx)",
                lambda: compile_model(trained, work),
            )
            outputs = progress.step(
                f"cdk deploy {' '.join(args.stacks)} (imageUri={LOCAL_IMAGE}, the trained model)",
                lambda: deploy(local, args.stacks, workdir=work, context={"modelArtifact": str(model)}),
            )
            deployed = progress.step("read back the deployment (boto3)", lambda: read_back(local, outputs))
            model_dir = unpack_model(work, model)
            url = progress.step(
                "run the server with the model at /opt/ml/model",
                lambda: cleanup.enter_context(
                    running_container(engine, image, model_dir)
                    if engine and image
                    else running_local_process(model_dir, work / "server.log")
                ),
            )
            predictions = progress.step("invoke it with CSV and JSON rows", lambda: invoke_samples(url))
    except StepFailedError as error:
        print(f"\ndemo failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: everything started was stopped", file=sys.stderr)
        return 130

    print(
        f"\nSummary: trained the model with the image's `train` in {trained.seconds:.1f} s "
        f"({trained.where}); deployed {', '.join(args.stacks)} into a local AWS with the real CDK CLI; "
        "endpoint "
        f"{deployed['endpoint']} is {deployed['status']}; the {'container' if engine else 'local server'} "
        f"answered {len(predictions['csv'])} CSV and {len(predictions['json'])} JSON rows "
        f"in {time.monotonic() - progress.started:.0f} s. Everything started was stopped."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
