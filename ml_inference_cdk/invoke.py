"""Call a deployed inference server: a SageMaker endpoint by name, or any HTTP URL (ECS, Kubernetes).

    python -m ml_inference_cdk.invoke --endpoint-name NAME --content-type text/csv --data "5.1,3.5,1.4,0.2"
    python -m ml_inference_cdk.invoke --endpoint-name NAME --inference-component COMPONENT --data ...
    python -m ml_inference_cdk.invoke --url http://my-alb.example.com --file rows.csv
    python -m ml_inference_cdk.invoke --endpoint-name NAME --target-model customer-a.tar.gz --data "..."
    python -m ml_inference_cdk.invoke --url https://abc123.execute-api.eu-west-1.amazonaws.com --sigv4 ...
    ML_INFERENCE_BEARER_TOKEN=... python -m ml_inference_cdk.invoke --url https://inference.example.com ...

A URL is called with the standard library alone; ``--sigv4`` (an API Gateway HTTP API with IAM authorization)
and ``--endpoint-name`` need boto3 (``pip install 'ml-inference-cdk[invoke]'``). Nothing here imports aws_cdk.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
MODELS_PATH = "/models"
"""A multi-model container's routes (contract.MODELS_PATH): ``POST /models/{name}/invoke`` invokes one model,
as SageMaker itself calls the container for ``TargetModel``. (Not imported: this module stays free of
aws_cdk.)"""
MAX_TARGET_MODEL_CHARS = 1024
"""InvokeEndpoint's limit on TargetModel."""
BEARER_TOKEN_VARIABLE = "ML_INFERENCE_BEARER_TOKEN"  # noqa: S105 - the variable's name, not a token
SIGV4_SERVICE = "execute-api"
"""The service name API Gateway checks in a SigV4 signature's credential scope."""
INSTALL_INVOKE_EXTRA = "pip install 'ml-inference-cdk[invoke]'"
_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})
_AUTHENTICATION_HINT = (
    "the server wants authentication: --sigv4 for an API Gateway with IAM authorization, "
    f"--bearer-token (or {BEARER_TOKEN_VARIABLE}) for a load balancer that authenticates with OIDC"
)


class InvokeError(Exception):
    """The call failed; the message says what to check."""


class EndpointNotFoundError(InvokeError):
    """No SageMaker endpoint of that name in this account and region."""


@dataclass(frozen=True)
class InvokeResult:
    body: bytes
    content_type: str
    custom_attributes: str | None = None


def invoke_endpoint(
    endpoint_name: str,
    body: bytes,
    *,
    content_type: str = "text/csv",
    accept: str | None = None,
    custom_attributes: str | None = None,
    target_model: str | None = None,
    retries: int = 3,
    region: str | None = None,
    client: Any = None,
    inference_component: str | None = None,
) -> InvokeResult:
    """Invoke a SageMaker endpoint with the sagemaker-runtime API (retries throttling and 5xx with backoff).

    Args:
        target_model: on a multi-model endpoint, the model to invoke: its key under the endpoint's S3 prefix
            (e.g. ``customer-a.tar.gz``), sent as TargetModel. Default: none (a single-model endpoint).
        region: the endpoint's region. Default: AWS_REGION, then your AWS configuration.
        client: a sagemaker-runtime client to use instead of a new one. Default: a new boto3 client.
        inference_component: the inference component to invoke (InferenceComponentName), on an endpoint
            that hosts inference components. Default: none (the endpoint's model).

    Raises:
        EndpointNotFoundError: no such endpoint (check the name, region and account).
        InvokeError: any other failure (boto3 missing, no credentials or region, an unreachable endpoint, an
            error from SageMaker), in one line.
    """
    try:
        import boto3
        from botocore.config import Config
        from botocore.exceptions import BotoCoreError, ClientError, NoRegionError
    except ImportError:
        raise InvokeError(f"invoking a SageMaker endpoint needs boto3: {INSTALL_INVOKE_EXTRA}") from None
    request: dict[str, Any] = {"EndpointName": endpoint_name, "Body": body, "ContentType": content_type}
    if accept:
        request["Accept"] = accept
    if custom_attributes:
        request["CustomAttributes"] = custom_attributes
    if target_model is not None:
        request["TargetModel"] = _checked_target_model(target_model)
    if inference_component:
        request["InferenceComponentName"] = inference_component
    try:
        if client is None:
            client = boto3.client(
                "sagemaker-runtime",
                region_name=region or os.environ.get("AWS_REGION") or None,
                config=Config(retries={"max_attempts": retries + 1, "mode": "standard"}),
            )
        response = client.invoke_endpoint(**request)
    except ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "not found" in message.lower() and "endpoint" in message.lower():
            raise EndpointNotFoundError(
                f"endpoint {endpoint_name!r} not found in region {client.meta.region_name}: check the name "
                f"(the stack output EndpointName), the region (--region or AWS_REGION) and the account"
            ) from error
        raise InvokeError(f"invoking endpoint {endpoint_name!r} failed: {message}") from error
    except NoRegionError as error:
        raise InvokeError(
            f"invoking endpoint {endpoint_name!r} needs its region: --region or AWS_REGION"
        ) from error
    except BotoCoreError as error:  # no credentials, an unreachable endpoint, a timeout, ...
        raise InvokeError(f"invoking endpoint {endpoint_name!r} failed: {error}") from error
    return InvokeResult(
        body=response["Body"].read(),
        content_type=response.get("ContentType", ""),
        custom_attributes=response.get("CustomAttributes"),
    )


