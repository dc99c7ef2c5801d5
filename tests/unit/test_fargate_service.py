"""FargateInferenceService with its defaults: the task, the service, the load balancer, IAM and scaling."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Capture, Match, Template

from ml_inference_cdk import FargateInferenceService, container_environment
from tests.support.fargate import IMAGE_URI, build


@pytest.fixture(scope="module")
def built() -> tuple[Stack, FargateInferenceService]:
    return build()


@pytest.fixture(scope="module")
def template(built: tuple[Stack, FargateInferenceService]) -> Template:
    return Template.from_stack(built[0])


def containers(template: Template) -> dict[str, dict[str, Any]]:
    (task_definition,) = template.find_resources("AWS::ECS::TaskDefinition").values()
    return {c["Name"]: c for c in task_definition["Properties"]["ContainerDefinitions"]}


def statements(template: Template, resource_type: str = "AWS::IAM::Policy") -> list[dict[str, Any]]:
    found = []
    for resource in template.find_resources(resource_type).values():
        found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


# --- the task -----------------------------------------------------------------------------------------------


def test_the_task_is_a_fargate_task_with_1024_cpu_and_2048_mib_in_family_ml_inference(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Family": "ml-inference",
            "Cpu": "1024",
            "Memory": "2048",
            "NetworkMode": "awsvpc",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "X86_64", "OperatingSystemFamily": "LINUX"},
        },
    )


def test_the_server_container_is_named_inference_and_listens_on_8080(template: Template) -> None:
    server = containers(template)["inference"]

    assert server["Essential"] is True
    assert server["Image"] == IMAGE_URI
    assert server["PortMappings"] == [{"ContainerPort": 8080, "Name": "http", "Protocol": "tcp"}]


def test_the_server_runs_as_a_non_root_user_on_a_read_only_root_filesystem(template: Template) -> None:
    server = containers(template)["inference"]

    assert server["User"] == "10001"
    assert server["ReadonlyRootFilesystem"] is True
    assert server["Privileged"] is False
    assert server["LinuxParameters"] == {"Capabilities": {"Drop": ["ALL"]}, "InitProcessEnabled": True}


def test_the_server_gets_the_model_directory_of_the_sagemaker_contract(template: Template) -> None:
    assert containers(template)["inference"]["Environment"] == [
        {"Name": "SM_MODEL_DIR", "Value": "/opt/ml/model"}
    ]


def test_the_server_environment_passes_through_the_sagemaker_settings() -> None:
    stack, _ = build(environment=container_environment(workers=2, log_level="debug"))

    environment = containers(Template.from_stack(stack))["inference"]["Environment"]

    assert {"Name": "SAGEMAKER_MODEL_SERVER_WORKERS", "Value": "2"} in environment
    assert {"Name": "SAGEMAKER_CONTAINER_LOG_LEVEL", "Value": "DEBUG"} in environment


def test_the_container_health_check_pings_the_server_with_python(template: Template) -> None:
    health_check = containers(template)["inference"]["HealthCheck"]

    assert health_check["Command"][:3] == ["CMD", "python3", "-c"]
    assert "http://127.0.0.1:8080/ping" in health_check["Command"][3]
    assert health_check["StartPeriod"] == 60


def test_an_init_container_from_the_same_image_unpacks_the_model_before_the_server_starts(
    template: Template,
) -> None:
    loader, server = containers(template)["model-loader"], containers(template)["inference"]

    assert loader["Essential"] is False
    assert loader["Image"] == server["Image"]
    assert loader["EntryPoint"][:2] == ["python3", "-c"]
    assert "def download_and_unpack(" in loader["EntryPoint"][2]
    assert {"Name": "MODEL_S3_KEY", "Value": "iris/v1/model.tar.gz"} in loader["Environment"]
    assert {"Name": "MODEL_DIR", "Value": "/opt/ml/model"} in loader["Environment"]
    assert server["DependsOn"] == [{"ContainerName": "model-loader", "Condition": "SUCCESS"}]


def test_the_init_container_runs_without_capabilities_on_a_read_only_root_filesystem(
    template: Template,
) -> None:
    loader = containers(template)["model-loader"]

    assert loader["User"] == "0"  # Fargate volumes are root-owned 0755; see the construct's docstring
    assert loader["ReadonlyRootFilesystem"] is True
    assert loader["Privileged"] is False
    assert loader["LinuxParameters"] == {"Capabilities": {"Drop": ["ALL"]}}


def test_the_model_volume_is_written_by_the_loader_and_read_only_for_the_server(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"Volumes": [{"Name": "model"}, {"Name": "tmp"}]}
    )
    loader, server = containers(template)["model-loader"], containers(template)["inference"]

    assert {"ContainerPath": "/opt/ml/model", "ReadOnly": False, "SourceVolume": "model"} in loader[
        "MountPoints"
    ]
    assert {"ContainerPath": "/opt/ml/model", "ReadOnly": True, "SourceVolume": "model"} in server[
        "MountPoints"
    ]


def test_tmp_is_a_writable_task_volume_prepared_by_the_loader(template: Template) -> None:
    loader, server = containers(template)["model-loader"], containers(template)["inference"]

    assert {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"} in server["MountPoints"]
    assert {"ContainerPath": "/tmp", "ReadOnly": False, "SourceVolume": "tmp"} in loader["MountPoints"]
    assert {"Name": "SHARED_WRITABLE_DIRS", "Value": "/tmp"} in loader["Environment"]


def test_both_containers_log_to_one_log_group_kept_for_a_year(template: Template) -> None:
    log_group = Capture()
    for container in containers(template).values():
        assert container["LogConfiguration"]["LogDriver"] == "awslogs"
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": Match.array_with(
                [
                    Match.object_like(
                        {
                            "LogConfiguration": Match.object_like(
                                {"Options": Match.object_like({"awslogs-group": {"Ref": log_group}})}
                            )
                        }
                    )
                ]
            )
        },
    )

    assert template.to_json()["Resources"][log_group.as_string()]["Properties"]["RetentionInDays"] == 365


def test_every_log_group_is_encrypted_with_the_rotating_log_key(template: Template) -> None:
    (key_id,) = template.find_resources("AWS::KMS::Key", {"Properties": {"EnableKeyRotation": True}})
    log_groups = template.find_resources("AWS::Logs::LogGroup")

    assert len(log_groups) == 2  # the containers' and the VPC flow logs
    assert all(
        group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]} for group in log_groups.values()
    )


def test_the_log_key_lets_cloudwatch_logs_use_it_for_this_accounts_log_groups_only(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {
                                "Principal": {"Service": Match.any_value()},
                                "Condition": {
                                    "ArnLike": {"kms:EncryptionContext:aws:logs:arn": Match.any_value()}
                                },
                            }
                        )
                    ]
                )
            }
        },
    )


def test_the_log_key_denies_grants_that_are_not_for_an_aws_service(template: Template) -> None:
    template.has_resource_properties(
        "AWS::KMS::Key",
        {
            "KeyPolicy": {
                "Statement": Match.array_with(
                    [
                        {
                            "Sid": "GrantsOnlyForAwsServices",
                            "Effect": "Deny",
                            "Principal": {"AWS": "*"},
                            "Action": "kms:CreateGrant",
                            "Resource": "*",
                            "Condition": {
                                "BoolIfExists": {
                                    "kms:GrantIsForAWSResource": "false",
                                    "aws:PrincipalIsAWSService": "false",
                                }
                            },
                        }
                    ]
                )
            }
        },
    )


def test_each_container_has_the_tasks_memory_as_its_hard_limit(template: Template) -> None:
    assert {name: c["Memory"] for name, c in containers(template).items()} == {
        "inference": 2048,
        "model-loader": 2048,
    }


# --- IAM ----------------------------------------------------------------------------------------------------


def test_the_task_role_reads_exactly_the_model_object(template: Template) -> None:
    task_role = Capture()
    template.has_resource_properties(
        "AWS::ECS::TaskDefinition", {"TaskRoleArn": {"Fn::GetAtt": [task_role, "Arn"]}}
    )
    (policy,) = [
        p
        for p in template.find_resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"] == [{"Ref": task_role.as_string()}]
    ]

    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "s3:GetObject",
            "Effect": "Allow",
            "Resource": {
                "Fn::Join": [
                    "",
                    ["arn:", {"Ref": "AWS::Partition"}, ":s3:::models-bucket/iris/v1/model.tar.gz"],
                ]
            },
        }
    ]


def test_only_ecs_tasks_of_this_account_may_assume_the_task_role(template: Template) -> None:
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    Match.object_like(
                        {
                            "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                            "Condition": Match.object_like(
                                {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
                            ),
                        }
                    )
                ]
            }
        },
    )


def test_the_execution_role_pulls_only_the_image_repository(template: Template) -> None:
    pull = [s for s in statements(template) if "ecr:BatchGetImage" in s["Action"]]

    assert len(pull) == 1
    assert pull[0]["Resource"] == "arn:aws:ecr:us-east-1:123456789012:repository/ml-inference"


def test_no_policy_allows_a_service_wildcard_or_attaches_a_full_access_managed_policy(
    template: Template,
) -> None:
    allowed = [
        s
        for resource_type in ("AWS::IAM::Policy", "AWS::S3::BucketPolicy")
        for s in statements(template, resource_type)
        if s["Effect"] == "Allow"
    ]
    actions = [a for s in allowed for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])]
    managed = [
        json.dumps(r["Properties"].get("ManagedPolicyArns", []))
        for r in template.find_resources("AWS::IAM::Role").values()
    ]

    assert not [a for a in actions if a == "*" or a.endswith(":*")]
    assert not [m for m in managed if "FullAccess" in m]


def test_ecs_exec_is_off_and_grants_nothing_by_default(template: Template) -> None:
    template.has_resource_properties("AWS::ECS::Service", {"EnableExecuteCommand": False})

    assert "ssmmessages" not in json.dumps(template.to_json())


# --- the service --------------------------------------------------------------------------------------------


def test_the_service_rolls_back_a_failed_deployment_with_the_circuit_breaker(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            )
        },
    )


def test_the_service_keeps_100_to_200_percent_of_its_tasks_during_a_deployment(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Service",
        {"DeploymentConfiguration": Match.object_like({"MinimumHealthyPercent": 100, "MaximumPercent": 200})},
    )


def test_the_service_runs_two_tasks_in_private_subnets_without_public_addresses(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "DesiredCount": 2,
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": Match.object_like({"AssignPublicIp": "DISABLED"})
            },
        },
    )
    subnets = Capture()
    template.has_resource_properties(
        "AWS::ECS::Service",
        {"NetworkConfiguration": {"AwsvpcConfiguration": Match.object_like({"Subnets": subnets})}},
    )
    assert [subnet["Ref"] for subnet in subnets.as_array() if "PrivateSubnet" not in subnet["Ref"]] == []


def test_load_balancer_health_checks_are_ignored_for_60_seconds_while_the_model_loads(
    template: Template,
) -> None:
    template.has_resource_properties("AWS::ECS::Service", {"HealthCheckGracePeriodSeconds": 60})


def test_the_cluster_has_container_insights_enabled(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ECS::Cluster", {"ClusterSettings": [{"Name": "containerInsights", "Value": "enabled"}]}
    )


def test_a_new_vpc_spans_two_zones_with_flow_logs_and_an_s3_endpoint(template: Template) -> None:
    template.resource_count_is("AWS::EC2::VPC", 1)
    template.resource_count_is("AWS::EC2::Subnet", 4)
    template.resource_count_is("AWS::EC2::NatGateway", 2)
    template.has_resource_properties("AWS::EC2::FlowLog", {"TrafficType": "ALL", "ResourceType": "VPC"})
    template.has_resource_properties("AWS::EC2::VPCEndpoint", {"VpcEndpointType": "Gateway"})


def test_no_subnet_of_the_new_vpc_gives_public_ips_on_launch(template: Template) -> None:
    subnets = template.find_resources("AWS::EC2::Subnet").values()

    assert [s["Properties"]["MapPublicIpOnLaunch"] for s in subnets] == [False] * 4


def test_the_new_vpc_default_security_group_is_stripped_of_its_rules(template: Template) -> None:
    template.resource_count_is("Custom::VpcRestrictDefaultSG", 1)


# --- the load balancer --------------------------------------------------------------------------------------


def test_the_target_group_checks_ping_for_200_on_the_task_ip(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::TargetGroup",
        {
            "HealthCheckPath": "/ping",
            "Matcher": {"HttpCode": "200"},
            "Port": 8080,
            "Protocol": "HTTP",
            "TargetType": "ip",
        },
    )


def test_the_load_balancer_is_deletion_protected_drops_invalid_headers_and_writes_access_logs(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {
            "LoadBalancerAttributes": Match.array_with(
                [
                    {"Key": "deletion_protection.enabled", "Value": "true"},
                    {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
                    {"Key": "access_logs.s3.enabled", "Value": "true"},
                    {"Key": "access_logs.s3.prefix", "Value": "alb"},
                ]
            ),
        },
    )


def test_the_access_log_bucket_is_encrypted_versioned_private_and_ssl_only(template: Template) -> None:
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
                ]
            },
            "VersioningConfiguration": {"Status": "Enabled"},
            "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True,
                "BlockPublicPolicy": True,
                "IgnorePublicAcls": True,
                "RestrictPublicBuckets": True,
            },
        },
    )
    template.has_resource_properties(
        "AWS::S3::BucketPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
                        )
                    ]
                )
            }
        },
    )


def test_load_balancer_log_delivery_may_write_only_under_its_prefix(template: Template) -> None:
    puts = [s for s in statements(template, "AWS::S3::BucketPolicy") if s["Action"] == "s3:PutObject"]

    assert puts
    for statement in puts:
        assert "/alb/AWSLogs/" in json.dumps(statement["Resource"])


def test_without_a_certificate_port_80_forwards_to_the_service(template: Template) -> None:
    template.resource_count_is("AWS::ElasticLoadBalancingV2::Listener", 1)
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 80, "Protocol": "HTTP", "DefaultActions": [Match.object_like({"Type": "forward"})]},
    )


def test_the_load_balancer_is_internal_in_the_private_subnets(template: Template) -> None:
    private_subnets = [
        {"Ref": logical_id}
        for logical_id in template.find_resources("AWS::EC2::Subnet")
        if "Private" in logical_id
    ]
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal", "Subnets": private_subnets}
    )


def test_the_load_balancer_accepts_port_80_from_the_vpc_only(template: Template) -> None:
    (vpc_id,) = template.find_resources("AWS::EC2::VPC")
    template.has_resource_properties(
        "AWS::EC2::SecurityGroup",
        {
            "SecurityGroupIngress": [
                {
                    "CidrIp": {"Fn::GetAtt": [vpc_id, "CidrBlock"]},
                    "Description": "HTTP(S) from the VPC",
                    "FromPort": 80,
                    "IpProtocol": "tcp",
                    "ToPort": 80,
                }
            ]
        },
    )


def test_the_tasks_accept_only_the_load_balancer_on_the_container_port(template: Template) -> None:
    source = Capture()
    template.resource_count_is("AWS::EC2::SecurityGroupIngress", 1)
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress",
        {
            "FromPort": 8080,
            "ToPort": 8080,
            "IpProtocol": "tcp",
            "SourceSecurityGroupId": {"Fn::GetAtt": [source, "GroupId"]},
        },
    )
    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {"SecurityGroups": [{"Fn::GetAtt": [source.as_string(), "GroupId"]}]},
    )


# --- scaling ------------------------------------------------------------------------------------------------


def test_the_task_count_scales_from_the_desired_count_to_twice_that(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget",
        {"MinCapacity": 2, "MaxCapacity": 4, "ScalableDimension": "ecs:service:DesiredCount"},
    )


def test_the_service_scales_on_cpu_at_70_percent(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": {
                        "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
                    },
                    "TargetValue": 70,
                }
            )
        },
    )


def test_the_service_scales_on_requests_per_target(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "PredefinedMetricSpecification": Match.object_like(
                        {"PredefinedMetricType": "ALBRequestCountPerTarget"}
                    ),
                    "TargetValue": 1000,
                }
            )
        },
    )


# --- attributes and metrics ---------------------------------------------------------------------------------


def test_the_url_is_plain_http_on_the_load_balancer_name(
    built: tuple[Stack, FargateInferenceService],
) -> None:
    stack, service = built

    assert stack.resolve(service.url) == {
        "Fn::Join": ["", ["http://", stack.resolve(service.load_balancer.load_balancer_dns_name)]]
    }


def test_service_metrics_are_ecs_metrics_of_this_service(
    built: tuple[Stack, FargateInferenceService],
) -> None:
    _, service = built

    for metric in (service.metric_cpu_utilization(), service.metric_memory_utilization()):
        assert metric.namespace == "AWS/ECS"
        assert set(metric.dimensions) == {"ClusterName", "ServiceName"}


@pytest.mark.parametrize(
    ("method", "metric_name"),
    [
        ("metric_request_count", "RequestCount"),
        ("metric_request_count_per_target", "RequestCountPerTarget"),
        ("metric_target_response_time", "TargetResponseTime"),
        ("metric_http_5xx", "HTTPCode_Target_5XX_Count"),
        ("metric_unhealthy_host_count", "UnHealthyHostCount"),
    ],
)
def test_load_balancer_metrics_are_target_group_metrics(
    built: tuple[Stack, FargateInferenceService], method: str, metric_name: str
) -> None:
    metric = getattr(built[1], method)()

    assert (metric.namespace, metric.metric_name) == ("AWS/ApplicationELB", metric_name)
    assert "TargetGroup" in metric.dimensions
