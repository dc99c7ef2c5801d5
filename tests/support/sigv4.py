"""A real HTTP server that checks AWS SigV4 signatures as API Gateway does, with botocore's own signer.

It recomputes the signature of each request it receives from the request itself (method, path, the signed
headers, the body, X-Amz-Date) and the credentials it trusts, and answers 403 when they differ.
"""

from __future__ import annotations

import http.server
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import ReadOnlyCredentials

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<date>\d{8})/(?P<region>[^/]+)/(?P<service>[^/]+)"
    r"/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass
class SigV4Server:
    """Where the server listens, and what it received (headers lower-cased, with the verdict)."""

    url: str
    received: list[dict[str, str]] = field(default_factory=list)


def signature_problem(
    method: str, url: str, headers: dict[str, str], body: bytes, trusted: ReadOnlyCredentials, region: str
) -> str | None:
    """Why the request's SigV4 signature is invalid for ``trusted``, ``region`` and execute-api; or None."""
    parsed = _AUTHORIZATION.match(headers.get("authorization", ""))
    if parsed is None:
        return f"no SigV4 Authorization header: {headers.get('authorization')!r}"
    if (parsed["key"], parsed["region"], parsed["service"]) != (trusted.access_key, region, "execute-api"):
        return f"credential scope {parsed['key']}/{parsed['region']}/{parsed['service']} is not ours"
    signed = parsed["signed"].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={name: headers[name] for name in signed if name != "host"}
    )
    request.context["timestamp"] = headers["x-amz-date"]
    signer = SigV4Auth(trusted, "execute-api", region)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    if expected != parsed["signature"]:
        return "the signature does not match the request"
    return None


@contextmanager
def sigv4_checking_server(trusted: ReadOnlyCredentials, region: str) -> Iterator[SigV4Server]:
    """A threaded HTTP server on 127.0.0.1 that answers ``0`` to correctly signed POSTs, else 403."""
    server_address: list[str] = []
    state = SigV4Server(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            headers = {name.lower(): value for name, value in self.headers.items()}
            problem = signature_problem("POST", server_address[0] + self.path, headers, body, trusted, region)
            state.received.append({**headers, "verdict": problem or "valid"})
            status, answer = (403, json.dumps({"message": problem}).encode()) if problem else (200, b"0\n")
            self.send_response(status)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server_address.append(f"http://127.0.0.1:{httpd.server_address[1]}")
    state.url = server_address[0]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
