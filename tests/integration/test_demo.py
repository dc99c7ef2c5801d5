"""`make demo` as a user runs it: scripts/demo.py end to end, and stopped halfway."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.cdk import ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEMO = [sys.executable, str(ROOT / "scripts" / "demo.py")]


def demo_environment() -> dict[str, str]:
    return {**os.environ, "PATH": os.pathsep.join([str(ROOT / ".venv" / "bin"), os.environ["PATH"]])}


def is_running(pid: str) -> bool:
    return Path(f"/proc/{pid}").exists()


def cdk_processes() -> list[str]:
    listing = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True, check=True).stdout
    return [line for line in listing.splitlines() if "node_modules/.bin/cdk" in line]


def test_the_demo_deploys_reads_back_and_prints_predictions(demo_model_artifact: Path) -> None:
    args = DEMO if shutil.which("podman") or shutil.which("docker") else [*DEMO, "--no-container"]
    completed = subprocess.run(
        args, capture_output=True, text=True, timeout=900, check=False, env=demo_environment(), cwd="/"
    )
    output = completed.stdout
    assert completed.returncode == 0, output + completed.stderr
    assert re.search(r"status\s+InService", output)
    assert re.search(r"text/csv\s+5\.1,3\.5,1\.4,0\.2\s+-> 0", output)
    assert re.search(r"application/json\s+\[6\.9, 3\.1, 5\.4, 2\.1\]\s+-> 2", output)
    assert all(f"[{step}/7]" in output for step in range(1, 8))
    (moto_pid,) = re.findall(r"moto server on \S+ \(pid (\d+)\)", output)
    assert not is_running(moto_pid)


def test_interrupting_the_demo_stops_what_it_started(demo_model_artifact: Path) -> None:
    process = subprocess.Popen(
        [*DEMO, "--no-container"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=demo_environment(),
        start_new_session=True,
    )
    assert process.stdout is not None
    moto_pid = None
    deadline = time.monotonic() + 120
    for line in process.stdout:
        found = re.search(r"\(pid (\d+)\)", line)
        moto_pid = moto_pid or (found and found.group(1))
        if "[3/7] cdk deploy" in line or time.monotonic() > deadline:
            break
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 130
    assert "interrupted: everything started was stopped" in stderr
    assert moto_pid is not None
    assert not is_running(moto_pid)
    assert cdk_processes() == []
