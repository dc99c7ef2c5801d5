"""An ECR repository for inference images, with the defaults a production registry needs."""

from __future__ import annotations

import re

from aws_cdk import Duration, Names, RemovalPolicy, Token
from aws_cdk import aws_ecr as ecr
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct


class InferenceRepository(Construct):
    """ECR repository with scan on push, immutable tags, lifecycle rules and encryption on.

    Retained when the stack is deleted unless ``removal_policy=RemovalPolicy.DESTROY``, which also
    empties the repository on delete (ECR refuses to delete a repository that still holds images).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        repository_name: str | None = None,
        image_scan_on_push: bool = True,
        immutable_tags: bool = True,
        max_image_count: int = 30,
        untagged_image_expiry: Duration | None = None,
        encryption_key: kms.IKey | None = None,
        removal_policy: RemovalPolicy = RemovalPolicy.RETAIN,
    ) -> None:
        """Create the repository.

        Args:
            repository_name: ECR name (lowercase, 2-256 chars, ``[a-z0-9._/-]``). Default: a lowercase name
                unique to this construct's path, e.g. ``sagemakerstack-repository-1a2b3c4d``.
            image_scan_on_push: scan every pushed image for CVEs. Default: True.
            immutable_tags: refuse to overwrite an existing tag. Default: True.
            max_image_count: keep only the newest N images. Default: 30.
            untagged_image_expiry: delete untagged images older than this. Default: 1 day.
            encryption_key: a customer managed KMS key. Default: AES256 (ECR managed).
            removal_policy: what happens to the repository when the stack is deleted. Default: RETAIN;
                DESTROY also empties it on delete.

        Raises:
            ValueError: a name ECR rejects, or max_image_count < 1.
        """
        super().__init__(scope, construct_id)
        _validate_repository_name(repository_name)
        if max_image_count < 1:
            raise ValueError(f"max_image_count must be >= 1, got {max_image_count}")
        expiry = untagged_image_expiry or Duration.days(1)

        destroy = removal_policy == RemovalPolicy.DESTROY
        self.repository: ecr.Repository = ecr.Repository(
            self,
            "Repository",
            repository_name=repository_name
            or Names.unique_resource_name(self, max_length=200, separator="-").lower(),
            image_scan_on_push=image_scan_on_push,
            image_tag_mutability=ecr.TagMutability.IMMUTABLE if immutable_tags else ecr.TagMutability.MUTABLE,
            encryption=ecr.RepositoryEncryption.KMS if encryption_key else ecr.RepositoryEncryption.AES_256,
            encryption_key=encryption_key,
            removal_policy=removal_policy,
            empty_on_delete=True if destroy else None,
            lifecycle_rules=[
                ecr.LifecycleRule(
                    rule_priority=1,
                    description=f"Expire untagged images after {expiry.to_days()} day(s)",
                    tag_status=ecr.TagStatus.UNTAGGED,
                    max_image_age=expiry,
                ),
                ecr.LifecycleRule(
                    rule_priority=2,
                    description=f"Keep the newest {max_image_count} images",
                    tag_status=ecr.TagStatus.ANY,
                    max_image_count=max_image_count,
                ),
            ],
        )
        if encryption_key is None:
            # CDK leaves ECR's default (AES256) out of the template; name it so the template shows it.
            cfn_repository = self.repository.node.default_child
            assert isinstance(cfn_repository, ecr.CfnRepository)
            cfn_repository.encryption_configuration = ecr.CfnRepository.EncryptionConfigurationProperty(
                encryption_type="AES256"
            )
        self.encryption_key = encryption_key

    @property
    def repository_uri(self) -> str:
        """The registry URI, ``ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME``."""
        return self.repository.repository_uri

    @property
    def repository_name(self) -> str:
        return self.repository.repository_name

    @property
    def repository_arn(self) -> str:
        return self.repository.repository_arn

    def grant_pull(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` pull images (and decrypt them when a KMS key is used)."""
        grant = self.repository.grant_pull(grantee)
        if self.encryption_key is not None:
            self.encryption_key.grant_decrypt(grantee)
        return grant

    def grant_push(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` push images (and encrypt them when a KMS key is used)."""
        grant = self.repository.grant_push(grantee)
        if self.encryption_key is not None:
            self.encryption_key.grant_encrypt_decrypt(grantee)
        return grant


def _validate_repository_name(name: str | None) -> None:
    if name is None or Token.is_unresolved(name):
        return
    if not 2 <= len(name) <= 256 or not re.fullmatch(
        r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*", name
    ):
        raise ValueError(
            f"repository_name must be 2-256 characters of lowercase letters, digits and . _ - / "
            f"(each part starting and ending with a letter or digit), got {name!r}"
        )
