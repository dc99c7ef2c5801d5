"""The invoke client: retries, clear errors, headers; a real local HTTP server, and botocore's stubber."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import ClassVar

import boto3
import pytest
from botocore.stub import Stubber

from ml_inference_cdk.invoke import EndpointNotFoundError, InvokeError, invoke_endpoint, invoke_url, main
from tests.support.ports import refusing_address


class ScriptedHandler(http.server.BaseHTTPRequestHandler):
    """Answers POSTs with the scripted (status, body) pairs in order, and records what it received."""

    script: ClassVar[list[tuple[int, bytes]]] = []
    received: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append({"path": self.path, **{k.lower(): v for k, v in self.headers.items()}})
        status, body = type(self).script.pop(0)
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if status >= 400 else "text/csv")
        if "X-Amzn-SageMaker-Custom-Attributes" in self.headers:
            self.send_header(
                "X-Amzn-SageMaker-Custom-Attributes", self.headers["X-Amzn-SageMaker-Custom-Attributes"]
            )
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    ScriptedHandler.script = []
    ScriptedHandler.received = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ScriptedHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_invoke_url_posts_to_invocations_with_the_content_type_and_accept(server: str) -> None:
    ScriptedHandler.script = [(200, b"0\n")]
    result = invoke_url(server, b"1,2,3,4", content_type="text/csv", accept="text/csv")
    assert result.body == b"0\n"
    (request,) = ScriptedHandler.received
    assert (request["path"], request["content-type"], request["accept"]) == (
        "/invocations",
        "text/csv",
        "text/csv",
    )


def test_invoke_url_sends_and_returns_custom_attributes(server: str) -> None:
    ScriptedHandler.script = [(200, b"0\n")]
    result = invoke_url(server, b"1,2,3,4", custom_attributes="trace=abc")
    assert result.custom_attributes == "trace=abc"


def test_invoke_url_retries_a_503_then_succeeds(server: str) -> None:
    ScriptedHandler.script = [(503, b'{"error": "loading"}'), (200, b"1\n")]
    assert invoke_url(server, b"1,2,3,4", retries=2).body == b"1\n"
    assert len(ScriptedHandler.received) == 2


def test_invoke_url_does_not_retry_a_400_and_shows_the_servers_message(server: str) -> None:
    ScriptedHandler.script = [(400, b'{"error": "expected 4 features, got 3"}')]
    with pytest.raises(InvokeError, match=r"HTTP 400.*expected 4 features, got 3"):
        invoke_url(server, b"1,2,3", retries=3)
    assert len(ScriptedHandler.received) == 1


def test_invoke_url_gives_up_on_an_unreachable_server_with_a_clear_error() -> None:
    with refusing_address() as url, pytest.raises(InvokeError, match="unreachable after 2 attempts"):
        invoke_url(url, b"1,2,3,4", retries=1)


def test_invoke_url_rejects_a_url_without_a_scheme() -> None:
    with pytest.raises(InvokeError, match="must start with http:// or https://"):
        invoke_url("localhost:8080", b"1")


def test_invoke_endpoint_names_a_missing_endpoint_the_region_and_what_to_check() -> None:
    client = boto3.client(
        "sagemaker-runtime", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ValidationError",
            service_message="Endpoint missing of account 123456789012 not found.",
            http_status_code=400,
        )
        with pytest.raises(
            EndpointNotFoundError, match=r"'missing' not found in region eu-west-1.*EndpointName"
        ):
            invoke_endpoint("missing", b"1,2,3,4", client=client)


def test_invoke_endpoint_passes_sagemakers_other_errors_through() -> None:
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_client_error(
            "invoke_endpoint",
            service_error_code="ModelError",
            service_message="Received client error (400) from primary with message expected 4 features",
            http_status_code=424,
        )
        with pytest.raises(InvokeError, match="expected 4 features"):
            invoke_endpoint("present", b"1,2,3", client=client)


def test_the_cli_exits_1_with_the_error_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    with refusing_address() as url:
        assert main(["--url", url, "--data", "1,2,3,4", "--retries", "0"]) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_the_cli_prints_the_response_body(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    ScriptedHandler.script = [(200, b"2")]
    assert main(["--url", server, "--data", "7.7,3.0,6.1,2.3"]) == 0
    assert capsys.readouterr().out == "2\n"


def test_the_cli_rejects_a_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--url", "http://127.0.0.1:1", "--file", "/nonexistent/rows.csv"])
    assert exited.value.code == 2
    assert "no such file" in capsys.readouterr().err
