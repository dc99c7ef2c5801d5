"""The invoke client authenticates as each exposure asks: SigV4 for API Gateway, a bearer token for OIDC.

SigV4 is checked by a real HTTP server that recomputes each signature with botocore's own signer
(tests/support/sigv4.py), as API Gateway would; nothing of the client is mocked.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from botocore.credentials import ReadOnlyCredentials

from ml_inference_cdk.invoke import InvokeError, invoke_url, main
from tests.support.scripted_server import ScriptedHandler, scripted_server
from tests.support.sigv4 import SigV4Server, sigv4_checking_server

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "session-token-example"
REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def default_chain_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """botocore's default chain finds exactly these credentials, and no region, profile or instance role."""
    for name in ("AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("ML_INFERENCE_BEARER_TOKEN", raising=False)


@pytest.fixture
def server() -> Iterator[str]:
    with scripted_server() as url:
        yield url


@pytest.fixture
def api() -> Iterator[SigV4Server]:
    """An API Gateway stand-in that trusts the credentials of the default chain above."""
    with sigv4_checking_server(ReadOnlyCredentials(ACCESS_KEY, SECRET_KEY, SESSION_TOKEN), REGION) as api:
        yield api


def test_a_sigv4_request_carries_a_signature_the_api_verifies(api: SigV4Server) -> None:
    result = invoke_url(api.url, b"5.1,3.5,1.4,0.2", sigv4=True, region=REGION, retries=0)
    assert result.body == b"0\n"
    assert [request["verdict"] for request in api.received] == ["valid"]


def test_sigv4_signs_for_execute_api_in_the_region_with_the_default_chains_key(api: SigV4Server) -> None:
    invoke_url(api.url, b"5.1,3.5,1.4,0.2", sigv4=True, region=REGION, retries=0)
    (request,) = api.received
    assert f"Credential={ACCESS_KEY}/" in request["authorization"]
    assert f"/{REGION}/execute-api/aws4_request," in request["authorization"]


def test_sigv4_signs_the_host_date_content_type_and_sends_the_session_token(api: SigV4Server) -> None:
    invoke_url(api.url, b"5.1,3.5,1.4,0.2", content_type="text/csv", sigv4=True, region=REGION, retries=0)
    (request,) = api.received
    signed = request["authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    assert {"host", "x-amz-date", "content-type", "x-amz-security-token"} <= set(signed)
    assert request["x-amz-security-token"] == SESSION_TOKEN


def test_a_request_signed_with_other_credentials_is_refused() -> None:
    with (
        sigv4_checking_server(ReadOnlyCredentials(ACCESS_KEY, "another-secret", None), REGION) as api,
        pytest.raises(InvokeError, match=r"HTTP 403.*signature does not match"),
    ):
        invoke_url(api.url, b"5.1,3.5,1.4,0.2", sigv4=True, region=REGION, retries=0)


def test_sigv4_takes_the_region_from_aws_region(api: SigV4Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", REGION)
    invoke_url(api.url, b"5.1,3.5,1.4,0.2", sigv4=True, retries=0)
    assert [request["verdict"] for request in api.received] == ["valid"]


def test_the_cli_signs_with_sigv4_and_region(api: SigV4Server, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", api.url, "--data", "5.1,3.5,1.4,0.2", "--sigv4", "--region", REGION]) == 0
    assert capsys.readouterr().out == "0\n"


def test_sigv4_without_a_region_says_where_a_region_comes_from() -> None:
    with pytest.raises(InvokeError, match=r"sigv4 needs the API's region: pass --region .*AWS_REGION"):
        invoke_url("https://abc123.execute-api.eu-west-1.amazonaws.com", b"1", sigv4=True)


def test_sigv4_without_credentials_says_where_credentials_come_from(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    with pytest.raises(InvokeError, match=r"sigv4 found no AWS credentials \(environment variables, ~/.aws"):
        invoke_url("https://abc123.execute-api.eu-west-1.amazonaws.com", b"1", sigv4=True, region=REGION)


def test_sigv4_without_botocore_says_to_install_the_invoke_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for module in [name for name in sys.modules if name == "botocore" or name.startswith("botocore.")]:
        monkeypatch.delitem(sys.modules, module)
    monkeypatch.setitem(sys.modules, "botocore", None)  # as `import botocore` fails where it is missing
    with pytest.raises(InvokeError, match=r"sigv4 needs botocore: pip install 'ml-inference-cdk\[invoke\]'"):
        invoke_url("https://abc123.execute-api.eu-west-1.amazonaws.com", b"1", sigv4=True, region=REGION)


def test_the_bearer_token_is_sent_as_the_authorization_header(server: str) -> None:
    ScriptedHandler.script = [(200, b"0\n")]
    invoke_url(server, b"5.1,3.5,1.4,0.2", bearer_token="eyJhbGciOi.example", retries=0)
    (request,) = ScriptedHandler.received
    assert request["authorization"] == "Bearer eyJhbGciOi.example"


def test_the_cli_takes_the_bearer_token_from_ml_inference_bearer_token(
    server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ScriptedHandler.script = [(200, b"0\n")]
    monkeypatch.setenv("ML_INFERENCE_BEARER_TOKEN", "from-the-environment")
    assert main(["--url", server, "--data", "5.1,3.5,1.4,0.2"]) == 0
    (request,) = ScriptedHandler.received
    assert request["authorization"] == "Bearer from-the-environment"


def test_the_bearer_token_flag_wins_over_the_environment(
    server: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ScriptedHandler.script = [(200, b"0\n")]
    monkeypatch.setenv("ML_INFERENCE_BEARER_TOKEN", "from-the-environment")
    assert main(["--url", server, "--data", "1", "--bearer-token", "from-the-flag"]) == 0
    assert ScriptedHandler.received[0]["authorization"] == "Bearer from-the-flag"


def test_a_bearer_token_is_never_sent_over_plain_http_to_another_host() -> None:
    with pytest.raises(InvokeError, match=r"a bearer token is sent only over https:// \(or to localhost\)"):
        invoke_url("http://inference.example.com", b"1", bearer_token="secret")


def test_sigv4_and_a_bearer_token_together_are_refused() -> None:
    with pytest.raises(InvokeError, match="use sigv4 or a bearer token, not both"):
        invoke_url("https://inference.example.com", b"1", sigv4=True, bearer_token="secret")


def test_the_cli_refuses_sigv4_and_a_bearer_token_together(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--url", "https://x.example.com", "--data", "1", "--sigv4", "--bearer-token", "t"])
    assert exited.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_the_cli_refuses_sigv4_for_a_sagemaker_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--endpoint-name", "my-endpoint", "--data", "1", "--sigv4"])
    assert exited.value.code == 2
    assert "--sigv4 and --bearer-token go with --url" in capsys.readouterr().err


def test_a_401_to_an_unauthenticated_call_names_both_ways_to_authenticate(server: str) -> None:
    ScriptedHandler.script = [(401, b'{"message": "Unauthorized"}')]
    with pytest.raises(InvokeError, match=r"HTTP 401.*--sigv4 .*--bearer-token \(or ML_INFERENCE_BEARER"):
        invoke_url(server, b"1", retries=0)
