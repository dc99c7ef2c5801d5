"""The real container in multi-model mode, with SageMaker's part played by the test against a real moto S3.

What SageMaker does for a multi-model endpoint, step by step: the model artifacts sit under one S3 prefix
(the model's ModelDataUrl); the container starts with nothing loaded and must say /ping 200; when an
invocation names a TargetModel that is not loaded, SageMaker downloads ``<prefix><TargetModel>``, unpacks it
into ``/opt/ml/models/<model_name>/model`` (``model_name`` an opaque name of its own choosing), calls
``POST /models`` and then ``POST /models/<model_name>/invoke`` with the X-Amzn-SageMaker-Target-Model
header; to make room it calls ``DELETE /models/<model_name>`` and removes the files.

The models directory is mounted live (read-only) into a container that runs as SageMaker runs it:
non-root, read-only root filesystem, tmpfs /tmp. moto binds a port of its own choosing and says which.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from ml_inference_cdk.constructs import pack_model
from scripts.local_aws import LocalAws
from tests.server import container_target, models

pytestmark = [pytest.mark.integration, pytest.mark.container]

BUCKET = "multi-model-artifacts"
PREFIX = "endpoints/churn-and-iris/"
"""The multi-model endpoint's ModelDataUrl is s3://BUCKET/PREFIX: every model lives under it."""
IRIS_ROWS = models.IRIS_FEATURES[[0, 60, 120]]
IRIS_CSV = "\n".join(",".join(str(v) for v in row) for row in IRIS_ROWS).encode()
CUSTOMER_ROWS = models.CUSTOMERS.iloc[[0, 1, 2, 5]].reset_index(drop=True)
CUSTOMER_JSON = orjson.dumps({"dataframe_records": CUSTOMER_ROWS.to_dict(orient="records")})


@pytest.fixture(scope="module")
def estimators() -> dict[str, Any]:
    return {"iris.tar.gz": models.iris_model(), "customers/v1.tar.gz": models.customer_pipeline()}


@pytest.fixture(scope="module")
def s3_prefix(
    local_aws: LocalAws, estimators: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> str:
    """Each estimator packed with pack_model() and uploaded under the endpoint's prefix."""
    s3 = local_aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    packed = tmp_path_factory.mktemp("packed")
    for target_model, estimator in estimators.items():
        archive = pack_model(estimator, packed / target_model.replace("/", "-"))
        s3.upload_file(str(archive), BUCKET, PREFIX + target_model)
    return f"s3://{BUCKET}/{PREFIX}"


@dataclass
class SageMakerPlatform:
    """What SageMaker does around a multi-model container: fetch, unpack, load, invoke, unload."""

    s3: Any
    models_dir: Path
    """Mounted at /opt/ml/models in the container."""
    client: httpx.Client

    @staticmethod
    def model_name(target_model: str) -> str:
        """An opaque name per TargetModel, as SageMaker picks one (not the TargetModel itself)."""
        return hashlib.sha256(target_model.encode()).hexdigest()[:32]

    def load(self, target_model: str) -> httpx.Response:
        name = self.model_name(target_model)
        archive = self.models_dir / f"{name}.tar.gz"
        self.s3.download_file(BUCKET, PREFIX + target_model, str(archive))
        unpacked = self.models_dir / name / "model"
        unpacked.mkdir(parents=True)
        with tarfile.open(archive) as packed:
            packed.extractall(unpacked, filter="data")
        archive.unlink()
        _readable_by_anyone(self.models_dir / name)
        url = f"{container_target.CONTAINER_MULTI_MODEL_DIR}/{name}/model"
        return self.client.post("/models", content=orjson.dumps({"model_name": name, "url": url}))

    def invoke(self, target_model: str, body: bytes, content_type: str) -> httpx.Response:
        headers = {
            "Content-Type": content_type,
            "Accept": "application/json",
            "X-Amzn-SageMaker-Target-Model": target_model,
        }
        return self.client.post(
            f"/models/{self.model_name(target_model)}/invoke", content=body, headers=headers
        )

    def unload(self, target_model: str) -> httpx.Response:
        name = self.model_name(target_model)
        response = self.client.delete(f"/models/{name}")
        shutil.rmtree(self.models_dir / name)
        return response


@pytest.fixture
def platform(local_aws: LocalAws, s3_prefix: str, tmp_path: Path) -> Iterator[SageMakerPlatform]:
    models_dir = tmp_path / "models"
    models_dir.mkdir()
    _readable_by_anyone(models_dir)
    env = {"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    with (
        container_target.started_container(
            models_dir, env, mount_at=container_target.CONTAINER_MULTI_MODEL_DIR, live_mount=True
        ) as container,
        httpx.Client(base_url=container.url, timeout=30) as client,
    ):
        yield SageMakerPlatform(local_aws.client("s3"), models_dir, client)


def test_the_container_loads_two_models_from_the_s3_prefix_serves_both_and_unloads_one(
    platform: SageMakerPlatform, estimators: dict[str, Any]
) -> None:
    assert platform.client.get("/ping").status_code == 200  # healthy with nothing loaded

    loaded = [platform.load("iris.tar.gz"), platform.load("customers/v1.tar.gz")]
    iris = platform.invoke("iris.tar.gz", IRIS_CSV, "text/csv")
    customers = platform.invoke("customers/v1.tar.gz", CUSTOMER_JSON, "application/json")
    listed = platform.client.get("/models").json()
    unloaded = platform.unload("iris.tar.gz")
    iris_after = platform.invoke("iris.tar.gz", IRIS_CSV, "text/csv")
    customers_after = platform.invoke("customers/v1.tar.gz", CUSTOMER_JSON, "application/json")

    assert [response.status_code for response in loaded] == [200, 200]
    assert iris.json() == estimators["iris.tar.gz"].predict(IRIS_ROWS).tolist()
    expected_customers = estimators["customers/v1.tar.gz"].predict(CUSTOMER_ROWS).tolist()
    assert customers.json() == expected_customers
    assert sorted(model["modelName"] for model in listed["models"]) == sorted(
        platform.model_name(target) for target in estimators
    )
    assert unloaded.status_code == 200
    assert iris_after.status_code == 404
    assert customers_after.json() == expected_customers


def test_a_model_sagemaker_loads_again_after_unloading_it_answers_again(platform: SageMakerPlatform) -> None:
    assert platform.load("iris.tar.gz").status_code == 200
    assert platform.unload("iris.tar.gz").status_code == 200

    reloaded = platform.load("iris.tar.gz")
    answer = platform.invoke("iris.tar.gz", IRIS_CSV, "text/csv")

    assert reloaded.status_code == 200
    assert answer.json() == models.iris_model().predict(IRIS_ROWS).tolist()


def _readable_by_anyone(path: Path) -> None:
    """The container runs as uid 10001: directories it can enter, files it can read."""
    for item in [path, *path.rglob("*")]:
        item.chmod(0o755 if item.is_dir() else 0o644)
