"""The Fargate init container's model loader: signing, URLs, safe unpacking, a real run against moto S3."""

from __future__ import annotations

import datetime
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import boto3
import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from moto.server import ThreadedMotoServer

from ml_inference_cdk.constructs import model_loader as loader

NOW = datetime.datetime(2026, 11, 25, 12, 30, 45, tzinfo=datetime.UTC)
CREDENTIALS = loader.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token==")
COMMAND = loader.loader_command(python=sys.executable)
"""Exactly what the init container runs (docstrings and comments stripped), with this interpreter."""


def _botocore_authorization(url: str, region: str, credentials: loader.Credentials) -> str:
    request = AWSRequest(method="GET", url=url)
    signer = S3SigV4Auth(
        BotoCredentials(credentials.access_key_id, credentials.secret_access_key, credentials.session_token),
        "s3",
        region,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
        signer.add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize(
    ("key", "token"),
    [
        ("models/iris/model.tar.gz", "session-token=="),
        ("a key with spaces/ünïcode+plus=(1).tar.gz", None),
    ],
)
def test_the_loader_signs_an_s3_get_exactly_as_botocore_does(key: str, token: str | None) -> None:
    credentials = loader.Credentials(CREDENTIALS.access_key_id, CREDENTIALS.secret_access_key, token)
    url = loader.object_url("model-bucket", key, "eu-west-1")

    headers = loader.signed_headers(url, "eu-west-1", credentials, NOW)

    assert headers["Authorization"] == _botocore_authorization(url, "eu-west-1", credentials)


def test_the_loader_uses_virtual_hosted_urls_for_plain_bucket_names() -> None:
    assert loader.object_url("models", "iris/model.tar.gz", "us-east-1") == (
        "https://models.s3.us-east-1.amazonaws.com/iris/model.tar.gz"
    )


def test_the_loader_uses_path_style_urls_for_dotted_bucket_names() -> None:
    assert loader.object_url("my.models", "model.tar.gz", "us-west-2") == (
        "https://s3.us-west-2.amazonaws.com/my.models/model.tar.gz"
    )


def test_the_loader_uses_the_china_domain_in_china_regions() -> None:
    assert loader.object_url("models", "model.tar.gz", "cn-north-1") == (
        "https://models.s3.cn-north-1.amazonaws.com.cn/model.tar.gz"
    )


def test_the_loader_honours_a_custom_s3_endpoint_with_path_style_urls() -> None:
    assert loader.object_url("models", "m/model.tar.gz", "us-east-1", "http://localhost:5000/") == (
        "http://localhost:5000/models/m/model.tar.gz"
    )


def _archive(members: dict[str, bytes], *, mode: int = 0o600, symlink: str | None = None) -> io.BytesIO:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
        if symlink is not None:
            link = tarfile.TarInfo("link")
            link.type, link.linkname = tarfile.SYMTYPE, symlink
            archive.addfile(link)
    buffer.seek(0)
    return buffer


def test_the_loader_unpacks_files_readable_by_the_unprivileged_server_user(tmp_path: Path) -> None:
    names = loader.unpack(_archive({"model.joblib": b"model", "extra/notes.txt": b"n"}), tmp_path)

    assert sorted(names) == ["extra/notes.txt", "model.joblib"]
    assert (tmp_path / "model.joblib").read_bytes() == b"model"
    assert stat.S_IMODE((tmp_path / "model.joblib").stat().st_mode) == 0o644


def test_the_loader_refuses_a_member_outside_the_model_directory(tmp_path: Path) -> None:
    with pytest.raises(loader.LoaderError, match="outside the model directory"):
        loader.unpack(_archive({"../escape.joblib": b"x"}), tmp_path / "model")


def test_the_loader_refuses_links_in_the_archive(tmp_path: Path) -> None:
    with pytest.raises(loader.LoaderError, match="not a regular file"):
        loader.unpack(_archive({"model.joblib": b"x"}, symlink="/etc/passwd"), tmp_path)


def test_the_loader_reports_missing_credentials_instead_of_signing_anonymously() -> None:
    with pytest.raises(loader.LoaderError, match="no AWS credentials"):
        loader.credentials_from_environment({})


def test_the_loader_reads_task_role_credentials_from_the_ecs_relative_uri(
    monkeypatch: pytest.MonkeyPatch, credentials_endpoint: str
) -> None:
    monkeypatch.setattr(loader, "ECS_CREDENTIALS_HOST", credentials_endpoint.removesuffix("/v1/credentials"))

    credentials = loader.credentials_from_environment(
        {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/id"}
    )

    assert credentials == loader.Credentials("ecs-key", "ecs-secret", "ecs-token")


def test_the_loader_refuses_a_credentials_uri_that_is_not_http() -> None:
    with pytest.raises(loader.LoaderError, match="must be http"):
        loader.credentials_from_environment({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "file:///etc/passwd"})


class _RedirectingS3(BaseHTTPRequestHandler):
    """Answers like S3 for a bucket in eu-west-1: a 301 with x-amz-bucket-region when signed for elsewhere."""

    archive = b""
    regions: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        region = self.headers["Authorization"].split("Credential=")[1].split("/")[2]
        type(self).regions.append(region)
        if region != "eu-west-1":
            self.send_response(301)
            self.send_header("x-amz-bucket-region", "eu-west-1")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.archive)))
        self.end_headers()
        self.wfile.write(self.archive)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


