"""Who may reach FargateInferenceService: each exposure mode on the template, and each combination refused."""

from __future__ import annotations

import re
from typing import Any

import pytest
from aws_cdk import App, SecretValue, Stack
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Capture, Match, Template

from ml_inference_cdk import ContainerImage, FargateInferenceService, ModelArtifact
from ml_inference_cdk.constructs.ecs.exposure import ListenerAuthentication, WebApplicationFirewall
from tests.support.fargate import CERTIFICATE_ARN, IMAGE_URI, MODEL_URI, build, template_of, with_certificate

ISSUER = "https://login.example.com/"
JWT = ListenerAuthentication.jwt(
    issuer=ISSUER, jwks_endpoint="https://login.example.com/.well-known/jwks.json"
)


def load_balancer_ingress(template: Template) -> list[dict[str, Any]]:
    (group,) = [
        g
        for g in template.find_resources("AWS::EC2::SecurityGroup").values()
        if g["Properties"]["GroupDescription"].startswith("Inference load balancer")
    ]
    rules: list[dict[str, Any]] = group["Properties"]["SecurityGroupIngress"]
    return rules


# --- internet-facing behind allowed_cidrs -------------------------------------------------------------------


@pytest.fixture(scope="module")
def cidrs() -> Template:
    return template_of(internet_facing=True, allowed_cidrs=["203.0.113.0/24"], configure=with_certificate)


def test_allowed_cidrs_open_a_public_load_balancer_to_those_networks_only(cidrs: Template) -> None:
    cidrs.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internet-facing"})

    assert {(rule["CidrIp"], rule["FromPort"]) for rule in load_balancer_ingress(cidrs)} == {
        ("203.0.113.0/24", 80),
        ("203.0.113.0/24", 443),
    }


def test_public_plain_http_behind_cidrs_needs_the_explicit_opt_in() -> None:
    with pytest.raises(ValueError, match="allow_public_http=True"):
        build(internet_facing=True, allowed_cidrs=["203.0.113.0/24"])


def test_allow_public_http_serves_plain_http_to_the_allowed_cidrs() -> None:
    template = template_of(internet_facing=True, allowed_cidrs=["203.0.113.0/24"], allow_public_http=True)

    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener", {"Protocol": "HTTP", "Port": 80}
    )
    assert [rule["CidrIp"] for rule in load_balancer_ingress(template)] == ["203.0.113.0/24"]


# --- internet-facing behind an authenticate action ----------------------------------------------------------


@pytest.fixture(scope="module")
def jwt() -> Template:
    return template_of(internet_facing=True, authentication=JWT, configure=with_certificate)


def test_jwt_authentication_verifies_bearer_tokens_before_forwarding(jwt: Template) -> None:
    jwt.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "Protocol": "HTTPS",
            "DefaultActions": [
                Match.object_like(
                    {
                        "Type": "jwt-validation",
                        "Order": 1,
                        "JwtValidationConfig": Match.object_like(
                            {
                                "Issuer": ISSUER,
                                "JwksEndpoint": "https://login.example.com/.well-known/jwks.json",
                            }
                        ),
                    }
                ),
                Match.object_like({"Type": "forward", "Order": 2}),
            ],
        },
    )


def test_behind_authentication_any_address_may_connect_and_http_only_redirects(jwt: Template) -> None:
    assert {(rule["CidrIp"], rule["FromPort"]) for rule in load_balancer_ingress(jwt)} == {
        ("0.0.0.0/0", 80),
        ("0.0.0.0/0", 443),
    }
    jwt.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"Protocol": "HTTP", "DefaultActions": [Match.object_like({"Type": "redirect"})]},
    )


def test_oidc_authentication_signs_users_in_with_the_provider() -> None:
    oidc = ListenerAuthentication.oidc(
        issuer=ISSUER,
        authorization_endpoint="https://login.example.com/authorize",
        token_endpoint="https://login.example.com/token",
        user_info_endpoint="https://login.example.com/userinfo",
        client_id="inference",
        client_secret=SecretValue.secrets_manager("inference-oidc"),
    )
    template = template_of(internet_facing=True, authentication=oidc, configure=with_certificate)

    template.has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {
            "DefaultActions": Match.array_with(
                [
                    Match.object_like(
                        {
                            "Type": "authenticate-oidc",
                            "AuthenticateOidcConfig": Match.object_like(
                                {
                                    "Issuer": ISSUER,
                                    "ClientId": "inference",
                                    "OnUnauthenticatedRequest": "authenticate",
                                }
                            ),
                        }
                    )
                ]
            )
        },
    )


