"""The built image honours the SageMaker container contract and the platform's hardening expectations.

HTTP behaviour is the contract suite's job (tests/server, parametrized over this image too); these tests cover
what only the image can get wrong: user, filesystem, entrypoint, label, port, signals, build secrets.
"""

from __future__ import annotations

import http.client
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.server.container_target import (
    MARKER_CA,
    Container,
    base_image,
    build_ca_bundle,
    image_inspect,
    podman,
    podman_environment,
    started_container,
)

pytestmark = pytest.mark.container

IRIS_ROW = "5.1,3.5,1.4,0.2"
_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----\s+(.+?)\s+-----END CERTIFICATE-----", re.DOTALL)


def run_image(image: str, *args: str, entrypoint: str | None = None) -> subprocess.CompletedProcess[str]:
    """``podman run --rm`` the image, read-only as in production, and wait for it to exit."""
    override = [f"--entrypoint={entrypoint}"] if entrypoint else []
    return podman("run", "--rm", "--read-only", "--tmpfs", "/tmp", *override, image, *args, check=False)


def post_csv(container: Container, body: str) -> tuple[int, str]:
    host, port = container.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.request("POST", "/invocations", body, {"Content-Type": "text/csv", "Accept": "text/csv"})
    response = connection.getresponse()
    result = response.status, response.read().decode()
    connection.close()
    return result


def test_image_runs_as_a_non_root_user(image: str) -> None:
    completed = run_image(image, "-u", entrypoint="id")

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip() != "0"


def test_image_declares_that_it_accepts_sagemaker_bind_to_port(image: str) -> None:
    labels = image_inspect(image)["Config"]["Labels"]

    assert labels["com.amazonaws.sagemaker.capabilities.accept-bind-to-port"] == "true"


def test_image_declares_that_it_serves_multi_model_endpoints(image: str) -> None:
    labels = image_inspect(image)["Config"]["Labels"]

    assert labels["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"


def test_image_serves_predictions_from_a_read_only_root_filesystem(image: str, model_dir: Path) -> None:
    with started_container(model_dir, {}) as container:
        status, body = post_csv(container, f"{IRIS_ROW}\n{IRIS_ROW}\n")
        write = podman("exec", container.id, "touch", "/opt/program/written", check=False)

    assert status == 200
    assert len(body.splitlines()) == 2
    assert write.returncode != 0
    assert "Read-only file system" in write.stderr


def test_image_listens_on_sagemaker_bind_to_port(image: str, model_dir: Path) -> None:
    # Only port 9090 is published: a server still on 8080 would never answer /ping.
    with started_container(model_dir, {"SAGEMAKER_BIND_TO_PORT": "9090"}) as container:
        status, _ = post_csv(container, IRIS_ROW)

    assert status == 200


def test_train_without_a_training_job_mounted_exits_non_zero_saying_why(image: str) -> None:
    # tests/container/test_training.py runs real training jobs; here /opt/ml is not even writable.
    completed = run_image(image, "train")

    assert completed.returncode == 1
    assert "hyperparameter 'estimator' is required" in completed.stderr
    assert "cannot write /opt/ml/output/failure" in completed.stderr


def test_podman_stop_ends_the_server_with_sigterm_before_sigkill(image: str, model_dir: Path) -> None:
    # SageMaker sends SIGTERM, then SIGKILL 30 s later. Exit code 0 means the server shut itself down;
    # 137 would mean SIGKILL had to end it.
    with started_container(model_dir, {}) as container:
        stopped = podman("stop", "--time", "30", container.id, timeout=60)
        state = podman("container", "inspect", "--format", "{{.State.ExitCode}}", container.id)

    assert stopped.returncode == 0
    assert state.stdout.strip() == "0"


def test_image_keeps_no_ca_certificate_of_the_build_host(image: str) -> None:
    marker = certificates(MARKER_CA.read_bytes())
    host_only = certificates(build_ca_bundle().read_bytes()) - certificates(base_bundle())
    in_image = set(certificates_in_image(image))

    assert marker <= host_only  # the build was given the marker...
    assert not host_only & in_image  # ...and kept none of what it was given
    environment = "\n".join(image_inspect(image)["Config"]["Env"])
    assert "PIP_CERT" not in environment
    assert "ca_bundle" not in environment


def certificates(pem: bytes) -> set[bytes]:
    """The base64 bodies of every certificate in a PEM text, whitespace removed."""
    return {re.sub(rb"\s+", b"", body) for body in _PEM_CERTIFICATE.findall(pem)}


def base_bundle() -> bytes:
    """The CA bundle the base image ships (Debian's ca-certificates): certificates the image may contain."""
    completed = podman(
        "run", "--rm", "--entrypoint=cat", base_image(), "/etc/ssl/certs/ca-certificates.crt", check=False
    )
    return completed.stdout.encode()


def certificates_in_image(image: str) -> Iterator[bytes]:
    """Every PEM certificate in any file of the image's filesystem."""
    container_id = podman("create", image).stdout.strip()
    try:
        with subprocess.Popen(
            ["podman", "export", container_id], stdout=subprocess.PIPE, env=podman_environment()
        ) as export:
            assert export.stdout is not None
            with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
                for member in archive:
                    extracted = archive.extractfile(member) if member.isfile() else None
                    if extracted is not None:
                        content = extracted.read()
                        if b"-----BEGIN CERTIFICATE-----" in content:
                            yield from certificates(content)
    finally:
        podman("rm", "--force", container_id, check=False)


def test_the_default_flavour_stays_at_or_under_its_size_target() -> None:
    from tests.container.conftest import IMAGE_SIZE_TARGET_MB
    from tests.server.container_target import DEFAULT_FLAVOUR, built_image

    size_mb = image_inspect(built_image(DEFAULT_FLAVOUR))["Size"] / 1e6

    assert size_mb <= IMAGE_SIZE_TARGET_MB, f"the {DEFAULT_FLAVOUR} image is {size_mb:.0f} MB"
