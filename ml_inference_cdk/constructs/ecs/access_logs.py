"""Application Load Balancer access logs to S3, also in region-agnostic stacks.

``ApplicationLoadBalancer.log_access_logs`` needs a concrete region (it picks the region's Elastic Load
Balancing account for the bucket policy) and fails with ``RegionRequiredEnableBvAccess`` otherwise - and this
project's stacks are region-agnostic unless the caller pins an ``env``. For those, the bucket policy grants
what every region needs and lets CloudFormation pick at deploy time: the region's ELB account where it has one
(regions before August 2022, from CDK's own region table), the
``logdelivery.elasticloadbalancing.amazonaws.com`` service principal that newer regions use, and the
``delivery.logs.amazonaws.com`` statements CDK adds in both cases.
"""

from __future__ import annotations

from typing import Final

from aws_cdk import (
    Aws,
    CfnCondition,
    CfnMapping,
    CfnResource,
    Duration,
    Fn,
    ICfnConditionExpression,
    RemovalPolicy,
    Stack,
    Token,
)
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.region_info import RegionInfo
from constructs import Construct

from ml_inference_cdk.constructs.control_tower import exempt
from ml_inference_cdk.constructs.nag import acknowledge, skip_checkov

_MAPPING_ID: Final = "ElbAccessLogAccounts"
_CONDITION_ID: Final = "ElbAccessLogRegionHasAccount"


def create_access_logs_bucket(scope: Construct, construct_id: str) -> s3.Bucket:
    """A private, SSL-only, versioned bucket with SSE-S3 (the only encryption ELB log delivery supports).

    Its object events go to Amazon EventBridge (CT.S3.PR.4), set on the CloudFormation resource itself rather
    than through ``event_bridge_enabled``, which adds a Lambda-backed custom resource.
    """
    bucket = s3.Bucket(
        scope,
        construct_id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        enforce_ssl=True,
        versioned=True,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        removal_policy=RemovalPolicy.RETAIN,
        lifecycle_rules=[
            s3.LifecycleRule(
                expiration=Duration.days(90),
                noncurrent_version_expiration=Duration.days(30),
                abort_incomplete_multipart_upload_after=Duration.days(7),
            )
        ],
    )
    acknowledge(
        bucket,
        {
            "AwsSolutions-S1": "This bucket holds the load balancer's access logs; logging access to the log "
            "bucket itself would need yet another log bucket. It is private, SSL-only and versioned.",
        },
    )
    skip_checkov(
        bucket,
        {"CKV_AWS_18": "The access-log bucket itself: logging access to it needs yet another log bucket."},
    )
    cfn_bucket = bucket.node.default_child
    assert isinstance(cfn_bucket, s3.CfnBucket)
    cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
        event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
    )
    exempt(
        bucket,
        {
            "CT.S3.PR.2": "This bucket receives the load balancer's access logs; logging access to the "
            "log bucket itself would need yet another log bucket, which would fail the same control. "
            "Bring your own with access_logs_bucket=.",
            "CT.S3.PR.9": "Object Lock without a retention period protects nothing, and a retention "
            "period makes access logs undeletable for that long, a choice for the account's records "
            "policy, not a library default. Bring a bucket with Object Lock and your retention with "
            "access_logs_bucket=.",
            "CT.S3.PR.10": "Elastic Load Balancing delivers access logs only to buckets encrypted with "
            "SSE-S3 (Amazon S3 managed keys); SSE-KMS is not supported for this bucket, by any option.",
        },
    )
    return bucket


def enable_access_logs(load_balancer: elbv2.ApplicationLoadBalancer, bucket: s3.IBucket, prefix: str) -> None:
    """Turn on access logs to ``bucket`` under ``prefix``, with the bucket policy ELB log delivery needs."""
    stack = Stack.of(load_balancer)
    if not Token.is_unresolved(stack.region):
        load_balancer.log_access_logs(bucket, prefix)
        return
    load_balancer.set_attribute("access_logs.s3.enabled", "true")
    load_balancer.set_attribute("access_logs.s3.bucket", bucket.bucket_name)
    load_balancer.set_attribute("access_logs.s3.prefix", prefix)
    objects = bucket.arn_for_objects(f"{prefix}/AWSLogs/{stack.account}/*")

    elb_account = Fn.condition_if(
        _region_has_account(stack).logical_id,
        f"arn:{Aws.PARTITION}:iam::{_accounts(stack).find_in_map(Aws.REGION, 'account')}:root",
        f"arn:{Aws.PARTITION}:iam::{Aws.ACCOUNT_ID}:root",  # newer regions: a no-op grant to this account
    ).to_string()
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject"],
            principals=[
                iam.ArnPrincipal(elb_account),
                iam.ServicePrincipal("logdelivery.elasticloadbalancing.amazonaws.com"),
            ],
            resources=[objects],
        )
    )
    delivery = iam.ServicePrincipal("delivery.logs.amazonaws.com")
    bucket.add_to_resource_policy(
        iam.PolicyStatement(
            actions=["s3:PutObject"],
            principals=[delivery],
            resources=[objects],
            conditions={"StringEquals": {"s3:x-amz-acl": "bucket-owner-full-control"}},
        )
    )
    bucket.add_to_resource_policy(
        iam.PolicyStatement(actions=["s3:GetBucketAcl"], principals=[delivery], resources=[bucket.bucket_arn])
    )
    # ELB checks that it can write when the attribute is set: create the policy first.
    load_balancer_resource = load_balancer.node.default_child
    policy = bucket.policy.node.default_child if bucket.policy is not None else None
    if isinstance(load_balancer_resource, CfnResource) and isinstance(policy, CfnResource):
        load_balancer_resource.add_resource_dependency(policy)


def _accounts(stack: Stack) -> CfnMapping:
    existing = stack.node.try_find_child(_MAPPING_ID)
    if isinstance(existing, CfnMapping):
        return existing
    regions = {
        region.name: {"account": region.elbv2_account}
        for region in RegionInfo.regions
        if region.elbv2_account
    }
    return CfnMapping(stack, _MAPPING_ID, mapping=regions)


def _region_has_account(stack: Stack) -> CfnCondition:
    existing = stack.node.try_find_child(_CONDITION_ID)
    if isinstance(existing, CfnCondition):
        return existing
    terms: list[ICfnConditionExpression] = [
        Fn.condition_equals(Aws.REGION, region.name) for region in RegionInfo.regions if region.elbv2_account
    ]
    while len(terms) > 10:  # Fn::Or takes 2-10 conditions: nest
        terms = [chunk[0] if len(chunk) == 1 else Fn.condition_or(*chunk) for chunk in _chunks(terms, 10)]
    return CfnCondition(stack, _CONDITION_ID, expression=Fn.condition_or(*terms))


def _chunks(items: list[ICfnConditionExpression], size: int) -> list[list[ICfnConditionExpression]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
