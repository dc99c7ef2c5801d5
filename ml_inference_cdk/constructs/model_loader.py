"""Download model.tar.gz from S3 and unpack it into the model directory, with the standard library only.

This file is a script as much as a module: ``FargateInferenceService`` and the Kubernetes manifests run its
code (``loader_command()``) with ``python3 -c`` in a short-lived init container started from the *inference
image itself*, before the server starts. It must
therefore import nothing but the standard library (the image has Python, numpy and scikit-learn, but no boto3
and no AWS CLI).

Why not the AWS CLI image? ``public.ecr.aws/aws-cli/aws-cli`` would be a second image to pin, patch and pull
from a public registry (private subnets without NAT could not reach it), and it has no ``tar``
(aws/aws-cli#5106). The same image is already pulled for the server, so the loader costs no extra pull and no
extra supply chain. What boto3 would do here is small: read the task role's credentials from the container
credentials endpoint, sign one GET with Signature Version 4, stream the body through :mod:`tarfile`. The
signature is tested against botocore's own signer.

Environment (set by the construct):
    MODEL_S3_BUCKET, MODEL_S3_KEY   the object to fetch (required).
    MODEL_S3_REGION                 the bucket's region. Default: AWS_REGION, then AWS_DEFAULT_REGION.
    MODEL_DIR                       where to unpack. Default: /opt/ml/model.
    SHARED_WRITABLE_DIRS            comma-separated volume mount points to make world-writable (sticky, like
    /tmp). AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL   an S3-compatible endpoint (path-style), as the AWS SDKs
    honour.

Credentials are read the way the AWS SDKs read them: the ECS (or EKS Pod Identity) container credentials
endpoint, else AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import os
import stat
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

ECS_CREDENTIALS_HOST = "http://169.254.170.2"
_EMPTY_PAYLOAD_SHA256 = hashlib.sha256(b"").hexdigest()  # a GET has no body
_UTC = datetime.timezone.utc  # noqa: UP017 - runs on the image's Python, which may predate datetime.UTC
_ATTEMPTS = 4


class LoaderError(Exception):
    """A failure the loader reports in one line and exits non-zero on (the server then never starts)."""


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def credentials_from_environment(env: Mapping[str, str]) -> Credentials:
    """The task role's credentials, from the container credentials endpoint or the environment."""
    relative = env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
    full = env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI")
    if relative or full:
        url = f"{ECS_CREDENTIALS_HOST}{relative}" if relative else str(full)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise LoaderError(f"container credentials URI must be http(s), got {url!r}")
        request = urllib.request.Request(url)  # noqa: S310 - scheme checked above
        token = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        token_file = env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
        if token_file:
            token = Path(token_file).read_text().strip()
        if token:
            request.add_header("Authorization", token)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - scheme checked above
            document = json.load(response)
        return Credentials(document["AccessKeyId"], document["SecretAccessKey"], document.get("Token"))
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN")
        )
    raise LoaderError("no AWS credentials: the task has no task role, and no AWS_ACCESS_KEY_ID is set")


def object_url(bucket: str, key: str, region: str, endpoint: str | None = None) -> str:
    """The URL of ``s3://bucket/key``: virtual-hosted, or path-style for dotted names and custom endpoints."""
    path = urllib.parse.quote(key, safe="/~")
    if endpoint:
        return f"{endpoint.rstrip('/')}/{bucket}/{path}"
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    if "." in bucket:  # a dotted name does not match the wildcard TLS certificate of the virtual host
        return f"https://s3.{region}.{suffix}/{bucket}/{path}"
    return f"https://{bucket}.s3.{region}.{suffix}/{path}"


def signed_headers(url: str, region: str, credentials: Credentials, now: datetime.datetime) -> dict[str, str]:
    """Signature Version 4 headers for an S3 GET of ``url`` (which is already URI-encoded)."""
    parts = urllib.parse.urlsplit(url)
    amz_date = now.astimezone(_UTC).strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": parts.netloc, "x-amz-content-sha256": _EMPTY_PAYLOAD_SHA256, "x-amz-date": amz_date}
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    names = sorted(headers)
    canonical_request = "\n".join(
        [
            "GET",
            parts.path or "/",
            parts.query,
            "".join(f"{name}:{headers[name]}\n" for name in names),
            ";".join(names),
            _EMPTY_PAYLOAD_SHA256,
        ]
    )
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode()).hexdigest()]
    )
    key = f"AWS4{credentials.secret_access_key}".encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    headers["Authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={';'.join(names)}, Signature={signature}"
    )
    del headers["host"]  # urllib sends Host itself, with the same value
    return headers


