"""An AWS WAF web ACL on the inference load balancer: AWS managed rule groups and a per-client rate limit."""

from __future__ import annotations

from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

from ml_inference_cdk.constructs.ecs.exposure import WebApplicationFirewall


def add_web_acl(
    scope: Construct,
    *,
    load_balancer: elbv2.ApplicationLoadBalancer,
    firewall: WebApplicationFirewall,
    behind_api: bool,
) -> wafv2.CfnWebACL:
    """A REGIONAL web ACL associated with ``load_balancer``.

    Behind the HTTP API every request arrives from the VPC link's addresses, so the rate limit counts the
    client address API Gateway puts first in X-Forwarded-For instead (those callers are already
    SigV4-authenticated); WAF cannot be associated with an HTTP API itself.
    """
    rate_statement = wafv2.CfnWebACL.RateBasedStatementProperty(
        limit=firewall.rate_limit,
        evaluation_window_sec=300,
        aggregate_key_type="FORWARDED_IP" if behind_api else "IP",
        forwarded_ip_config=(
            wafv2.CfnWebACL.ForwardedIPConfigurationProperty(
                header_name="X-Forwarded-For", fallback_behavior="MATCH"
            )
            if behind_api
            else None
        ),
    )
    rules = [
        wafv2.CfnWebACL.RuleProperty(
            name="RateLimitPerClient",
            priority=0,
            action=wafv2.CfnWebACL.RuleActionProperty(block={}),
            statement=wafv2.CfnWebACL.StatementProperty(rate_based_statement=rate_statement),
            visibility_config=_visibility("RateLimitPerClient"),
        )
    ]
    for priority, group in enumerate(firewall.managed_rule_groups, start=1):
        overrides = (
            # Inference requests carry whole batches: the 8 KB body rule would block them.
            [
                wafv2.CfnWebACL.RuleActionOverrideProperty(
                    name="SizeRestrictions_BODY", action_to_use={"count": {}}
                )
            ]
            if group == "AWSManagedRulesCommonRuleSet"
            else None
        )
        rules.append(
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group, rule_action_overrides=overrides
                    )
                ),
                visibility_config=_visibility(group),
            )
        )
    web_acl = wafv2.CfnWebACL(
        scope,
        "WebAcl",
        scope="REGIONAL",
        default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
        description="Inference load balancer: AWS managed rules and a per-client rate limit",
        rules=rules,
        visibility_config=_visibility("InferenceWebAcl"),
    )
    wafv2.CfnWebACLAssociation(
        scope, "WebAclAssociation", resource_arn=load_balancer.load_balancer_arn, web_acl_arn=web_acl.attr_arn
    )
    return web_acl


def _visibility(metric_name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=metric_name, sampled_requests_enabled=True
    )
