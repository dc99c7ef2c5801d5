"""ContainerImage: where the inference image comes from, and the pull permission binding grants."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, CfnParameter, Stack
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template
from constructs import Construct

from ml_inference_cdk.constructs.image import ContainerImage, ContainerImageConfig
from ml_inference_cdk.constructs.repository import InferenceRepository
from tests.unit.test_sagemaker_endpoint import PROJECT_CONTEXT, flat, logical_id, permissions_of

DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture
def build_context(tmp_path: Path) -> Path:
    directory = tmp_path / "image"
    directory.mkdir()
    (directory / "Dockerfile").write_text("FROM scratch\nCOPY serve /serve\n")
    (directory / "Dockerfile.gpu").write_text("FROM scratch\n")
    (directory / "serve").write_text("#!/bin/sh\n")
    (directory / "notes.md").write_text("not part of the image\n")
    return directory


class Binding:
    """A stack with a consumer construct and a role, the way SageMakerEndpoint binds an image."""

    def __init__(self, outdir: Path | None = None) -> None:
        self.app = App(context=PROJECT_CONTEXT, outdir=str(outdir) if outdir else None)
        self.stack = Stack(self.app, "TestStack")
        self.consumer = Construct(self.stack, "Consumer")
        self.role = iam.Role(self.stack, "Role", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))

    def bind(self, image: ContainerImage) -> ContainerImageConfig:
        return image.bind(self.consumer, self.role)

    def template(self) -> Template:
        return Template.from_stack(self.stack)

    def docker_image_sources(self) -> list[dict[str, Any]]:
        """What the CDK CLI will build: the ``source`` of every Docker image in the asset manifest."""
        outdir = Path(self.app.synth().directory)
        manifest = json.loads((outdir / f"{self.stack.artifact_id}.assets.json").read_text())
        return [image["source"] for image in manifest.get("dockerImages", {}).values()]


# --- from_asset -------------------------------------------------------------------------------------------


def test_asset_image_is_built_for_linux_amd64_by_default(build_context: Path, tmp_path: Path) -> None:
    binding = Binding(tmp_path / "cdk.out")
    binding.bind(ContainerImage.from_asset(build_context))

    (source,) = binding.docker_image_sources()
    assert source["platform"] == "linux/amd64"


def test_asset_image_takes_build_args_dockerfile_target_and_platform(
    build_context: Path, tmp_path: Path
) -> None:
    binding = Binding(tmp_path / "cdk.out")
    binding.bind(
        ContainerImage.from_asset(
            build_context,
            build_args={"BASE_IMAGE": "localhost/base:bookworm"},
            file="Dockerfile.gpu",
            target="runtime",
            platform=ecr_assets.Platform.LINUX_ARM64,
        )
    )

    (source,) = binding.docker_image_sources()
    assert source["dockerBuildArgs"] == {"BASE_IMAGE": "localhost/base:bookworm"}
    assert source["dockerFile"] == "Dockerfile.gpu"
    assert source["dockerBuildTarget"] == "runtime"
    assert source["platform"] == "linux/arm64"


def test_asset_image_leaves_excluded_files_out_of_the_build_context(
    build_context: Path, tmp_path: Path
) -> None:
    binding = Binding(tmp_path / "cdk.out")
    binding.bind(ContainerImage.from_asset(build_context, exclude=["*.md"]))

    (source,) = binding.docker_image_sources()
    staged = tmp_path / "cdk.out" / source["directory"]
    assert sorted(path.name for path in staged.iterdir()) == ["Dockerfile", "Dockerfile.gpu", "serve"]


def test_asset_image_runs_from_the_cdk_asset_repository_and_grants_pull_there(build_context: Path) -> None:
    binding = Binding()
    config = binding.bind(ContainerImage.from_asset(build_context))
    permissions = permissions_of(binding.template(), binding.role)

    assert "cdk-hnb659fds-container-assets" in flat(binding.stack.resolve(config.image_uri))
    assert config.dependable is None
    (pull_from,) = {flat(r) for a, r, _ in permissions if a == "ecr:BatchGetImage"}
    assert ':repository/", {"Fn::Sub": "cdk-hnb659fds-container-assets-' in pull_from


def test_asset_image_is_created_once_per_consumer_however_often_it_is_bound(
    build_context: Path, tmp_path: Path
) -> None:
    binding = Binding(tmp_path / "cdk.out")
    image = ContainerImage.from_asset(build_context)
    first = binding.bind(image)
    second = image.bind(
        binding.consumer, iam.Role(binding.stack, "Other", assumed_by=iam.AccountRootPrincipal())
    )

    assert first is second
    assert len(binding.docker_image_sources()) == 1


# --- from_asset with copy_to ------------------------------------------------------------------------------


@pytest.fixture
def copied(build_context: Path) -> tuple[Binding, InferenceRepository, ContainerImageConfig]:
    binding = Binding()
    repository = InferenceRepository(binding.stack, "Repository")
    config = binding.bind(ContainerImage.from_asset(build_context, copy_to=repository, tag="v1.2.3"))
    return binding, repository, config


def test_copy_to_copies_the_built_image_into_the_repository_under_the_tag(
    copied: tuple[Binding, InferenceRepository, ContainerImageConfig],
) -> None:
    binding, repository, config = copied
    template = binding.template()
    (copy,) = template.find_resources("Custom::CDKECRDeployment").values()

    assert flat(copy["Properties"]["DestImage"]).endswith(':v1.2.3"]]}')
    assert {"Ref": logical_id(repository.repository.node.default_child)} in copy["Properties"]["DestImage"][
        "Fn::Join"
    ][1]
    assert "cdk-hnb659fds-container-assets" in flat(copy["Properties"]["SrcImage"])
    assert flat(copy["Properties"]["DestImage"]) == flat(
        binding.stack.resolve(f"docker://{config.image_uri}")
    )


def test_copy_to_runs_the_image_from_the_repository_and_grants_pull_only_there(
    copied: tuple[Binding, InferenceRepository, ContainerImageConfig],
) -> None:
    binding, repository, _ = copied
    pulls = {
        flat(r) for a, r, _ in permissions_of(binding.template(), binding.role) if a == "ecr:BatchGetImage"
    }

    assert pulls == {flat({"Fn::GetAtt": [logical_id(repository.repository.node.default_child), "Arn"]})}


def test_copy_to_makes_consumers_wait_for_the_copy(
    copied: tuple[Binding, InferenceRepository, ContainerImageConfig],
) -> None:
    binding, _, config = copied

    assert config.dependable is binding.consumer.node.find_child("CopyImage")


def test_copy_to_tags_with_the_asset_hash_by_default(build_context: Path) -> None:
    binding = Binding()
    repository = InferenceRepository(binding.stack, "Repository")
    binding.bind(ContainerImage.from_asset(build_context, copy_to=repository))
    (copy,) = binding.template().find_resources("Custom::CDKECRDeployment").values()

    tag = copy["Properties"]["DestImage"]["Fn::Join"][1][-1]
    assert len(tag) == 65  # ":" + the 64-hex asset hash


def test_copy_function_findings_are_acknowledged_on_the_function_with_reasons(
    copied: tuple[Binding, InferenceRepository, ContainerImageConfig],
) -> None:
    binding, _, _ = copied
    (function,) = [c for c in binding.stack.node.children if c.node.id.startswith("Custom::CDKECRDeployment")]
    acknowledged = {
        key: value
        for entry in function.node.metadata
        if entry.type == "aws:cdk:acknowledged-rules"
        for key, value in entry.data.items()
    }

    assert len(acknowledged) == 2
    assert all(reason.strip() for reason in acknowledged.values())


# --- from_repository and from_image_uri -------------------------------------------------------------------


def test_from_repository_runs_latest_by_default_and_grants_pull() -> None:
    binding = Binding()
    repository = InferenceRepository(binding.stack, "Repository")
    config = binding.bind(ContainerImage.from_repository(repository))

    assert flat(binding.stack.resolve(config.image_uri)).endswith(':latest"]]}')
    assert "ecr:BatchGetImage" in {a for a, _, _ in permissions_of(binding.template(), binding.role)}


def test_from_repository_pins_an_image_by_digest() -> None:
    binding = Binding()
    repository = InferenceRepository(binding.stack, "Repository")
    config = binding.bind(ContainerImage.from_repository(repository, digest=DIGEST))

    assert flat(binding.stack.resolve(config.image_uri)).endswith(f'@{DIGEST}"]]}}')


def test_from_image_uri_grants_pull_on_that_ecr_repository() -> None:
    binding = Binding()
    uri = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/team/iris:2024-01"
    config = binding.bind(ContainerImage.from_image_uri(uri))
    permissions = permissions_of(binding.template(), binding.role)

    assert config.image_uri == uri
    assert (
        "ecr:BatchGetImage",
        "arn:aws:ecr:eu-west-1:123456789012:repository/team/iris",
        None,
    ) in permissions


def test_from_image_uri_outside_ecr_grants_nothing() -> None:
    binding = Binding()
    config = binding.bind(ContainerImage.from_image_uri(f"registry.example.com:5000/iris@{DIGEST}"))

    assert config.image_uri == f"registry.example.com:5000/iris@{DIGEST}"
    assert permissions_of(binding.template(), binding.role) == []


# --- validation -------------------------------------------------------------------------------------------


def test_from_asset_needs_an_existing_directory(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="directory must be an existing folder with a Dockerfile"):
        ContainerImage.from_asset(tmp_path / "missing")


def test_from_asset_needs_a_dockerfile(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="file: no Dockerfile at"):
        ContainerImage.from_asset(tmp_path)


def test_from_asset_tag_needs_copy_to(build_context: Path) -> None:
    with pytest.raises(ValueError, match="tag only applies with copy_to"):
        ContainerImage.from_asset(build_context, tag="v1")


@pytest.mark.parametrize("tag", ["has space", "v1/x", "v1:x"])
def test_tags_must_be_valid_image_tags(tag: str) -> None:
    repository = InferenceRepository(Stack(App(), "S"), "Repository")

    with pytest.raises(ValueError, match="tag must be 1-128 characters"):
        ContainerImage.from_repository(repository, tag=tag)


def test_from_repository_takes_a_tag_or_a_digest_not_both() -> None:
    repository = InferenceRepository(Stack(App(), "S"), "Repository")

    with pytest.raises(ValueError, match="give either tag or digest, not both"):
        ContainerImage.from_repository(repository, tag="v1", digest=DIGEST)


@pytest.mark.parametrize("digest", ["sha256:abc", "md5:" + "0" * 64, "sha256:" + "A" * 64])
def test_digest_must_be_sha256_hex(digest: str) -> None:
    repository = InferenceRepository(Stack(App(), "S"), "Repository")

    with pytest.raises(ValueError, match="digest must be sha256:<64 lowercase hex digits>"):
        ContainerImage.from_repository(repository, digest=digest)


@pytest.mark.parametrize("uri", ["iris", "registry.example.com/iris", "registry.example.com/iris:"])
def test_image_uri_needs_a_tag_or_digest(uri: str) -> None:
    with pytest.raises(
        ValueError, match="image_uri must be REGISTRY/NAME:TAG or REGISTRY/NAME@sha256:DIGEST"
    ):
        ContainerImage.from_image_uri(uri)


def test_image_uri_must_be_a_literal() -> None:
    token = CfnParameter(Stack(App(), "S"), "Image").value_as_string

    with pytest.raises(ValueError, match="image_uri must be a literal string"):
        ContainerImage.from_image_uri(token)
