"""What an endpoint's execution role (and its asynchronous callers) may do, and nothing more.

Each feature adds exactly what it uses. Where IAM cannot be narrower (actions without resource-level
permissions, names SageMaker chooses at run time), the cdk-nag finding is acknowledged on the role concerned
with the reason, using the finding id cdk-nag prints.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from aws_cdk import ArnFormat, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ml_inference_cdk.constructs.nag import acknowledge
from ml_inference_cdk.constructs.sagemaker.options import AsyncInference, DataCapture
from ml_inference_cdk.constructs.sagemaker.scaling import INSTANCE_METRICS_NAMESPACE

OUTPUT_KEY_ACTIONS: Final = ("kms:Encrypt", "kms:GenerateDataKey", "kms:Decrypt")
"""What writing SSE-KMS objects needs (Decrypt: for multipart uploads), listed so no wildcard appears."""
VOLUME_KEY_ACTIONS: Final = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:GenerateDataKey",
    "kms:CreateGrant",
    "kms:DescribeKey",
)
"""What SageMaker needs of the role to encrypt the instances' storage volumes with a customer managed key."""

LOG_ACTIONS: Final = (
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "logs:DescribeLogStreams",
)
"""What SageMaker needs of a role to write a container's logs."""

_UNSCOPABLE = (
    "Only actions without resource-level permissions use '*': ecr:GetAuthorizationToken (pulling the image), "
    "cloudwatch:PutMetricData (limited by a cloudwatch:namespace condition to /aws/sagemaker/Endpoints) and, "
    "in a VPC, the ec2:Describe* calls SageMaker makes before it creates network interfaces."
)
_ASYNC_OBJECTS = (
    "Asynchronous requests and responses are objects whose keys SageMaker generates per request; access is "
    "limited to the endpoint's input prefix (read) and output and failure prefixes (write)."
)


def grant_logs_and_metrics(scope: Construct, role: iam.IRole, endpoint_name: str) -> None:
    """The endpoint's own log group, and metrics in the /aws/sagemaker/Endpoints namespace only."""
    grant_log_group(
        scope,
        role,
        f"/aws/sagemaker/Endpoints/{endpoint_name}",
        "SageMaker names the log streams after the instances it starts; access is limited to this endpoint's "
        "own log group.",
    )
    grant_metrics(role, INSTANCE_METRICS_NAMESPACE)
    acknowledge(role, {"AwsSolutions-IAM5[Resource::*]": _UNSCOPABLE})


def grant_log_group(scope: Construct, role: iam.IRole, log_group_name: str, streams_reason: str) -> None:
    """Write to one log group SageMaker creates, in streams it names (acknowledged: ``streams_reason``)."""
    log_group = Stack.of(scope).format_arn(
        service="logs",
        resource="log-group",
        resource_name=log_group_name,
        arn_format=ArnFormat.COLON_RESOURCE_NAME,
    )
    log_streams = f"{log_group}:log-stream:*"
    _allow(role, LOG_ACTIONS, [log_group, log_streams])
    acknowledge(role, {wildcard_finding(scope, log_streams): streams_reason})


def grant_metrics(role: iam.IRole, namespace: str) -> None:
    """cloudwatch:PutMetricData (no resource-level permissions) held to one namespace by a condition."""
    _allow(role, ["cloudwatch:PutMetricData"], ["*"], {"StringEquals": {"cloudwatch:namespace": namespace}})


def grant_network_interfaces(
    scope: Construct,
    role: iam.IRole,
    vpc: ec2.IVpc,
    subnet_ids: Sequence[str],
    groups: Sequence[ec2.ISecurityGroup],
) -> None:
    """Network interfaces created only in the given subnets and security groups, deleted only in the VPC."""
    stack = Stack.of(scope)
    interfaces = stack.format_arn(service="ec2", resource="network-interface", resource_name="*")
    _allow(
        role,
        [
            "ec2:DescribeVpcs",
            "ec2:DescribeDhcpOptions",
            "ec2:DescribeSubnets",
            "ec2:DescribeSecurityGroups",
            "ec2:DescribeNetworkInterfaces",
        ],
        ["*"],
    )
    _allow(
        role,
        ["ec2:CreateNetworkInterface"],
        [
            interfaces,
            *(
                stack.format_arn(service="ec2", resource="subnet", resource_name=subnet)
                for subnet in subnet_ids
            ),
            *(
                stack.format_arn(
                    service="ec2", resource="security-group", resource_name=group.security_group_id
                )
                for group in groups
            ),
        ],
    )
    _allow(
        role,
        [
            "ec2:CreateNetworkInterfacePermission",
            "ec2:DeleteNetworkInterface",
            "ec2:DeleteNetworkInterfacePermission",
        ],
        [interfaces],
        {"ArnEquals": {"ec2:Vpc": vpc.vpc_arn}},
    )
    acknowledge(
        role,
        {
            wildcard_finding(
                scope, interfaces
            ): "SageMaker creates the endpoint's network interfaces, so their ids "
            "are unknown in advance; creation is limited to the given subnets and security groups, "
            "deletion to interfaces in this VPC.",
        },
    )


