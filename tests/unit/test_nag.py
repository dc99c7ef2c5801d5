"""Acknowledgements and skips carry written reasons, and sit on the resource they concern."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template

from ml_inference_cdk.constructs.nag import acknowledge, skip_checkov


def test_skip_checkov_records_each_check_with_its_reason_in_the_resources_metadata() -> None:
    stack = Stack(App(), "Test")
    queue = sqs.Queue(stack, "Queue")
    skip_checkov(queue, {"CKV_AWS_27": "encrypted with SSE-SQS"})
    skip_checkov(queue, {"CKV_AWS_999": "a second call adds, it does not replace"})

    (resource,) = Template.from_stack(stack).find_resources("AWS::SQS::Queue").values()
    assert resource["Metadata"]["checkov"]["skip"] == [
        {"id": "CKV_AWS_27", "comment": "encrypted with SSE-SQS"},
        {"id": "CKV_AWS_999", "comment": "a second call adds, it does not replace"},
    ]


def test_skip_checkov_refuses_an_empty_reason() -> None:
    queue = sqs.Queue(Stack(App(), "Test"), "Queue")
    with pytest.raises(ValueError, match="skipping CKV_AWS_27 needs a written reason"):
        skip_checkov(queue, {"CKV_AWS_27": "  "})


def test_skip_checkov_refuses_a_construct_without_a_cloudformation_resource() -> None:
    stack = Stack(App(), "Test")
    with pytest.raises(ValueError, match="no CloudFormation resource"):
        skip_checkov(stack, {"CKV_AWS_27": "reason"})


def test_acknowledge_refuses_an_empty_reason() -> None:
    queue = sqs.Queue(Stack(App(), "Test"), "Queue")
    with pytest.raises(ValueError, match="AwsSolutions-SQS3 needs a written reason"):
        acknowledge(queue, {"AwsSolutions-SQS3": ""})
