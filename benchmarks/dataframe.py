"""Benchmark a DataFrame pipeline: this server against the same pipeline on gunicorn + Flask, side by side.

    .venv/bin/python benchmarks/dataframe.py
    .venv/bin/python benchmarks/dataframe.py --duration 10 --reference-serve ../main/inference_image/serve

The pipeline: a ColumnTransformer (OneHotEncoder on two text columns, StandardScaler on two numbers) and a
LogisticRegression, fitted on a small DataFrame here and packed with pack_model(). The load: wrk POSTing one
row as JSON ``{"dataframe_split": ...}`` (MLflow's scoring protocol) and as CSV with a header line.

- ``baseline``: benchmarks/baseline_dataframe_app.py (pd.DataFrame / pd.read_csv, Flask, gunicorn);
- ``ours``: inference_image/serve.

Also measured, ours only, one CSV row without a header: the iris LogisticRegression fitted on numbers (the
numeric fast path) against the same model fitted on a DataFrame with named columns (positional rows become a
DataFrame with the model's column names). With ``--reference-serve``, the numeric fast path of this checkout
is measured against another checkout's serve (say, main's), to show it did not get slower.

Uses benchmarks/run.py's helpers (servers, wrk, medians, CPU per request); figures are medians of
alternating runs. This is a script, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import (
    BENCHMARKS,
    WRK_SCRIPT,
    LoadResult,
    StartFunction,
    load_parser,
    measure,
    print_header,
    print_ratios,
    print_rows,
    run_wrk,
    spawn,
    start_ours,
    started,
    worker_count,
)

DONE_HOOK = WRK_SCRIPT[WRK_SCRIPT.index("done = function") :]
JSON_ROW = json.dumps(
    {"dataframe_split": {"columns": ["city", "plan", "age", "income"], "data": [["rome", "plus", 35, 2.25]]}}
)
CSV_WITH_HEADER = "city,plan,age,income\nrome,plus,35,2.25\n"


def wrk_script(body: str, content_type: str) -> str:
    """A wrk Lua script POSTing ``body`` (a Lua long string: taken as it is) with run.py's summary."""
    return (
        f'wrk.method = "POST"\nwrk.body = [==[{body}]==]\nwrk.headers["Content-Type"] = "{content_type}"\n'
        f'wrk.headers["Accept"] = "application/json"\n{DONE_HOOK}'
    )


def start_baseline(model_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """gunicorn + Flask + pandas, one sync worker per core."""
    command = [
        *[sys.executable, "-m", "gunicorn"],
        *["--workers", str(worker_count()), "--worker-class", "sync"],
        *["--bind", "127.0.0.1:0", "--chdir", str(BENCHMARKS)],
        *["--no-control-socket", "--log-level", "info"],
        "baseline_dataframe_app:app",
    ]
    return spawn(command, {"SM_MODEL_DIR": str(model_dir)}, log)


def start_serve(serve: Path) -> StartFunction:
    """``serve`` (any checkout's inference_image/serve) as a local process."""

    def start(model_dir: Path, log: Path) -> subprocess.Popen[bytes]:
        env = {"SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": "0"}
        return spawn([sys.executable, str(serve), "serve"], env, log)

    return start


def pack_into(directory: Path, estimator: object) -> Path:
    """What pack_model() writes, unpacked as SageMaker unpacks it."""
    from ml_inference_cdk import pack_model

    archive = pack_model(estimator, directory.parent / f"{directory.name}.tar.gz")
    directory.mkdir()
    with tarfile.open(archive) as packed:
        packed.extractall(directory, filter="data")
    return directory


def customer_pipeline() -> object:
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.DataFrame(
        {
            "city": ["paris", "rome", "oslo", "lima", "rome", "paris", "oslo", "lima"] * 4,
            "plan": ["basic", "plus", "pro", "basic", "plus", "pro", "plus", "basic"] * 4,
            "age": [23, 35, 47, 59, 31, 62, 44, 28] * 4,
            "income": [1.5, 2.25, 3.0, 4.75, 2.0, 5.5, 3.25, 1.0] * 4,
        }
    )
    columns = ColumnTransformer(
        [
            ("text", OneHotEncoder(handle_unknown="ignore"), ["city", "plan"]),
            ("numbers", StandardScaler(), ["age", "income"]),
        ]
    )
    labels = ["stays", "leaves", "leaves", "stays", "leaves", "stays", "stays", "leaves"] * 4
    return Pipeline([("columns", columns), ("classify", LogisticRegression(max_iter=1000))]).fit(
        frame, labels
    )


def iris_models() -> tuple[object, object]:
    """The iris LogisticRegression fitted on numbers, and fitted on a DataFrame with named columns."""
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True, as_frame=True)
    assert isinstance(features, pd.DataFrame)
    on_numbers = LogisticRegression(max_iter=1000).fit(features.to_numpy(), labels)
    return on_numbers, LogisticRegression(max_iter=1000).fit(features, labels)


def compare(
    title: str,
    servers: dict[str, tuple[StartFunction, Path]],
    script: Path,
    args: argparse.Namespace,
    work: Path,
) -> dict[tuple[str, int], LoadResult]:
    """Start ``servers`` (name -> start, model directory), load them in turns with ``script``, print."""
    print(f"\n{title}", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        running = [
            stack.enter_context(started(name, start, model_dir, work))
            for name, (start, model_dir) in servers.items()
        ]
        for server in running:  # warm up: every worker loaded, caches hot
            run_wrk(server, max(args.connections), 2, script)
        results = measure(running, args.connections, args.repetitions, args.duration, script)
    names = list(servers)
    print(f"\n{title}")
    print_header(16)
    for connections in args.connections:
        print_rows(results, connections, names, 16)
        print_ratios(results, connections, names[0], names[1:2])
    return results


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = load_parser(__doc__, [8])
    parser.add_argument(
        "--reference-serve",
        type=Path,
        help="another checkout's inference_image/serve to compare the fast path with",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk (scripts/ensure-container-tools.sh)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-dataframe-") as tmp:
        work = Path(tmp)
        pipeline_dir = pack_into(work / "pipeline", customer_pipeline())
        on_numbers, on_frame = iris_models()
        iris_dir = pack_into(work / "iris", on_numbers)
        iris_frame_dir = pack_into(work / "iris-frame", on_frame)
        scripts = {
            "json": (work / "json.lua", wrk_script(JSON_ROW, "application/json")),
            "csv-header": (work / "csv-header.lua", wrk_script(CSV_WITH_HEADER, "text/csv")),
            "csv": (work / "csv.lua", WRK_SCRIPT),
        }
        for path, text in scripts.values():
            path.write_text(text)
        print(
            f"{worker_count()} CPUs; wrk, 1 thread, {args.duration:g} s per run; 1-row POSTs", file=sys.stderr
        )
        pair = {"baseline": (start_baseline, pipeline_dir), "ours": (start_ours, pipeline_dir)}
        compare("DataFrame pipeline, JSON dataframe_split", pair, scripts["json"][0], args, work)
        compare("DataFrame pipeline, CSV with a header", pair, scripts["csv-header"][0], args, work)
        iris = {
            "fitted on numbers": (start_ours, iris_dir),
            "fitted on a frame": (start_ours, iris_frame_dir),
        }
        compare("iris, one CSV row without a header (ours)", iris, scripts["csv"][0], args, work)
        if args.reference_serve:
            checkouts = {
                "reference": (start_serve(args.reference_serve.resolve()), iris_dir),
                "this checkout": (start_ours, iris_dir),
            }
            compare("iris fitted on numbers: the numeric fast path", checkouts, scripts["csv"][0], args, work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