def test_the_loader_signs_again_for_the_bucket_region_when_s3_redirects(tmp_path: Path) -> None:
    _RedirectingS3.archive = _archive({"model.joblib": b"model"}).getvalue()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RedirectingS3)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        names = loader.download_and_unpack(
            bucket="models",
            key="model.tar.gz",
            region="us-east-1",
            destination=tmp_path,
            credentials=CREDENTIALS,
            endpoint=f"http://127.0.0.1:{server.server_address[1]}",
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()

    assert names == ["model.joblib"]
    assert _RedirectingS3.regions == ["us-east-1", "eu-west-1"]


# --- the real script, as the init container runs it, against S3 (moto) and a credentials endpoint -----------


class _CredentialsEndpoint(BaseHTTPRequestHandler):
    """The ECS (``/v2/...``, no token) or EKS Pod Identity (``/v1/...``, a token) credentials endpoint."""

    def do_GET(self) -> None:
        if self.path.startswith("/v2/credentials/"):
            document = {"AccessKeyId": "ecs-key", "SecretAccessKey": "ecs-secret", "Token": "ecs-token"}
        elif self.headers.get("Authorization") == "pod-identity-token":
            document = {"AccessKeyId": "testing", "SecretAccessKey": "testing", "Token": "t"}
        else:
            self.send_error(401)
            return
        body = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="module")
def credentials_endpoint() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _CredentialsEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/credentials"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def model_object(s3_endpoint: str, demo_model_artifact: Path) -> tuple[str, str]:
    s3 = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    s3.create_bucket(Bucket="models")
    s3.upload_file(str(demo_model_artifact), "models", "iris/v1/model.tar.gz")
    return "models", "iris/v1/model.tar.gz"


def _run_loader(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return subprocess.run(
        COMMAND,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_loader_script_downloads_and_unpacks_the_model_with_container_credentials(
    tmp_path: Path, s3_endpoint: str, credentials_endpoint: str, model_object: tuple[str, str]
) -> None:
    bucket, key = model_object
    shared_tmp = tmp_path / "tmp"
    shared_tmp.mkdir(mode=0o755)

    completed = _run_loader(
        {
            "MODEL_S3_BUCKET": bucket,
            "MODEL_S3_KEY": key,
            "MODEL_S3_REGION": "us-east-1",
            "MODEL_DIR": str(tmp_path / "model"),
            "SHARED_WRITABLE_DIRS": str(shared_tmp),
            "AWS_ENDPOINT_URL_S3": s3_endpoint,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": credentials_endpoint,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pod-identity-token",
        }
    )

    assert completed.returncode == 0, completed.stderr
    assert (tmp_path / "model" / "model.joblib").is_file()
    assert (tmp_path / "model" / "model-metadata.json").is_file()
    assert stat.S_IMODE(shared_tmp.stat().st_mode) == 0o1777
    assert "unpacked s3://models/iris/v1/model.tar.gz" in completed.stdout


def test_the_loader_script_exits_non_zero_naming_the_object_it_could_not_read(
    tmp_path: Path, s3_endpoint: str, model_object: tuple[str, str]
) -> None:
    bucket, _ = model_object

    completed = _run_loader(
        {
            "MODEL_S3_BUCKET": bucket,
            "MODEL_S3_KEY": "missing/model.tar.gz",
            "MODEL_DIR": str(tmp_path / "model"),
            "AWS_ENDPOINT_URL_S3": s3_endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )

    assert completed.returncode == 1
    assert "s3://models/missing/model.tar.gz" in completed.stderr
    assert "HTTP 404" in completed.stderr


def test_the_loader_script_exits_non_zero_without_a_model_location(tmp_path: Path) -> None:
    completed = _run_loader({"MODEL_DIR": str(tmp_path)})

    assert completed.returncode == 2
    assert "MODEL_S3_BUCKET" in completed.stderr
