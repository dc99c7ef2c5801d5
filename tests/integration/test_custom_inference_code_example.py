"""examples/custom-inference-code runs as its README says: train, pack with code, serve, invoke."""

from __future__ import annotations

import subprocess
import sys

from tests.support.cdk import ROOT

RUN = ROOT / "examples" / "custom-inference-code" / "run.py"


def test_the_custom_inference_code_example_trains_packs_serves_and_invokes() -> None:
    completed = subprocess.run(
        [sys.executable, str(RUN)], capture_output=True, text=True, timeout=180, check=False, cwd=ROOT
    )

    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert lines[0] == "packed model.tar.gz: model.joblib, model-metadata.json, code/inference.py"
    assert lines[1].startswith('answer: [{"species": "setosa", "confidence": 0.9')
    assert '{"species": "virginica"' in lines[1]
    assert "answered HTTP 400" in lines[2]
    assert "one lacks 'sepal_width'" in lines[2]
