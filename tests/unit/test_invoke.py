"""The invoke client: retries, clear errors, headers; a real local HTTP server, and botocore's stubber."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from ml_inference_cdk.invoke import EndpointNotFoundError, InvokeError, invoke_endpoint, invoke_url, main
from tests.support.ports import refusing_address
from tests.support.scripted_server import ScriptedHandler, scripted_server


@pytest.fixture
def server() -> Iterator[str]:
    with scripted_server() as url:
        yield url


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


@pytest.fixture
def local_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Dummy credentials and a region, and no AWS configuration of this machine."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_the_cli_without_boto3_says_in_one_line_to_install_the_invoke_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # as `import boto3` fails where it is not installed
    assert main(["--endpoint-name", "my-endpoint", "--data", "5.1,3.5,1.4,0.2"]) == 1
    assert capsys.readouterr().err == (
        "error: invoking a SageMaker endpoint needs boto3: pip install 'ml-inference-cdk[invoke]'\n"
    )


@pytest.mark.usefixtures("local_credentials")
def test_an_unreachable_sagemaker_endpoint_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with refusing_address() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        assert main(["--endpoint-name", "my-endpoint", "--data", "5.1,3.5,1.4,0.2", "--retries", "0"]) == 1
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(
        "error: invoking endpoint 'my-endpoint' failed: Could not connect to the endpoint URL"
    )


@pytest.mark.usefixtures("local_credentials")
def test_a_sagemaker_call_without_a_region_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    assert main(["--endpoint-name", "my-endpoint", "--data", "1"]) == 1
    assert capsys.readouterr().err == (
        "error: invoking endpoint 'my-endpoint' needs its region: --region or AWS_REGION\n"
    )


def test_invoking_a_url_imports_neither_aws_cdk_nor_boto3() -> None:
    with refusing_address() as url:
        completed = subprocess.run(
            [
                sys.executable,
                "-X",
                "importtime",
                "-m",
                "ml_inference_cdk.invoke",
                "--url",
                url,
                "--data",
                "x",
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
    lines = [line for line in completed.stderr.splitlines() if line.startswith("import time:")]
    imported = {line.rsplit("|", 1)[-1].strip() for line in lines}
    heavy = {"aws_cdk", "jsii", "boto3", "botocore"}
    assert completed.returncode == 1
    assert "ml_inference_cdk" in imported
    assert {name for name in imported if name.split(".")[0] in heavy} == set()
