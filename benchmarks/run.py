"""Benchmark the inference server against the seed's stack (Flask behind gunicorn), side by side, in one run.

    make bench                                  # = .venv/bin/python benchmarks/run.py
    .venv/bin/python benchmarks/run.py --duration 10 --connections 8,64 --skip-container

Three servers run as children of this process on the same machine, with the same iris LogisticRegression
(trained here into a temporary directory) and the same load: wrk POSTing one CSV row (Accept: text/csv) at
each connection count. Runs alternate between the servers, repeat, and the medians are reported, so drift
on a shared machine hits all alike. Absolute numbers depend on the machine; the ratio is the figure.

- ``baseline``: the seed's stack, Flask behind gunicorn (benchmarks/baseline_app.py);
- ``uvicorn``: the same inference app on the server core it had before its own HTTP layer (uvicorn with
  httptools and uvloop, benchmarks/uvicorn_core.py): what the limits of issue 13 cost is the difference;
- ``ours``: inference_image/serve.

Besides requests per second and latency, each run reports the **server CPU per request**: the user and
system time of the server's processes during the run (from /proc), divided by the requests answered. It is
a cost, not a speed, so it moves far less with what else the machine is doing.

Also reported: cold start to the first 200 on /ping (process, and container when podman and the image are
there), the image's size, and memory per worker.

The container figures use podman and an image built beforehand (``make image``; --image picks another tag).
On a machine with the sandbox quirks of tests/container/containers.conf, select it for podman with
``CONTAINERS_CONF=tests/container/containers.conf``.

Exit status 1 when the ratio at 8 connections is below the issue's target (3.0) or any request failed, so a
regression is visible; this is a script, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVE = ROOT / "inference_image" / "serve"
BENCHMARKS = Path(__file__).resolve().parent
TARGET_RATIO = 3.0
TARGET_CONNECTIONS = 8
TARGET_CPU_US_PER_REQUEST = 160.0
"""Issue 13: the fast path stays at or under this much server CPU per 1-row request."""
SERVERS = ("baseline", "uvicorn", "ours")
TARGET_COLD_START_S = 1.0
TARGET_IMAGE_MB = 400
DEFAULT_IMAGE = "localhost/ml-inference:latest"
CSV_ROW = "5.1,3.5,1.4,0.2"
STARTUP_TIMEOUT_S = 60.0

# wrk's Lua hook: the same request every time, and a machine-readable summary at the end.
WRK_SCRIPT = f"""
wrk.method = "POST"
wrk.body = "{CSV_ROW}\\n"
wrk.headers["Content-Type"] = "text/csv"
wrk.headers["Accept"] = "text/csv"

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %.0f, "p99_us": %.0f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


StartFunction = Callable[[Path, Path], "subprocess.Popen[bytes]"]
"""(model directory, log file) -> the server process, on a port of its choosing (named in its log)."""


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    process: subprocess.Popen[bytes]


@dataclass(frozen=True)
class LoadResult:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    failures: int
    """Socket errors, timeouts and non-2xx/3xx answers."""
    cpu_us_per_request: float
    """User + system CPU time of the server's processes during the run, per request answered."""


def load_parser(description: str | None, connections: Sequence[int]) -> argparse.ArgumentParser:
    """The arguments every benchmark script takes: --duration, --connections, --repetitions."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    shown = ",".join(map(str, connections))
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run (default: 5)")
    parser.add_argument(
        "--connections",
        type=lambda text: [int(part) for part in text.split(",")],
        default=list(connections),
        help=f"comma-separated connection counts (default: {shown})",
    )
    parser.add_argument("--repetitions", type=int, default=3, help="runs per server and load (default: 3)")
    return parser


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = load_parser(__doc__, [8, 64])
    parser.add_argument("--skip-container", action="store_true", help="skip the container measurements")
    parser.add_argument(
        "--image",
        default=os.environ.get("IMAGE", DEFAULT_IMAGE),
        help=f"image for the container measurements (default: $IMAGE or {DEFAULT_IMAGE})",
    )
    return parser.parse_args(argv)


# --- setup -------------------------------------------------------------------------------------------------


def train_model(directory: Path) -> Path:
    """The iris LogisticRegression, saved as SageMaker would extract it: <dir>/model.joblib."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    joblib.dump(LogisticRegression(max_iter=1000).fit(features, labels), directory / "model.joblib")
    return directory


def worker_count() -> int:
    return len(os.sched_getaffinity(0))


