"""cdk-nag (3.x, a CDK policy-validation plugin) wiring and acknowledgements with reasons.

cdk-nag 3.x runs after synthesis as a policy-validation plugin: error findings fail ``cdk synth``
("ValidationFailed") and the report, with every acknowledgement and its reason, lands in
``cdk.out/validation-report.json``. We chose it over the 2.x Aspect API because it is the maintained
major, and because an acknowledgement is recorded next to the finding it answers in that report.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Acknowledgment, Validations
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
