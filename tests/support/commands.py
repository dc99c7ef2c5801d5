"""Running a command the way a test wants it: its output in the failure message."""

from __future__ import annotations

import subprocess
from typing import Any


def run(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (found on ``env``'s PATH when given) and fail the test with its output if it fails."""
    completed = subprocess.run(args, capture_output=True, text=True, check=False, timeout=900, **kwargs)
    assert completed.returncode == 0, (
        f"{' '.join(args)} failed:\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
    )
    return completed
