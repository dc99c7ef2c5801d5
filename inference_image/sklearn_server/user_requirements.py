"""``code/requirements.txt``: installed once at start, before the workers fork, or a start-up error that
says why.

The packages go into a fresh directory under the temporary directory (``/tmp``: the root filesystem may be
read-only), which is then put on ``sys.path``. The image's own packages are pinned as pip constraints, so a
requirement can add packages but never replace one the server runs on: asking for another numpy or
scikit-learn is a resolution error, not a silently different server.

Failure is fatal and explained, in the order it is met: no pip in the image; no writable temporary
directory (a read-only root without a tmpfs at /tmp); pip failing, with the reason read from its output (no
network: SageMaker network isolation or a VPC without egress; a requirement that cannot be found; a
conflict with the image's packages). pip's last lines go to the log.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Final

from sklearn_server.errors import ModelLoadError

logger = logging.getLogger(__name__)

INSTALL_TIMEOUT_S: Final = 600.0
"""Bound on the whole install; pip's own --timeout bounds each network read."""
PIP_OUTPUT_LINES: Final = 30
"""Lines of pip's output logged when it fails."""

_NETWORK_SIGNS: Final = (
    "Failed to establish a new connection",
    "Temporary failure in name resolution",
    "Name or service not known",
    "Network is unreachable",
    "ConnectTimeoutError",
    "Connection refused",
    "No route to host",
)
_NOT_FOUND_SIGNS: Final = ("No matching distribution found", "Could not find a version that satisfies")
_CONFLICT_SIGNS: Final = ("ResolutionImpossible", "conflicting dependencies")
_READ_ONLY_SIGNS: Final = ("Read-only file system",)
_VENDOR_ADVICE: Final = (
    "vendor the packages into code/lib/, or ship their wheels in code/ and point requirements.txt at them "
    "(--no-index --find-links ./wheels)"
)


def install(requirements: Path) -> list[Path]:
    """Install ``requirements`` into a new temporary directory; the directories to put on ``sys.path``.

    Raises:
        ModelLoadError: pip is missing, nothing is writable, or pip failed; the message says which.
    """
    if importlib.util.find_spec("pip") is None:
        raise ModelLoadError(f"cannot install {requirements}: this image has no pip; {_VENDOR_ADVICE}")
    try:
        target = Path(tempfile.mkdtemp(prefix="code-requirements-"))
    except OSError as error:
        raise ModelLoadError(
            f"cannot install {requirements}: no writable temporary directory ({error}); the root filesystem "
            "is read-only and /tmp is not writable: mount a tmpfs at /tmp (docker run --tmpfs /tmp, an "
            f"emptyDir on Kubernetes), or {_VENDOR_ADVICE}"
        ) from error
    constraints = target / "image-constraints.txt"
    constraints.write_text(_installed_pins())
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--prefix",
        str(target),
        "--constraint",
        str(constraints),
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--no-warn-script-location",
        "--timeout",
        "15",
        "--retries",
        "2",
        "--requirement",
        str(requirements),
    ]
    logger.info("installing %s into %s", requirements, target)
    started = time.monotonic()
    try:
        completed = subprocess.run(
            command,
            cwd=requirements.parent,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise ModelLoadError(
            f"cannot install {requirements}: pip did not finish within {INSTALL_TIMEOUT_S:g} s "
            f"(a slow or unreachable package index?); {_VENDOR_ADVICE}"
        ) from error
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip()
        tail = "\n".join(output.splitlines()[-PIP_OUTPUT_LINES:])
        logger.error(
            "pip install -r %s failed (exit status %d):\n%s", requirements, completed.returncode, tail
        )
        raise ModelLoadError(f"cannot install {requirements}: {explain_pip_failure(output)}")
    logger.info("installed %s in %.1f s", requirements, time.monotonic() - started)
    return site_directories(target)


def explain_pip_failure(output: str) -> str:
    """Why pip failed, in words a user can act on, from pip's own output."""
    if any(sign in output for sign in _NETWORK_SIGNS):
        return (
            "the package index is unreachable: this container has no network (SageMaker network isolation, "
            f"or a VPC without a NAT gateway or a PyPI mirror); {_VENDOR_ADVICE}"
        )
    if any(sign in output for sign in _READ_ONLY_SIGNS):
        return f"pip met a read-only file system; mount a writable /tmp, or {_VENDOR_ADVICE}"
    if any(sign in output for sign in _CONFLICT_SIGNS):
        return (
            "a requirement conflicts with a package the server itself runs on (the image's versions are "
            f"fixed): {_last_error_line(output)}"
        )
    if any(sign in output for sign in _NOT_FOUND_SIGNS):
        return f"a requirement cannot be found: {_last_error_line(output)}"
    return f"pip failed: {_last_error_line(output)} (the log has pip's last lines)"


def site_directories(prefix: Path) -> list[Path]:
    """The site-packages directories pip created under ``prefix`` (their layout depends on the Python)."""
    found = sorted({*prefix.glob("lib*/python*/site-packages"), *prefix.glob("lib*/python*/dist-packages")})
    return [path for path in found if path.is_dir()]


def _installed_pins() -> str:
    """``name==version`` for every distribution this Python already has: pip may add, never replace."""
    pins: dict[str, str] = {}
    for distribution in importlib.metadata.distributions():  # in sys.path order: the one imported wins
        name = distribution.metadata["Name"]
        if name and name.lower() not in ("pip", "setuptools", "wheel"):
            pins.setdefault(name.lower(), f"{name}=={distribution.version}")
    return "\n".join(sorted(pins.values())) + "\n"


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR:")]
    chosen = errors[-1] if errors else (lines[-1] if lines else "no output")
    return chosen.removeprefix("ERROR:").strip()[:500]
