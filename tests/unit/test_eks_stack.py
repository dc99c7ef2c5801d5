"""EksStack synthesized as `cdk synth` would (cdk.json context, cdk-nag on): the cluster and what it runs.

AwsSolutions' EKS rules do not inspect aws_eks_v2 clusters, so the endpoint, logging and encryption properties
are asserted here on the AWS::EKS::Cluster resource itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Aspects, CfnWaitConditionHandle, Stack
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Match, Template

from ml_inference_cdk.constructs.implied_dependencies import DropImpliedDependsOn
from ml_inference_cdk.constructs.nag import apply_aws_solutions_checks
from ml_inference_cdk.stacks.eks_stack import EksStack
from ml_inference_cdk.stacks.settings import Settings
from tests.support.cdk import ROOT, cfn_lint

KUBERNETES_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"
CDK_JSON_CONTEXT: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]


@dataclass(frozen=True)
class Synthesized:
    template: dict[str, Any]
    template_path: Path
    nag: dict[str, Any]

    def resources(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.template["Resources"].items() if v["Type"] == resource_type}

    def one(self, resource_type: str) -> dict[str, Any]:
        (resource,) = self.resources(resource_type).values()
        return resource

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        """Every object in the KubernetesResource Manifest properties, deploy-time values as '<token>'."""
        objects: list[dict[str, Any]] = []
        for resource in self.resources(KUBERNETES_RESOURCE).values():
            value = resource["Properties"]["Manifest"]
            parts = value["Fn::Join"][1] if isinstance(value, dict) else [value]
            objects += json.loads("".join(part if isinstance(part, str) else "<token>" for part in parts))
        return objects

    def kubernetes_object(self, kind: str) -> dict[str, Any]:
        (found,) = [o for o in self.kubernetes_objects() if o["kind"] == kind]
        return found


def new_app(outdir: Path, **context: Any) -> App:
    return App(outdir=str(outdir), context={**CDK_JSON_CONTEXT, **context})


def eks_stack(app: App, **options: Any) -> EksStack:
    return EksStack(app, "EksStack", settings=Settings.from_context(app.node, base_dir=ROOT), **options)


def synthesize(outdir: Path, **context: Any) -> Synthesized:
    """EksStack as `cdk synth` makes it, with cdk-nag's report."""
    app = new_app(outdir, **context)
    apply_aws_solutions_checks(app)
    eks_stack(app)
    app.synth()
    report = json.loads((outdir / "validation-report.json").read_text())
    (nag,) = [plugin for plugin in report["pluginReports"] if plugin["pluginName"] == "AwsSolutions"]
    path = outdir / "EksStack.template.json"
    return Synthesized(template=json.loads(path.read_text()), template_path=path, nag=nag)


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("eks-cdk.out"))


@pytest.fixture(scope="module")
def cluster(synthesized: Synthesized) -> dict[str, Any]:
    properties: dict[str, Any] = synthesized.one("AWS::EKS::Cluster")["Properties"]
    return properties


# --- The checkers ---------------------------------------------------------------------------------


def test_aws_solutions_reports_no_unsuppressed_finding(synthesized: Synthesized) -> None:
    assert synthesized.nag["violations"] == []


def test_every_acknowledged_finding_has_a_written_reason(synthesized: Synthesized) -> None:
    acknowledged = synthesized.nag["suppressedViolations"]
    assert acknowledged
    for finding in acknowledged:
        assert len(finding["reason"].split()) >= 8, finding["ruleName"]


def test_findings_are_acknowledged_on_the_constructs_they_concern(synthesized: Synthesized) -> None:
    for finding in synthesized.nag["suppressedViolations"]:
        assert finding["acknowledgedAt"] != "EksStack", finding["ruleName"]
        for construct in finding["violatingConstructs"]:
            assert construct["constructPath"].startswith(finding["acknowledgedAt"] + "/")


def test_cfn_lint_reports_no_error_and_no_warning(synthesized: Synthesized) -> None:
    findings = cfn_lint([synthesized.template_path])
    assert [f for f in findings if f["Level"] in ("Error", "Warning")] == []


# --- The cluster ----------------------------------------------------------------------------------


def test_cluster_runs_kubernetes_1_35_in_auto_mode(cluster: dict[str, Any]) -> None:
    assert cluster["Version"] == "1.35"
    assert cluster["ComputeConfig"]["Enabled"] is True
    assert cluster["ComputeConfig"]["NodePools"] == ["system", "general-purpose"]
    assert cluster["ComputeConfig"]["NodeRoleArn"]["Fn::GetAtt"][0].startswith("NodeRole")