def grant_volume_key(role: iam.IRole, key: kms.IKey) -> None:
    key.grant(role, *VOLUME_KEY_ACTIONS)


def grant_async_inference(scope: Construct, role: iam.IRole, settings: AsyncInference) -> None:
    """Read the input prefix, write the output and failure prefixes, publish to the topics."""
    bucket = settings.bucket
    writes = [object_arn(bucket, settings.output_prefix), object_arn(bucket, settings.failure_prefix)]
    reads = [object_arn(bucket, settings.input_prefix)]
    _allow(role, ["s3:PutObject"], writes)
    _allow(role, ["s3:GetObject"], reads)
    for key in (bucket.encryption_key, settings.encryption_key):
        if key is not None:
            key.grant(role, *OUTPUT_KEY_ACTIONS)
    for topic in (settings.success_topic, settings.error_topic):
        if topic is not None:
            _allow(role, ["sns:Publish"], [topic.topic_arn])
            if topic.master_key is not None:
                topic.master_key.grant(role, "kms:GenerateDataKey", "kms:Decrypt")
    acknowledge(role, {wildcard_finding(scope, arn): _ASYNC_OBJECTS for arn in [*writes, *reads]})


def grant_async_caller(scope: Construct, grantee: iam.IGrantable, settings: AsyncInference) -> iam.Grant:
    """Upload requests to the input prefix, read responses and failures."""
    bucket = settings.bucket
    upload = object_arn(bucket, settings.input_prefix)
    results = [object_arn(bucket, settings.output_prefix), object_arn(bucket, settings.failure_prefix)]
    grant = iam.Grant.add_to_principal(grantee=grantee, actions=["s3:PutObject"], resource_arns=[upload])
    grant = grant.combine(
        iam.Grant.add_to_principal(grantee=grantee, actions=["s3:GetObject"], resource_arns=results)
    )
    if bucket.encryption_key is not None:
        bucket.encryption_key.grant(grantee, *OUTPUT_KEY_ACTIONS)
    if settings.encryption_key is not None:
        settings.encryption_key.grant_decrypt(grantee)
    if isinstance(grantee, Construct):
        acknowledge(grantee, {wildcard_finding(scope, arn): _ASYNC_OBJECTS for arn in [upload, *results]})
    return grant


def grant_data_capture(scope: Construct, role: iam.IRole, settings: DataCapture) -> None:
    """Write under the capture prefix only."""
    destination = object_arn(settings.bucket, settings.prefix)
    _allow(role, ["s3:PutObject"], [destination])
    for key in (settings.bucket.encryption_key, settings.encryption_key):
        if key is not None:
            key.grant(role, *OUTPUT_KEY_ACTIONS)
    acknowledge(
        role,
        {
            wildcard_finding(
                scope, destination
            ): "Data capture writes objects per endpoint, variant and hour under "
            "keys SageMaker generates; the role may write only under the capture prefix.",
        },
    )


def object_arn(bucket: s3.IBucket, prefix: str) -> str:
    return bucket.arn_for_objects(f"{prefix}*")


def grant_model_package(role: iam.IRole, package_arn: str) -> None:
    """Describe exactly the registered version a model serves (SageMaker reads it to create the model)."""
    _allow(role, ["sagemaker:DescribeModelPackage"], [package_arn])


def wildcard_finding(scope: Construct, arn: str) -> str:
    """The id cdk-nag's AwsSolutions-IAM5 reports for a wildcard resource ARN, for an acknowledgement.

    cdk-nag resolves the policy and flattens CloudFormation references (``<LogicalId.Arn>``,
    ``<AWS::Region>``); this does the same to the ARN, so the acknowledgement matches exactly. (An ARN that
    only becomes a cross-stack import at synth time flattens differently: acknowledge that one yourself.)
    """
    return f"AwsSolutions-IAM5[Resource::{_flatten(Stack.of(scope).resolve(arn))}]"


def _allow(
    role: iam.IRole,
    actions: Sequence[str],
    resources: Sequence[str],
    conditions: Mapping[str, Any] | None = None,
) -> None:
    role.add_to_principal_policy(
        iam.PolicyStatement(
            actions=list(actions), resources=list(resources), conditions=dict(conditions or {}) or None
        )
    )


def _flatten(node: Any) -> str:
    """cdk-nag's flattenCfnReference, in Python."""
    if node is None:
        return ""
    if isinstance(node, str):
        return node.replace("${", "<").replace("}", ">")
    if isinstance(node, dict):
        if "Fn::Join" in node:
            delimiter, items = node["Fn::Join"]
            return str(delimiter).join(_flatten(item) for item in items)
        if "Fn::Sub" in node:
            return _flatten(node["Fn::Sub"])
        if "Fn::GetAtt" in node:
            resource, attribute = node["Fn::GetAtt"]
            return f"<{_flatten(resource)}.{_flatten(attribute)}>"
        if "Fn::ImportValue" in node:
            return _flatten(node["Fn::ImportValue"])
        if "Ref" in node:
            return f"<{_flatten(node['Ref'])}>"
    return json.dumps(node, separators=(",", ":"))
