"""The SageMaker model registry: a model package group holds the versions of one model.

A training pipeline registers each new version into the group (``grant_register``); an approver or a
deployment reads them (``grant_read``); an endpoint serves one version by its ARN
(``group.model_package(3)``, or ``ModelPackage.from_arn(...)`` for a version registered elsewhere).

IAM spells the two resources differently: the group is ``model-package-group/NAME`` and its versions are
``model-package/NAME/VERSION``, so a grant on the group alone never reaches the versions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from aws_cdk import Names, Stack, Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_inference_cdk.constructs.nag import acknowledge
from ml_inference_cdk.constructs.sagemaker.permissions import wildcard_finding
from ml_inference_cdk.constructs.sagemaker.variants import validate_name

"""SageMaker's EntityName: 1-63 letters, digits and inner hyphens."""

MAX_DESCRIPTION: Final = 1024

VERSIONED_PACKAGE_ARN: Final = re.compile(
    r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:model-package/"
    r"(?P<group>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/(?P<version>[1-9][0-9]{0,8})"
)
"""A version in a model package group: ``arn:PARTITION:sagemaker:REGION:ACCOUNT:model-package/GROUP/N``."""

READ_ACTIONS: Final = ("sagemaker:DescribeModelPackage",)
LIST_ACTION: Final = "sagemaker:ListModelPackages"
"""Authorized on "*" only: the service authorization reference lists no resource type for it."""
REGISTER_ACTIONS: Final = ("sagemaker:CreateModelPackage",)

_VERSIONS_REASON = (
    "Model package versions are numbered by SageMaker as they are registered; the grant covers the "
    "versions of this one model package group (model-package/GROUP/*) and nothing else."
)


@dataclass(frozen=True)
class ModelPackage:
    """One registered model version, known by its ARN, to deploy instead of an image and a model.tar.gz."""

    arn: str
    """``arn:PARTITION:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION``."""

    @staticmethod
    def from_arn(arn: str) -> ModelPackage:
        """A version registered elsewhere (a pipeline, another stack or account).

        Raises:
            ValueError: ``arn`` is not the ARN of a version in a model package group.
        """
        if not Token.is_unresolved(arn) and not VERSIONED_PACKAGE_ARN.fullmatch(arn):
            raise ValueError(
                "model package ARN must be "
                "arn:PARTITION:sagemaker:REGION:ACCOUNT:model-package/GROUP/VERSION (a version in a model "
                f"package group, VERSION 1-999999999), got {arn!r}"
            )
        return ModelPackage(arn)