def unpack(stream: IO[bytes], destination: Path) -> list[str]:
    """Unpack a gzip tar stream into ``destination``: regular files and folders only, none outside it.

    Returns the names unpacked. Modes are normalised (folders 0755, files 0644) so the unprivileged server
    user can read whatever the archive recorded.
    """
    names: list[str] = []
    with tarfile.open(fileobj=stream, mode="r|gz") as archive:
        for member in archive:
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts:
                raise LoaderError(f"model archive member {member.name!r} points outside the model directory")
            if not (member.isfile() or member.isdir()):
                raise LoaderError(f"model archive member {member.name!r} is not a regular file or folder")
            if hasattr(tarfile, "data_filter"):
                archive.extract(member, destination, filter="data")
            else:  # Python without PEP 706: the checks above already rule out what the filter would
                archive.extract(member, destination)
            names.append(member.name)
    for path in [destination, *destination.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return names


def download_and_unpack(
    *,
    bucket: str,
    key: str,
    region: str,
    destination: Path,
    credentials: Credentials,
    endpoint: str | None = None,
) -> list[str]:
    """Fetch ``s3://bucket/key`` and unpack it; retry transient failures, follow a region redirect."""
    last_error: Exception | None = None
    for attempt in range(_ATTEMPTS):
        url = object_url(bucket, key, region, endpoint)
        headers = signed_headers(url, region, credentials, datetime.datetime.now(_UTC))
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - https (or the configured endpoint)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - see above
                return unpack(response, destination)
        except urllib.error.HTTPError as error:
            with error:
                bucket_region = error.headers.get("x-amz-bucket-region")
                detail = error.read(500).decode(errors="replace")
            if bucket_region and bucket_region != region:
                region = bucket_region  # the bucket lives elsewhere: sign for its region and try again
                last_error = error
                continue
            if error.code < 500 and error.code != 429:
                raise LoaderError(f"GET s3://{bucket}/{key} failed: HTTP {error.code} {detail}") from error
            last_error = error
        except (urllib.error.URLError, TimeoutError, ConnectionError, tarfile.ReadError, EOFError) as error:
            last_error = error
        time.sleep(min(2**attempt, 10))
    raise LoaderError(f"GET s3://{bucket}/{key} failed after {_ATTEMPTS} attempts: {last_error}")


def main(env: Mapping[str, str] | None = None) -> int:
    """Entry point of the init container; returns the exit code."""
    env = os.environ if env is None else env
    try:
        bucket, key = env["MODEL_S3_BUCKET"], env["MODEL_S3_KEY"]
    except KeyError as missing:
        print(f"model loader: {missing.args[0]} is not set", file=sys.stderr)
        return 2
    region = (
        env.get("MODEL_S3_REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    destination = Path(env.get("MODEL_DIR", "/opt/ml/model"))
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL") or None
    started = time.monotonic()
    try:
        for shared in filter(None, (part.strip() for part in env.get("SHARED_WRITABLE_DIRS", "").split(","))):
            Path(shared).chmod(0o777 | stat.S_ISVTX)  # a /tmp the unprivileged server user can write
        destination.mkdir(parents=True, exist_ok=True)
        names = download_and_unpack(
            bucket=bucket,
            key=key,
            region=region,
            destination=destination,
            credentials=credentials_from_environment(env),
            endpoint=endpoint,
        )
    except (LoaderError, OSError, KeyError, ValueError) as error:
        print(f"model loader: {error}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - started
    summary = f"{len(names)} entries, {elapsed:.1f} s"
    print(f"model loader: unpacked s3://{bucket}/{key} into {destination} ({summary})")
    return 0


def loader_command(python: str = "python3") -> list[str]:
    """The init container's command: this file's code, docstrings and comments stripped, run by ``python -c``.

    Stripping keeps the task definition and the manifests small, and unchanged when only prose changes.
    """
    import ast

    tree = ast.parse(Path(__file__).read_text())
    tree.body = [
        node
        for node in tree.body
        if not (isinstance(node, ast.FunctionDef) and node.name == "loader_command")
    ]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (
            isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
            and body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
    return [python, "-c", ast.unparse(tree)]


if __name__ == "__main__":
    sys.exit(main())
