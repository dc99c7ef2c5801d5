"""The demo's children start and stop as whole sessions, also when Ctrl-C comes while one is starting."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.processes import started_session


def processes_with(marker: str) -> list[int]:
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            if marker.encode() in (process / "cmdline").read_bytes():
                found.append(int(process.name))
        except OSError:
            continue
    return found


@pytest.fixture
def marker() -> Iterator[str]:
    """A word only this test's child has on its command line; any such child left over is killed after."""
    word = f"child-{uuid.uuid4().hex}"
    yield word
    for pid in processes_with(word):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def sleeper(marker: str) -> list[str]:
    return [sys.executable, "-c", "import time; time.sleep(60)", marker]


def test_a_session_is_stopped_when_the_with_block_ends(marker: str) -> None:
    with started_session(sleeper(marker)) as process:
        # Just after exec the kernel may not show the new command line yet.
        deadline = time.monotonic() + 10
        while processes_with(marker) != [process.pid] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert processes_with(marker) == [process.pid]
    assert processes_with(marker) == []


def test_ctrl_c_while_the_child_starts_stops_that_child(marker: str) -> None:
    def interrupt_the_parent() -> None:  # runs in the child between fork and exec: the parent is in Popen
        os.kill(os.getppid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt), started_session(sleeper(marker), preexec_fn=interrupt_the_parent):
        pytest.fail("the interrupt is delivered before the block runs")

    assert processes_with(marker) == []
