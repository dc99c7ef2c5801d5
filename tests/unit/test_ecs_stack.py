"""EcsStack synthesized as `cdk synth` would (cdk.json context, cdk-nag on): findings, lint, outputs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Match, Template

from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from ml_inference_cdk.stacks.ecs_stack import EcsStack
from ml_inference_cdk.stacks.settings import Settings
from tests.support import control_tower
from tests.support.cdk import ROOT, cfn_lint

CDK_JSON_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
CERTIFICATE_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/11111111-2222-3333-4444-555555555555"
ISSUER = "https://login.example.com/"
ANYWHERE = ("0.0.0.0/0", "::/0")
AUTHENTICATE = ("authenticate-oidc", "authenticate-cognito", "jwt-validation")
VARIANTS = ["default", "https", "iam_api", "public_jwt"]

# Every AwsSolutions finding on the default EcsStack, with the construct that answers it.
EXPECTED_ACKNOWLEDGEMENTS = {
    ("AwsSolutions-IAM5[Resource::*]", "EcsStack/Inference/ExecutionRole"),
    ("AwsSolutions-ECS2", "EcsStack/Inference/TaskDefinition"),
    ("AwsSolutions-EC23", "EcsStack/Inference/LoadBalancerSecurityGroup"),
    ("AwsSolutions-S1", "EcsStack/Inference/AccessLogs"),
}


@dataclass(frozen=True)
class Synthesized:
    path: Path
    template: Template
    nag: dict[str, Any]


def synthesize(outdir: Path, env: Environment | None = None, **context: Any) -> Synthesized:
    app = App(outdir=str(outdir), context={**CDK_JSON_CONTEXT, **context})
    apply_aws_solutions_checks(app)
    EcsStack(app, "EcsStack", settings=Settings.from_context(app.node, base_dir=ROOT), env=env)
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"]
    path = outdir / "EcsStack.template.json"
    return Synthesized(path=path, template=Template.from_json(json.loads(path.read_text())), nag=nag)


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("ecs-cdk.out"))


@pytest.fixture(scope="module")
def iam_api(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("ecs-api-cdk.out"), ecsExposure="iam-api", ecsWaf="true")


@pytest.fixture(scope="module")
def public_jwt(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("ecs-jwt-cdk.out"),
        ecsExposure="internet-facing",
        ecsCertificateArn=CERTIFICATE_ARN,
        ecsJwtIssuer=ISSUER,
        ecsJwksEndpoint=f"{ISSUER}.well-known/jwks.json",
        ecsWaf="true",
    )


@pytest.fixture(scope="module")
def https(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("ecs-https-cdk.out"), ecsCertificateArn=CERTIFICATE_ARN)


# --- cdk-nag and cfn-lint -----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_cdk_nag_finds_nothing_unacknowledged(variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(variant)

    assert synthesized.nag["violations"] == []


def test_each_acknowledgement_sits_on_the_construct_it_concerns(default: Synthesized) -> None:
    acknowledged = {(v["ruleName"], v["acknowledgedAt"]) for v in default.nag["suppressedViolations"]}

    assert acknowledged == EXPECTED_ACKNOWLEDGEMENTS


def test_each_acknowledgement_gives_a_written_reason(default: Synthesized) -> None:
    for violation in default.nag["suppressedViolations"]:
        assert len(violation["reason"].split()) >= 8, violation


@pytest.mark.parametrize("variant", VARIANTS)
def test_cfn_lint_reports_no_errors_or_warnings(variant: str, request: pytest.FixtureRequest) -> None:
    synthesized: Synthesized = request.getfixturevalue(variant)

    assert cfn_lint([synthesized.path]) == []


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_failing_control_tower_control_is_exempted_in_each_exposure(
    variant: str, request: pytest.FixtureRequest
) -> None:
    synthesized: Synthesized = request.getfixturevalue(variant)

    assert control_tower.unexplained(synthesized.path) == []


def test_with_a_certificate_http_redirects_to_https_as_control_tower_requires(https: Synthesized) -> None:
    failing = {failure.control for failure in control_tower.failures(https.path)}

    assert "CT.ELASTICLOADBALANCING.PR.1" not in failing


# --- what the stack deploys ---------------------------------------------------------------------------------


def test_the_stack_runs_the_seed_task_definition(default: Synthesized) -> None:
    default.template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Family": "ml-inference",
            "Cpu": "1024",
            "Memory": "2048",
            "ContainerDefinitions": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": "inference",
                            "PortMappings": [Match.object_like({"ContainerPort": 8080})],
                            "ReadonlyRootFilesystem": True,
                            "User": "10001",
                        }
                    )
                ]
            ),
        },
    )


def test_the_stack_runs_the_image_asset_from_its_own_repository_without_a_copy(default: Synthesized) -> None:
    resources = default.template.to_json()["Resources"]

    assert not [r for r in resources.values() if r["Type"].startswith("Custom::CDKECRDeployment")]
    default.template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Name": "inference",
                            "Image": {"Fn::Sub": Match.string_like_regexp("container-assets")},
                        }
                    )
                ]
            )
        },
    )


def test_the_stack_serves_the_model_file_asset(default: Synthesized) -> None:
    default.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": [
                    {
                        "Action": "s3:GetObject",
                        "Effect": "Allow",
                        "Resource": {
                            "Fn::Join": [
                                "",
                                [
                                    "arn:",
                                    {"Ref": "AWS::Partition"},
                                    ":s3:::",
                                    {"Fn::Sub": Match.string_like_regexp("cdk-hnb659fds-assets")},
                                    Match.string_like_regexp(r"^/[0-9a-f]{64}\.gz$"),
                                ],
                            ]
                        },
                    }
                ]
            }
        },
    )


def test_the_stack_outputs_the_url_and_the_names_to_operate_it(default: Synthesized) -> None:
    outputs = default.template.to_json()["Outputs"]

    assert set(outputs) == {"ServiceUrl", "LoadBalancerDnsName", "ClusterName", "ServiceName"}
    assert outputs["ServiceUrl"]["Value"]["Fn::Join"][1][0] == "http://"


def test_with_a_certificate_arn_the_stack_serves_https_and_outputs_an_https_url(https: Synthesized) -> None:
    https.template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Port": 443, "Protocol": "HTTPS", "Certificates": [{"CertificateArn": CERTIFICATE_ARN}]},
    )
    assert https.template.to_json()["Outputs"]["ServiceUrl"]["Value"]["Fn::Join"][1][0] == "https://"


def test_context_keys_set_the_task_count_and_its_scaling_range(
    tmp_path: Path, demo_model_artifact: Path
) -> None:
    synthesized = synthesize(tmp_path, ecsDesiredCount="3", ecsMinCapacity="2", ecsMaxCapacity="12")

    synthesized.template.has_resource_properties("AWS::ECS::Service", {"DesiredCount": 3})
    synthesized.template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalableTarget", {"MinCapacity": 2, "MaxCapacity": 12}
    )


def test_a_domain_and_zone_in_context_get_an_alias_record_and_a_certificate(
    tmp_path: Path, demo_model_artifact: Path
) -> None:
    synthesized = synthesize(
        tmp_path,
        env=Environment(account="123456789012", region="us-east-1"),
        ecsDomainName="ml.example.com",
        ecsHostedZoneName="example.com",
        **{
            "hosted-zone:account=123456789012:domainName=example.com:region=us-east-1": {
                "Id": "/hostedzone/Z0123456789ABCDEFGHIJ",
                "Name": "example.com.",
            },
            "availability-zones:account=123456789012:region=us-east-1": ["us-east-1a", "us-east-1b"],
        },
    )

    synthesized.template.has_resource_properties(
        "AWS::Route53::RecordSet", {"Name": "ml.example.com.", "HostedZoneId": "Z0123456789ABCDEFGHIJ"}
    )
    synthesized.template.has_resource_properties(
        "AWS::CertificateManager::Certificate", {"DomainName": "ml.example.com"}
    )
    assert synthesized.template.to_json()["Outputs"]["ServiceUrl"]["Value"] == "https://ml.example.com"
    assert synthesized.nag["violations"] == []


def test_a_domain_without_a_hosted_zone_is_refused(tmp_path: Path, demo_model_artifact: Path) -> None:
    with pytest.raises(ValueError, match=r"domain_name 'ml\.example\.com' needs hosted_zone"):
        synthesize(tmp_path, ecsDomainName="ml.example.com")


def test_a_bad_desired_count_in_context_names_the_key(tmp_path: Path, demo_model_artifact: Path) -> None:
    with pytest.raises(ValueError, match="context key ecsDesiredCount must be an integer, got 'two'"):
        synthesize(tmp_path, ecsDesiredCount="two")


def test_an_image_uri_and_model_uri_in_context_replace_the_assets(tmp_path: Path) -> None:
    image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-inference:1.0.0"
    synthesized = synthesize(tmp_path, imageUri=image, modelS3Uri="s3://models-bucket/iris/v1/model.tar.gz")

    synthesized.template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "ContainerDefinitions": Match.array_with(
                [Match.object_like({"Name": "inference", "Image": image})]
            )
        },
    )
    synthesized.template.has_resource_properties(
        "AWS::IAM::Policy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [
                        Match.object_like(
                            {"Resource": "arn:aws:ecr:us-east-1:123456789012:repository/ml-inference"}
                        )
                    ]
                )
            }
        },
    )
    assert synthesized.nag["violations"] == []


def test_a_context_key_leaves_the_default_security_group_alone_for_local_emulators(tmp_path: Path) -> None:
    synthesized = synthesize(tmp_path, ecsRestrictDefaultSecurityGroup="false")

    synthesized.template.resource_count_is("Custom::VpcRestrictDefaultSG", 0)
    assert synthesized.nag["violations"] == []


# --- who may reach it ---------------------------------------------------------------------------------------


def listeners_open_to_anyone_without_authentication(template: Template) -> list[str]:
    """Listeners of public load balancers that any address may reach and that forward unauthenticated."""
    resources = template.to_json()["Resources"]
    found = []
    for logical_id, listener in template.find_resources("AWS::ElasticLoadBalancingV2::Listener").items():
        balancer = resources[listener["Properties"]["LoadBalancerArn"]["Ref"]]["Properties"]
        if balancer["Scheme"] != "internet-facing":
            continue
        groups = [resources[group["Fn::GetAtt"][0]]["Properties"] for group in balancer["SecurityGroups"]]
        port = listener["Properties"]["Port"]
        open_to_anyone = any(
            rule.get("CidrIp", rule.get("CidrIpv6")) in ANYWHERE
            and rule["FromPort"] <= port <= rule["ToPort"]
            for group in groups
            for rule in group.get("SecurityGroupIngress", [])
        )
        first_action = min(listener["Properties"]["DefaultActions"], key=lambda a: a.get("Order", 0))
        if open_to_anyone and first_action["Type"] not in (*AUTHENTICATE, "redirect"):
            found.append(logical_id)
    return found


def test_the_default_stack_has_no_listener_reachable_from_anywhere_without_authentication(
    default: Synthesized,
) -> None:
    default.template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"}
    )
    assert listeners_open_to_anyone_without_authentication(default.template) == []


def test_the_unauthenticated_listener_check_catches_a_public_plain_http_listener(
    tmp_path: Path, demo_model_artifact: Path
) -> None:
    synthesized = synthesize(
        tmp_path,
        ecsExposure="internet-facing",
        ecsAllowedCidrs="0.0.0.0/1,128.0.0.0/1",
        ecsAllowPublicHttp="true",
    )
    template = json.loads(synthesized.path.read_text())
    for group in template["Resources"].values():
        for rule in group.get("Properties", {}).get("SecurityGroupIngress", []):
            if rule.get("CidrIp") == "0.0.0.0/1":
                rule["CidrIp"] = "0.0.0.0/0"

    assert len(listeners_open_to_anyone_without_authentication(Template.from_json(template))) == 1


def test_a_public_stack_behind_jwt_authenticates_every_request(public_jwt: Synthesized) -> None:
    public_jwt.template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"}
    )
    public_jwt.template.resource_count_is("AWS::WAFv2::WebACL", 1)
    assert listeners_open_to_anyone_without_authentication(public_jwt.template) == []


def test_the_iam_api_stack_outputs_the_apis_url(iam_api: Synthesized) -> None:
    (api_id,) = iam_api.template.find_resources("AWS::ApiGatewayV2::Api")
    url = iam_api.template.to_json()["Outputs"]["ServiceUrl"]["Value"]

    assert url == {"Fn::GetAtt": [api_id, "ApiEndpoint"]}
    iam_api.template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"}
    )


def test_a_public_stack_without_a_gate_is_refused_naming_the_choices(
    tmp_path: Path, demo_model_artifact: Path
) -> None:
    with pytest.raises(ValueError, match=r"choose at least one of: allowed_cidrs="):
        synthesize(tmp_path, ecsExposure="internet-facing", ecsCertificateArn=CERTIFICATE_ARN)


def test_an_unknown_exposure_names_the_key_and_the_values(tmp_path: Path, demo_model_artifact: Path) -> None:
    with pytest.raises(
        ValueError, match="ecsExposure must be one of internal, internet-facing, iam-api, got 'public'"
    ):
        synthesize(tmp_path, ecsExposure="public")


def test_a_jwt_issuer_without_its_jwks_endpoint_is_refused(tmp_path: Path, demo_model_artifact: Path) -> None:
    with pytest.raises(ValueError, match="ecsJwtIssuer and ecsJwksEndpoint go together"):
        synthesize(tmp_path, ecsJwtIssuer=ISSUER)


def test_destroy_on_delete_turns_the_load_balancers_deletion_protection_off(
    default: Synthesized, tmp_path: Path
) -> None:
    protection = {"Key": "deletion_protection.enabled", "Value": "true"}
    default.template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {"LoadBalancerAttributes": Match.array_with([protection])},
    )
    synthesize(tmp_path, destroyOnDelete="true").template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        {"LoadBalancerAttributes": Match.array_with([{**protection, "Value": "false"}])},
    )
