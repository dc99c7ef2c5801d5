"""Script mode, as AWS's framework containers run it: the user's script with the hyperparameters as
``--name value`` arguments and the ``SM_*`` variables in its environment.

``SAGEMAKER_PROGRAM`` (or the ``sagemaker_program`` hyperparameter) names the script; it is found in
``SAGEMAKER_SUBMIT_DIRECTORY`` (or ``sagemaker_submit_directory``), by default /opt/ml/code. The directory
may be a folder or a local .tar.gz (the SDK's sourcedir.tar.gz), which is unpacked under /tmp. An s3:// URI
is not downloaded (the image has no AWS SDK): pass the code as an input channel instead and point
SAGEMAKER_SUBMIT_DIRECTORY at /opt/ml/input/data/<channel>. A ``requirements.txt`` beside the script is
installed first, into /tmp, pinned against the image's own packages (as the server installs
code/requirements.txt).
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from pathlib import Path
from types import FrameType
from typing import IO, Final

from sklearn_server.training.environment import TrainingEnvironment
from sklearn_server.training.model_output import check_model_dir

logger = logging.getLogger(__name__)

STDERR_TAIL_LINES: Final = 20
"""Lines of the script's stderr kept for the failure file."""


class UserScriptError(Exception):
    """The user's script failed; ``exit_code`` is what the container exits with."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def run_script(env: TrainingEnvironment) -> None:
    """Run the script, streaming its output; then check it wrote a model ``serve`` can load.

    Raises:
        UserScriptError: the script is missing or exited non-zero (the message holds its stderr's tail).
        ValueError: it exited 0 but wrote no model file (``check_model_dir``).
    """
    assert env.program is not None
    with contextlib.ExitStack() as cleanup:  # a code archive is unpacked for the run, and removed after it
        _run_script(env, env.program, _code_dir(env.submit_directory, cleanup))


def _run_script(env: TrainingEnvironment, program: str, code_dir: Path) -> None:
    script = (code_dir / program).resolve()
    if not script.is_file() or not script.is_relative_to(code_dir.resolve()):
        found = sorted(p.name for p in code_dir.glob("*.py")) if code_dir.is_dir() else []
        raise UserScriptError(
            f"SAGEMAKER_PROGRAM names {program!r}, which is not a file in {code_dir} "
            f"(SAGEMAKER_SUBMIT_DIRECTORY); Python files there: {', '.join(found) or 'none'}"
        )
    python_path = [str(code_dir), *_installed_requirements(code_dir)]
    command = [sys.executable, str(script)] if script.suffix == ".py" else ["/bin/sh", str(script)]
    command += env.to_cmd_args()
    child_env = {
        **os.environ,
        **env.to_env_vars(),
        "PYTHONPATH": os.pathsep.join([*python_path, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    }
    for folder in (env.model_dir, env.output_data_dir):  # as the training toolkit, so the script may write
        folder.mkdir(parents=True, exist_ok=True)
    logger.info("running %s", " ".join(command))
    exit_code, tail = _run(command, cwd=code_dir, env=child_env)
    if exit_code != 0:
        shown = "\n".join(tail) or "(nothing on stderr)"
        raise UserScriptError(
            f"the training script {program} failed with exit code {exit_code}; "
            f"the end of its stderr:\n{shown}",
            exit_code=exit_code if 0 < exit_code < 256 else 128 + abs(exit_code),
        )
    model = check_model_dir(env.model_dir)
    logger.info("the script wrote %s to %s", model, env.model_dir)


def _code_dir(submit_directory: str, cleanup: contextlib.ExitStack) -> Path:
    if submit_directory.startswith("s3://"):
        raise UserScriptError(
            f"SAGEMAKER_SUBMIT_DIRECTORY is {submit_directory}: this image does not download code from S3. "
            "Pass the code as an input channel (e.g. 'code') and set "
            "SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/input/data/code, or build it into the image"
        )
    path = Path(submit_directory.removeprefix("file://"))
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        target = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="code-")))
        with tarfile.open(path) as archive:
            archive.extractall(target, filter="data")
        return target
    if not path.is_dir():
        raise UserScriptError(
            f"SAGEMAKER_SUBMIT_DIRECTORY {submit_directory!r} is neither a folder nor a .tar.gz of the code"
        )
    return path


def _installed_requirements(code_dir: Path) -> list[str]:
    requirements = code_dir / "requirements.txt"
    if not requirements.is_file():
        return []
    from sklearn_server.errors import ModelLoadError
    from sklearn_server.user_requirements import install

    try:
        return [str(path) for path in install(requirements)]
    except ModelLoadError as error:
        raise UserScriptError(f"{requirements}: {error}") from None


def _run(command: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[int, list[str]]:
    """Run ``command``; its stdout and stderr go to ours as they come. SIGTERM and SIGINT are passed on (a
    stopped training job gets SIGTERM). Its exit code and the last lines of its stderr."""
    tail: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL_LINES)
    process = subprocess.Popen(command, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True, errors="replace")
    assert process.stderr is not None
    reader = threading.Thread(target=_tee, args=(process.stderr, tail), daemon=True)
    reader.start()

    def forward(signum: int, _frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        exit_code = process.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    reader.join(timeout=5)
    return exit_code, list(tail)


def _tee(stream: IO[str], tail: collections.deque[str]) -> None:
    for line in stream:
        sys.stderr.write(line)
        sys.stderr.flush()
        tail.append(line.rstrip("\n"))
