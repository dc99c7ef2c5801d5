"""ModelPackageGroup: the registry resource, grants on exactly its group and versions, imports, versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment, Stack
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from ml_inference_cdk import ModelPackage, ModelPackageGroup
from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from tests.unit.boundaries import case, check, lengths, literally

ACCOUNT = "123456789012"
REGION = "eu-west-1"


def new_stack() -> Stack:
    return Stack(App(), "Registry", env=Environment(account=ACCOUNT, region=REGION))


def statements(stack: Stack) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for policy in Template.from_stack(stack).find_resources("AWS::IAM::Policy").values():
        found.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def allowed(stack: Stack) -> set[tuple[str, str]]:
    """(action, resource) pairs the stack's policies allow, with references rendered as text."""
    pairs = set()
    for statement in statements(stack):
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                pairs.add((action, json.dumps(resource, separators=(",", ":"))))
    return pairs


def arn(path: str) -> str:
    """An ARN in this stack's account and region, as the template spells it (the partition a reference)."""
    joined = {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, f":sagemaker:{REGION}:{ACCOUNT}:{path}"]]}
    return json.dumps(joined, separators=(",", ":"))


def group_arn(group: ModelPackageGroup) -> str:
    stack = Stack.of(group)
    return json.dumps(stack.resolve(group.model_package_group_arn), separators=(",", ":"))


VERSIONS_ARN = arn("model-package/churn/*")


def test_the_group_is_a_model_package_group_with_its_name_and_description() -> None:
    stack = new_stack()
    ModelPackageGroup(stack, "Group", model_package_group_name="churn", description="Churn classifier")

    Template.from_stack(stack).has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup",
        {"ModelPackageGroupName": "churn", "ModelPackageGroupDescription": "Churn classifier"},
    )


def test_the_group_gets_a_stable_lowercase_name_by_default() -> None:
    stack = new_stack()
    group = ModelPackageGroup(stack, "Group")

    assert group.model_package_group_name == group.model_package_group_name.lower()
    assert group.model_package_group_name.startswith("registry-group")


def test_grant_read_describes_the_group_and_describes_and_lists_its_versions_only() -> None:
    stack = new_stack()
    group = ModelPackageGroup(stack, "Group", model_package_group_name="churn")
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())

    group.grant_read(reader)

    pairs = allowed(stack)
    assert {action for action, _ in pairs} == {
        "sagemaker:DescribeModelPackageGroup",
        "sagemaker:DescribeModelPackage",
        "sagemaker:ListModelPackages",
    }
    assert {resource for action, resource in pairs if action == "sagemaker:DescribeModelPackageGroup"} == {
        group_arn(group)
    }
    assert {resource for action, resource in pairs if action == "sagemaker:DescribeModelPackage"} == {
        VERSIONS_ARN
    }
    # ListModelPackages has no resource type in the service authorization reference: scoped, it never matches.
    assert {resource for action, resource in pairs if action == "sagemaker:ListModelPackages"} == {'"*"'}


def test_grant_register_creates_versions_in_this_group_only() -> None:
    stack = new_stack()
    group = ModelPackageGroup(stack, "Group", model_package_group_name="churn")
    pipeline = iam.Role(stack, "Pipeline", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))

    group.grant_register(pipeline)

    pairs = allowed(stack)
    create = {resource for action, resource in pairs if action == "sagemaker:CreateModelPackage"}
    assert len(create) == 2
    assert VERSIONS_ARN in create
    assert group_arn(group) in create
    assert {action for action, _ in pairs} == {
        "sagemaker:CreateModelPackage",
        "sagemaker:DescribeModelPackageGroup",
    }


def test_a_mixed_case_group_grants_its_versions_under_both_spellings() -> None:
    stack = new_stack()
    group = ModelPackageGroup(stack, "Group", model_package_group_name="Churn")
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())

    group.grant_read(reader)

    versions = {resource for action, resource in allowed(stack) if action == "sagemaker:DescribeModelPackage"}
    assert versions == {
        arn("model-package/Churn/*"),
        arn("model-package/churn/*"),
    }


