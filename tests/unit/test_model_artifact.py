"""ModelArtifact and pack_model: the model.tar.gz every target serves, and read access to exactly it."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from constructs import Construct

from ml_inference_cdk.constructs.model_artifact import ModelArtifact, ModelArtifactConfig, pack_model
from tests.unit.test_sagemaker_endpoint import PROJECT_CONTEXT, flat, logical_id, permissions_of


class Binding:
    """A stack with a consumer construct and a role, the way SageMakerEndpoint binds a model artifact."""

    def __init__(self) -> None:
        self.stack = Stack(App(context=PROJECT_CONTEXT), "TestStack")
        self.consumer = Construct(self.stack, "Consumer")
        self.role = iam.Role(self.stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))

    def bind(self, artifact: ModelArtifact) -> ModelArtifactConfig:
        return artifact.bind(self.consumer, self.role)

    def permissions(self) -> list[tuple[str, Any, Any]]:
        return permissions_of(Template.from_stack(self.stack), self.role)


def write_archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture(scope="module")
def iris_model() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=1000).fit(features, labels)


# --- from_asset -------------------------------------------------------------------------------------------


def test_from_asset_uploads_the_archive_and_grants_read_on_that_object_only(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"model.joblib": b"model"})
    binding = Binding()
    config = binding.bind(ModelArtifact.from_asset(archive))
    stack = binding.stack

    assert stack.resolve(config.s3_uri)["Fn::Sub"].startswith("s3://cdk-hnb659fds-assets-${AWS::AccountId}-")
    (read,) = [(a, r) for a, r, _ in binding.permissions() if a.startswith("s3:")]
    assert read[0] == "s3:GetObject"
    assert flat(read[1]).endswith(f'/{stack.resolve(config.object_key)}"]]}}')


def test_from_asset_creates_one_asset_per_consumer_however_often_it_is_bound(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"./model.skops": b"model"})
    binding = Binding()
    artifact = ModelArtifact.from_asset(archive)
    binding.bind(artifact)
    artifact.bind(binding.consumer, iam.Role(binding.stack, "Other", assumed_by=iam.AccountRootPrincipal()))

    assert [child.node.id for child in binding.consumer.node.children] == ["ModelArtifact"]


def test_from_asset_checks_the_archive_not_its_name(tmp_path: Path) -> None:
    archive = write_archive(tmp_path / "model.tgz", {"model.joblib": b"model"})

    ModelArtifact.from_asset(archive)


def test_from_asset_refuses_a_bare_model_file(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").write_bytes(b"a pickled estimator, not an archive")

    with pytest.raises(ValueError, match=r"is not a readable gzip tar archive.*pack_model\(\) writes one"):
        ModelArtifact.from_asset(tmp_path / "model.joblib")


def test_from_asset_needs_an_existing_file_and_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"path: no such file .*pack_model\(estimator, path\)") as raised:
        ModelArtifact.from_asset(tmp_path / "model.tar.gz")

    assert "make" not in str(raised.value).replace("pack_model", "")


def test_from_asset_refuses_a_folder(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"path must be a model\.tar\.gz file, got the folder"):
        ModelArtifact.from_asset(tmp_path)


def test_from_asset_needs_a_readable_gzip_tarball(tmp_path: Path) -> None:
    (tmp_path / "model.tar.gz").write_bytes(b"not gzip at all")

    with pytest.raises(ValueError, match="is not a readable gzip tar archive"):
        ModelArtifact.from_asset(tmp_path / "model.tar.gz")


@pytest.mark.parametrize("model_file", ["xgboost-model", "model.txt", "model.onnx"])
def test_from_asset_accepts_a_native_xgboost_lightgbm_or_onnx_file(tmp_path: Path, model_file: str) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {model_file: b"m"})

    ModelArtifact.from_asset(archive)


@pytest.mark.parametrize("member", ["../model.joblib", "/etc/model.joblib"])
def test_from_asset_rejects_members_outside_the_extraction_folder(tmp_path: Path, member: str) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", {"model.joblib": b"m", member: b"x"})

    with pytest.raises(ValueError, match="has a member outside the extraction folder"):
        ModelArtifact.from_asset(archive)


@pytest.mark.parametrize(
    "members",
    [
        {"weights.bin": b"x"},
        {"model.joblib": b"a", "model.skops": b"b"},
        {"xgboost-model": b"a", "model.onnx": b"b"},
        {"model.joblib": b"a", "model.skops": b"b", "model.onnx": b"c"},
        {"nested/model.joblib": b"a"},
    ],
)
def test_from_asset_needs_exactly_one_model_file_at_the_top_level(
    tmp_path: Path, members: dict[str, bytes]
) -> None:
    archive = write_archive(tmp_path / "model.tar.gz", members)

    with pytest.raises(
        ValueError,
        match=r"must hold exactly one of model\.joblib, model\.skops, xgboost-model, model\.txt, model\.onnx "
        "at its top level",
    ):
        ModelArtifact.from_asset(archive)


@pytest.mark.parametrize("native", ["model.joblib", "model.skops"])
def test_from_asset_accepts_model_onnx_beside_a_native_model_with_or_without_a_verified_record(
    tmp_path: Path, native: str
) -> None:
    # The server serves model.onnx only with a verified record whose sha256 matches, and the native model
    # otherwise (logging why): either archive serves, so neither is refused at synth time.
    verified = {"compiled": {"format": "onnx", "status": "verified", "file": "model.onnx"}}
    for name, metadata in (("with-record", verified), ("without-record", {})):
        members = {native: b"a", "model.onnx": b"b", "model-metadata.json": json.dumps(metadata).encode()}
        ModelArtifact.from_asset(write_archive(tmp_path / f"{name}.tar.gz", members))


# --- from_bucket and from_s3_uri --------------------------------------------------------------------------


def test_from_bucket_serves_the_object_and_grants_read_on_it_and_its_key() -> None:
    binding = Binding()
    key = kms.Key(binding.stack, "Key")
    bucket = s3.Bucket(binding.stack, "Models", encryption_key=key)
    config = binding.bind(ModelArtifact.from_bucket(bucket, "iris/v3/model.tar.gz"))
    bucket_id = logical_id(bucket.node.default_child)

    assert binding.stack.resolve(config.s3_uri) == {
        "Fn::Join": ["", ["s3://", {"Ref": bucket_id}, "/iris/v3/model.tar.gz"]]
    }
    assert sorted((a, flat(r)) for a, r, _ in binding.permissions()) == [
        ("kms:Decrypt", flat({"Fn::GetAtt": [logical_id(key.node.default_child), "Arn"]})),
        (
            "s3:GetObject",
            flat({"Fn::Join": ["", [{"Fn::GetAtt": [bucket_id, "Arn"]}, "/iris/v3/model.tar.gz"]]}),
        ),
    ]


@pytest.mark.parametrize("key", ["", "/iris/model.tar.gz"])
def test_from_bucket_needs_a_relative_key(key: str) -> None:
    bucket = s3.Bucket.from_bucket_name(Stack(App(), "S"), "Models", "model-bucket")

    with pytest.raises(ValueError, match="key must be a non-empty S3 key without a leading '/'"):
        ModelArtifact.from_bucket(bucket, key)


def test_from_bucket_takes_a_key_of_any_name() -> None:
    binding = Binding()
    bucket = s3.Bucket.from_bucket_name(binding.stack, "Models", "model-bucket")

    config = binding.bind(ModelArtifact.from_bucket(bucket, "iris/0a1b2c.gz"))

    assert config.s3_uri == "s3://model-bucket/iris/0a1b2c.gz"


def test_from_s3_uri_imports_the_bucket_and_grants_read_on_the_object() -> None:
    binding = Binding()
    config = binding.bind(ModelArtifact.from_s3_uri("s3://training-output/iris/model.tar.gz"))

    assert config.s3_uri == "s3://training-output/iris/model.tar.gz"
    ((action, resource, _),) = binding.permissions()
    assert action == "s3:GetObject"
    assert flat(resource).endswith(':s3:::training-output/iris/model.tar.gz"]]}')


def test_from_s3_uri_bound_twice_reuses_the_imported_bucket() -> None:
    binding = Binding()
    artifact = ModelArtifact.from_s3_uri("s3://training-output/iris/model.tar.gz")
    first = binding.bind(artifact)
    second = artifact.bind(
        binding.consumer, iam.Role(binding.stack, "Other", assumed_by=iam.AccountRootPrincipal())
    )

    assert first == second
    assert [child.node.id for child in binding.consumer.node.children] == ["ModelBuckettrainingoutput"]


@pytest.mark.parametrize(
    "uri", ["https://bucket/model.tar.gz", "s3://B/model.tar.gz", "s3://bucket", "s3://bucket/"]
)
def test_from_s3_uri_needs_an_s3_uri(uri: str) -> None:
    with pytest.raises(ValueError, match=r"uri must be s3://BUCKET/KEY with a bucket name of 3-63"):
        ModelArtifact.from_s3_uri(uri)


def test_from_s3_uri_takes_the_key_cdk_gives_a_file_asset() -> None:
    """A stack's ModelDataUrl output names the asset by its hash with a .gz suffix; it must round-trip."""
    uri = "s3://cdk-hnb659fds-assets-123456789012-us-east-1/" + "0123456789abcdef" * 4 + ".gz"
    binding = Binding()

    assert binding.bind(ModelArtifact.from_s3_uri(uri)).s3_uri == uri


