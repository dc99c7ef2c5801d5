"""Control Tower exemptions sit on the resource with their reason; KMS grants stay with AWS services."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Match, Template

from ml_inference_cdk.constructs.control_tower import exempt, restrict_grants_to_aws_services


def test_exempt_records_each_control_with_its_reason_in_the_resources_metadata() -> None:
    stack = Stack(App(), "Test")
    queue = sqs.Queue(stack, "Queue")
    exempt(queue, {"CT.SQS.PR.1": "a reason long enough to explain itself"})
    exempt(queue, {"CT.SQS.PR.2": "a second call adds, it does not replace"})

    (resource,) = Template.from_stack(stack).find_resources("AWS::SQS::Queue").values()
    assert resource["Metadata"]["cfn-guard"]["exemptions"] == [
        {"id": "CT.SQS.PR.1", "reason": "a reason long enough to explain itself"},
        {"id": "CT.SQS.PR.2", "reason": "a second call adds, it does not replace"},
    ]


@pytest.mark.parametrize(
    ("controls", "message"),
    [
        pytest.param(
            {"CT.SQS.PR.1": "  "}, "exempting CT.SQS.PR.1 needs a written reason", id="empty reason"
        ),
        pytest.param(
            {"ct-sqs-pr-1": "reason"}, "control ids look like CT.S3.PR.10, got 'ct-sqs-pr-1'", id="bad id"
        ),
    ],
)
def test_exempt_refuses_what_would_not_explain_a_failure(controls: dict[str, str], message: str) -> None:
    queue = sqs.Queue(Stack(App(), "Test"), "Queue")

    with pytest.raises(ValueError, match=message):
        exempt(queue, controls)


def test_exempt_refuses_a_construct_without_a_cloudformation_resource() -> None:
    stack = Stack(App(), "Test")

    with pytest.raises(ValueError, match="has no CloudFormation resource"):
        exempt(stack, {"CT.SQS.PR.1": "reason"})


def test_a_restricted_key_denies_grants_unless_an_aws_service_asks_for_its_resource() -> None:
    stack = Stack(App(), "Test")
    restrict_grants_to_aws_services(kms.Key(stack, "Key", enable_key_rotation=True))

    Template.from_stack(stack).has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Effect": "Deny",
                                "Action": "kms:CreateGrant",
                                "Condition": {
                                    "BoolIfExists": {
                                        "kms:GrantIsForAWSResource": "false",
                                        "aws:PrincipalIsAWSService": "false",
                                    }
                                },
                            }
                        )
                    ]
                )
            }
        },
    )
