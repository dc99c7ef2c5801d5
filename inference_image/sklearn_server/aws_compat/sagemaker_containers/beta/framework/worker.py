"""``worker.Response``: what an ``output_fn`` written for AWS's scikit-learn container may return.

AWS's is a Flask response; the server reads its body, status and mimetype. ``accept`` is accepted and
ignored, as AWS's own (deprecated) argument is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from . import content_types


class Response:
    """A response body with its status and media type (default: application/json)."""

    default_mimetype = content_types.JSON

    def __init__(
        self,
        response: str | bytes | Iterable[str | bytes] | None = None,
        accept: str | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        mimetype: str | None = None,
        direct_passthrough: bool = False,
        **_ignored: Any,
    ) -> None:
        self.response = response
        self.status_code = int(status)
        self.headers = dict(headers or {})
        self.mimetype = mimetype or self.headers.get("Content-Type") or self.default_mimetype

    @property
    def content_type(self) -> str:
        return self.mimetype

    def get_data(self) -> bytes:
        """The body as bytes (str parts are UTF-8 encoded)."""
        parts = self.response
        if parts is None:
            return b""
        if isinstance(parts, str | bytes):
            parts = [parts]
        return b"".join(part.encode() if isinstance(part, str) else bytes(part) for part in parts)
