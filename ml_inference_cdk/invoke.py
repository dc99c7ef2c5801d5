"""Call a deployed inference server: a SageMaker endpoint by name, or any HTTP URL (ECS, Kubernetes).

    python -m ml_inference_cdk.invoke --endpoint-name NAME --content-type text/csv --data "5.1,3.5,1.4,0.2"
    python -m ml_inference_cdk.invoke --url http://my-alb.example.com --file rows.csv

The SageMaker path needs boto3 (``pip install ml-inference-cdk[invoke]``); the URL path needs only the
standard library.
"""

from __future__ import annotations

import argparse
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
_RETRYABLE_STATUS = frozenset({429, 502, 503, 504})


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
    retries: int = 3,
    client: Any = None,
) -> InvokeResult:
    """Invoke a SageMaker endpoint with the sagemaker-runtime API (retries throttling and 5xx with backoff).

    Raises:
        EndpointNotFoundError: no such endpoint (check the name, region and account).
        InvokeError: any other failure, with SageMaker's message.
    """
    if client is None:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "sagemaker-runtime", config=Config(retries={"max_attempts": retries + 1, "mode": "standard"})
        )
    request: dict[str, Any] = {"EndpointName": endpoint_name, "Body": body, "ContentType": content_type}
    if accept:
        request["Accept"] = accept
    if custom_attributes:
        request["CustomAttributes"] = custom_attributes
    try:
        response = client.invoke_endpoint(**request)
    except client.exceptions.ClientError as error:
        message = error.response.get("Error", {}).get("Message", str(error))
        if "not found" in message.lower() and "endpoint" in message.lower():
            region = client.meta.region_name
            raise EndpointNotFoundError(
                f"endpoint {endpoint_name!r} not found in region {region}: check the name "
                f"(the stack output EndpointName), the region (AWS_REGION) and the account"
            ) from error
        raise InvokeError(f"invoking endpoint {endpoint_name!r} failed: {message}") from error
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
    retries: int = 3,
    timeout: float = 60.0,
) -> InvokeResult:
    """POST to ``<url>/invocations`` (or ``url`` itself when it already ends with /invocations).

    Connection failures and 429/502/503/504 are retried with exponential backoff; other 4xx/5xx raise at once
    with the server's JSON error message.

    Raises:
        InvokeError: the server refused the request, or stayed unreachable after the retries.
    """
    if not url.startswith(("http://", "https://")):
        raise InvokeError(f"url must start with http:// or https://, got {url!r}")
    target = url if url.rstrip("/").endswith("/invocations") else url.rstrip("/") + "/invocations"
    headers = {"Content-Type": content_type}
    if accept:
        headers["Accept"] = accept
    if custom_attributes:
        headers[CUSTOM_ATTRIBUTES_HEADER] = custom_attributes
    last_error = ""
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(0.2 * 2**attempt, 5.0))
        request = urllib.request.Request(target, data=body, headers=headers, method="POST")  # noqa: S310
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
            if error.code not in _RETRYABLE_STATUS:
                raise InvokeError(f"{target} answered {last_error}") from error
        except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
            last_error = str(getattr(error, "reason", error))
    raise InvokeError(f"{target} unreachable after {retries + 1} attempts: {last_error}")


def main(argv: Sequence[str] | None = None) -> int:
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
    parser.add_argument("--retries", type=int, default=3, help="default: 3")
    args = parser.parse_args(argv)

    if args.data is not None:
        body = args.data.encode()
    elif args.file is not None:
        if not args.file.is_file():
            parser.error(f"--file: no such file {args.file}")
        body = args.file.read_bytes()
    else:
        body = sys.stdin.buffer.read()
    options: dict[str, Any] = {
        "content_type": args.content_type,
        "accept": args.accept,
        "custom_attributes": args.custom_attributes,
        "retries": args.retries,
    }
    try:
        if args.endpoint_name:
            result = invoke_endpoint(args.endpoint_name, body, **options)
        else:
            result = invoke_url(args.url, body, **options)
    except InvokeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(result.body.decode(errors="replace"))
    if not result.body.endswith(b"\n"):
        sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