def test_cognito_authentication_signs_users_in_with_the_user_pool() -> None:
    stack = Stack(App(), "Test")
    pool = cognito.UserPool(stack, "Users")
    client = pool.add_client("Client", generate_secret=True)
    domain = pool.add_domain(
        "Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix="ml-inference")
    )
    FargateInferenceService(
        stack,
        "Inference",
        image=ContainerImage.from_image_uri(IMAGE_URI),
        model_artifact=ModelArtifact.from_s3_uri(MODEL_URI),
        internet_facing=True,
        certificate=acm.Certificate.from_certificate_arn(stack, "Certificate", CERTIFICATE_ARN),
        authentication=ListenerAuthentication.cognito(
            user_pool=pool, user_pool_client=client, user_pool_domain=domain
        ),
    )

    Template.from_stack(stack).has_resource_properties(
        "AWS::ElasticLoadBalancingV2::Listener",
        {"DefaultActions": Match.array_with([Match.object_like({"Type": "authenticate-cognito"})])},
    )


def test_authentication_without_a_certificate_is_refused() -> None:
    with pytest.raises(ValueError, match="authentication=jwt needs an HTTPS listener"):
        build(internet_facing=True, authentication=JWT)


def test_an_issuer_that_is_not_https_is_refused() -> None:
    with pytest.raises(
        ValueError, match=re.escape("issuer must be an https:// URL, got 'http://login.example.com/'")
    ):
        ListenerAuthentication.jwt(
            issuer="http://login.example.com/", jwks_endpoint="https://login.example.com/k"
        )


# --- public without a gate ----------------------------------------------------------------------------------


def test_internet_facing_without_a_gate_is_refused_naming_the_choices() -> None:
    with pytest.raises(ValueError, match=r"allowed_cidrs=.*authentication=.*iam_http_api=True"):
        build(internet_facing=True, configure=with_certificate)


@pytest.mark.parametrize("anywhere", ["0.0.0.0/0", "::/0"])
def test_allowed_cidrs_of_the_whole_internet_count_as_no_gate(anywhere: str) -> None:
    with pytest.raises(ValueError, match=f"allowed_cidrs=\\['{anywhere}'\\] and no authentication"):
        build(internet_facing=True, allowed_cidrs=[anywhere], configure=with_certificate)


# --- an API Gateway HTTP API with IAM authorization ---------------------------------------------------------


@pytest.fixture(scope="module")
def api() -> tuple[Stack, FargateInferenceService]:
    return build(iam_http_api=True)


def test_the_http_api_authorizes_every_route_with_iam(api: tuple[Stack, FargateInferenceService]) -> None:
    template = Template.from_stack(api[0])

    routes = template.find_resources("AWS::ApiGatewayV2::Route").values()
    assert [(r["Properties"]["RouteKey"], r["Properties"]["AuthorizationType"]) for r in routes] == [
        ("$default", "AWS_IAM")
    ]


def test_the_http_api_reaches_the_internal_load_balancer_through_a_vpc_link(
    api: tuple[Stack, FargateInferenceService],
) -> None:
    template = Template.from_stack(api[0])

    template.has_resource_properties("AWS::ElasticLoadBalancingV2::LoadBalancer", {"Scheme": "internal"})
    template.resource_count_is("AWS::ApiGatewayV2::VpcLink", 1)
    template.has_resource_properties(
        "AWS::ApiGatewayV2::Integration",
        {
            "ConnectionType": "VPC_LINK",
            "IntegrationType": "HTTP_PROXY",
            "IntegrationUri": {"Ref": Match.any_value()},
        },
    )


def test_the_vpc_link_may_reach_only_the_load_balancers_listener(
    api: tuple[Stack, FargateInferenceService],
) -> None:
    template = Template.from_stack(api[0])
    link_group = Capture()
    template.has_resource_properties(
        "AWS::ApiGatewayV2::VpcLink", {"SecurityGroupIds": [{"Fn::GetAtt": [link_group, "GroupId"]}]}
    )
    link = {"Fn::GetAtt": [link_group.as_string(), "GroupId"]}

    egress = template.find_resources("AWS::EC2::SecurityGroupEgress", {"Properties": {"GroupId": link}})
    assert [(e["Properties"]["FromPort"], e["Properties"]["ToPort"]) for e in egress.values()] == [(80, 80)]
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress", {"FromPort": 80, "ToPort": 80, "SourceSecurityGroupId": link}
    )


