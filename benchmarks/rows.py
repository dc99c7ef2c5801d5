"""Large requests, side by side in one run: SageMaker batch transform's MULTI_RECORD bodies (issue 15).

    .venv/bin/python benchmarks/rows.py
    .venv/bin/python benchmarks/rows.py --rows 1000,10000,100000 --repetitions 5

Two servers run as children of this process on the same machine, with the same iris LogisticRegression,
each with one worker per core: ``baseline`` (Flask behind gunicorn, benchmarks/baseline_app.py) and ``ours``
(inference_image/serve). Each is sent requests of 1,000, 10,000 and 100,000 rows, one at a time over
http.client, as CSV (``Accept: text/csv``) and as JSON (``{"instances": [...]}``, answered in each server's
default JSON: a bare list here, ``{"predictions": [...]}`` there). Every answer is checked for its status
and its number of predictions.

Each repetition times a few requests per server, size and format and keeps their mean; the servers take
turns, their order alternating between repetitions, and the table shows the median over repetitions of
the milliseconds per request (the whole round trip, client included) and the ratio baseline/ours, then
the server's CPU milliseconds per request (its processes' user + system time, from /proc: a cost that
moves far less than wall time with what else the machine is doing).

Exit status 1 when any ratio is below the issue's target (2.0) or any answer was wrong; this is a
script, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.run import cpu_seconds, start_baseline, start_ours, started, train_model, worker_count

TARGET_RATIO = 2.0
SERVERS = ("baseline", "ours")
FORMATS = ("csv", "json")
DEFAULT_ROWS = (1_000, 10_000, 100_000)
TIMED_VALUES = 400_000
"""Requests per measurement: enough that each one times about this many input values, and at least
MIN_REQUESTS (the servers' CPU time is counted in 10 ms ticks)."""
MIN_REQUESTS = 3


@dataclass(frozen=True)
class Payload:
    format: str
    rows: int
    body: bytes
    headers: dict[str, str]


def payloads(row_counts: Sequence[int]) -> list[Payload]:
    """The iris rows repeated to each size, as CSV and as JSON, the way a batch transform splits a file."""
    from sklearn.datasets import load_iris

    features = load_iris(return_X_y=True)[0]
    made = []
    for rows in row_counts:
        table = features[np.arange(rows) % len(features)].tolist()
        csv = "".join(",".join(map(repr, row)) + "\n" for row in table).encode()
        made.append(Payload("csv", rows, csv, {"Content-Type": "text/csv", "Accept": "text/csv"}))
        json = orjson.dumps({"instances": table})
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        made.append(Payload("json", rows, json, headers))
    return made


def compiled_model(model_dir: Path, archive: Path) -> None:
    """The iris LogisticRegression packed with compile="onnx" (verified on iris), unpacked into model_dir."""
    import tarfile

    import joblib
    from sklearn.datasets import load_iris

    from ml_inference_cdk import pack_model

    scratch = archive.parent / "native"
    scratch.mkdir()
    estimator = joblib.load(train_model(scratch) / "model.joblib")
    pack_model(estimator, archive, compile="onnx", sample=load_iris(return_X_y=True)[0])
    with tarfile.open(archive) as packed:
        packed.extractall(model_dir, filter="data")


def predictions_in(answer: bytes, answer_format: str) -> int:
    """How many predictions an answer holds: its lines (CSV), or its list's length (either JSON shape)."""
    if answer_format == "csv":
        return answer.count(b"\n")
    document = orjson.loads(answer)
    return len(document["predictions"] if isinstance(document, dict) else document)


class Client:
    """Sequential requests to one server over one http.client connection (reopened when the server closes
    it, as gunicorn's sync workers do after every answer)."""

    def __init__(self, name: str, url: str, pid: int) -> None:
        self.name = name
        self.pid = pid
        address = urlsplit(url)
        self._connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=120)

    def post(self, payload: Payload) -> None:
        self._connection.request("POST", "/invocations", body=payload.body, headers=payload.headers)
        response = self._connection.getresponse()
        answer = response.read()
        if response.status != 200:
            raise RuntimeError(
                f"{self.name} answered {response.status} to {payload.rows} rows: {answer[:200]!r}"
            )
        count = predictions_in(answer, payload.format)
        if count != payload.rows:
            raise RuntimeError(f"{self.name} answered {count} predictions to {payload.rows} rows")

    def time_ms(self, payload: Payload, requests: int) -> tuple[float, float]:
        """Mean milliseconds per request over ``requests`` sequential requests: wall time (the round
        trip) and the server's CPU time (its processes' user + system time, which moves far less with what
        else the machine is doing)."""
        cpu_before = cpu_seconds(self.pid)
        started_at = time.perf_counter()
        for _ in range(requests):
            self.post(payload)
        wall = time.perf_counter() - started_at
        return wall / requests * 1000, (cpu_seconds(self.pid) - cpu_before) / requests * 1000

    def close(self) -> None:
        self._connection.close()


