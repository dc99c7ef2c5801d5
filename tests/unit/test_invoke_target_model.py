"""The invoke client names a multi-model endpoint's model: TargetModel for SageMaker, the container's
``/models/{name}/invoke`` route for a URL (a real local HTTP server, and botocore's stubber)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from ml_inference_cdk import invoke
from ml_inference_cdk.constructs import contract
from ml_inference_cdk.invoke import InvokeError, invoke_endpoint, invoke_url, main
from tests.support.scripted_server import ScriptedHandler, scripted_server


@pytest.fixture
def server() -> Iterator[str]:
    with scripted_server() as url:
        yield url


def test_a_target_model_is_invoked_on_the_containers_models_route(server: str) -> None:
    ScriptedHandler.script = [(200, b"1\n")]

    result = invoke_url(server, b"5.1,3.5,1.4,0.2", target_model="iris", content_type="text/csv")

    assert result.body == b"1\n"
    (request,) = ScriptedHandler.received
    assert (request["path"], request["content-type"]) == ("/models/iris/invoke", "text/csv")


def test_a_url_that_names_invocations_still_reaches_the_models_route(server: str) -> None:
    ScriptedHandler.script = [(200, b"0\n")]

    invoke_url(f"{server}/invocations/", b"1,2,3,4", target_model="wine")

    assert ScriptedHandler.received[0]["path"] == "/models/wine/invoke"


def test_a_target_model_name_is_percent_encoded_in_the_path(server: str) -> None:
    ScriptedHandler.script = [(200, b"0\n")]

    invoke_url(server, b"1,2,3,4", target_model="tenant a+b.tar.gz")

    assert ScriptedHandler.received[0]["path"] == "/models/tenant%20a%2Bb.tar.gz/invoke"


def test_without_a_target_model_a_url_is_invoked_on_invocations(server: str) -> None:
    ScriptedHandler.script = [(200, b"0\n")]

    invoke_url(server, b"1,2,3,4")

    assert ScriptedHandler.received[0]["path"] == "/invocations"


def test_a_container_model_name_with_a_slash_is_refused_before_any_request(server: str) -> None:
    with pytest.raises(InvokeError, match=r"target_model 'a/b.tar.gz': .*which has no '/'"):
        invoke_url(server, b"1,2,3,4", target_model="a/b.tar.gz")

    assert ScriptedHandler.received == []


@pytest.mark.parametrize("target_model", ["", " leading-space", "tab\there", "x" * 1025])
def test_a_target_model_sagemaker_would_refuse_is_refused_naming_what_is_allowed(target_model: str) -> None:
    with pytest.raises(InvokeError, match=r"target_model must be 1-1024 printable characters"):
        invoke_endpoint("tenants", b"1", target_model=target_model, client=object())


def _client() -> object:
    return boto3.client(
        "sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_invoke_endpoint_sends_the_target_model_as_target_model() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(b"2\n"), 2), "ContentType": "text/csv"},
            expected_params={
                "EndpointName": "tenants",
                "Body": b"1,2,3,4",
                "ContentType": "text/csv",
                "TargetModel": "customer-a/model.tar.gz",
            },
        )
        result = invoke_endpoint("tenants", b"1,2,3,4", target_model="customer-a/model.tar.gz", client=client)

    assert result.body == b"2\n"


def test_invoke_endpoint_without_a_target_model_sends_none() -> None:
    client = _client()
    with Stubber(client) as stub:
        stub.add_response(
            "invoke_endpoint",
            {"Body": StreamingBody(io.BytesIO(b"0\n"), 2), "ContentType": "text/csv"},
            expected_params={"EndpointName": "single", "Body": b"1", "ContentType": "text/csv"},
        )
        invoke_endpoint("single", b"1", client=client)


def test_the_cli_takes_a_target_model(server: str, capsys: pytest.CaptureFixture[str]) -> None:
    ScriptedHandler.script = [(200, b"2")]

    assert main(["--url", server, "--target-model", "iris", "--data", "7.7,3.0,6.1,2.3"]) == 0

    assert capsys.readouterr().out == "2\n"
    assert ScriptedHandler.received[0]["path"] == "/models/iris/invoke"


def test_the_cli_reports_a_refused_target_model_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", "http://127.0.0.1:1", "--target-model", "a/b", "--data", "1"]) == 1

    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("error: target_model 'a/b': ")


def test_the_client_and_the_container_contract_name_the_same_models_route() -> None:
    assert invoke.MODELS_PATH == contract.MODELS_PATH
