"""``train``: SageMaker's training entry (``docker run IMAGE train``), the built-in trainer or script mode.

On success the model is in the model directory (SageMaker tars it into model.tar.gz) and the exit code is 0.
On failure the reason goes to ``output/failure`` (SageMaker shows its first 1024 characters as the job's
FailureReason; a file the user's script wrote itself is kept) and the exit code is non-zero: the script's own
for a failed script, 2 for a configuration SageMaker would not write, 1 otherwise.
"""

from __future__ import annotations

import logging
import os
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

from sklearn_server.config import ENV_LOG_LEVEL, LOG_LEVELS
from sklearn_server.logs import configure_logging
from sklearn_server.training.environment import (
    BASE_DIR,
    ENV_BASE_DIR,
    ENV_OUTPUT_DIR,
    FAILURE_FILE,
    TrainingConfigError,
    TrainingEnvironment,
)

logger = logging.getLogger("sklearn_server.training")

LOG_LEVEL_HP: Final = "sagemaker_container_log_level"
EXIT_FAILED: Final = 1
EXIT_CONFIG: Final = 2


def main(argv: Sequence[str] = ()) -> int:
    """Train as the environment says; the process's exit code."""
    configure_logging(logging.INFO)
    if list(argv) not in ([], ["train"]):
        logger.error(
            "usage: train (no arguments; the configuration is in /opt/ml/input), got %s", " ".join(argv)
        )
        return EXIT_CONFIG
    try:
        env = TrainingEnvironment.from_env()
    except TrainingConfigError as error:
        return _failed(_output_dir(os.environ), f"invalid training configuration: {error}", EXIT_CONFIG)
    configure_logging(_log_level(os.environ.get(ENV_LOG_LEVEL) or env.framework_parameters.get(LOG_LEVEL_HP)))
    began = time.monotonic()
    try:
        if env.program:
            from sklearn_server.training.script_mode import run_script

            logger.info("script mode: %s in %s", env.program, env.submit_directory)
            run_script(env)
        else:
            from sklearn_server.training.builtin import train

            logger.info("built-in trainer; channels: %s", ", ".join(env.channels) or "none")
            train(env)
    except Exception as error:  # every failure is reported, none escapes as a bare traceback
        from sklearn_server.training.script_mode import UserScriptError

        if isinstance(error, UserScriptError):
            return _failed(env.output_dir, str(error), error.exit_code)
        if isinstance(
            error, ValueError | OSError
        ):  # a hyperparameter, channel, column or file the message names
            return _failed(env.output_dir, f"{type(error).__name__}: {error}", EXIT_FAILED)
        detail = "".join(traceback.format_exception(error))
        return _failed(env.output_dir, f"{type(error).__name__}: {error}\n\n{detail}", EXIT_FAILED)
    logger.info("training succeeded in %.1f s; the model is in %s", time.monotonic() - began, env.model_dir)
    return 0


def _failed(output_dir: Path, reason: str, exit_code: int) -> int:
    logger.error("training failed: %s", reason)
    failure = output_dir / FAILURE_FILE
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        if failure.exists():
            logger.info("%s exists (the script wrote it): kept", failure)
        else:
            failure.write_text(reason + "\n")
    except OSError as error:
        logger.error("cannot write %s: %s", failure, error)
    return exit_code


def _log_level(raw: object) -> int:
    """SAGEMAKER_CONTAINER_LOG_LEVEL, else the sagemaker_container_log_level hyperparameter (the SDK's
    ``container_log_level``, a number such as 20): a name or a number; anything else is INFO."""
    text = str(raw).strip().upper() if raw is not None else ""
    if text in LOG_LEVELS:
        return LOG_LEVELS[text]
    if text.isdigit() and 0 <= int(text) <= logging.CRITICAL:
        return int(text)
    if text:
        logger.warning("log level %r is not a level name or a number from 0 to 50: INFO", text)
    return logging.INFO


def _output_dir(environ: Mapping[str, str]) -> Path:
    explicit = environ.get(ENV_OUTPUT_DIR, "").strip()
    return Path(explicit) if explicit else Path(environ.get(ENV_BASE_DIR, "").strip() or BASE_DIR, "output")