def test_cluster_api_endpoint_is_private_only(cluster: dict[str, Any]) -> None:
    vpc_config = cluster["ResourcesVpcConfig"]
    assert vpc_config["EndpointPrivateAccess"] is True
    assert vpc_config["EndpointPublicAccess"] is False
    assert "PublicAccessCidrs" not in vpc_config


def test_cluster_logs_every_control_plane_log_type(cluster: dict[str, Any]) -> None:
    enabled = {entry["Type"] for entry in cluster["Logging"]["ClusterLogging"]["EnabledTypes"]}
    assert enabled == {"api", "audit", "authenticator", "controllerManager", "scheduler"}


def test_cluster_secrets_are_encrypted_with_a_rotating_kms_key(
    synthesized: Synthesized, cluster: dict[str, Any]
) -> None:
    (encryption,) = cluster["EncryptionConfig"]
    assert encryption["Resources"] == ["secrets"]
    key_id = encryption["Provider"]["KeyArn"]["Fn::GetAtt"][0]
    key = synthesized.template["Resources"][key_id]
    assert key["Type"] == "AWS::KMS::Key"
    assert key["Properties"]["EnableKeyRotation"] is True


def test_cluster_control_plane_sits_in_private_subnets(
    synthesized: Synthesized, cluster: dict[str, Any]
) -> None:
    for subnet in cluster["ResourcesVpcConfig"]["SubnetIds"]:
        assert synthesized.template["Resources"][subnet["Ref"]]["Properties"]["MapPublicIpOnLaunch"] is False


def test_vpc_records_flow_logs(synthesized: Synthesized) -> None:
    flow_log = synthesized.one("AWS::EC2::FlowLog")["Properties"]
    assert flow_log["ResourceType"] == "VPC"
    assert flow_log["TrafficType"] == "ALL"


def test_kubectl_provider_runs_inside_the_vpc_to_reach_the_private_endpoint(synthesized: Synthesized) -> None:
    functions = synthesized.resources("AWS::Lambda::Function").values()
    kubectl = [f for f in functions if "kubectl" in f["Properties"].get("Description", "")]
    assert kubectl
    assert all("VpcConfig" in f["Properties"] for f in kubectl)


def test_kubectl_layer_matches_the_kubernetes_version(synthesized: Synthesized) -> None:
    descriptions = [
        layer["Properties"].get("Description", "")
        for layer in synthesized.resources("AWS::Lambda::LayerVersion").values()
    ]
    assert any(d.startswith("/opt/kubectl/kubectl 1.35.") for d in descriptions), descriptions


def test_metrics_server_is_installed_for_the_autoscaler(synthesized: Synthesized) -> None:
    assert synthesized.one("AWS::EKS::Addon")["Properties"]["AddonName"] == "metrics-server"


def test_node_role_may_pull_from_the_stacks_repository(synthesized: Synthesized) -> None:
    policies = [
        p
        for p in synthesized.resources("AWS::IAM::Policy").values()
        if p["Properties"]["Roles"][0]["Ref"].startswith("NodeRole")
    ]
    (statement, _) = policies[0]["Properties"]["PolicyDocument"]["Statement"]
    assert "ecr:BatchGetImage" in statement["Action"]
    assert statement["Resource"]["Fn::GetAtt"][0].startswith("Repository")


def test_outputs_name_the_cluster_and_the_in_cluster_url(synthesized: Synthesized) -> None:
    outputs = synthesized.template["Outputs"]
    assert outputs["ServiceUrl"]["Value"] == "http://ml-inference.ml-inference.svc.cluster.local:80"
    assert {"ClusterName", "Namespace", "ServiceAccountRoleArn"} <= set(outputs)


# --- What the cluster runs (the Manifest property of the KubernetesResources) ---------------------


def test_deployment_in_the_template_has_three_replicas(synthesized: Synthesized) -> None:
    deployment = synthesized.kubernetes_object("Deployment")
    assert deployment["metadata"]["name"] == "ml-inference"
    assert deployment["spec"]["replicas"] == 3