class ModelPackageGroupBase(Construct):
    """What every model package group offers, created here or imported: grants and version references."""

    _name: str
    _arn: str

    @property
    def model_package_group_name(self) -> str:
        """The group's name."""
        return self._name

    @property
    def model_package_group_arn(self) -> str:
        """``arn:PARTITION:sagemaker:REGION:ACCOUNT:model-package-group/NAME``."""
        return self._arn

    @property
    def model_packages_arn(self) -> str:
        """``...:model-package/NAME/*``: every version in the group, for IAM."""
        return _packages_arns(self, self._name)[0]

    def model_package(self, version: int) -> ModelPackage:
        """Version ``version`` (1, 2, ...) of the group, to deploy.

        Raises:
            ValueError: a version below 1 or above 999999999.
        """
        if not Token.is_unresolved(version) and not 1 <= version <= 999_999_999:
            raise ValueError(f"version must be 1-999999999, got {version}")
        stack = Stack.of(self)
        return ModelPackage(
            stack.format_arn(
                service="sagemaker", resource="model-package", resource_name=f"{self._name}/{version}"
            )
        )

    def grant_read(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` describe the group and describe and list the versions in it, nothing else."""
        group = iam.Grant.add_to_principal(
            grantee=grantee, actions=["sagemaker:DescribeModelPackageGroup"], resource_arns=[self._arn]
        )
        versions = iam.Grant.add_to_principal(
            grantee=grantee, actions=list(READ_ACTIONS), resource_arns=_packages_arns(self, self._name)
        )
        listing = iam.Grant.add_to_principal(grantee=grantee, actions=[LIST_ACTION], resource_arns=["*"])
        self._acknowledge_versions(grantee)
        if isinstance(grantee, Construct):
            acknowledge(
                grantee,
                {
                    "AwsSolutions-IAM5[Resource::*]": "sagemaker:ListModelPackages has no resource-level "
                    "permissions; it returns package summaries only (describing one needs the group grant)."
                },
            )
        return group.combine(versions).combine(listing)

    def grant_register(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` register new versions into this group (CreateModelPackage), nothing else.

        CreateModelPackage is authorized on the group and on the version it creates.
        """
        grant = iam.Grant.add_to_principal(
            grantee=grantee,
            actions=[*REGISTER_ACTIONS, "sagemaker:DescribeModelPackageGroup"],
            resource_arns=[self._arn],
        ).combine(
            iam.Grant.add_to_principal(
                grantee=grantee,
                actions=list(REGISTER_ACTIONS),
                resource_arns=_packages_arns(self, self._name),
            )
        )
        self._acknowledge_versions(grantee)
        return grant

    def _acknowledge_versions(self, grantee: iam.IGrantable) -> None:
        if isinstance(grantee, Construct) and not Token.is_unresolved(self._name):
            acknowledge(
                grantee,
                {wildcard_finding(self, arn): _VERSIONS_REASON for arn in _packages_arns(self, self._name)},
            )


class ImportedModelPackageGroup(ModelPackageGroupBase):
    """A group created elsewhere, known by name: grants and version references, nothing created."""

    def __init__(self, scope: Construct, construct_id: str, *, model_package_group_name: str) -> None:
        """Refer to an existing group in this stack's account and region.

        Raises:
            ValueError: a name SageMaker would not accept.
        """
        validate_group_name(model_package_group_name)
        super().__init__(scope, construct_id)
        self._name = model_package_group_name
        self._arn = Stack.of(self).format_arn(
            service="sagemaker", resource="model-package-group", resource_name=model_package_group_name
        )


class ModelPackageGroup(ModelPackageGroupBase):
    """AWS::SageMaker::ModelPackageGroup: the registry entry that collects the versions of one model.

    Example::

        group = ModelPackageGroup(self, "Churn", description="Churn classifier, one version per training run")
        group.grant_register(training_pipeline_role)
        group.grant_read(approver)
    """

    @staticmethod
    def from_model_package_group_name(
        scope: Construct, construct_id: str, model_package_group_name: str
    ) -> ImportedModelPackageGroup:
        """Import an existing group by name, for grants and version references."""
        return ImportedModelPackageGroup(
            scope, construct_id, model_package_group_name=model_package_group_name
        )

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        model_package_group_name: str | None = None,
        description: str | None = None,
    ) -> None:
        """Create the group.

        Args:
            model_package_group_name: 1-63 letters, digits and inner hyphens. Default: derived from the
                construct path (stable, lowercase).
            description: what the group holds, up to 1024 characters. Default: none.

        Raises:
            ValueError: a name or description SageMaker would not accept.
        """
        if model_package_group_name is not None:
            validate_group_name(model_package_group_name)
        if (
            description is not None
            and not Token.is_unresolved(description)
            and len(description) > MAX_DESCRIPTION
        ):
            raise ValueError(
                f"description must be at most {MAX_DESCRIPTION} characters, got {len(description)}"
            )
        super().__init__(scope, construct_id)
        self._name = model_package_group_name or _generated_name(self)
        group = sagemaker.CfnModelPackageGroup(
            self,
            "Default",
            model_package_group_name=self._name,
            model_package_group_description=description,
        )
        self._arn = group.attr_model_package_group_arn


def validate_group_name(name: str) -> None:
    validate_name("model_package_group_name", name)


def _packages_arns(scope: Construct, name: str) -> list[str]:
    """The versions' ARN pattern; with a mixed-case name, also in lowercase (the spelling of some ARNs)."""
    spellings = [name] if Token.is_unresolved(name) or name == name.lower() else [name, name.lower()]
    stack = Stack.of(scope)
    return [
        stack.format_arn(service="sagemaker", resource="model-package", resource_name=f"{spelling}/*")
        for spelling in spellings
    ]


def _generated_name(scope: Construct) -> str:
    name = Names.unique_resource_name(scope, max_length=63, separator="-").lower()
    return re.sub(r"[^a-z0-9-]", "", name).strip("-")
