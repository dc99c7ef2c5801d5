"""Logging: one format for the supervisor, the workers, uvicorn and Python warnings, on stderr.

SageMaker, ECS and Kubernetes all collect the container's stderr; a line carries the worker's pid so the
lines of concurrent workers can be told apart.
"""

from __future__ import annotations

import logging
import sys
from typing import Final

FORMAT: Final = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure_logging(level: int) -> None:
    """Send every logger's records at ``level`` or above to stderr, in one format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