def test_container_in_the_template_listens_on_8080(synthesized: Synthesized) -> None:
    (container,) = synthesized.kubernetes_object("Deployment")["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "inference"
    assert container["ports"][0]["containerPort"] == 8080


def test_probes_in_the_template_ask_ping(synthesized: Synthesized) -> None:
    (container,) = synthesized.kubernetes_object("Deployment")["spec"]["template"]["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/ping"


def test_disruption_budget_and_autoscaler_are_in_the_template(synthesized: Synthesized) -> None:
    assert synthesized.kubernetes_object("PodDisruptionBudget")["spec"]["maxUnavailable"] == 1
    hpa = synthesized.kubernetes_object("HorizontalPodAutoscaler")["spec"]
    assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 9)


def test_namespace_in_the_template_enforces_restricted(synthesized: Synthesized) -> None:
    labels = synthesized.kubernetes_object("Namespace")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


def test_model_loader_reads_the_model_asset(synthesized: Synthesized) -> None:
    (loader,) = synthesized.kubernetes_object("Deployment")["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in loader["env"]}
    assert env["MODEL_S3_BUCKET"] == "<token>"  # the CDK asset bucket, resolved at deploy time
    assert env["MODEL_S3_KEY"].endswith(".gz")


def test_network_policies_deny_everyone_but_the_named_callers(synthesized: Synthesized) -> None:
    policies = {
        o["metadata"]["name"]: o["spec"]
        for o in synthesized.kubernetes_objects()
        if o["kind"] == "NetworkPolicy"
    }

    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    assert policies["ml-inference-ingress"]["ingress"] == []


def test_the_cluster_enforces_network_policies(synthesized: Synthesized) -> None:
    config = synthesized.kubernetes_object("ConfigMap")

    assert (config["metadata"]["name"], config["metadata"]["namespace"]) == ("amazon-vpc-cni", "kube-system")
    assert config["data"] == {"enable-network-policy-controller": "true"}


def test_no_subnet_gives_public_ips_on_launch(synthesized: Synthesized) -> None:
    subnets = synthesized.resources("AWS::EC2::Subnet").values()

    assert {s["Properties"]["MapPublicIpOnLaunch"] for s in subnets} == {False}


def test_the_flow_logs_are_kept_a_year_encrypted_with_a_rotating_key(synthesized: Synthesized) -> None:
    (log_group,) = [
        group
        for logical_id, group in synthesized.resources("AWS::Logs::LogGroup").items()
        if "FlowLog" in logical_id
    ]
    key_id = log_group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]

    assert log_group["Properties"]["RetentionInDays"] == 365
    assert synthesized.template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True


def test_kms_keys_deny_grants_that_are_not_for_an_aws_service(synthesized: Synthesized) -> None:
    keys = synthesized.resources("AWS::KMS::Key").values()

    assert len(keys) == 2
    for key in keys:
        sids = [statement.get("Sid") for statement in key["Properties"]["KeyPolicy"]["Statement"]]
        assert "GrantsOnlyForAwsServices" in sids


# --- Ingress exposure on Auto Mode --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Synthesized:
    return synthesize(
        tmp_path_factory.mktemp("eks-ingress-cdk.out"), eksExposure="Ingress", eksAllowedNamespaces="clients"
    )


def test_an_ingress_on_the_stacks_cluster_gets_auto_modes_ingress_class(ingress: Synthesized) -> None:
    assert ingress.kubernetes_object("IngressClass")["spec"]["controller"] == "eks.amazonaws.com/alb"
    assert ingress.kubernetes_object("IngressClassParams")["spec"]["scheme"] == "internal"
    assert ingress.kubernetes_object("Ingress")["spec"]["ingressClassName"] == "alb"


def test_the_ingress_admits_the_vpc_and_the_named_namespace(ingress: Synthesized) -> None:
    (policy,) = [
        o
        for o in ingress.kubernetes_objects()
        if o["kind"] == "NetworkPolicy" and o["metadata"]["name"] == "ml-inference-ingress"
    ]

    assert policy["spec"]["ingress"][0]["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "clients"}}},
        {"ipBlock": {"cidr": "<token>"}},  # the VPC's CIDR block, a deploy-time attribute
    ]


def test_the_ingress_variant_stays_nag_and_lint_clean(ingress: Synthesized) -> None:
    assert ingress.nag["violations"] == []
    assert [f for f in cfn_lint([ingress.template_path]) if f["Level"] in ("Error", "Warning")] == []


def test_a_public_load_balancer_without_a_gate_is_refused(demo_model_artifact: Path) -> None:
    app = App(context={**CDK_JSON_CONTEXT, "eksExposure": "LoadBalancer", "eksInternetFacing": "true"})
    with pytest.raises(ValueError, match="choose at least one of: allowed_cidrs="):
        eks_stack(app)


def test_an_unknown_exposure_names_the_key() -> None:
    app = App(context={**CDK_JSON_CONTEXT, "eksExposure": "NodePort"})
    with pytest.raises(
        ValueError, match="eksExposure must be one of ClusterIP, LoadBalancer, Ingress, got 'NodePort'"
    ):
        eks_stack(app)


# --- Settings and options -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def configured(tmp_path_factory: pytest.TempPathFactory, demo_model_artifact: Path) -> Template:
    app = new_app(
        tmp_path_factory.mktemp("eks-configured"),
        eksReplicas="4",
        eksMaxReplicas="10",
        eksNamespace="serving",
        eksPublicEndpointCidrs="203.0.113.0/24, 198.51.100.7/32",
    )
    return Template.from_stack(eks_stack(app))


def test_public_endpoint_opens_only_to_the_given_networks(configured: Template) -> None:
    configured.has_resource_properties(
        "AWS::EKS::Cluster",
        {
            "ResourcesVpcConfig": Match.object_like(
                {
                    "EndpointPrivateAccess": True,
                    "EndpointPublicAccess": True,
                    "PublicAccessCidrs": ["203.0.113.0/24", "198.51.100.7/32"],
                }
            )
        },
    )


def test_replicas_maximum_and_namespace_come_from_the_context(configured: Template) -> None:
    manifests = json.dumps(configured.find_resources(KUBERNETES_RESOURCE))
    assert '\\"replicas\\":4' in manifests
    assert '\\"minReplicas\\":4,\\"maxReplicas\\":10' in manifests
    assert '\\"namespace\\":\\"serving\\"' in manifests


@pytest.mark.parametrize(
    ("cidrs", "message"),
    [
        pytest.param(["0.0.0.0/0"], "must not include the whole internet", id="the whole internet"),
        pytest.param(
            ["10.0.0.1/8"], "must be networks like 203.0.113.0/24, got '10.0.0.1/8'", id="host bits"
        ),
        pytest.param(["office"], "must be networks like", id="not a network"),
    ],
)
def test_public_endpoint_cidrs_must_be_restricted_networks(cidrs: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        eks_stack(App(context=CDK_JSON_CONTEXT), public_endpoint_cidrs=cidrs)


def existing_cluster(stack: Stack) -> eks.ICluster:
    CfnWaitConditionHandle(stack, "NotEmpty")  # a stack needs one resource to synthesize
    provider = eks.KubectlProvider.from_kubectl_provider_attributes(
        stack, "Provider", service_token="arn:aws:lambda:eu-west-1:123456789012:function:kubectl"
    )
    return eks.Cluster.from_cluster_attributes(
        stack, "Existing", cluster_name="existing", kubectl_provider=provider
    )


def test_an_existing_cluster_is_used_as_it_is(demo_model_artifact: Path) -> None:
    app = App(context={**CDK_JSON_CONTEXT, "copyImageToRepository": False})
    scope = Stack(app, "Imports")
    stack = eks_stack(app, cluster=existing_cluster(scope))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::EKS::Cluster", 0)
    template.resource_count_is("AWS::EC2::VPC", 0)
    template.resource_count_is(KUBERNETES_RESOURCE, 2)


def test_public_endpoint_cidrs_need_the_stacks_own_cluster(demo_model_artifact: Path) -> None:
    app = App(context=CDK_JSON_CONTEXT)
    with pytest.raises(
        ValueError, match="public_endpoint_cidrs only applies to the cluster this stack creates"
    ):
        eks_stack(
            app, cluster=existing_cluster(Stack(app, "Imports")), public_endpoint_cidrs=["203.0.113.0/24"]
        )


# --- DependsOn without the entries a Ref already implies ------------------------------------------


def function_stack() -> Stack:
    """A Lambda function with a role policy: the CDK makes it depend on its role and on the policy."""
    stack = Stack(App(), "Small")
    function = lambda_.Function(
        stack,
        "Function",
        runtime=lambda_.Runtime.PYTHON_3_13,
        handler="index.handler",
        code=lambda_.Code.from_inline("def handler(event, context): pass"),
    )
    function.add_to_role_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=["*"]))
    return stack


def test_the_cdk_makes_a_function_depend_on_the_role_it_references() -> None:
    template = Template.from_stack(function_stack())
    (role_id,) = template.find_resources("AWS::IAM::Role")
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert role_id in function["DependsOn"]
    assert function["Properties"]["Role"] == {"Fn::GetAtt": [role_id, "Arn"]}


def test_depends_on_keeps_only_what_references_do_not_imply() -> None:
    stack = function_stack()
    Aspects.of(stack).add(DropImpliedDependsOn())
    template = Template.from_stack(stack)
    (policy_id,) = template.find_resources("AWS::IAM::Policy")
    (function,) = template.find_resources("AWS::Lambda::Function").values()
    assert function["DependsOn"] == [policy_id]
    (role,) = template.find_resources("AWS::IAM::Role").values()
    assert "DependsOn" not in role