def start_baseline(model_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """gunicorn + Flask, one sync worker per core (the usual deployment of the seed's app)."""
    command = [
        *[sys.executable, "-m", "gunicorn"],
        *["--workers", str(worker_count()), "--worker-class", "sync"],
        *["--bind", "127.0.0.1:0", "--chdir", str(BENCHMARKS)],
        *["--no-control-socket", "--log-level", "info"],
        "baseline_app:app",
    ]
    return spawn(command, {"SM_MODEL_DIR": str(model_dir)}, log)


def start_uvicorn(model_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """The same app on uvicorn: the server core before issue 13."""
    command = [sys.executable, str(BENCHMARKS / "uvicorn_core.py"), "--workers", str(worker_count())]
    return spawn(command, {"SM_MODEL_DIR": str(model_dir)}, log)


def start_ours(model_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """inference_image/serve as a local process, exactly as the container's entrypoint runs it."""
    env = {"SM_MODEL_DIR": str(model_dir), "SAGEMAKER_BIND_TO_PORT": "0"}
    return spawn([sys.executable, str(SERVE), "serve"], env, log)


STARTS: dict[str, StartFunction] = {"baseline": start_baseline, "uvicorn": start_uvicorn, "ours": start_ours}
_PORT_IN_LOG = re.compile(r"(?:listening on port |Listening at: http://127\.0\.0\.1:)(\d+)")


def spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.write_bytes(b"")
    with log.open("ab") as output:
        return subprocess.Popen(command, env={**os.environ, **env}, stdout=output, stderr=subprocess.STDOUT)


def port_from_log(log: Path, process: subprocess.Popen[bytes]) -> int:
    """The port a server bound (each binds port 0: no port is chosen here and then taken by another)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        found = _PORT_IN_LOG.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if process.poll() is not None:
            break
        time.sleep(0.005)
    raise RuntimeError(f"the server never named its port:\n{log.read_text(errors='replace')[-2000:]}")


def stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as the platforms do; SIGKILL if it is still there after 30 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def started(name: str, start: StartFunction, model_dir: Path, work: Path) -> Iterator[Server]:
    """A server running until the block ends; its log is printed if anything in the block fails."""
    log = work / f"{name}.log"
    process = start(model_dir, log)
    try:
        port = port_from_log(log, process)
        wait_for_ping(port, process)
        yield Server(name, f"http://127.0.0.1:{port}", process)
    except BaseException:
        print(f"--- {name} log ({log}) ---\n{log.read_text(errors='replace')[-4000:]}", file=sys.stderr)
        raise
    finally:
        stop(process)


def ping(port: int) -> int | None:
    """The status of GET /ping, or None when nothing answers."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        connection.request("GET", "/ping")
        status = connection.getresponse().status
        connection.close()
    except OSError:
        return None
    return status


def wait_for_ping(port: int, process: subprocess.Popen[bytes] | None = None) -> float:
    """Seconds until /ping first answers 200 (polled every 5 ms); RuntimeError if it never does."""
    started = time.perf_counter()
    while time.perf_counter() - started < STARTUP_TIMEOUT_S:
        if ping(port) == 200:
            return time.perf_counter() - started
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before /ping answered")
        time.sleep(0.005)
    raise RuntimeError(f"/ping on port {port} did not answer 200 within {STARTUP_TIMEOUT_S:g} s")


# --- load --------------------------------------------------------------------------------------------------


def cpu_seconds(root_pid: int) -> float:
    """User + system CPU time so far of a server: its main process and its live children (the workers)."""
    ticks = 0
    for pid in [root_pid, *children(root_pid)]:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


def run_wrk(server: Server, connections: int, duration: float, script: Path) -> LoadResult:
    cpu_before = cpu_seconds(server.process.pid)
    command = [
        *["wrk", "--threads", "1", "--connections", str(connections)],
        *["--duration", f"{duration:g}s", "--timeout", "10s", "--script", str(script)],
        f"{server.url}/invocations",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, check=True, timeout=duration + 60)
    cpu = cpu_seconds(server.process.pid) - cpu_before
    (line,) = [line for line in completed.stdout.splitlines() if line.startswith("WRK_RESULT ")]
    raw = json.loads(line.removeprefix("WRK_RESULT "))
    return LoadResult(
        requests_per_s=raw["requests"] / (raw["duration_us"] / 1e6),
        p50_ms=raw["p50_us"] / 1000,
        p99_ms=raw["p99_us"] / 1000,
        failures=sum(raw[kind] for kind in ("connect", "read", "write", "status", "timeout")),
        cpu_us_per_request=cpu / max(raw["requests"], 1) * 1e6,
    )


def measure(
    servers: Sequence[Server],
    connection_counts: Sequence[int],
    repetitions: int,
    duration: float,
    script: Path,
) -> dict[tuple[str, int], LoadResult]:
    """Median of ``repetitions`` runs per (server, connections); the servers take turns, order alternating."""
    runs: dict[tuple[str, int], list[LoadResult]] = {}
    for repetition in range(repetitions):
        order = servers if repetition % 2 == 0 else list(reversed(servers))
        for connections in connection_counts:
            for server in order:
                result = run_wrk(server, connections, duration, script)
                runs.setdefault((server.name, connections), []).append(result)
                print(
                    f"  run {repetition + 1}/{repetitions} c={connections:<3} {server.name:<9} "
                    f"{result.requests_per_s:9,.0f} req/s {result.cpu_us_per_request:6.1f} us CPU/request",
                    file=sys.stderr,
                )
    return {key: median(results) for key, results in runs.items()}


def median(results: Sequence[LoadResult]) -> LoadResult:
    return LoadResult(
        requests_per_s=statistics.median(r.requests_per_s for r in results),
        p50_ms=statistics.median(r.p50_ms for r in results),
        p99_ms=statistics.median(r.p99_ms for r in results),
        failures=sum(r.failures for r in results),
        cpu_us_per_request=statistics.median(r.cpu_us_per_request for r in results),
    )


# --- other figures -----------------------------------------------------------------------------------------


def process_cold_start(start: StartFunction, model_dir: Path, log: Path, attempts: int = 3) -> float:
    """Median seconds from starting a server process to its first 200 on /ping."""
    timings = []
    for _ in range(attempts):
        started = time.perf_counter()
        process = start(model_dir, log)
        try:
            port = port_from_log(log, process)
            wait_for_ping(port, process)
            timings.append(time.perf_counter() - started)
        finally:
            stop(process)
    return statistics.median(timings)


def container_cold_start(image: str, model_dir: Path, attempts: int = 3) -> float:
    """Median seconds from ``podman run IMAGE serve`` to the first 200 on /ping (read-only, non-root)."""
    timings = []
    for _ in range(attempts):
        started = time.perf_counter()
        container_id = podman(
            *["run", "--detach", "--read-only", "--tmpfs", "/tmp"],
            *["--volume", f"{model_dir}:/opt/ml/model:ro", "--publish", "127.0.0.1::8080"],
            *[image, "serve"],
        ).strip()
        try:
            port = int(podman("port", container_id, "8080/tcp").split(":")[-1])
            wait_for_ping(port)
            timings.append(time.perf_counter() - started)
        finally:
            podman("rm", "--force", "--time", "5", container_id)
    return statistics.median(timings)


def podman(*args: str) -> str:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=True, timeout=120).stdout


def image_size_mb(image: str) -> float:
    return int(podman("image", "inspect", "--format", "{{.Size}}", image)) / 1e6


def memory_per_process(root_pid: int) -> list[tuple[int, float, float]]:
    """(pid, RSS MB, PSS MB) of a server's main process and its children, from /proc.

    RSS counts pages shared copy-on-write with the parent in every worker; PSS splits them, so its sum is
    what the server really occupies.
    """
    pids = [root_pid, *children(root_pid)]
    return [
        (pid, proc_kb(pid, "status", "VmRSS:") / 1024, proc_kb(pid, "smaps_rollup", "Pss:") / 1024)
        for pid in pids
    ]


def children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # pid (comm) state ppid ...: comm may hold spaces, so split after its closing parenthesis.
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return sorted(found)


def proc_kb(pid: int, name: str, field: str) -> int:
    for line in Path(f"/proc/{pid}/{name}").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0


# --- report ------------------------------------------------------------------------------------------------


def print_header(width: int = 9) -> None:
    """The header of a throughput table whose server names are ``width`` characters wide."""
    print(
        f"{'connections':>11}  {'server':<{width}} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'failed':>7} "
        f"{'CPU us/req':>10}"
    )


def print_rows(
    results: dict[tuple[str, int], LoadResult], connections: int, servers: Sequence[str], width: int = 9
) -> None:
    """One table row per server at ``connections``."""
    for name in servers:
        r = results[name, connections]
        print(
            f"{connections:>11}  {name:<{width}} {r.requests_per_s:>9,.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} "
            f"{r.failures:>7} {r.cpu_us_per_request:>10.1f}"
        )


def print_ratios(
    results: dict[tuple[str, int], LoadResult], connections: int, base: str, others: Sequence[str]
) -> None:
    """Each of ``others`` against ``base``: requests per second and CPU per request."""
    reference = results[base, connections]
    for name in others:
        r = results[name, connections]
        print(
            f"{'':>11}  {name}/{base}: {r.requests_per_s / reference.requests_per_s:.2f}x req/s, "
            f"{r.cpu_us_per_request / reference.cpu_us_per_request:.2f}x CPU per request"
        )


def print_throughput(results: dict[tuple[str, int], LoadResult], connection_counts: Sequence[int]) -> None:
    print_header()
    for connections in connection_counts:
        print_rows(results, connections, SERVERS)
        print(
            f"{'':>11}  ratio ours/baseline: {ratio(results, connections):.2f}x req/s; ours/uvicorn: "
            f"{ratio(results, connections, 'uvicorn'):.2f}x req/s, "
            f"{cpu_ratio(results, connections):.2f}x CPU per request"
        )


def ratio(results: dict[tuple[str, int], LoadResult], connections: int, against: str = "baseline") -> float:
    return results["ours", connections].requests_per_s / results[against, connections].requests_per_s


def cpu_ratio(results: dict[tuple[str, int], LoadResult], connections: int) -> float:
    ours, theirs = results["ours", connections], results["uvicorn", connections]
    return ours.cpu_us_per_request / theirs.cpu_us_per_request


def print_memory(name: str, pid: int) -> None:
    main, *workers = memory_per_process(pid)
    per_worker = ", ".join(f"{rss:.0f} MB RSS / {pss:.0f} MB PSS" for _, rss, pss in workers)
    print(f"  {name:<9} main {main[1]:.0f} MB RSS; {len(workers)} workers: {per_worker}")


def print_container_figures(image: str, model_dir: Path) -> None:
    if shutil.which("podman") is None:
        print("container: podman not found (scripts/ensure-container-tools.sh), skipped")
        return
    if subprocess.run(["podman", "image", "exists", image], check=False).returncode != 0:
        print(f"container: image {image} not found (make image, or pass --image), skipped")
        return
    size = image_size_mb(image)
    print(f"image size: {size:.0f} MB ({image}; target <= {TARGET_IMAGE_MB} MB)")
    try:
        cold = container_cold_start(image, model_dir)
    except (subprocess.CalledProcessError, RuntimeError) as error:
        detail = getattr(error, "stderr", "") or error
        print(f"container cold start: failed ({str(detail).strip()})")
        return
    print(f"cold start, container to first /ping 200: {cold:.2f} s (podman run included)")


def verdict(results: dict[tuple[str, int], LoadResult], connection_counts: Sequence[int]) -> list[str]:
    """Why this run misses the issue's targets (empty: it meets them)."""
    problems = [
        f"{name} had {r.failures} failed requests at {c} connections"
        for (name, c), r in results.items()
        if r.failures
    ]
    if TARGET_CONNECTIONS in connection_counts and ratio(results, TARGET_CONNECTIONS) < TARGET_RATIO:
        problems.append(
            f"ratio at {TARGET_CONNECTIONS} connections is {ratio(results, TARGET_CONNECTIONS):.2f}x, "
            f"below the {TARGET_RATIO:.1f}x target"
        )
    problems += [
        f"ours spent {r.cpu_us_per_request:.0f} us of CPU per request at {c} connections, over the "
        f"{TARGET_CPU_US_PER_REQUEST:.0f} us target"
        for (name, c), r in results.items()
        if name == "ours" and r.cpu_us_per_request > TARGET_CPU_US_PER_REQUEST
    ]
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if shutil.which("wrk") is None:
        print("wrk not found: apt-get install wrk (scripts/ensure-container-tools.sh)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        model_dir = work / "model"
        model_dir.mkdir()
        work.chmod(0o755)  # the container's non-root user reads the model too
        train_model(model_dir)
        script = work / "post-csv-row.lua"
        script.write_text(WRK_SCRIPT)
        print(
            f"{worker_count()} CPUs; wrk, 1 thread, {args.duration:g} s per run; 1-row CSV POST",
            file=sys.stderr,
        )
        with contextlib.ExitStack() as stack:
            servers = [stack.enter_context(started(name, STARTS[name], model_dir, work)) for name in SERVERS]
            for server in servers:  # warm up: every worker loaded, caches hot
                run_wrk(server, max(args.connections), 2, script)
            results = measure(servers, args.connections, args.repetitions, args.duration, script)
            print()
            print_throughput(results, args.connections)
            print("\nmemory after the load:")
            for server in servers:
                print_memory(server.name, server.process.pid)
        print()
        for name, start in (("baseline", start_baseline), ("ours", start_ours)):
            cold = process_cold_start(start, model_dir, work / f"{name}.log")
            print(f"cold start, {name} process to first /ping 200: {cold:.2f} s")
        print(f"  (target for ours <= {TARGET_COLD_START_S:g} s)")
        if not args.skip_container:
            print_container_figures(args.image, model_dir)
    problems = verdict(results, args.connections)
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