def test_the_grants_pass_cdk_nag_with_the_versions_wildcard_acknowledged_on_the_grantee(
    tmp_path: Path,
) -> None:
    app = App(outdir=str(tmp_path))
    apply_aws_solutions_checks(app)
    stack = Stack(app, "Registry", env=Environment(account=ACCOUNT, region=REGION))
    group = ModelPackageGroup(stack, "Group", model_package_group_name="Churn")
    pipeline = iam.Role(stack, "Pipeline", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"))
    group.grant_register(pipeline)
    group.grant_read(pipeline)

    app.synth()  # raises on an unacknowledged error finding

    report = json.loads((tmp_path / "validation-report.json").read_text())
    (nag,) = [plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"]
    assert nag["violations"] == []
    acknowledged = nag["suppressedViolations"]
    assert {finding["acknowledgedAt"] for finding in acknowledged} == {"Registry/Pipeline"}
    assert any("numbered by SageMaker" in finding["reason"] for finding in acknowledged)
    assert all(
        "numbered by SageMaker" in finding["reason"]
        or "ListModelPackages has no resource-level" in finding["reason"]
        for finding in acknowledged
    )


def test_an_imported_group_grants_on_its_name_in_this_account_and_region() -> None:
    stack = new_stack()
    group = ModelPackageGroup.from_model_package_group_name(stack, "Imported", "fraud")
    reader = iam.Role(stack, "Reader", assumed_by=iam.AccountRootPrincipal())

    group.grant_read(reader)

    assert (
        "sagemaker:DescribeModelPackageGroup",
        arn("model-package-group/fraud"),
    ) in allowed(stack)
    Template.from_stack(stack).resource_count_is("AWS::SageMaker::ModelPackageGroup", 0)


def test_a_version_of_the_group_is_its_versioned_model_package_arn() -> None:
    stack = new_stack()
    group = ModelPackageGroup(stack, "Group", model_package_group_name="churn")

    resolved = json.dumps(stack.resolve(group.model_package(3).arn), separators=(",", ":"))

    assert resolved == arn("model-package/churn/3")


NAMES = [
    *lengths(1, 63, lambda n: "a" * n),
    case("a-b", True, "an inner hyphen"),
    case("-a", False, "a leading hyphen"),
    case("a_b", False, "an underscore"),
]


@pytest.mark.parametrize(("name", "accepted"), NAMES)
def test_a_group_name_is_1_to_63_letters_digits_or_inner_hyphens(name: str, accepted: bool) -> None:
    check(
        accepted,
        "model_package_group_name must be 1-63 letters",
        lambda: ModelPackageGroup(new_stack(), "Group", model_package_group_name=name),
    )


@pytest.mark.parametrize(("name", "accepted"), NAMES)
def test_an_imported_group_name_is_checked_the_same_way(name: str, accepted: bool) -> None:
    check(
        accepted,
        "model_package_group_name must be 1-63 letters",
        lambda: ModelPackageGroup.from_model_package_group_name(new_stack(), "Imported", name),
    )


@pytest.mark.parametrize(("description", "accepted"), lengths(0, 1024, lambda n: "d" * n))
def test_a_description_is_at_most_1024_characters(description: str, accepted: bool) -> None:
    check(
        accepted,
        rf"description must be at most 1024 characters, got {len(description)}",
        lambda: ModelPackageGroup(new_stack(), "Group", description=description),
    )


@pytest.mark.parametrize(
    ("version", "accepted"),
    [
        case(0, False, "0"),
        case(1, True, "1"),
        case(999_999_999, True, "the largest"),
        case(10**9, False, "10^9"),
    ],
)
def test_a_version_is_1_to_999999999(version: int, accepted: bool) -> None:
    group = ModelPackageGroup(new_stack(), "Group", model_package_group_name="churn")

    check(accepted, rf"version must be 1-999999999, got {version}", lambda: group.model_package(version))


PACKAGE_ARNS = [
    case(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn/3", True, "a versioned package"),
    case(f"arn:aws-cn:sagemaker:cn-north-1:{ACCOUNT}:model-package/churn/12", True, "another partition"),
    case(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn", False, "an unversioned package"),
    case(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/churn", False, "a group"),
    case(f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/churn/0", False, "version 0"),
    case("churn/3", False, "not an ARN"),
]


@pytest.mark.parametrize(("arn", "accepted"), PACKAGE_ARNS)
def test_a_model_package_arn_names_a_version_in_a_group(arn: str, accepted: bool) -> None:
    check(
        accepted,
        literally("model package ARN must be ") + ".*" + literally(f"got {arn!r}"),
        lambda: ModelPackage.from_arn(arn),
    )
