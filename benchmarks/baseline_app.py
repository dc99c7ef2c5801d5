"""The benchmark's baseline: the seed's stack done the usual way.

A Flask app with GET /ping and POST /invocations, served by gunicorn with one sync worker per core:

    SM_MODEL_DIR=<dir> gunicorn --workers 2 --no-control-socket --chdir benchmarks baseline_app:app

It loads the same model.joblib and handles the same payloads as the real server's common path: CSV rows
(no header) in, one line per row out; JSON ``{"instances": [...]}`` or a bare list of rows in,
``{"predictions": [...]}`` out. Errors are plain 4xx answers; there is no batching and no streaming.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import joblib
import numpy as np
from flask import Flask, Response, jsonify, request

MODEL_PATH = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")) / "model.joblib"

model = joblib.load(MODEL_PATH)
app = Flask(__name__)


@app.get("/ping")
def ping() -> Response:
    return Response(status=200)


def decode_csv(body: bytes) -> np.ndarray:
    return np.loadtxt(io.StringIO(body.decode()), delimiter=",", ndmin=2)


def decode_json(body: bytes) -> np.ndarray:
    payload = json.loads(body)
    instances = payload["instances"] if isinstance(payload, dict) else payload
    return np.asarray(instances, dtype=float).reshape(len(instances), -1)


DECODERS = {"text/csv": decode_csv, "application/json": decode_json}


@app.post("/invocations")
def invocations() -> Response | tuple[Response, int]:
    decoder = DECODERS.get(request.mimetype)
    if decoder is None:
        return jsonify(error=f"unsupported content type {request.mimetype!r}"), 415
    try:
        rows = decoder(request.get_data())
    except (ValueError, KeyError, TypeError) as error:
        return jsonify(error=f"malformed {request.mimetype} body: {error}"), 400
    predictions = model.predict(rows)
    if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
        body = "".join(f"{prediction}\n" for prediction in predictions.tolist())
        return Response(body, mimetype="text/csv")
    return jsonify(predictions=predictions.tolist())
