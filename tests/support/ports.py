"""Addresses for tests that need a server to be absent, without racing other processes for a port."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def refusing_address() -> Iterator[str]:
    """``http://127.0.0.1:<port>`` where connections are refused, for as long as the ``with`` lasts.

    The port is bound and never listened on: the kernel refuses every connection to it, and no other process
    can take it meanwhile (a port merely found free can be taken by the time the test connects).
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
