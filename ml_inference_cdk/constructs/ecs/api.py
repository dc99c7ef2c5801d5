"""An API Gateway HTTP API in front of the internal load balancer: callers sign with SigV4, as for SageMaker.

The load balancer stays internal; the API reaches it through a VPC link, and every route requires AWS_IAM
authorization, so only principals that IAM allows ``execute-api:Invoke`` on the API get through
(``grant_invoke``). Access logs go to a KMS-encrypted log group; the stage throttles the whole API, a second
bound next to the optional WAF rate limit on the load balancer.
"""

from __future__ import annotations

import json
from typing import Final

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_apigatewayv2_integrations as integrations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

_ACCESS_LOG_FORMAT: Final = json.dumps(
    {
        "requestId": "$context.requestId",
        "caller": "$context.identity.caller",
        "sourceIp": "$context.identity.sourceIp",
        "requestTime": "$context.requestTime",
        "routeKey": "$context.routeKey",
        "status": "$context.status",
        "responseLength": "$context.responseLength",
        "integrationLatency": "$context.integrationLatency",
        "integrationError": "$context.integrationErrorMessage",
    }
)


def add_iam_http_api(
    scope: Construct,
    *,
    vpc: ec2.IVpc,
    listener: elbv2.ApplicationListener,
    log_key: kms.IKey,
    log_retention: logs.RetentionDays,
    throttling_rate_limit: int,
    throttling_burst_limit: int,
) -> apigwv2.HttpApi:
    """An HTTP API whose every route is AWS_IAM-authorized and forwards to ``listener`` over a VPC link."""
    # A VPC link without security groups gets the VPC's default one, which this construct strips of its rules:
    # give it its own, allowed out to the listener only.
    link_security_group = ec2.SecurityGroup(
        scope,
        "ApiVpcLinkSecurityGroup",
        vpc=vpc,
        description="Inference API VPC link: out to the load balancer listener only",
        allow_all_outbound=False,
    )
    listener.connections.allow_default_port_from(link_security_group, "From the inference API VPC link")
    vpc_link = apigwv2.VpcLink(
        scope,
        "ApiVpcLink",
        vpc=vpc,
        subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS),
        security_groups=[link_security_group],
    )
    api = apigwv2.HttpApi(
        scope,
        "Api",
        description="Inference API: SigV4-signed callers only (AWS_IAM on every route)",
        default_authorizer=authorizers.HttpIamAuthorizer(),
        default_integration=integrations.HttpAlbIntegration("LoadBalancer", listener, vpc_link=vpc_link),
    )
    access_logs = logs.LogGroup(
        scope,
        "ApiAccessLogs",
        encryption_key=log_key,
        retention=log_retention,
        removal_policy=RemovalPolicy.RETAIN,
    )
    stage = api.default_stage
    assert stage is not None, "HttpApi creates its $default stage"
    cfn_stage = stage.node.default_child
    assert isinstance(cfn_stage, apigwv2.CfnStage)
    cfn_stage.access_log_settings = apigwv2.CfnStage.AccessLogSettingsProperty(
        destination_arn=access_logs.log_group_arn, format=_ACCESS_LOG_FORMAT
    )
    cfn_stage.default_route_settings = apigwv2.CfnStage.RouteSettingsProperty(
        throttling_rate_limit=throttling_rate_limit, throttling_burst_limit=throttling_burst_limit
    )
    return api
