"""FargateInferenceService options: TLS and DNS, placement, capacity, ECS Exec, bring-your-own pieces."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, Duration, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Match, Template

from ml_inference_cdk import ContainerImage, FargateInferenceService, InferenceRepository, ModelArtifact
from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from tests.support.cdk import ROOT, cfn_lint
from tests.support.fargate import CERTIFICATE_ARN, IMAGE_URI, MODEL_URI, build, template_of, with_certificate


def container(template: Template, name: str = "inference") -> dict[str, Any]:
    (task_definition,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    (found,) = [c for c in task_definition["Properties"]["ContainerDefinitions"] if c["Name"] == name]
    return found


def with_domain(stack: Stack) -> dict[str, Any]:
    zone = route53.HostedZone.from_hosted_zone_attributes(
        stack, "Zone", hosted_zone_id="Z0123456789ABCDEFGHIJ", zone_name="example.com"
    )
    return {"domain_name": "ml.example.com", "hosted_zone": zone}


@pytest.fixture(scope="module")
def https() -> Template:
    return template_of(with_certificate)


@pytest.fixture(scope="module")
def domain() -> tuple[Stack, FargateInferenceService]:
    return build(with_domain)


# --- TLS and DNS --------------------------------------------------------------------------------------------


def test_a_certificate_adds_an_https_listener_with_a_tls_1_2_plus_policy(https: Template) -> None:
    https.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 443,
            "Protocol": "HTTPS",
            "Certificates": [{"CertificateArn": CERTIFICATE_ARN}],
            "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            "DefaultActions": [Match.object_like({"Type": "forward"})],
        },
    )


def test_with_a_certificate_port_80_only_redirects_to_https(https: Template) -> None:
    https.resource_count_is("AWS::ElasticLoadBalancingV2::Listener", 2)
    https.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Port": 80,
            "Protocol": "HTTP",
            "DefaultActions": [
                {
                    "Type": "redirect",
                    "RedirectConfig": {"Port": "443", "Protocol": "HTTPS", "StatusCode": "HTTP_301"},
                }
            ],
        },
    )


def test_with_a_certificate_the_load_balancer_accepts_80_and_443_from_the_vpc(https: Template) -> None:
    (vpc_id,) = https.find_resources("AWS::EC2::VPC")
    vpc_cidr = {"Fn::GetAtt": [vpc_id, "CidrBlock"]}
    https.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like({"CidrIp": vpc_cidr, "FromPort": 80}),
                Match.object_like({"CidrIp": vpc_cidr, "FromPort": 443}),
            ]
        },
    )


def test_with_a_certificate_the_url_is_https_on_the_load_balancer_name() -> None:
    stack, service = build(with_certificate)

    assert stack.resolve(service.url)["Fn::Join"][1][0] == "https://"


def test_a_domain_and_zone_get_a_dns_validated_certificate(
    domain: tuple[Stack, FargateInferenceService],
) -> None:
    Template.from_stack(domain[0]).has_resource_properties(
        "AWS::CertificateManager::Certificate",
        {
            "DomainName": "ml.example.com",
            "ValidationMethod": "DNS",
            "DomainValidationOptions": [
                {"DomainName": "ml.example.com", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}
            ],
        },
    )


def test_a_domain_and_zone_get_an_alias_record_to_the_load_balancer(
    domain: tuple[Stack, FargateInferenceService],
) -> None:
    Template.from_stack(domain[0]).has_resource_properties(
        "AWS::Route53::RecordSet",
        {
            "Name": "ml.example.com.",
            "Type": "A",
            "HostedZoneId": "Z0123456789ABCDEFGHIJ",
            "AliasTarget": Match.any_value(),
        },
    )


def test_with_a_domain_the_url_is_https_on_the_domain(domain: tuple[Stack, FargateInferenceService]) -> None:
    assert domain[1].url == "https://ml.example.com"


def test_the_https_variant_passes_cfn_lint_without_findings(
    domain: tuple[Stack, FargateInferenceService], tmp_path: Path
) -> None:
    path = tmp_path / "Https.template.json"
    path.write_text(json.dumps(Template.from_stack(domain[0]).to_json()))

    assert cfn_lint([path]) == []


# --- network placement --------------------------------------------------------------------------------------


def test_an_internal_load_balancer_sits_in_private_subnets_and_accepts_only_the_vpc() -> None:
    template = template_of(internet_facing=False)

    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "Scheme": "internal",
            "Subnets": [{"Ref": Match.string_like_regexp("PrivateSubnet1")}, Match.any_value()],
        },
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like({"CidrIp": {"Fn::GetAtt": [Match.any_value(), "CidrBlock"]}})
            ]
        },
    )


def test_allowed_cidrs_replace_anywhere_on_the_listeners() -> None:
    template = template_of(allowed_cidrs=["203.0.113.0/24", "2001:db8::/32"])

    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                Match.object_like({"CidrIp": "203.0.113.0/24", "FromPort": 80}),
                Match.object_like({"CidrIpv6": "2001:db8::/32", "FromPort": 80}),
            ]
        },
    )


def test_a_given_vpc_and_cluster_are_used_instead_of_new_ones() -> None:
    def existing(stack: Stack) -> dict[str, Any]:
        vpc = ec2.Vpc.from_vpc_attributes(
            stack,
            "Vpc",
            vpc_id="vpc-0123456789abcdef0",
            vpc_cidr_block="10.1.0.0/16",
            availability_zones=["us-east-1a", "us-east-1b"],
            public_subnet_ids=["subnet-0a", "subnet-0b"],
            private_subnet_ids=["subnet-1a", "subnet-1b"],
        )
        cluster = ecs.Cluster.from_cluster_attributes(stack, "Cluster", cluster_name="shared", vpc=vpc)
        return {"vpc": vpc, "cluster": cluster}

    template = template_of(existing)

    template.resource_count_is("AWS::EC2::VPC", 0)
    template.resource_count_is("AWS::ECS::Cluster", 0)
    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "Cluster": "shared",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"Subnets": ["subnet-1a", "subnet-1b"]})
            },
        },
    )


def test_a_given_access_log_bucket_is_used_instead_of_a_new_one() -> None:
    def bucket(stack: Stack) -> dict[str, Any]:
        return {"access_logs_bucket": s3.Bucket.from_bucket_name(stack, "Logs", "central-alb-logs")}

    template = template_of(bucket)

    template.resource_count_is("AWS::S3::Bucket", 0)
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "access_logs.s3.bucket", "Value": "central-alb-logs"}]
            )
        },
    )


def test_the_default_security_group_can_be_left_alone_for_emulators_without_lambda() -> None:
    template = template_of(restrict_default_security_group=False)

    template.resource_count_is("Custom::VpcRestrictDefaultSG", 0)
    template.resource_count_is("AWS::Lambda::Function", 0)


def test_deletion_protection_is_set_on_the_load_balancer_when_asked() -> None:
    template_of(deletion_protection=True).has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [{"Key": "deletion_protection.enabled", "Value": "true"}]
            )
        },
    )


# --- compute and capacity -----------------------------------------------------------------------------------


def test_spot_keeps_one_on_demand_task_and_weights_the_rest_to_fargate_spot() -> None:
    template = template_of(spot=True)

    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "LaunchType": Match.absent(),
            "CapacityProviderStrategy": [
                {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
                {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
            ],
        },
    )
    template.has_resource_properties(
        "AWS::ECS::ClusterCapacityProviderAssociations",
        {"CapacityProviders": Match.array_with(["FARGATE", "FARGATE_SPOT"])},
    )


def test_arm64_runs_the_task_on_graviton() -> None:
    template_of(cpu_architecture="ARM64").has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {"RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}},
    )


def test_fargate_spot_runs_arm64_tasks_too() -> None:
    template = template_of(spot=True, cpu_architecture="ARM64")

    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {"RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"}},
    )
    template.has_resource_properties(
        "AWS::ECS::Service",
        {"CapacityProviderStrategy": Match.array_with([{"CapacityProvider": "FARGATE_SPOT", "Weight": 3}])},
    )


def test_a_larger_task_gets_its_cpu_memory_and_ephemeral_storage() -> None:
    template_of(cpu=4096, memory_limit_mib=16384, ephemeral_storage_gib=50).has_resource_properties(
        "AWS::ECS::TaskDefinition", {"Cpu": "4096", "Memory": "16384", "EphemeralStorage": {"SizeInGiB": 50}}
    )


def test_capacity_bounds_and_the_request_setpoint_are_configurable() -> None:
    template = template_of(desired_count=3, min_capacity=2, max_capacity=10, target_requests_per_target=300)

    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 10}
    )
    template.has_resource_properties("AWS::ECS::Service", {"DesiredCount": 3})
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {"TargetTrackingScalingPolicyConfiguration": Match.object_like({"TargetValue": 300})},
    )


def test_request_count_scaling_can_be_turned_off_leaving_cpu_scaling() -> None:
    template = template_of(target_requests_per_target=None)

    template.resource_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", 1)


def test_a_longer_grace_period_delays_both_health_checks_within_the_ecs_limit() -> None:
    template = template_of(health_check_grace_period=Duration.minutes(10))

    template.has_resource_properties("AWS::ECS::Service", {"HealthCheckGracePeriodSeconds": 600})
    assert container(template)["HealthCheck"]["StartPeriod"] == 300  # the container health check's maximum


# --- the container ------------------------------------------------------------------------------------------


def test_another_port_is_passed_to_the_server_and_used_everywhere() -> None:
    template = template_of(container_port=9000)
    server = container(template)

    assert {"Name": "SAGEMAKER_BIND_TO_PORT", "Value": "9000"} in server["Environment"]
    assert server["PortMappings"][0]["ContainerPort"] == 9000
    assert "http://127.0.0.1:9000/ping" in server["HealthCheck"]["Command"][3]
    template.has_resource_properties("AWS::ElasticLoadBalancingV2::TargetGroup", {"Port": 9000})
    template.has_resource_properties("AWS::EC2::SecurityGroupIngress", {"FromPort": 9000, "ToPort": 9000})


def test_secrets_reach_the_server_as_environment_from_parameter_store() -> None:
    def secret(stack: Stack) -> dict[str, Any]:
        parameter = ssm.StringParameter.from_secure_string_parameter_attributes(
            stack, "Token", parameter_name="/ml/token"
        )
        return {"secrets": {"API_TOKEN": ecs.Secret.from_ssm_parameter(parameter)}}

    (entry,) = container(template_of(secret))["Secrets"]

    assert entry["Name"] == "API_TOKEN"
    assert ":parameter/ml/token" in json.dumps(entry["ValueFrom"])


def test_another_unprivileged_user_can_be_chosen() -> None:
    assert container(template_of(user="20001:20001"))["User"] == "20001:20001"


def test_ecs_exec_when_enabled_grants_the_ssm_channel_to_the_task_role_only() -> None:
    template = template_of(enable_execute_command=True, read_only_root_filesystem=False)
    server = container(template)

    template.has_resource_properties("AWS::ECS::Service", {"EnableExecuteCommand": True})
    template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Action": Match.array_with(["ssmmessages:CreateControlChannel"])})]
                )
            }
        },
    )
    assert server["ReadonlyRootFilesystem"] is False
    assert "Drop" not in server["LinuxParameters"]["Capabilities"]  # the ECS Exec agent needs its defaults


def test_the_service_waits_for_an_image_copied_into_a_repository(demo_model_artifact: Path) -> None:
    stack = Stack(App(), "Test")
    repository = InferenceRepository(stack, "Repository")
    FargateInferenceService(
        stack,
        "Inference",
        image=ContainerImage.from_asset(ROOT / "inference_image", copy_to=repository, tag="v1"),
        model_artifact=ModelArtifact.from_asset(demo_model_artifact),
    )
    template = Template.from_stack(stack)
    resources = template.to_json()["Resources"]
    (copy,) = [
        logical_id for logical_id, r in resources.items() if r["Type"].startswith("Custom::CDKECRDeployment")
    ]

    template.has_resource("AWS::ECS::Service", {"DependsOn": Match.array_with([copy])})
    template.has_resource("AWS::ECS::TaskDefinition", {"DependsOn": Match.array_with([copy])})


# --- every variant stays nag-clean and lint-clean ----------------------------------------------------------

VARIANTS: dict[str, dict[str, Any]] = {
    "internal": {"internet_facing": False},
    "allowed-cidrs": {"allowed_cidrs": ["203.0.113.0/24"]},
    "spot": {"spot": True},
    "arm64": {"cpu_architecture": "ARM64"},
    "ecs-exec": {"enable_execute_command": True, "read_only_root_filesystem": False},
}


@pytest.fixture(scope="module")
def variant_reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict[str, Any]]]:
    context = json.loads((ROOT / "cdk.json").read_text())["context"]
    reports = {}
    for name, props in VARIANTS.items():
        outdir = tmp_path_factory.mktemp(f"fargate-{name}")
        app = App(outdir=str(outdir), context=context)
        apply_aws_solutions_checks(app)
        stack = Stack(app, "Variant")
        Aspects.of(stack).add(DropImpliedDependsOn())
        FargateInferenceService(
            stack,
            "Inference",
            image=ContainerImage.from_image_uri(IMAGE_URI),
            model_artifact=ModelArtifact.from_s3_uri(MODEL_URI),
            **props,
        )
        app.synth()
        report = json.loads((outdir / "validation-report.json").read_text())
        (nag,) = [plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"]
        reports[name] = (outdir / "Variant.template.json", nag)
    return reports


@pytest.mark.parametrize("variant", VARIANTS)
def test_cdk_nag_finds_nothing_unacknowledged_in_the_variant(
    variant: str, variant_reports: dict[str, tuple[Path, dict[str, Any]]]
) -> None:
    assert variant_reports[variant][1]["violations"] == []


def test_cfn_lint_finds_nothing_in_any_variant(
    variant_reports: dict[str, tuple[Path, dict[str, Any]]],
) -> None:
    assert cfn_lint([path for path, _ in variant_reports.values()]) == []
