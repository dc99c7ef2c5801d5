"""Policy checks on the synthesized templates: cdk-nag (3.x) acknowledgements and checkov skips, with reasons.

cdk-nag 3.x runs after synthesis as a policy-validation plugin: error findings fail ``cdk synth``
("ValidationFailed") and the report, with every acknowledgement and its reason, lands in
``cdk.out/validation-report.json``. We chose it over the 2.x Aspect API because it is the maintained
major, and because an acknowledgement is recorded next to the finding it answers in that report.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, CfnResource, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK = "AwsSolutions"


def apply_aws_solutions_checks(scope: IConstruct) -> None:
    """Run the AwsSolutions rule pack on every stack under ``scope`` (usually the App) at synth."""
    Validations.of(scope).add_plugins(AwsSolutionsChecks(scope))


def acknowledge(construct: IConstruct, findings: Mapping[str, str]) -> None:
    """Acknowledge AwsSolutions findings on ``construct`` and its children, each with a written reason.

    Args:
        construct: the resource (or its parent) the finding concerns; never the whole stack.
        findings: finding id -> reason, e.g. ``{"AwsSolutions-IAM5[Resource::*]":
            "ecr:GetAuthorizationToken has no resource-level permissions"}``. The id is the one cdk-nag prints
            after "Acknowledge with".

    Raises:
        ValueError: an empty reason.
    """
    for finding, reason in findings.items():
        if not reason.strip():
            raise ValueError(f"acknowledging {finding} needs a written reason")
        rule = finding if finding.startswith(f"{PACK}::") else f"{PACK}::{finding}"
        Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason))


def skip_checkov(construct: IConstruct, checks: Mapping[str, str]) -> None:
    """Record checkov skips on the CloudFormation resource itself, each with a written reason.

    checkov reads ``Metadata.checkov.skip`` from the synthesized template, so the reason travels with the
    resource, as cdk-nag acknowledgements do. ``construct`` is a CfnResource, or an L2 whose default child
    is one.

    Raises:
        ValueError: an empty reason, or no CloudFormation resource to put the skip on.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"{construct.node.path} has no CloudFormation resource to record checkov skips on")
    skips = list((resource.get_metadata("checkov") or {}).get("skip", []))
    for check, reason in checks.items():
        if not reason.strip():
            raise ValueError(f"skipping {check} needs a written reason")
        skips.append({"id": check, "comment": reason})
    resource.add_metadata("checkov", {"skip": skips})
