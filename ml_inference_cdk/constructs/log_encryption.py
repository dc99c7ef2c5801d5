"""A KMS key for CloudWatch Logs, so log groups are encrypted with a key the account controls.

CloudWatch Logs encrypts every log group at rest; AWS Control Tower's CT.CLOUDWATCH.PR.3 asks for a customer
managed key, which lets the account audit and revoke access to the logs. The key rotates yearly, CloudWatch
Logs may use it only for this account's log groups in this region, and grants are limited to AWS services
(CT.KMS.PR.3).
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ml_inference_cdk.constructs.control_tower import restrict_grants_to_aws_services


def create_log_key(scope: Construct, construct_id: str, *, description: str) -> kms.Key:
    """A rotating key that CloudWatch Logs may use for the log groups of this account and region."""
    stack = Stack.of(scope)
    key = kms.Key(scope, construct_id, description=description, enable_key_rotation=True)
    key.add_to_resource_policy(
        iam.PolicyStatement(
            principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
            actions=[
                "kms:Encrypt*",
                "kms:Decrypt*",
                "kms:ReEncrypt*",
                "kms:GenerateDataKey*",
                "kms:Describe*",
            ],
            resources=["*"],
            conditions={
                "ArnLike": {
                    "kms:EncryptionContext:aws:logs:arn": (
                        f"arn:{stack.partition}:logs:{stack.region}:{stack.account}:log-group:*"
                    )
                }
            },
        )
    )
    restrict_grants_to_aws_services(key)
    return key
