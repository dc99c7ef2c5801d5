"""The main job, locally: the real CDK CLI deploys into a moto server; the real container serves the model.

The same flow as `make demo` (scripts/demo.py, scripts/local_aws.py), asserted.
"""

from __future__ import annotations

import base64
import io
import json
import tarfile
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest

from ml_inference_cdk.invoke import invoke_endpoint, invoke_url, main
from scripts.local_aws import LOCAL_IMAGE, LocalAws, bootstrap, deploy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("local-deploy")


@pytest.fixture(scope="module")
def outputs(local_aws: LocalAws, workdir: Path, demo_model_artifact: Path) -> dict[str, dict[str, str]]:
    bootstrap(local_aws, workdir)
    return deploy(local_aws, ["SageMakerStack", "EcsStack"], workdir=workdir)


@pytest.fixture(scope="module")
def model_description(local_aws: LocalAws, outputs: dict[str, dict[str, str]]) -> dict[str, Any]:
    sagemaker = local_aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["SageMakerStack"]["EndpointName"])
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    description: dict[str, Any] = sagemaker.describe_model(
        ModelName=config["ProductionVariants"][0]["ModelName"]
    )
    return description


@pytest.fixture(scope="module")
def deployed_model_dir(
    local_aws: LocalAws, model_description: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """The deployed model.tar.gz (from the local bootstrap bucket), unpacked as SageMaker does."""
    bucket, key = model_description["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://").split("/", 1)
    body = local_aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    model_dir = tmp_path_factory.mktemp("opt-ml-model")
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        archive.extractall(model_dir, filter="data")
    return model_dir


def test_the_deployed_endpoint_is_in_service(local_aws: LocalAws, outputs: dict[str, dict[str, str]]) -> None:
    endpoint = local_aws.client("sagemaker").describe_endpoint(
        EndpointName=outputs["SageMakerStack"]["EndpointName"]
    )
    assert endpoint["EndpointStatus"] == "InService"


def test_the_endpoint_config_is_one_ml_m5_large(
    local_aws: LocalAws, outputs: dict[str, dict[str, str]]
) -> None:
    sagemaker = local_aws.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=outputs["SageMakerStack"]["EndpointName"])
    (variant,) = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])[
        "ProductionVariants"
    ]
    assert (variant["VariantName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "AllTraffic",
        "ml.m5.large",
        1,
    )


def test_the_model_runs_the_local_image(model_description: dict[str, Any]) -> None:
    assert model_description["PrimaryContainer"]["Image"] == LOCAL_IMAGE


def test_the_model_data_url_is_the_synthesized_file_asset(
    model_description: dict[str, Any], outputs: dict[str, dict[str, str]], workdir: Path
) -> None:
    assets = json.loads((workdir / "cdk.out" / "SageMakerStack.assets.json").read_text())
    (model_asset,) = [a for a in assets["files"].values() if a["source"]["path"].endswith(".tar.gz")]
    (destination,) = model_asset["destinations"].values()
    expected_key = destination["objectKey"]
    assert model_description["PrimaryContainer"]["ModelDataUrl"].endswith("/" + expected_key)
    assert outputs["SageMakerStack"]["ModelDataUrl"] == model_description["PrimaryContainer"]["ModelDataUrl"]


def test_the_model_object_in_the_bootstrap_bucket_is_the_built_artifact(
    local_aws: LocalAws, model_description: dict[str, Any], demo_model_artifact: Path
) -> None:
    bucket, key = model_description["PrimaryContainer"]["ModelDataUrl"].removeprefix("s3://").split("/", 1)
    assert bucket == "cdk-hnb659fds-assets-123456789012-us-east-1"
    body = local_aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == demo_model_artifact.read_bytes()


def test_the_ecs_service_runs_the_ml_inference_task_family(
    local_aws: LocalAws, outputs: dict[str, dict[str, str]]
) -> None:
    ecs = local_aws.client("ecs")
    (service,) = ecs.describe_services(
        cluster=outputs["EcsStack"]["ClusterName"], services=[outputs["EcsStack"]["ServiceName"]]
    )["services"]
    task_definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    assert task_definition["family"] == "ml-inference"
    assert {c["name"] for c in task_definition["containerDefinitions"]} >= {"inference"}
    (inference,) = [c for c in task_definition["containerDefinitions"] if c["name"] == "inference"]
    assert inference["image"] == LOCAL_IMAGE


@pytest.mark.container
def test_the_running_container_predicts_what_scikit_learn_predicts_locally(deployed_model_dir: Path) -> None:
    from tests.server.container_target import running_container

    expected = joblib.load(deployed_model_dir / "model.joblib").predict(ROWS)
    csv_body = "\n".join(",".join(str(v) for v in row) for row in ROWS).encode()
    with running_container(deployed_model_dir, {}) as url:
        as_csv = invoke_url(url, csv_body, content_type="text/csv", accept="text/csv")
        as_json = invoke_url(
            url,
            json.dumps({"instances": ROWS.tolist()}).encode(),
            content_type="application/json",
            accept="application/json",
        )
    assert as_csv.body.decode().split() == [str(p) for p in expected.tolist()]
    assert json.loads(as_json.body) == expected.tolist()


@pytest.mark.container
def test_the_invoke_cli_prints_predictions_from_the_container(
    deployed_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.server.container_target import running_container

    with running_container(deployed_model_dir, {}) as url:
        exit_code = main(["--url", url, "--data", "5.1,3.5,1.4,0.2\n7.7,3.0,6.1,2.3", "--accept", "text/csv"])
    expected = joblib.load(deployed_model_dir / "model.joblib").predict(ROWS[[0, 2]])
    assert exit_code == 0
    assert capsys.readouterr().out.split() == [str(p) for p in expected.tolist()]


@contextmanager
def recorded_requests(local_aws: LocalAws) -> Iterator[list[dict[str, Any]]]:
    """The requests the moto server receives inside the ``with`` (moto's recorder), filled in on exit."""
    requests: list[dict[str, Any]] = []
    for action in ("reset-recording", "start-recording"):
        urllib.request.urlopen(
            urllib.request.Request(f"{local_aws.endpoint_url}/moto-api/recorder/{action}", method="POST")
        )
    try:
        yield requests
    finally:
        urllib.request.urlopen(
            urllib.request.Request(
                f"{local_aws.endpoint_url}/moto-api/recorder/stop-recording", method="POST"
            )
        )
        with urllib.request.urlopen(
            f"{local_aws.endpoint_url}/moto-api/recorder/download-recording"
        ) as response:
            requests.extend(json.loads(line) for line in response.read().decode().splitlines() if line)


def queue_endpoint_answer(local_aws: LocalAws, answer: dict[str, str]) -> None:
    """What moto's sagemaker-runtime answers to the next invocation (it runs no model)."""
    request = urllib.request.Request(
        f"{local_aws.endpoint_url}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps({"results": [answer]}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request).close()


def test_invoke_endpoint_sends_the_deployed_endpoints_name_and_the_request_to_sagemaker_runtime(
    local_aws: LocalAws, outputs: dict[str, dict[str, str]]
) -> None:
    endpoint_name = outputs["SageMakerStack"]["EndpointName"]
    with recorded_requests(local_aws) as requests:
        invoke_endpoint(
            endpoint_name,
            b"5.1,3.5,1.4,0.2",
            content_type="text/csv",
            accept="text/csv",
            custom_attributes="trace=1",
            client=local_aws.client("sagemaker-runtime"),
        )

    (request,) = [r for r in requests if r["url"].endswith("/invocations")]
    assert request["url"].endswith(f"/endpoints/{endpoint_name}/invocations")
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert (headers["content-type"], headers["accept"], headers["x-amzn-sagemaker-custom-attributes"]) == (
        "text/csv",
        "text/csv",
        "trace=1",
    )
    assert base64.b64decode(request["body"]) == b"5.1,3.5,1.4,0.2"


def test_invoke_endpoint_returns_the_body_type_and_attributes_the_endpoint_answered(
    local_aws: LocalAws, outputs: dict[str, dict[str, str]]
) -> None:
    queue_endpoint_answer(
        local_aws,
        {
            "Body": "0\n",
            "ContentType": "text/csv",
            "InvokedProductionVariant": "AllTraffic",
            "CustomAttributes": "trace=2",
        },
    )

    result = invoke_endpoint(
        outputs["SageMakerStack"]["EndpointName"],
        b"5.1,3.5,1.4,0.2",
        custom_attributes="trace=2",
        client=local_aws.client("sagemaker-runtime"),
    )

    assert (result.body, result.content_type, result.custom_attributes) == (b"0\n", "text/csv", "trace=2")
