"""Invoking one inference component: InferenceComponentName on the wire, from the function and the CLI."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from ml_inference_cdk.invoke import invoke_endpoint, main
from tests.support.scripted_server import ScriptedHandler, scripted_server

COMPONENT_HEADER = "x-amzn-sagemaker-inference-component"
"""The header botocore sends InferenceComponentName in (sagemaker-runtime's REST protocol)."""


@pytest.fixture
def runtime(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    """A real HTTP server standing in for sagemaker-runtime, and dummy credentials for botocore."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with scripted_server() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url


def test_invoke_endpoint_names_the_inference_component() -> None:
    client = boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(b"0\n"), 2), "ContentType": "text/csv"},
            {
                "EndpointName": "pool",
                "Body": b"5.1,3.5,1.4,0.2",
                "ContentType": "text/csv",
                "InferenceComponentName": "iris-v1",
            },
        )
        result = invoke_endpoint("pool", b"5.1,3.5,1.4,0.2", client=client, inference_component="iris-v1")
    assert result.body == b"0\n"


def test_the_cli_sends_the_inference_component_to_the_endpoint(
    runtime: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ScriptedHandler.script = [(200, b"0\n")]

    code = main(["--endpoint-name", "pool", "--inference-component", "iris-v1", "--data", "5.1,3.5,1.4,0.2"])

    assert code == 0
    assert capsys.readouterr().out == "0\n"
    (request,) = ScriptedHandler.received
    assert request["path"] == "/endpoints/pool/invocations"
    assert request[COMPONENT_HEADER] == "iris-v1"


def test_without_the_option_no_inference_component_is_sent(runtime: str) -> None:
    ScriptedHandler.script = [(200, b"0\n")]

    assert main(["--endpoint-name", "pool", "--data", "5.1,3.5,1.4,0.2"]) == 0

    (request,) = ScriptedHandler.received
    assert COMPONENT_HEADER not in request


def test_the_cli_refuses_an_inference_component_with_a_url(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--url", "http://127.0.0.1:1", "--inference-component", "iris-v1", "--data", "1"])

    assert exited.value.code == 2
    assert "--inference-component goes with --endpoint-name" in capsys.readouterr().err
