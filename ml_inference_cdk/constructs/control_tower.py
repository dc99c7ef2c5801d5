"""AWS Control Tower proactive controls that a resource does not meet, written next to it with the reason.

Accounts that enforce Control Tower's proactive controls run them as CloudFormation hooks: a resource that
fails one is not deployed. This project checks every stack against the controls (cfn-guard with the rule set
of ``cdklabs-cdk-validator-cfnguard``) and meets them by default where AWS allows it. Where a control cannot
be met, the exemption is recorded on the resource's template ``Metadata`` (``cfn-guard.exemptions``, each with
a reason), so the check reports it as known and README's table explains it, with the option that meets it
where one exists. An exemption does not stop the hook of an account that enforces the control: it documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from aws_cdk import CfnResource
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import IConstruct

METADATA_KEY: Final = "cfn-guard"
_CONTROL_ID = re.compile(r"CT\.[A-Z0-9]+\.PR\.\d+")


def exempt(construct: IConstruct, controls: Mapping[str, str]) -> None:
    """Record, on the resource's template metadata, the Control Tower controls it does not meet and why.

    Args:
        construct: a CfnResource, or an L2 whose default child is one.
        controls: control id -> reason, e.g. ``{"CT.S3.PR.10": "ELB access logs support only SSE-S3"}``.

    Raises:
        ValueError: a control id not like ``CT.SERVICE.PR.N``, an empty reason, or no resource to record on.
    """
    resource = construct if isinstance(construct, CfnResource) else construct.node.default_child
    if not isinstance(resource, CfnResource):
        raise ValueError(f"{construct.node.path} has no CloudFormation resource to record exemptions on")
    entries = list((resource.get_metadata(METADATA_KEY) or {}).get("exemptions", []))
    for control, reason in controls.items():
        if not _CONTROL_ID.fullmatch(control):
            raise ValueError(f"control ids look like CT.S3.PR.10, got {control!r}")
        if not reason.strip():
            raise ValueError(f"exempting {control} needs a written reason")
        entries.append({"id": control, "reason": reason})
    resource.add_metadata(METADATA_KEY, {"exemptions": entries})


def restrict_grants_to_aws_services(key: kms.Key) -> None:
    """Deny kms:CreateGrant unless an AWS service asks for its own resource (CT.KMS.PR.3).

    Grants are how AWS services (EKS, EBS, ...) use a key on the account's behalf; a grant that anyone with
    kms:CreateGrant could create for any principal would bypass the key policy.
    """
    key.add_to_resource_policy(
        iam.PolicyStatement(
            sid="GrantsOnlyForAwsServices",
            effect=iam.Effect.DENY,
            principals=[iam.AnyPrincipal()],
            actions=["kms:CreateGrant"],
            resources=["*"],
            conditions={
                "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
            },
        )
    )