def invoke_url(
    url: str,
    body: bytes,
    *,
    content_type: str = "text/csv",
    accept: str | None = None,
    custom_attributes: str | None = None,
    target_model: str | None = None,
    retries: int = 3,
    timeout: float = 60.0,
    sigv4: bool = False,
    region: str | None = None,
    bearer_token: str | None = None,
) -> InvokeResult:
    """POST to ``<url>/invocations`` (or ``url`` itself when it already ends with /invocations), or, with
    ``target_model``, to ``<url>/models/<target_model>/invoke``.

    Connection failures and 429/502/503/504 are retried with exponential backoff; other 4xx/5xx raise at once
    with the server's JSON error message.

    Args:
        target_model: a container in multi-model mode (SAGEMAKER_MULTI_MODEL=true): the name it loaded the
            model under (``POST /models``); the request goes to ``/models/<name>/invoke``, the route SageMaker
            itself calls for ``TargetModel``. Default: none (``/invocations``).
        sigv4: sign each request with AWS Signature Version 4 for API Gateway (service ``execute-api``), with
            credentials from botocore's default chain (environment, ~/.aws, an instance or task role).
            Default: unsigned.
        region: the region in the signature (with ``sigv4``). Default: AWS_REGION, then your AWS
            configuration.
        bearer_token: sent as ``Authorization: Bearer <token>``, for a load balancer listener that
            authenticates with OIDC; only over https, or to this machine. Default: none.

    Raises:
        InvokeError: the server refused the request, or stayed unreachable after the retries.
    """
    if not url.startswith(("http://", "https://")):
        raise InvokeError(f"url must start with http:// or https://, got {url!r}")
    if sigv4 and bearer_token:
        raise InvokeError("use sigv4 or a bearer token, not both: each is the request's Authorization header")
    target = _invocation_url(url, target_model)
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    if custom_attributes:
        headers[CUSTOM_ATTRIBUTES_HEADER] = custom_attributes
    if bearer_token:
        _refuse_plain_http_for_a_token(target)
        headers["Authorization"] = f"Bearer {bearer_token}"
    signer = _SigV4Signer(region) if sigv4 else None
    last_error = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(0.2 * 2**attempt, 5.0))
        signed = signer.sign(target, body, headers) if signer else headers  # fresh date on every attempt
        request = urllib.request.Request(target, data=body, headers=signed, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return InvokeResult(
                    body=response.read(),
                    content_type=response.headers.get("Content-Type", ""),
                    custom_attributes=response.headers.get(CUSTOM_ATTRIBUTES_HEADER),
                )
        except urllib.error.HTTPError as error:
            detail = error.read().decode(errors="replace")
            last_error = f"HTTP {error.code}: {detail}"
            if error.code in (401, 403) and not (sigv4 or bearer_token):
                raise InvokeError(f"{target} answered {last_error} ({_AUTHENTICATION_HINT})") from error
            if error.code not in _RETRYABLE_STATUS:
                raise InvokeError(f"{target} answered {last_error}") from error
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_error = str(getattr(error, "reason", error))
    raise InvokeError(f"{target} unreachable after {retries + 1} attempts: {last_error}")


def _invocation_url(url: str, target_model: str | None) -> str:
    base = url.rstrip("/")
    if target_model is None:
        return base if base.endswith("/invocations") else base + "/invocations"
    name = _checked_target_model(target_model)
    if "/" in name:
        raise InvokeError(
            f"target_model {name!r}: a container is invoked by the name it loaded the model under "
            f"(POST {MODELS_PATH}), which has no '/'"
        )
    base = base.removesuffix("/invocations")
    return f"{base}{MODELS_PATH}/{urllib.parse.quote(name, safe='')}/invoke"


def _checked_target_model(target_model: str) -> str:
    """TargetModel as InvokeEndpoint accepts it: 1-1024 printable characters, not starting with a space."""
    if (
        not 0 < len(target_model) <= MAX_TARGET_MODEL_CHARS
        or not target_model.isprintable()
        or target_model[0].isspace()
    ):
        raise InvokeError(
            f"target_model must be 1-{MAX_TARGET_MODEL_CHARS} printable characters not starting with a space "
            f"(a model's key under the endpoint's S3 prefix, e.g. customer-a.tar.gz), got {target_model!r}"
        )
    return target_model


def _refuse_plain_http_for_a_token(target: str) -> None:
    """A bearer token over plain HTTP can be read on the way: only to this machine (tests, tunnels)."""
    parts = urllib.parse.urlsplit(target)
    if parts.scheme == "https" or parts.hostname == "localhost":
        return
    try:
        if ipaddress.ip_address(parts.hostname or "").is_loopback:
            return
    except ValueError:
        pass
    raise InvokeError(f"a bearer token is sent only over https:// (or to localhost), got {target}")


class _SigV4Signer:
    """Signs requests for API Gateway with botocore's SigV4 signer and the default credential chain."""

    def __init__(self, region: str | None) -> None:
        try:
            import botocore.session
        except ImportError:
            raise InvokeError(f"sigv4 needs botocore: {INSTALL_INVOKE_EXTRA}") from None
        session = botocore.session.get_session()
        self._region = region or os.environ.get("AWS_REGION") or session.get_config_variable("region")
        if not self._region:
            raise InvokeError("sigv4 needs the API's region: pass --region (region=) or set AWS_REGION")
        credentials = session.get_credentials()
        if credentials is None:
            raise InvokeError(
                "sigv4 found no AWS credentials (environment variables, ~/.aws, an instance or task role)"
            )
        self._credentials = credentials

    def sign(self, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        request = AWSRequest(method="POST", url=url, data=body, headers=headers)
        SigV4Auth(self._credentials.get_frozen_credentials(), SIGV4_SERVICE, self._region).add_auth(request)
        return dict(request.headers.items())


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.endpoint_name and (args.sigv4 or args.bearer_token):
        parser.error("--sigv4 and --bearer-token go with --url (a SageMaker endpoint is always signed)")
    if args.inference_component and not args.endpoint_name:
        parser.error("--inference-component goes with --endpoint-name (an endpoint that hosts it)")
    body = _request_body(parser, args)
    options: dict[str, Any] = {
        "content_type": args.content_type,
        "accept": args.accept,
        "custom_attributes": args.custom_attributes,
        "target_model": args.target_model,
        "retries": args.retries,
        "region": args.region,
    }
    try:
        if args.endpoint_name:
            if args.inference_component:
                options["inference_component"] = args.inference_component
            result = invoke_endpoint(args.endpoint_name, body, **options)
        else:
            bearer_token = args.bearer_token or os.environ.get(BEARER_TOKEN_VARIABLE) or None
            result = invoke_url(args.url, body, sigv4=args.sigv4, bearer_token=bearer_token, **options)
    except InvokeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(result.body.decode(errors="replace"))
    if not result.body.endswith(b"\n"):
        sys.stdout.write("\n")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ml-inference-invoke", description=__doc__.split("\n\n")[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--endpoint-name", help="SageMaker endpoint name (the stack output EndpointName)")
    target.add_argument("--url", help="base URL of the server (ECS load balancer, Kubernetes Service, local)")
    payload = parser.add_mutually_exclusive_group()
    payload.add_argument("--data", help="request body as text")
    payload.add_argument("--file", type=Path, help="file with the request body (default: read stdin)")
    parser.add_argument("--content-type", default="text/csv", help="default: text/csv")
    parser.add_argument("--accept", help="response type; default: the server's default")
    parser.add_argument("--custom-attributes", help=f"sent as {CUSTOM_ATTRIBUTES_HEADER}")
    parser.add_argument(
        "--target-model",
        metavar="MODEL",
        help="a multi-model endpoint's model: with --endpoint-name its key under the endpoint's S3 prefix "
        f"(e.g. customer-a.tar.gz, sent as TargetModel); with --url the name the container loaded it under "
        f"(POST URL{MODELS_PATH}/MODEL/invoke)",
    )
    parser.add_argument("--retries", type=int, default=3, help="default: 3")
    parser.add_argument("--region", help="AWS region of the endpoint or API; default: AWS_REGION")
    parser.add_argument(
        "--inference-component",
        metavar="NAME",
        help="with --endpoint-name: the inference component to invoke (InferenceComponentName)",
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--sigv4",
        action="store_true",
        help="sign the request with AWS SigV4 for an API Gateway HTTP API with IAM authorization (service "
        "execute-api; credentials from the default chain)",
    )
    auth.add_argument(
        "--bearer-token",
        metavar="TOKEN",
        help="send Authorization: Bearer TOKEN, for a load balancer that authenticates with OIDC; "
        f"default: ${BEARER_TOKEN_VARIABLE} (which, unlike the flag, does not show in the process list)",
    )
    return parser


def _request_body(parser: argparse.ArgumentParser, args: argparse.Namespace) -> bytes:
    if args.data is not None:
        return bytes(args.data.encode())
    if args.file is not None:
        if not args.file.is_file():
            parser.error(f"--file: no such file {args.file}")
        return bytes(args.file.read_bytes())
    return sys.stdin.buffer.read()


if __name__ == "__main__":
    raise SystemExit(main())
