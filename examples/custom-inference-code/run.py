"""Train, pack, serve and invoke a model with its own inference code, on this machine.

    python examples/custom-inference-code/run.py

1. Train an iris LogisticRegression.
2. Pack it with code/ into model.tar.gz: ``pack_model(model, path, code_dir=...)``.
3. Unpack it as SageMaker would into a model directory and start the inference server on it (the repository's
   ``inference_image/serve``; the container runs the same server with the directory at /opt/ml/model).
4. Invoke it with ``ml_inference_cdk.invoke.invoke_url`` and print the answers.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from ml_inference_cdk import pack_model
from ml_inference_cdk.invoke import InvokeError, invoke_url

HERE = Path(__file__).resolve().parent
SERVE = HERE.parents[1] / "inference_image" / "serve"
STARTUP_TIMEOUT_S = 60.0

FLOWERS = {
    "flowers": [
        {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3},
    ]
}


def train_and_pack(output: Path) -> Path:
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    return pack_model(model, output, code_dir=HERE / "code")


def unpack(archive: Path, model_dir: Path) -> Path:
    model_dir.mkdir(parents=True)
    with tarfile.open(archive) as opened:
        opened.extractall(model_dir, filter="data")
    return model_dir


def serve(model_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server on a free port; the process and its URL once /ping is 200."""
    env = {**os.environ, "SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": "0"}
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, str(SERVE), "serve"], env=env, stdout=out, stderr=out)
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        found = re.search(r"listening on port (\d+)", log.read_text())
        if found and _ready(f"http://127.0.0.1:{found.group(1)}"):
            return process, f"http://127.0.0.1:{found.group(1)}"
        time.sleep(0.1)
    process.terminate()
    raise SystemExit(f"the server did not become ready:\n{log.read_text()}")


def _ready(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:  # noqa: S310 - our own http URL
            return bool(response.status == 200)
    except OSError:
        return False


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="custom-inference-code-") as work:
        archive = train_and_pack(Path(work) / "model.tar.gz")
        with tarfile.open(archive) as packed:
            print(f"packed {archive.name}: {', '.join(packed.getnames())}")
        process, url = serve(unpack(archive, Path(work) / "model"), Path(work) / "serve.log")
        try:
            answer = invoke_url(url, json.dumps(FLOWERS).encode(), content_type="application/json")
            print(f"answer: {answer.body.decode()}")
            try:
                invoke_url(url, b'{"flowers": [{"sepal_length": 5.1}]}', content_type="application/json")
            except InvokeError as error:
                print(f"a flower without measurements: {error}")
        finally:
            process.terminate()
            process.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
