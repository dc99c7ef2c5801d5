"""EcsStack: the inference image and model as a load-balanced ECS Fargate service, private by default."""

from __future__ import annotations

from typing import Any, Final

from aws_cdk import Aspects, CfnOutput, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_route53 as route53
from constructs import Construct

from ml_inference_cdk.constructs.ecs.exposure import ListenerAuthentication, WebApplicationFirewall
from ml_inference_cdk.constructs.ecs.service import FargateInferenceService
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.stacks.settings import Settings

EXPOSURES: Final = ("internal", "internet-facing", "iam-api")
"""Values of the ``ecsExposure`` context key."""


class EcsStack(Stack):
    """An ECS Fargate service behind an Application Load Balancer, in a new VPC and cluster.

    Context keys (cdk.json or ``-c``): ``ecsDesiredCount`` (default 2), ``ecsMinCapacity`` (default: the
    desired count), ``ecsMaxCapacity`` (default: twice the minimum), ``ecsCertificateArn`` (an ACM
    certificate: HTTPS, and HTTP only redirects), ``ecsDomainName`` with ``ecsHostedZoneName`` (an alias
    record, and a DNS-validated certificate when no ARN is given; the zone is looked up, so the stack needs an
    explicit account and region), ``ecsRestrictDefaultSecurityGroup`` (default true; false for a local
    emulator without Lambda, such as moto).

    Exposure: ``ecsExposure`` is ``internal`` (default: reachable from the VPC only), ``internet-facing``
    (needs ``ecsAllowedCidrs``, comma-separated, or ``ecsJwtIssuer`` + ``ecsJwksEndpoint`` with a
    certificate; plain HTTP on the internet also needs ``ecsAllowPublicHttp=true``) or ``iam-api`` (an API
    Gateway HTTP API in front of the internal load balancer; callers sign with SigV4). ``ecsWaf=true`` adds
    an AWS WAF web ACL. The image is built from ``imageDirectory`` (or ``imageUri``) and runs from the
    asset's own repository.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        desired_count = settings.integer("ecsDesiredCount", 2)
        min_capacity = settings.integer("ecsMinCapacity", desired_count)
        max_capacity = settings.integer("ecsMaxCapacity", max(2 * min_capacity, 1))
        certificate_arn = settings.text("ecsCertificateArn")
        zone_name = settings.text("ecsHostedZoneName")
        exposure = settings.text("ecsExposure") or "internal"
        if exposure not in EXPOSURES:
            raise ValueError(
                f"context key ecsExposure must be one of {', '.join(EXPOSURES)}, got {exposure!r}"
            )

        certificate = (
            acm.Certificate.from_certificate_arn(self, "Certificate", certificate_arn)
            if certificate_arn
            else None
        )
        hosted_zone = (
            route53.HostedZone.from_lookup(self, "HostedZone", domain_name=zone_name) if zone_name else None
        )

        self.inference = FargateInferenceService(
            self,
            "Inference",
            image=settings.image(),
            model_artifact=settings.model(),
            desired_count=desired_count,
            min_capacity=min_capacity,
            max_capacity=max_capacity,
            certificate=certificate,
            domain_name=settings.text("ecsDomainName"),
            hosted_zone=hosted_zone,
            internet_facing=exposure == "internet-facing",
            allowed_cidrs=_cidrs(settings.text("ecsAllowedCidrs")),
            authentication=_jwt(settings.text("ecsJwtIssuer"), settings.text("ecsJwksEndpoint")),
            iam_http_api=exposure == "iam-api",
            allow_public_http=settings.boolean("ecsAllowPublicHttp", False),
            waf=WebApplicationFirewall() if settings.boolean("ecsWaf", False) else None,
            deletion_protection=not settings.destroy_on_delete,
            restrict_default_security_group=settings.boolean("ecsRestrictDefaultSecurityGroup", True),
        )

        CfnOutput(
            self,
            "ServiceUrl",
            value=self.inference.url,
            description="Base URL: POST /invocations, GET /ping (the HTTP API's with ecsExposure=iam-api)",
        )
        CfnOutput(
            self,
            "LoadBalancerDnsName",
            value=self.inference.load_balancer.load_balancer_dns_name,
            description="The Application Load Balancer's DNS name",
        )
        CfnOutput(
            self, "ClusterName", value=self.inference.cluster.cluster_name, description="The ECS cluster"
        )
        CfnOutput(
            self, "ServiceName", value=self.inference.service.service_name, description="The ECS service"
        )
        Aspects.of(self).add(DropImpliedDependsOn())


def _cidrs(value: str | None) -> list[str] | None:
    if value is None:
        return None
    cidrs = [part.strip() for part in value.split(",") if part.strip()]
    if not cidrs:
        raise ValueError(f"context key ecsAllowedCidrs must list CIDRs, comma-separated, got {value!r}")
    return cidrs


def _jwt(issuer: str | None, jwks_endpoint: str | None) -> ListenerAuthentication | None:
    if issuer is None and jwks_endpoint is None:
        return None
    if issuer is None or jwks_endpoint is None:
        raise ValueError("context keys ecsJwtIssuer and ecsJwksEndpoint go together: give both, or neither")
    return ListenerAuthentication.jwt(issuer=issuer, jwks_endpoint=jwks_endpoint)
