"""Settings: every context key is checked when the app starts, and a bad value names the key, not a parameter.

README promises that ``-c instanceType=m5.large`` fails naming ``instanceType``; the constructs' own messages
name their parameters (``instance_type``), so Settings runs the constructs' checks itself and prefixes the
message with ``context KEY=VALUE:``.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App
from aws_cdk.assertions import Match, Template

from ml_inference_cdk.stacks.sagemaker_stack import SageMakerStack
from ml_inference_cdk.stacks.settings import Settings
from tests.support.cdk import ROOT
from tests.unit.boundaries import case, check, edges
from tests.unit.test_sagemaker_endpoint import PROJECT_CONTEXT, flat, permissions_of


def settings(**context: Any) -> Settings:
    """What app.py reads when ``context`` is given with ``-c``: on top of cdk.json, as strings."""
    return Settings.from_context(App(context={**PROJECT_CONTEXT, **context}).node, base_dir=ROOT)


def bare_settings(**context: Any) -> Settings:
    """Settings without cdk.json's keys, for an app of one's own that sets only some of them."""
    return Settings.from_context(App(context=context).node, base_dir=ROOT)


# --- every key names itself -------------------------------------------------------------------------------


def bad(context: dict[str, str], message: str) -> object:
    given = " and ".join(f"{key}={value}" for key, value in context.items())
    return pytest.param(context, message, id=f"-c {given} is refused naming the key")


@pytest.mark.parametrize(
    ("context", "message"),
    [
        bad(
            {"instanceType": "m5.large"},
            "context instanceType=m5.large: instance_type must be a SageMaker ML instance type such as "
            "ml.m5.large, got 'm5.large'",
        ),
        bad({"instanceCount": "0"}, "context instanceCount=0: initial_instance_count must be >= 1, got 0"),
        bad({"instanceCount": "two"}, "context key instanceCount must be an integer, got 'two'"),
        bad({"imageUri": "iris"}, "context imageUri=iris: image_uri must be REGISTRY/NAME:TAG"),
        bad(
            {"modelS3Uri": "https://models/iris.tar.gz"},
            "context modelS3Uri=https://models/iris.tar.gz: uri must be",
        ),
        bad({"imageDirectory": ""}, "context key imageDirectory must be a non-empty string, got ''"),
        bad({"copyImageToRepository": "yes"}, "context key copyImageToRepository must be true or false"),
        bad({"destroyOnDelete": "1"}, "context key destroyOnDelete must be true or false"),
        bad({"ecsDesiredCount": "-1"}, "context ecsDesiredCount=-1: desired_count must be >= 0, got -1"),
        bad({"ecsMinCapacity": "-1"}, "context ecsMinCapacity=-1: min_capacity must be >= 0, got -1"),
        bad({"ecsMaxCapacity": "0"}, "context ecsMaxCapacity=0: max_capacity must be >= 1, got 0"),
        bad(
            {"ecsMinCapacity": "5", "ecsMaxCapacity": "3"},
            "context ecsMinCapacity=5, ecsMaxCapacity=3: min_capacity must be <= max_capacity",
        ),
        bad(
            {"ecsDesiredCount": "5", "ecsMaxCapacity": "3"},
            "context ecsDesiredCount=5, ecsMaxCapacity=3: min_capacity must be <= max_capacity",
        ),
        bad(
            {"ecsCertificateArn": "my-certificate"},
            "context ecsCertificateArn=my-certificate: certificate must be an ACM certificate ARN",
        ),
        bad(
            {"ecsDomainName": "api.example.com"},
            "context ecsDomainName=api.example.com: domain_name 'api.example.com' needs hosted_zone",
        ),
        bad(
            {"ecsHostedZoneName": "example.com"},
            "context ecsHostedZoneName=example.com: hosted_zone was given without domain_name",
        ),
        bad(
            {"ecsDomainName": "api.example.org", "ecsHostedZoneName": "example.com"},
            "context ecsDomainName=api.example.org, ecsHostedZoneName=example.com: domain_name must be in "
            "hosted_zone 'example.com'",
        ),
        bad(
            {"ecsRestrictDefaultSecurityGroup": "no"},
            "context key ecsRestrictDefaultSecurityGroup must be true or false",
        ),
        bad({"eksReplicas": "0"}, "context eksReplicas=0: replicas must be >= 1, got 0"),
        bad(
            {"eksMaxReplicas": "2"},
            "context eksReplicas=3, eksMaxReplicas=2: max_replicas must be >= replicas (3)",
        ),
        bad(
            {"eksNamespace": "ML_Inference"},
            "context eksNamespace=ML_Inference: namespace must be a DNS-1123 label",
        ),
        bad(
            {"eksPublicEndpointCidrs": "203.0.113.0/24, 0.0.0.0/0"},
            "context eksPublicEndpointCidrs=203.0.113.0/24, 0.0.0.0/0: public_endpoint_cidrs must not "
            "include the whole internet",
        ),
        bad(
            {"eksPublicEndpointCidrs": "203.0.113.7/24"},
            "context eksPublicEndpointCidrs=203.0.113.7/24: public_endpoint_cidrs must be networks",
        ),
    ],
)
def test_a_bad_context_value_is_refused_naming_its_key(context: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        settings(**context)


def test_a_missing_model_artifact_names_its_key_and_how_to_make_one() -> None:
    with pytest.raises(
        ValueError,
        match=r"^context modelArtifact=build/nowhere/model\.tar\.gz: path: no such file .*"
        r"pack_model\(estimator, path\)",
    ):
        settings(modelArtifact="build/nowhere/model.tar.gz").model()


def test_a_missing_image_directory_names_its_key() -> None:
    with pytest.raises(
        ValueError, match=r"^context imageDirectory=nowhere: directory must be an existing folder"
    ):
        settings(imageDirectory="nowhere").image()


def test_the_local_model_is_not_needed_when_the_model_comes_from_s3() -> None:
    chosen = settings(modelArtifact="build/nowhere/model.tar.gz", modelS3Uri="s3://models/iris/model.tar.gz")

    chosen.model()


def test_the_cdk_cli_reports_a_bad_context_value_by_its_key(tmp_path: Path) -> None:
    """What README promises, through the real CLI: the user reads the key they typed."""
    completed = subprocess.run(
        ["npx", "cdk", "synth", "--quiet", "--output", str(tmp_path), "-c", "instanceType=m5.large"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env={**os.environ, "CDK_DISABLE_VERSION_CHECK": "1"},
    )

    assert completed.returncode != 0
    assert "ValueError: context instanceType=m5.large: instance_type must be" in completed.stderr


# --- limits of the keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "accepted"), edges(1))
def test_instance_count_is_at_least_1(value: int, accepted: bool) -> None:
    check(accepted, rf"^context instanceCount={value}: ", lambda: settings(instanceCount=str(value)))


@pytest.mark.parametrize(
    ("key", "minimum"), [("ecsDesiredCount", 0), ("ecsMinCapacity", 0), ("ecsMaxCapacity", 1)]
)
@pytest.mark.parametrize(("offset", "accepted"), [case(-1, False, "one below"), case(0, True, "the minimum")])
def test_ecs_counts_have_their_minimum(key: str, minimum: int, offset: int, accepted: bool) -> None:
    value = minimum + offset
    context = {"ecsDesiredCount": "0", key: str(value)}

    check(accepted, rf"^context {key}={value}: ", lambda: bare_settings(**context))


@pytest.mark.parametrize(("maximum", "accepted"), edges(3, unit=" tasks, against ecsMinCapacity=3"))
def test_ecs_max_capacity_is_at_least_the_min_capacity(maximum: int, accepted: bool) -> None:
    check(
        accepted,
        rf"^context ecsMinCapacity=3, ecsMaxCapacity={maximum}: min_capacity must be <= max_capacity",
        lambda: settings(ecsMinCapacity="3", ecsMaxCapacity=str(maximum)),
    )


@pytest.mark.parametrize(("value", "accepted"), edges(1, unit=" replica"))
def test_eks_replicas_is_at_least_1(value: int, accepted: bool) -> None:
    check(accepted, rf"^context eksReplicas={value}: ", lambda: bare_settings(eksReplicas=str(value)))


@pytest.mark.parametrize(("maximum", "accepted"), edges(3, unit=" replicas, against eksReplicas=3"))
def test_eks_max_replicas_is_at_least_the_replicas(maximum: int, accepted: bool) -> None:
    check(
        accepted,
        rf"^context eksReplicas=3, eksMaxReplicas={maximum}: max_replicas must be >= replicas",
        lambda: settings(eksReplicas="3", eksMaxReplicas=str(maximum)),
    )


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        case("2", True, "2"),
        case("+2", True, "+2 with its sign"),
        case(" 2 ", True, "2 with spaces around it"),
        case("-0", True, "-0, which is 0"),
        case("--1", False, "--1, two signs"),
        case("2.0", False, "2.0, a float"),
        case("²", False, "a superscript two, a digit that int() refuses"),
        case("1_000", False, "1_000, a Python literal"),
    ],
)
def test_integer_keys_take_whole_numbers_written_out(text: str, accepted: bool) -> None:
    check(
        accepted,
        "context key ecsDesiredCount must be an integer",
        lambda: bare_settings(ecsDesiredCount=text, ecsMaxCapacity="4"),
    )


# --- the ModelDataUrl output round trip -------------------------------------------------------------------


def test_the_model_data_url_output_is_accepted_back_as_model_s3_uri(demo_model_artifact: Path) -> None:
    """`cdk deploy` prints ModelDataUrl as CDK names file assets (<hash>.gz); passing it back must work."""
    first = SageMakerStack(App(context=PROJECT_CONTEXT), "SageMakerStack", settings=settings())
    output = Template.from_stack(first).to_json()["Outputs"]["ModelDataUrl"]["Value"]["Fn::Sub"]
    printed = output.replace("${AWS::AccountId}", "123456789012").replace("${AWS::Region}", "eu-west-1")
    assert printed.endswith(".gz")
    assert not printed.endswith(".tar.gz")

    second = SageMakerStack(
        App(context=PROJECT_CONTEXT), "SageMakerStack", settings=settings(modelS3Uri=printed)
    )

    template = Template.from_stack(second)
    template.has_resource_properties(
        "AWS::SageMaker::Model", {"PrimaryContainer": Match.object_like({"ModelDataUrl": printed})}
    )
    (model_object,) = [r for a, r, _ in permissions_of(template, second.endpoint.role) if a == "s3:GetObject"]
    assert flat(model_object).endswith(f':s3:::{printed.removeprefix("s3://")}"]]}}')
