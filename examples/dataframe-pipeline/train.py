"""Train a small DataFrame pipeline and pack it into model.tar.gz, the artifact every target serves.

    python train.py --output build/model.tar.gz

The pipeline one-hot encodes two text columns, scales two numbers and fits a LogisticRegression: the shape of
most tabular models. pack_model() writes model.joblib and model-metadata.json, which records the column
names and each column's kind (text or number), so the server coerces requests the way the model was fitted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml_inference_cdk import pack_model

CUSTOMERS = pd.DataFrame(
    {
        "city": ["paris", "rome", "oslo", "lima", "rome", "paris", "oslo", "lima"] * 8,
        "plan": ["basic", "plus", "pro", "basic", "plus", "pro", "plus", "basic"] * 8,
        "age": [23, 35, 47, 59, 31, 62, 44, 28] * 8,
        "income": [1.5, 2.25, 3.0, 4.75, 2.0, 5.5, 3.25, 1.0] * 8,
    }
)
CHURNED = ["stays", "leaves", "leaves", "stays", "leaves", "stays", "stays", "leaves"] * 8


def train() -> Pipeline:
    numbers = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
    columns = ColumnTransformer(
        [
            ("text", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
            ("numbers", numbers, ["age", "income"]),
        ]
    )
    model = Pipeline([("columns", columns), ("classify", LogisticRegression(max_iter=1000))])
    return model.fit(CUSTOMERS, CHURNED)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", type=Path, default=Path("build/model.tar.gz"))
    args = parser.parse_args()
    print(f"wrote {pack_model(train(), args.output)}")


if __name__ == "__main__":
    main()
