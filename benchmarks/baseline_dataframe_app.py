"""The DataFrame benchmark's baseline: a DataFrame pipeline served the usual way, Flask behind gunicorn.

Like baseline_app.py, but the body becomes a pandas DataFrame the way MLflow's scoring server and most
hand-written Flask apps build one: ``pd.read_csv`` for CSV with a header line, ``pd.DataFrame`` for JSON
``{"dataframe_split": {"columns": [...], "data": [...]}}`` or ``{"dataframe_records": [...]}``:

    SM_MODEL_DIR=<dir> gunicorn --workers 2 --no-control-socket --chdir benchmarks baseline_dataframe_app:app

Answers ``{"predictions": [...]}`` (JSON) or one line per row (text/csv). No batching, no column checks
beyond what pandas and scikit-learn raise.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import joblib
import pandas as pd
from flask import Flask, Response, jsonify, request

MODEL_PATH = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")) / "model.joblib"

model = joblib.load(MODEL_PATH)
app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return Response(status=200)


def decode_csv(body: bytes) -> pd.DataFrame:
    return pd.read_csv(io.BytesIO(body))


def decode_json(body: bytes) -> pd.DataFrame:
    payload: dict[str, Any] = json.loads(body)
    if "dataframe_split" in payload:
        split = payload["dataframe_split"]
        return pd.DataFrame(split["data"], columns=split["columns"])
    return pd.DataFrame(payload["dataframe_records"])


DECODERS = {"text/csv": decode_csv, "application/json": decode_json}


@app.post("/invocations")
def invocations() -> Response | tuple[Response, int]:
    decoder = DECODERS.get(request.mimetype)
    if decoder is None:
        return jsonify(error=f"unsupported content type {request.mimetype!r}"), 415
    try:
        frame = decoder(request.get_data())
        predictions = model.predict(frame)
    except (ValueError, KeyError, TypeError) as error:
        return jsonify(error=f"malformed {request.mimetype} body: {error}"), 400
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        body = "".join(f"{prediction}\n" for prediction in predictions.tolist())
        return Response(body, mimetype="text/csv")
    return jsonify(predictions=predictions.tolist())
