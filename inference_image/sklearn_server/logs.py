"""Logging: one format for the supervisor, the workers, the HTTP layer and Python warnings, on stderr.

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


def printable(value: bytes | str, limit: int = 100) -> str:
    """A client's bytes fit for a log line: non-printable characters escaped (no line breaks, so nobody can
    forge a log line), cut at ``limit`` characters."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    shown = repr(text[:limit])[1:-1]
    return shown + "..." if len(text) > limit else shown
