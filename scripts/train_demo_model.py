"""Train the demo model (iris, LogisticRegression) and pack it into model.tar.gz.

Used by `make model` (and so by `make synth`, `make demo`, `make test`); the artifact is never committed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from ml_inference_cdk import pack_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("build/model/model.tar.gz"))
    parser.add_argument("--serialization", choices=["joblib", "skops"], default="joblib")
    args = parser.parse_args()
    features, labels = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=1000).fit(features, labels)
    path = pack_model(model, args.output, serialization=args.serialization)
    print(
        f"wrote {path} ({path.stat().st_size} bytes, training accuracy {model.score(features, labels):.3f})"
    )


if __name__ == "__main__":
    main()
