"""EksInferenceDeployment on an existing (imported) cluster: what it applies, grants and exposes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_eks_v2 as eks
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template

from ml_inference_cdk.constructs.eks.deployment import EksInferenceDeployment
from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact

KUBERNETES_RESOURCE = "Custom::AWSCDK-EKS-KubernetesResource"
ENV = {"account": "123456789012", "region": "eu-west-1"}
PROVIDER_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:kubectl-provider"


def existing_cluster(stack: Stack) -> eks.ICluster:
    provider = eks.KubectlProvider.from_kubectl_provider_attributes(
        stack,
        "KubectlProvider",
        service_token=PROVIDER_ARN,
        role=iam.Role.from_role_arn(stack, "KubectlRole", "arn:aws:iam::123456789012:role/kubectl"),
    )
    return eks.Cluster.from_cluster_attributes(
        stack, "Cluster", cluster_name="existing", kubectl_provider=provider
    )


def deploy(**options: Any) -> tuple[Stack, EksInferenceDeployment]:
    stack = Stack(App(), "Test", env=ENV)
    cluster = existing_cluster(stack)
    repository = ecr.Repository.from_repository_name(stack, "Repository", "ml-inference")
    bucket = s3.Bucket.from_bucket_name(stack, "Models", "models-bucket")
    defaults: dict[str, Any] = {
        "cluster": cluster,
        "image": ContainerImage.from_repository(repository, tag="1.0.0"),
        "model_artifact": ModelArtifact.from_bucket(bucket, "iris/model.tar.gz"),
    }
    if options.get("exposure", "ClusterIP") != "ClusterIP":
        defaults["load_balancer_source_cidrs"] = ["10.0.0.0/16"]  # an imported cluster without its VPC
    deployment = EksInferenceDeployment(stack, "Inference", **(defaults | options))
    return stack, deployment


def manifests_in(template: Template) -> dict[str, list[dict[str, Any]]]:
    """The Kubernetes objects of each KubernetesResource, by logical id (deploy-time values as '<token>')."""
    found = {}
    for logical_id, resource in template.find_resources(KUBERNETES_RESOURCE).items():
        value = resource["Properties"]["Manifest"]
        parts = value["Fn::Join"][1] if isinstance(value, dict) else [value]
        text = "".join(part if isinstance(part, str) else "<token>" for part in parts)
        found[logical_id] = json.loads(text)
    return found


def objects_of(template: Template) -> list[dict[str, Any]]:
    return [o for objects in manifests_in(template).values() for o in objects]


def of_kind(template: Template, kind: str) -> dict[str, Any]:
    (found,) = [o for o in objects_of(template) if o["kind"] == kind]
    return found


@pytest.fixture(scope="module")
def deployed() -> tuple[Stack, EksInferenceDeployment]:
    return deploy()


@pytest.fixture(scope="module")
def template(deployed: tuple[Stack, EksInferenceDeployment]) -> Template:
    return Template.from_stack(deployed[0])


def test_namespace_and_workload_are_two_manifests_applied_in_order(template: Template) -> None:
    manifests = manifests_in(template)
    assert sorted(o["kind"] for objects in manifests.values() for o in objects) == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "Namespace",
        "NetworkPolicy",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    (namespace_id,) = [i for i, objects in manifests.items() if objects[0]["kind"] == "Namespace"]
    (workload_id,) = [i for i in manifests if i != namespace_id]
    assert namespace_id in template.to_json()["Resources"][workload_id]["DependsOn"]


def test_manifests_go_through_the_clusters_kubectl_provider(template: Template) -> None:
    template.resource_count_is(KUBERNETES_RESOURCE, 2)
    template.all_resources_properties(
        KUBERNETES_RESOURCE, {"ServiceToken": PROVIDER_ARN, "ClusterName": "existing"}
    )


def test_pods_run_the_image_from_the_repository(template: Template) -> None:
    pod = of_kind(template, "Deployment")["spec"]["template"]["spec"]
    images = {c["image"] for c in pod["containers"] + pod["initContainers"]}
    # The registry's domain suffix is the partition's (AWS::URLSuffix), resolved at deploy time.
    assert images == {"123456789012.dkr.ecr.eu-west-1.<token>/ml-inference:1.0.0"}


def test_model_loader_reads_exactly_the_model_object(template: Template) -> None:
    (loader,) = of_kind(template, "Deployment")["spec"]["template"]["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in loader["env"]}
    assert (env["MODEL_S3_BUCKET"], env["MODEL_S3_KEY"], env["MODEL_S3_REGION"]) == (
        "models-bucket",
        "iris/model.tar.gz",
        "eu-west-1",
    )


def test_service_account_role_is_trusted_by_eks_pod_identity_for_that_service_account(
    template: Template,
) -> None:
    template.has_resource_properties(
        "AWS::IAM::Role",
        {
            "AssumeRolePolicyDocument": {
                "Statement": [
                    {
                        "Action": ["sts:AssumeRole", "sts:TagSession"],
                        "Effect": "Allow",
                        "Principal": {"Service": "pods.eks.amazonaws.com"},
                        "Condition": {
                            "StringEquals": {
                                "aws:RequestTag/eks-cluster-name": "existing",
                                "aws:RequestTag/kubernetes-namespace": "ml-inference",
                                "aws:RequestTag/kubernetes-service-account": "ml-inference",
                            }
                        },
                    }
                ]
            }
        },
    )


def test_service_account_role_may_get_only_the_model_object(template: Template) -> None:
    template.has_resource_properties(
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
                                ["arn:", {"Ref": "AWS::Partition"}, ":s3:::models-bucket/iris/model.tar.gz"],
                            ]
                        },
                    }
                ]
            },
            "Roles": [{"Ref": Match.string_like_regexp("InferenceServiceAccountRole")}],
        },
    )


def test_pod_identity_associates_the_service_account_with_the_role(template: Template) -> None:
    template.has_resource_properties(
        "AWS::EKS::PodIdentityAssociation",
        {
            "ClusterName": "existing",
            "Namespace": "ml-inference",
            "ServiceAccount": "ml-inference",
            "RoleArn": {"Fn::GetAtt": [Match.string_like_regexp("InferenceServiceAccountRole"), "Arn"]},
        },
    )


def test_workload_waits_for_the_association_and_the_role_policy(template: Template) -> None:
    resources = template.to_json()["Resources"]
    (association,) = template.find_resources("AWS::EKS::PodIdentityAssociation")
    (policy,) = template.find_resources("AWS::IAM::Policy")
    workload = [
        r for r in resources.values() if r["Type"] == KUBERNETES_RESOURCE and len(r.get("DependsOn", [])) > 1
    ]
    assert len(workload) == 1
    assert {association, policy} <= set(workload[0]["DependsOn"])


def test_without_a_node_role_nothing_is_granted_for_the_image_pull(template: Template) -> None:
    for policy in template.find_resources("AWS::IAM::Policy").values():
        assert "ecr" not in json.dumps(policy["Properties"]["PolicyDocument"])


def test_the_node_role_is_granted_the_image_pull() -> None:
    stack = Stack(App(), "Test", env=ENV)
    node_role = iam.Role(stack, "NodeRole", assumed_by=iam.ServicePrincipal("ec2.amazonaws.com"))
    repository = ecr.Repository.from_repository_name(stack, "Repository", "ml-inference")
    EksInferenceDeployment(
        stack,
        "Inference",
        cluster=existing_cluster(stack),
        image=ContainerImage.from_repository(repository, tag="1.0.0"),
        model_artifact=ModelArtifact.from_s3_uri("s3://models-bucket/iris/model.tar.gz"),
        node_role=node_role,
    )
    (policy,) = (
        Template.from_stack(stack)
        .find_resources(
            "AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": Match.string_like_regexp("NodeRole")}]}}
        )
        .values()
    )
    pull, token = policy["Properties"]["PolicyDocument"]["Statement"]
    assert pull["Action"] == [
        "ecr:BatchCheckLayerAvailability",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchGetImage",
    ]
    assert "repository/ml-inference" in json.dumps(pull["Resource"])
    assert token == {"Action": "ecr:GetAuthorizationToken", "Effect": "Allow", "Resource": "*"}


def test_it_exposes_the_service_name_url_and_role(deployed: tuple[Stack, EksInferenceDeployment]) -> None:
    stack, deployment = deployed
    assert deployment.service_name == "ml-inference"
    assert deployment.namespace == "ml-inference"
    assert deployment.service_account_name == "ml-inference"
    assert deployment.service_url == "http://ml-inference.ml-inference.svc.cluster.local:80"
    role_arn = stack.resolve(deployment.service_account_role.role_arn)
    assert role_arn["Fn::GetAtt"][0].startswith("InferenceServiceAccountRole")


def test_options_reach_the_objects() -> None:
    stack, _ = deploy(
        replicas=2, max_replicas=4, namespace="serving", exposure="LoadBalancer", cpu="2", memory="4Gi"
    )
    template = Template.from_stack(stack)
    assert of_kind(template, "Deployment")["spec"]["replicas"] == 2
    assert of_kind(template, "HorizontalPodAutoscaler")["spec"]["maxReplicas"] == 4
    assert of_kind(template, "Service")["spec"]["type"] == "LoadBalancer"
    assert {o["metadata"].get("namespace", o["metadata"]["name"]) for o in objects_of(template)} == {
        "serving"
    }


def test_an_existing_namespace_is_not_created() -> None:
    stack, _ = deploy(namespace="team-a", create_namespace=False)
    template = Template.from_stack(stack)
    template.resource_count_is(KUBERNETES_RESOURCE, 1)
    assert "Namespace" not in {o["kind"] for o in objects_of(template)}


def test_load_balancer_address_is_read_from_the_service() -> None:
    stack, deployment = deploy(exposure="LoadBalancer")
    deployment.load_balancer_address()
    Template.from_stack(stack).has_resource_properties(
        "Custom::AWSCDK-EKS-KubernetesObjectValue",
        {
            "ObjectType": "service",
            "ObjectName": "ml-inference",
            "ObjectNamespace": "ml-inference",
            "JsonPath": ".status.loadBalancer.ingress[0].hostname",
        },
    )


def test_load_balancer_address_is_read_from_the_ingress() -> None:
    stack, deployment = deploy(exposure="Ingress")
    assert deployment.load_balancer_address() == deployment.load_balancer_address()
    Template.from_stack(stack).resource_properties_count_is(
        "Custom::AWSCDK-EKS-KubernetesObjectValue", {"ObjectType": "ingress"}, 1
    )


def test_load_balancer_address_needs_a_load_balancer(deployed: tuple[Stack, EksInferenceDeployment]) -> None:
    with pytest.raises(ValueError, match="load_balancer_address needs exposure='LoadBalancer' or 'Ingress'"):
        deployed[1].load_balancer_address()


def test_invalid_options_fail_before_anything_is_created() -> None:
    stack = Stack(App(), "Test", env=ENV)
    cluster = existing_cluster(stack)
    with pytest.raises(ValueError, match="max_replicas must be >= replicas"):
        EksInferenceDeployment(
            stack,
            "Inference",
            cluster=cluster,
            image=ContainerImage.from_image_uri(
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/ml-inference:1"
            ),
            model_artifact=ModelArtifact.from_s3_uri("s3://models-bucket/model.tar.gz"),
            replicas=5,
            max_replicas=2,
        )
    assert Template.from_stack(stack).to_json().get("Resources", {}) == {}
