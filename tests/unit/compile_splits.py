"""Three disjoint splits of one dataset: fit on the first, verify on the second, check on the third.

A compiled model proves itself on the sample it is packed with; these splits let a test check that the proof
holds on rows neither the fit nor the verification saw.
"""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Splits:
    train: tuple[np.ndarray, np.ndarray]
    sample: np.ndarray
    held_out: np.ndarray


def classification_splits() -> Splits:
    from sklearn.datasets import make_classification

    features, labels = make_classification(
        n_samples=900, n_features=8, n_informative=5, n_classes=3, random_state=7
    )
    return Splits(train=(features[:300], labels[:300]), sample=features[300:600], held_out=features[600:])


def regression_splits() -> Splits:
    from sklearn.datasets import make_regression

    features, targets = make_regression(n_samples=900, n_features=6, noise=5.0, random_state=7)
    return Splits(train=(features[:300], targets[:300]), sample=features[300:600], held_out=features[600:])


def archive_member(archive: Path, name: str) -> bytes | None:
    """The bytes of ``name`` in a model.tar.gz, or None when it is not there."""
    with tarfile.open(archive, "r:gz") as packed:
        if name not in packed.getnames():
            return None
        member = packed.extractfile(name)
        assert member is not None
        return member.read()


def compiled_record(archive: Path) -> dict[str, Any]:
    metadata = archive_member(archive, "model-metadata.json")
    assert metadata is not None
    record: dict[str, Any] = json.loads(metadata)["compiled"]
    return record


def onnx_outputs(model: bytes, rows: np.ndarray) -> list[Any]:
    """What ONNX Runtime computes for ``rows`` (as float32, the model's input type) with one intra-op thread,
    as the server runs it (the thread count changes the order float32 sums are added in)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    outputs: list[Any] = session.run(None, {"X": rows.astype(np.float32)})
    return outputs
