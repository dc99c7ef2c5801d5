"""InferenceRepository: an ECR repository with the production defaults on, and grants that include its key."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk.assertions import Capture, Match, Template

from ml_inference_cdk.constructs.repository import InferenceRepository
from tests.unit.test_sagemaker_endpoint import logical_id, new_stack, permissions_of


def repository_in(stack: Stack | None = None, **props: Any) -> InferenceRepository:
    return InferenceRepository(stack or new_stack(), "Repository", **props)


def template_of(repository: InferenceRepository) -> Template:
    return Template.from_stack(Stack.of(repository))


def lifecycle_rules(template: Template) -> list[dict[str, Any]]:
    policy = Capture()
    template.has_resource_properties(
        "AWS::ECR::Repository", {"LifecyclePolicy": {"LifecyclePolicyText": policy}}
    )
    rules: list[dict[str, Any]] = json.loads(policy.as_string())["rules"]
    return rules


@pytest.fixture(scope="module")
def template() -> Template:
    return template_of(repository_in())


def test_repository_scans_every_pushed_image(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECR::Repository", {"ImageScanningConfiguration": {"ScanOnPush": True}}
    )


def test_repository_tags_are_immutable(template: Template) -> None:
    template.has_resource_properties("AWS::ECR::Repository", {"ImageTagMutability": "IMMUTABLE"})


def test_repository_is_encrypted_with_aes256_by_default(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECR::Repository", {"EncryptionConfiguration": {"EncryptionType": "AES256"}}
    )


def test_repository_expires_untagged_images_after_a_day_and_keeps_the_newest_30(template: Template) -> None:
    assert [
        (rule["rulePriority"], rule["selection"], rule["action"]) for rule in lifecycle_rules(template)
    ] == [
        (
            1,
            {"tagStatus": "untagged", "countType": "sinceImagePushed", "countNumber": 1, "countUnit": "days"},
            {"type": "expire"},
        ),
        (2, {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 30}, {"type": "expire"}),
    ]


def test_repository_is_retained_when_the_stack_is_deleted(template: Template) -> None:
    template.has_resource(
        "AWS::ECR::Repository",
        {
            "DeletionPolicy": "Retain",
            "UpdateReplacePolicy": "Retain",
            "Properties": Match.object_like({"EmptyOnDelete": Match.absent()}),
        },
    )


def test_repository_gets_a_stable_lowercase_name_from_its_path(template: Template) -> None:
    name = Capture()
    template.has_resource_properties("AWS::ECR::Repository", {"RepositoryName": name})

    assert name.as_string().startswith("teststack-repository-")
    assert name.as_string() == name.as_string().lower()


def test_repository_name_can_be_chosen() -> None:
    template_of(repository_in(repository_name="ml/iris-inference")).has_resource_properties(
        "AWS::ECR::Repository", {"RepositoryName": "ml/iris-inference"}
    )


def test_lifecycle_and_scanning_and_mutability_are_configurable() -> None:
    template = template_of(
        repository_in(
            image_scan_on_push=False,
            immutable_tags=False,
            max_image_count=5,
            untagged_image_expiry=Duration.days(7),
        )
    )

    template.has_resource_properties(
        "AWS::ECR::Repository",
        {"ImageScanningConfiguration": {"ScanOnPush": False}, "ImageTagMutability": "MUTABLE"},
    )
    assert [rule["selection"]["countNumber"] for rule in lifecycle_rules(template)] == [7, 5]


def test_destroy_removal_policy_deletes_and_empties_the_repository() -> None:
    template_of(repository_in(removal_policy=RemovalPolicy.DESTROY)).has_resource(
        "AWS::ECR::Repository",
        {"DeletionPolicy": "Delete", "Properties": Match.object_like({"EmptyOnDelete": True})},
    )


def test_a_kms_key_encrypts_the_repository() -> None:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    template = template_of(repository_in(stack, encryption_key=key))

    template.has_resource_properties(
        "AWS::ECR::Repository",
        {
            "EncryptionConfiguration": {
                "EncryptionType": "KMS",
                "KmsKey": {"Fn::GetAtt": [logical_id(key.node.default_child), "Arn"]},
            }
        },
    )


def test_grant_pull_allows_pulling_from_this_repository_and_decrypting_with_its_key() -> None:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    repository = repository_in(stack, encryption_key=key)
    puller = iam.Role(stack, "Puller", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    repository.grant_pull(puller)
    permissions = permissions_of(template_of(repository), puller)
    repository_arn = {"Fn::GetAtt": [logical_id(repository.repository.node.default_child), "Arn"]}
    key_arn = {"Fn::GetAtt": [logical_id(key.node.default_child), "Arn"]}

    assert {(a, json.dumps(r)) for a, r, _ in permissions} == {
        ("ecr:BatchCheckLayerAvailability", json.dumps(repository_arn)),
        ("ecr:GetDownloadUrlForLayer", json.dumps(repository_arn)),
        ("ecr:BatchGetImage", json.dumps(repository_arn)),
        ("ecr:GetAuthorizationToken", json.dumps("*")),
        ("kms:Decrypt", json.dumps(key_arn)),
    }


def test_grant_push_allows_pushing_to_this_repository_and_encrypting_with_its_key() -> None:
    stack = new_stack()
    key = kms.Key(stack, "Key")
    repository = repository_in(stack, encryption_key=key)
    pusher = iam.Role(stack, "Pusher", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
    repository.grant_push(pusher)
    actions = {a for a, _, _ in permissions_of(template_of(repository), pusher)}

    assert {
        "ecr:PutImage",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
    } <= actions
    assert {"kms:Encrypt", "kms:Decrypt"} <= actions


def test_grants_without_a_key_touch_no_kms() -> None:
    stack = new_stack()
    repository = repository_in(stack)
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("ecs-tasks.amazonaws.com"))
    repository.grant_pull(role)
    repository.grant_push(role)

    assert not [a for a, _, _ in permissions_of(template_of(repository), role) if a.startswith("kms:")]


def test_attributes_resolve_to_the_repository() -> None:
    repository = repository_in()
    stack = Stack.of(repository)
    repository_id = logical_id(repository.repository.node.default_child)

    assert stack.resolve(repository.repository_arn) == {"Fn::GetAtt": [repository_id, "Arn"]}
    assert stack.resolve(repository.repository_name) == {"Ref": repository_id}
    assert {"Ref": repository_id} in stack.resolve(repository.repository_uri)["Fn::Join"][1]


@pytest.mark.parametrize("name", ["A", "Upper/Case", "-leading", "trailing-", "double//slash"])
def test_repository_name_must_be_a_valid_ecr_name(name: str) -> None:
    with pytest.raises(ValueError, match="repository_name must be 2-256 characters of lowercase letters"):
        repository_in(repository_name=name)