# --- pack_model -------------------------------------------------------------------------------------------


def test_pack_model_writes_the_model_and_its_training_metadata(iris_model: Any, tmp_path: Path) -> None:
    import sklearn

    archive = pack_model(iris_model, tmp_path / "out" / "model.tar.gz")

    with tarfile.open(archive, "r:gz") as packed:
        assert sorted(packed.getnames()) == ["model-metadata.json", "model.joblib"]
        metadata = json.loads(packed.extractfile("model-metadata.json").read())  # type: ignore[union-attr]
    assert metadata["format"] == "joblib"
    assert metadata["sklearn_version"] == sklearn.__version__
    assert metadata["n_features_in"] == 4
    assert metadata["classes"] == [0, 1, 2]
    ModelArtifact.from_asset(archive)  # what pack_model writes, from_asset accepts


def test_pack_model_records_the_classes_of_each_output_of_a_multi_output_classifier(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multioutput import MultiOutputClassifier

    features = [[0.0, 1.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    targets = [[0, 1], [1, 0], [2, 1], [0, 0]]
    model = MultiOutputClassifier(LogisticRegression()).fit(features, targets)

    archive = pack_model(model, tmp_path / "model.tar.gz")

    with tarfile.open(archive, "r:gz") as packed:
        metadata = json.loads(packed.extractfile("model-metadata.json").read())  # type: ignore[union-attr]
    assert metadata["classes"] == [[0, 1, 2], [0, 1]]


def test_pack_model_can_write_skops(iris_model: Any, tmp_path: Path) -> None:
    archive = pack_model(iris_model, tmp_path / "model.tar.gz", serialization="skops")

    with tarfile.open(archive, "r:gz") as packed:
        assert "model.skops" in packed.getnames()


def test_pack_model_is_deterministic_whatever_the_archive_is_called(iris_model: Any, tmp_path: Path) -> None:
    first = pack_model(iris_model, tmp_path / "a" / "model.tar.gz").read_bytes()
    second = pack_model(iris_model, tmp_path / "b" / "other-name.tar.gz").read_bytes()

    assert first == second


def test_pack_model_output_must_end_with_tar_gz(iris_model: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"output must end with \.tar\.gz"):
        pack_model(iris_model, tmp_path / "model.joblib")


def test_pack_model_serialization_must_be_joblib_or_skops(iris_model: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="serialization must be 'joblib' or 'skops', got 'pickle'"):
        pack_model(iris_model, tmp_path / "model.tar.gz", serialization="pickle")  # type: ignore[arg-type]


def test_pack_model_needs_an_estimator_with_predict(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="estimator must have a predict method, got dict"):
        pack_model({}, tmp_path / "model.tar.gz")


def test_pack_model_needs_a_fitted_estimator(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ValueError, match="estimator must be fitted before packing"):
        pack_model(LogisticRegression(), tmp_path / "model.tar.gz")