def measure(
    clients: Sequence[Client], cases: Sequence[Payload], repetitions: int
) -> dict[tuple[str, str, int], tuple[float, float]]:
    """Median over repetitions of the (wall, CPU) ms per request, per (server, format, rows)."""
    runs: dict[tuple[str, str, int], list[tuple[float, float]]] = {}
    for repetition in range(repetitions):
        order = clients if repetition % 2 == 0 else list(reversed(clients))
        for payload in cases:
            requests = max(MIN_REQUESTS, TIMED_VALUES // (payload.rows * 4))
            for client in order:
                elapsed = client.time_ms(payload, requests)
                runs.setdefault((client.name, payload.format, payload.rows), []).append(elapsed)
        print(f"  repetition {repetition + 1}/{repetitions} done", file=sys.stderr)
    return {
        key: (statistics.median(wall for wall, _ in values), statistics.median(cpu for _, cpu in values))
        for key, values in runs.items()
    }


def print_table(
    results: dict[tuple[str, str, int], tuple[float, float]], row_counts: Sequence[int]
) -> list[float]:
    """The table, one line per format and size; the wall-time ratios, in order."""
    print(
        f"{'format':<6} {'rows':>8} {'ours ms':>9} {'baseline ms':>12} {'ratio':>7}   "
        f"{'ours CPU ms':>11} {'baseline CPU ms':>15} {'CPU ratio':>9}"
    )
    ratios = []
    for answer_format in FORMATS:
        for rows in row_counts:
            ours, ours_cpu = results["ours", answer_format, rows]
            baseline, baseline_cpu = results["baseline", answer_format, rows]
            ratios.append(baseline / ours)
            print(
                f"{answer_format:<6} {rows:>8,} {ours:>9.1f} {baseline:>12.1f} {baseline / ours:>6.2f}x   "
                f"{ours_cpu:>11.1f} {baseline_cpu:>15.1f} {baseline_cpu / max(ours_cpu, 1e-9):>8.2f}x"
            )
    return ratios


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rows",
        type=lambda text: [int(part) for part in text.split(",")],
        default=list(DEFAULT_ROWS),
        help="comma-separated rows per request (default: 1000,10000,100000)",
    )
    parser.add_argument("--repetitions", type=int, default=7, help="runs per server and case (default: 7)")
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="pack the model with pack_model(compile='onnx'): ours serves model.onnx with ONNX Runtime, the "
        "baseline the model.joblib beside it",
    )
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cases = payloads(args.rows)
    with tempfile.TemporaryDirectory(prefix="bench-rows-") as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        model_dir.mkdir()
        if args.compiled:
            compiled_model(model_dir, work / "model.tar.gz")
        else:
            train_model(model_dir)
        print(
            f"{worker_count()} CPUs, {worker_count()} workers each; sequential requests; "
            f"median of {args.repetitions} repetitions; ours serves "
            f"{'model.onnx (compiled)' if args.compiled else 'model.joblib'}",
            file=sys.stderr,
        )
        with contextlib.ExitStack() as stack:
            starts = {"baseline": start_baseline, "ours": start_ours}
            clients = []
            for name in SERVERS:
                server = stack.enter_context(started(name, starts[name], model_dir, work))
                client = Client(name, server.url, server.process.pid)
                stack.callback(client.close)
                clients.append(client)
            for client in clients:  # warm up: every size once, both formats
                for payload in cases:
                    client.post(payload)
            results = measure(clients, cases, args.repetitions)
    print()
    ratios = print_table(results, args.rows)
    low = [ratio for ratio in ratios if ratio < TARGET_RATIO]
    if low:
        print(f"FAIL: {len(low)} ratios below the {TARGET_RATIO:.1f}x target")
    return 1 if low else 0


if __name__ == "__main__":
    sys.exit(main())
