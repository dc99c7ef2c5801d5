"""Benchmark a model with user inference code against the same model served by gunicorn+Flask.

    .venv/bin/python benchmarks/user_code.py                    # --duration 5 --connections 8,64
    .venv/bin/python benchmarks/user_code.py --duration 10 --repetitions 5

The same iris LogisticRegression (model.joblib) and the same load as benchmarks/run.py (wrk POSTing one CSV
row, Accept: text/csv), on three servers that take turns:

- ``baseline``: the seed's stack, Flask behind gunicorn (benchmarks/baseline_app.py);
- ``usercode``: inference_image/serve with code/inference.py in the model directory: input_fn parses the
  CSV text, predict_fn calls model.predict, output_fn writes CSV: the work baseline_app.py does, as hooks;
- ``batched``: the same code declaring ``BATCH_SAFE = True``, so concurrent requests share predict_fn calls.

Prints requests per second, latency and server CPU per request, and the ratios against the baseline. A
script, not a test: the numbers depend on the machine; the ratio measured side by side is the figure.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from run import (  # benchmarks/run.py: run as a script, its folder is on sys.path
    WRK_SCRIPT,
    LoadResult,
    measure,
    parse_args,
    print_header,
    print_ratios,
    print_rows,
    start_baseline,
    start_ours,
    started,
    train_model,
)

INFERENCE_PY = """
import numpy as np

{declaration}

def input_fn(body, content_type):
    return np.array([[float(value) for value in line.split(",")] for line in body.splitlines() if line])


def predict_fn(rows, model):
    return model.predict(rows)


def output_fn(prediction, accept):
    return "".join(f"{{label}}\\n" for label in prediction.tolist()), "text/csv"
"""
SERVERS = ("baseline", "usercode", "batched")


def model_directory(parent: Path, name: str, *, batch_safe: bool) -> Path:
    directory = parent / name
    (directory / "code").mkdir(parents=True)
    train_model(directory)
    declaration = "BATCH_SAFE = True" if batch_safe else ""
    (directory / "code" / "inference.py").write_text(INFERENCE_PY.format(declaration=declaration))
    return directory


def report(results: dict[tuple[str, int], LoadResult], connection_counts: Sequence[int]) -> None:
    print_header()
    for connections in connection_counts:
        print_rows(results, connections, SERVERS)
        print_ratios(results, connections, SERVERS[0], SERVERS[1:])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with tempfile.TemporaryDirectory(prefix="bench-usercode-") as temporary:
        work = Path(temporary)
        script = work / "request.lua"
        script.write_text(WRK_SCRIPT)
        plain = model_directory(work, "usercode", batch_safe=False)
        batched = model_directory(work, "batched", batch_safe=True)
        with (
            started("baseline", start_baseline, plain, work) as baseline,
            started("usercode", start_ours, plain, work) as usercode,
            started("batched", start_ours, batched, work) as batch_safe,
        ):
            results = measure(
                [baseline, usercode, batch_safe], args.connections, args.repetitions, args.duration, script
            )
    report(results, args.connections)
    return 1 if any(result.failures for result in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