def test_the_http_api_stage_writes_access_logs_and_throttles(
    api: tuple[Stack, FargateInferenceService],
) -> None:
    Template.from_stack(api[0]).has_resource_properties(
        "AWS::ApiGatewayV2::Stage",
        {
            "StageName": "$default",
            "AccessLogSettings": {
                "DestinationArn": Match.any_value(),
                "Format": Match.string_like_regexp("caller"),
            },
            "DefaultRouteSettings": {"ThrottlingRateLimit": 100, "ThrottlingBurstLimit": 200},
        },
    )


def test_with_the_http_api_the_url_is_the_apis(api: tuple[Stack, FargateInferenceService]) -> None:
    stack, service = api
    assert service.api is not None

    assert stack.resolve(service.url) == stack.resolve(service.api.api_endpoint)


def test_grant_invoke_allows_execute_api_invoke_on_the_api() -> None:
    stack, service = build(iam_http_api=True)
    caller = iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal())
    service.grant_invoke(caller)

    Template.from_stack(stack).has_resource_properties(
        "AWS::IAM::Policy",
        {
            "Roles": [{"Ref": Match.string_like_regexp("Caller")}],
            "PolicyDocument": {"Statement": [Match.object_like({"Action": "execute-api:Invoke"})]},
        },
    )


def test_grant_invoke_without_the_api_is_refused() -> None:
    stack, service = build()

    with pytest.raises(ValueError, match="grant_invoke needs iam_http_api=True"):
        service.grant_invoke(iam.Role(stack, "Caller", assumed_by=iam.AccountRootPrincipal()))


def test_the_http_api_with_a_public_load_balancer_is_refused() -> None:
    with pytest.raises(ValueError, match="iam_http_api=True puts the HTTP API in front of an INTERNAL"):
        build(
            iam_http_api=True,
            internet_facing=True,
            allowed_cidrs=["203.0.113.0/24"],
            configure=with_certificate,
        )


# --- AWS WAF ------------------------------------------------------------------------------------------------


def rules_of(template: Template) -> dict[str, dict[str, Any]]:
    (web_acl,) = template.find_resources("AWS::WAFv2::WebACL").values()
    return {rule["Name"]: rule for rule in web_acl["Properties"]["Rules"]}


def test_waf_puts_managed_rules_and_a_per_address_rate_limit_on_the_load_balancer() -> None:
    template = template_of(waf=WebApplicationFirewall())
    rules = rules_of(template)

    assert rules["RateLimitPerClient"]["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "IP",
        "EvaluationWindowSec": 300,
        "Limit": 1000,
    }
    assert set(rules) - {"RateLimitPerClient"} == {
        "AWSManagedRulesAmazonIpReputationList",
        "AWSManagedRulesKnownBadInputsRuleSet",
        "AWSManagedRulesCommonRuleSet",
    }
    template.has_resource_properties(
        "AWS::WAFv2::WebACLAssociation", {"ResourceArn": {"Ref": Match.string_like_regexp("LoadBalancer")}}
    )


def test_waf_counts_instead_of_blocking_large_inference_bodies() -> None:
    common = rules_of(template_of(waf=WebApplicationFirewall()))["AWSManagedRulesCommonRuleSet"]

    assert common["Statement"]["ManagedRuleGroupStatement"]["RuleActionOverrides"] == [
        {"ActionToUse": {"Count": {}}, "Name": "SizeRestrictions_BODY"}
    ]


def test_waf_behind_the_http_api_limits_the_forwarded_client_address() -> None:
    rate = rules_of(template_of(iam_http_api=True, waf=WebApplicationFirewall(rate_limit=500)))[
        "RateLimitPerClient"
    ]

    assert rate["Statement"]["RateBasedStatement"] == {
        "AggregateKeyType": "FORWARDED_IP",
        "EvaluationWindowSec": 300,
        "ForwardedIPConfig": {"FallbackBehavior": "MATCH", "HeaderName": "X-Forwarded-For"},
        "Limit": 500,
    }


def test_no_web_acl_unless_asked() -> None:
    template_of().resource_count_is("AWS::WAFv2::WebACL", 0)


@pytest.mark.parametrize("rate_limit", [9, 2_000_000_001])
def test_a_rate_limit_outside_wafs_range_is_refused(rate_limit: int) -> None:
    with pytest.raises(ValueError, match=f"rate_limit must be 10-2000000000 .*got {rate_limit}"):
        WebApplicationFirewall(rate_limit=rate_limit)
