"""Every limit of the parts every target shares, pinned on both edges (see boundaries.py): the repository,
the image and model sources, and the container environment of the contract."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_s3 as s3

from ml_inference_cdk.constructs import contract
from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact
from ml_inference_cdk.constructs.repository import InferenceRepository
from tests.unit.boundaries import case, check, edges, lengths

REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference"


def text(length: int) -> str:
    return "a" * length


def digest(hex_digits: int) -> str:
    return "sha256:" + ("0123456789abcdef" * 5)[:hex_digits]


DIGESTS = [
    case(digest(63), False, "63 hex digits, one fewer than sha256 has"),
    case(digest(64), True, "64 hex digits"),
    case(digest(65), False, "65 hex digits, one more than sha256 has"),
]


# --- the repository ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "accepted"), lengths(2, 256, text))
def test_a_repository_name_is_2_to_256_characters(name: str, accepted: bool) -> None:
    check(
        accepted,
        "repository_name must be 2-256 characters",
        lambda: InferenceRepository(Stack(App(), "S"), "Repository", repository_name=name),
    )


@pytest.mark.parametrize(("count", "accepted"), edges(1, unit=" image"))
def test_a_repository_keeps_at_least_1_image(count: int, accepted: bool) -> None:
    check(
        accepted,
        rf"max_image_count must be >= 1, got {count}",
        lambda: InferenceRepository(Stack(App(), "S"), "Repository", max_image_count=count),
    )


# --- the image --------------------------------------------------------------------------------------------

TAGS = [
    *lengths(1, 128, text),
    case("_v1", True, "a leading underscore"),
    case(".v1", False, "a leading dot"),
    case("-v1", False, "a leading hyphen"),
]


@pytest.mark.parametrize(("tag", "accepted"), TAGS)
def test_a_repository_image_tag_is_1_to_128_characters(tag: str, accepted: bool) -> None:
    repository = InferenceRepository(Stack(App(), "S"), "Repository")

    check(
        accepted,
        "tag must be 1-128 characters",
        lambda: ContainerImage.from_repository(repository, tag=tag),
    )


@pytest.mark.parametrize(("value", "accepted"), DIGESTS)
def test_a_repository_image_digest_is_sha256_with_64_hex_digits(value: str, accepted: bool) -> None:
    repository = InferenceRepository(Stack(App(), "S"), "Repository")

    check(
        accepted,
        "digest must be sha256:<64 lowercase hex digits>",
        lambda: ContainerImage.from_repository(repository, digest=value),
    )


@pytest.mark.parametrize(("tag", "accepted"), lengths(1, 128, text))
def test_an_image_uri_tag_is_1_to_128_characters(tag: str, accepted: bool) -> None:
    check(
        accepted,
        "image_uri must be REGISTRY/NAME:TAG",
        lambda: ContainerImage.from_image_uri(f"{REGISTRY}:{tag}"),
    )


@pytest.mark.parametrize(("value", "accepted"), DIGESTS)
def test_an_image_uri_digest_is_sha256_with_64_hex_digits(value: str, accepted: bool) -> None:
    check(
        accepted,
        "image_uri must be REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST",
        lambda: ContainerImage.from_image_uri(f"{REGISTRY}@{value}"),
    )


# --- the model artifact -----------------------------------------------------------------------------------

KEYS = [case("", False, "an empty key"), case("k", True, "a key of one character")]


@pytest.mark.parametrize(("bucket", "accepted"), lengths(3, 63, text))
def test_a_model_s3_uri_names_a_bucket_of_3_to_63_characters(bucket: str, accepted: bool) -> None:
    check(
        accepted,
        "uri must be s3://BUCKET/KEY with a bucket name of 3-63",
        lambda: ModelArtifact.from_s3_uri(f"s3://{bucket}/model.tar.gz"),
    )


@pytest.mark.parametrize(("key", "accepted"), KEYS)
def test_a_model_s3_uri_names_a_key_of_at_least_1_character(key: str, accepted: bool) -> None:
    check(accepted, "uri must be s3://BUCKET/KEY", lambda: ModelArtifact.from_s3_uri(f"s3://models/{key}"))


@pytest.mark.parametrize(("key", "accepted"), KEYS)
def test_a_model_key_in_a_bucket_is_at_least_1_character(key: str, accepted: bool) -> None:
    bucket = s3.Bucket.from_bucket_name(Stack(App(), "S"), "Models", "models")

    check(accepted, "key must be a non-empty S3 key", lambda: ModelArtifact.from_bucket(bucket, key))


def archive_with(path: Path, names: list[str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 1
            archive.addfile(info, io.BytesIO(b"m"))
    return path


@pytest.mark.parametrize(
    ("names", "accepted"),
    [
        case(["model-metadata.json"], False, "no model file"),
        case(["model.joblib"], True, "one model file"),
        case(["model.skops", "model-metadata.json"], True, "one model file and its metadata"),
        case(["model.joblib", "model.skops"], False, "two model files"),
    ],
)
def test_a_model_archive_holds_exactly_one_model_file(
    names: list[str], accepted: bool, tmp_path: Path
) -> None:
    archive = archive_with(tmp_path / "model.tar.gz", names)

    check(
        accepted,
        "must hold exactly one of model.joblib, model.skops",
        lambda: ModelArtifact.from_asset(archive),
    )


# --- the container environment ----------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "accepted"), edges(1, unit=" worker"))
def test_the_server_runs_at_least_1_worker(workers: int, accepted: bool) -> None:
    check(
        accepted,
        rf"workers must be >= 1, got {workers}",
        lambda: contract.container_environment(workers=workers),
    )


@pytest.mark.parametrize(("seconds", "accepted"), edges(1, 3600, unit=" s"))
def test_the_request_timeout_is_1_to_3600_seconds(seconds: int, accepted: bool) -> None:
    check(
        accepted,
        rf"timeout_seconds must be 1-3600, got {seconds}",
        lambda: contract.container_environment(timeout_seconds=seconds),
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        *(case(content_type, True, content_type) for content_type in ("text/csv", "application/json")),
        case("application/x-npy", True, "application/x-npy"),
        case("text/plain", False, "text/plain, a type the server cannot write"),
        case("application/json; charset=utf-8", False, "a type with parameters"),
    ],
)
def test_the_default_accept_is_one_of_the_servers_content_types(value: str, accepted: bool) -> None:
    check(
        accepted,
        "default_accept must be one of text/csv, application/json, application/jsonlines, application/x-npy",
        lambda: contract.container_environment(default_accept=value),
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        *(case(level, True, level) for level in ("DEBUG", "INFO", "WARNING", "ERROR")),
        case("warning", True, "warning in lowercase"),
        case("WARN", False, "WARN, an abbreviation"),
        case("CRITICAL", False, "CRITICAL, a level the server does not take"),
    ],
)
def test_the_log_level_is_debug_info_warning_or_error(value: str, accepted: bool) -> None:
    check(
        accepted,
        "log_level must be DEBUG, INFO, WARNING or ERROR",
        lambda: contract.container_environment(log_level=value),
    )


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        case("predict", True, "predict"),
        case("predict_proba", True, "predict_proba"),
        case("predict_log_proba", False, "predict_log_proba, which the server does not call"),
    ],
)
def test_the_predict_method_is_predict_or_predict_proba(value: str, accepted: bool) -> None:
    check(
        accepted,
        "predict_method must be one of predict, predict_proba",
        lambda: contract.container_environment(predict_method=value),
    )
