"""EcsStack: the inference image and model as a load-balanced ECS Fargate service."""

from __future__ import annotations

from typing import Any

from aws_cdk import Aspects, CfnOutput, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_route53 as route53
from constructs import Construct

from ml_inference_cdk.constructs.fargate_service import FargateInferenceService
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.stacks.settings import Settings


class EcsStack(Stack):
    """An ECS Fargate service behind an Application Load Balancer, in a new VPC and cluster.

    Context keys (cdk.json or ``-c``): ``ecsDesiredCount`` (default 2), ``ecsMinCapacity`` (default: the
    desired count), ``ecsMaxCapacity`` (default: twice the minimum), ``ecsCertificateArn`` (an ACM
    certificate: HTTPS, and HTTP only redirects), ``ecsDomainName`` with ``ecsHostedZoneName`` (an alias
    record, and a DNS-validated certificate when no ARN is given; the zone is looked up, so the stack needs an
    explicit account and region), ``ecsRestrictDefaultSecurityGroup`` (default true; false for a local
    emulator without Lambda, such as moto). The image is built from ``imageDirectory`` (or ``imageUri``) and
    runs from the asset's own repository.
    """

    def __init__(self, scope: Construct, construct_id: str, *, settings: Settings, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        desired_count = settings.integer("ecsDesiredCount", 2)
        min_capacity = settings.integer("ecsMinCapacity", desired_count)
        max_capacity = settings.integer("ecsMaxCapacity", max(2 * min_capacity, 1))
        certificate_arn = settings.text("ecsCertificateArn")
        zone_name = settings.text("ecsHostedZoneName")

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
            restrict_default_security_group=settings.boolean("ecsRestrictDefaultSecurityGroup", True),
        )

        CfnOutput(
            self, "ServiceUrl", value=self.inference.url, description="Base URL: POST /invocations, GET /ping"
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
