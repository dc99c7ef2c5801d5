"""The load balancer in front of FargateInferenceService: listeners, target group, TLS, DNS, access logs."""

from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import Duration, Token
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as route53_targets
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ml_inference_cdk.constructs.contract import PING_PATH
from ml_inference_cdk.constructs.control_tower import exempt
from ml_inference_cdk.constructs.ecs.access_logs import create_access_logs_bucket, enable_access_logs
from ml_inference_cdk.constructs.ecs.exposure import ANYWHERE, ListenerAuthentication
from ml_inference_cdk.constructs.nag import acknowledge, skip_checkov


@dataclass(frozen=True)
class LoadBalancerParts:
    load_balancer: elbv2.ApplicationLoadBalancer
    target_group: elbv2.ApplicationTargetGroup
    listener: elbv2.ApplicationListener
    """The listener that forwards to the service (HTTPS :443 when TLS is on, else HTTP :80)."""
    redirect_listener: elbv2.ApplicationListener | None
    """HTTP :80 redirecting to HTTPS, when TLS is on."""
    access_logs_bucket: s3.IBucket
    security_group: ec2.SecurityGroup
    https: bool


def add_load_balancer(
    scope: Construct,
    *,
    vpc: ec2.IVpc,
    service: ecs.FargateService,
    container_port: int,
    internet_facing: bool,
    allowed_cidrs: list[str] | None,
    authentication: ListenerAuthentication | None,
    certificate: acm.ICertificate | None,
    domain_name: str | None,
    hosted_zone: route53.IHostedZone | None,
    ssl_policy: elbv2.SslPolicy | None,
    deletion_protection: bool,
    access_logs_bucket: s3.IBucket | None,
) -> LoadBalancerParts:
    """Create the load balancer in ``scope`` and put ``service`` behind it (arguments as on the construct)."""
    https = certificate is not None or domain_name is not None
    security_group = ec2.SecurityGroup(
        scope,
        "LoadBalancerSecurityGroup",
        vpc=vpc,
        description="Inference load balancer: HTTP(S) from the allowed CIDRs, out to the tasks only",
        allow_all_outbound=False,
    )
    cidrs = allowed_cidrs or (["0.0.0.0/0"] if internet_facing else [vpc.vpc_cidr_block])
    for cidr in cidrs:
        peer = ec2.Peer.ipv6(cidr) if ":" in cidr else ec2.Peer.ipv4(cidr)
        source = "the VPC" if Token.is_unresolved(cidr) else cidr
        for listener_port in [80, 443] if https else [80]:
            security_group.add_ingress_rule(peer, ec2.Port.tcp(listener_port), f"HTTP(S) from {source}")
    if any(cidr in ANYWHERE for cidr in cidrs):
        skip_checkov(
            security_group,
            {
                "CKV_AWS_260": "An internet-facing inference endpoint behind an authenticate action accepts "
                "HTTPS from anywhere (port 80 only redirects to HTTPS); the listener lets only "
                "authenticated requests through. Narrow it further with allowed_cidrs.",
            },
        )
        acknowledge(
            security_group,
            {
                "AwsSolutions-EC23": "An internet-facing inference endpoint behind an authenticate action on "
                "its HTTPS listener: any address may connect, only authenticated requests reach the service "
                "(HTTP only redirects); pass allowed_cidrs to narrow it.",
            },
        )
    elif any(Token.is_unresolved(cidr) for cidr in cidrs):
        acknowledge(
            security_group,
            {
                "AwsSolutions-EC23": "The internal load balancer admits only the VPC's own CIDR block, a "
                "deploy-time attribute cdk-nag cannot read at synth time; nothing outside the VPC gets in.",
            },
        )

    load_balancer = elbv2.ApplicationLoadBalancer(
        scope,
        "LoadBalancer",
        vpc=vpc,
        internet_facing=internet_facing,
        security_group=security_group,
        drop_invalid_header_fields=True,
        deletion_protection=deletion_protection,
        vpc_subnets=ec2.SubnetSelection(
            subnet_type=ec2.SubnetType.PUBLIC if internet_facing else ec2.SubnetType.PRIVATE_WITH_EGRESS
        ),
    )
    bucket = access_logs_bucket or create_access_logs_bucket(scope, "AccessLogs")
    enable_access_logs(load_balancer, bucket, prefix="alb")

    target_group = elbv2.ApplicationTargetGroup(
        scope,
        "TargetGroup",
        vpc=vpc,
        port=container_port,
        protocol=elbv2.ApplicationProtocol.HTTP,
        target_type=elbv2.TargetType.IP,
        # Copilot's default: long enough for an in-flight /invocations (60 s server timeout) to finish.
        deregistration_delay=Duration.seconds(60),
        health_check=elbv2.HealthCheck(
            path=PING_PATH,
            healthy_http_codes="200",
            interval=Duration.seconds(10),
            timeout=Duration.seconds(5),
            healthy_threshold_count=2,
            unhealthy_threshold_count=3,
        ),
        targets=[service],
    )

    if domain_name is not None and certificate is None and hosted_zone is not None:
        certificate = acm.Certificate(
            scope,
            "Certificate",
            domain_name=domain_name,
            validation=acm.CertificateValidation.from_dns(hosted_zone),
        )
    redirect_listener = None
    if certificate is not None:
        listener = load_balancer.add_listener(
            "HttpsListener",
            port=443,
            protocol=elbv2.ApplicationProtocol.HTTPS,
            certificates=[elbv2.ListenerCertificate.from_certificate_manager(certificate)],
            ssl_policy=ssl_policy or elbv2.SslPolicy.RECOMMENDED_TLS,
            open=False,
            default_action=_forward(target_group, authentication),
        )
        redirect_listener = load_balancer.add_listener(
            "HttpListener",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_action=elbv2.ListenerAction.redirect(protocol="HTTPS", port="443", permanent=True),
        )
    else:
        listener = load_balancer.add_listener(
            "HttpListener",
            port=80,
            protocol=elbv2.ApplicationProtocol.HTTP,
            open=False,
            default_target_groups=[target_group],
        )
        plain_http = "No certificate or domain name was given, so there is nothing to serve HTTPS with; pass "
        skip_checkov(
            listener,
            {
                "CKV_AWS_2": plain_http + "certificate= or domain_name= and HTTP only redirects to HTTPS.",
                "CKV_AWS_103": plain_http
                + "certificate= or domain_name= for TLS 1.2+ (the default SSL policy).",
            },
        )
        exempt(
            listener,
            {
                "CT.ELASTICLOADBALANCING.PR.1": plain_http + "certificate= or domain_name= and HTTP only "
                "redirects to HTTPS. Without one the load balancer is internal (or internet-facing only with "
                "allow_public_http=True), so plain HTTP stays inside the VPC or was chosen explicitly.",
            },
        )
    if domain_name is not None and hosted_zone is not None:
        route53.ARecord(
            scope,
            "AliasRecord",
            zone=hosted_zone,
            record_name=domain_name,
            target=route53.RecordTarget.from_alias(route53_targets.LoadBalancerTarget(load_balancer)),
        )
    return LoadBalancerParts(
        load_balancer=load_balancer,
        target_group=target_group,
        listener=listener,
        redirect_listener=redirect_listener,
        access_logs_bucket=bucket,
        security_group=security_group,
        https=https,
    )


def _forward(
    target_group: elbv2.ApplicationTargetGroup, authentication: ListenerAuthentication | None
) -> elbv2.ListenerAction:
    forward = elbv2.ListenerAction.forward([target_group])
    return authentication.action(forward) if authentication is not None else forward
