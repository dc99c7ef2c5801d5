"""Production variants: what serves a SageMaker endpoint's traffic, and which share of it.

An endpoint has one or more variants of the same model. Instance variants run on dedicated ML instances
and split the traffic by weight (A/B tests, gradual shifts); a serverless variant runs on demand and bills
per request. The dataclasses check their own values when created; the combinations SageMaker rejects
(serverless next to another variant, with a VPC, ...) are checked by ``SageMakerEndpoint``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from aws_cdk import Duration, Token

from ml_inference_cdk.constructs.sagemaker.instance_scaling import (
    ManagedInstanceScaling,
    validate_initial_count,
)

if TYPE_CHECKING:
    from ml_inference_cdk.constructs.sagemaker.model import ModelBase

DEFAULT_VARIANT_NAME: Final = "AllTraffic"
"""The variant name SageMaker's own tools use for a single-variant endpoint."""

DEFAULT_INSTANCE_TYPE: Final = "ml.m5.large"

NAME_PATTERN: Final = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
"""SageMaker's pattern for endpoint and variant names (1-63 letters, digits and inner hyphens)."""

_INSTANCE_TYPE = re.compile(r"ml\.[a-z][a-z0-9-]*\.[a-z0-9]+")
_BURSTABLE = re.compile(r"ml\.t\d+[a-z]*\.")

LOCAL_STORAGE_FAMILIES: Final = frozenset(
    {
        # General purpose, compute and memory optimized with NVMe instance store ("d" in the family name).
        "m5d", "c5d", "r5d", "m6gd", "c6gd", "r6gd", "r7gd",
        # Accelerated computing: GPU, Gaudi and Trainium families that come with NVMe instance store.
        "g4dn", "g5", "g6", "g6e", "g7e", "dl1", "p4d", "p4de", "p5", "p5e", "p5en",
        "p6-b200", "p6-b300", "p6e-gb200", "trn1", "trn1n", "trn2",
    }
)  # fmt: skip
"""SageMaker hosting instance families with local NVMe storage.

CreateEndpointConfig refuses a KmsKeyId when any variant runs on one of them ("local storage volumes are
encrypted using a hardware module on the instance") and VolumeSizeInGB has nothing to size there. The
list is the hosting instance types of the SageMaker API (ProductionVariantInstanceType) whose EC2 instance
type has an instance store, as the API reference directs (EC2 "Instance store volumes"). A family name is
not enough to tell: g5 or trn1 have NVMe storage without a "d", c6gn or inf2 have none.
"""

ROUTING_STRATEGIES: Final = ("LEAST_OUTSTANDING_REQUESTS", "RANDOM")
"""RoutingConfig.RoutingStrategy values for an instance variant serving one model."""

INFERENCE_AMI_VERSIONS: Final = (
    "al2-ami-sagemaker-inference-gpu-2",
    "al2-ami-sagemaker-inference-gpu-2-1",
    "al2-ami-sagemaker-inference-gpu-3-1",
    "al2-ami-sagemaker-inference-neuron-2",
    "al2023-ami-sagemaker-inference-gpu-4-1",
)
"""ProductionVariant.InferenceAmiVersion values of the SageMaker API (GPU driver / Neuron driver images)."""

VOLUME_SIZE_GB: Final = (1, 512)
"""ProductionVariant.VolumeSizeInGB range."""

SERVERLESS_MEMORY_SIZES_MB: Final = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY: Final = 200


@dataclass(frozen=True, kw_only=True)
class InstanceVariant:
    """A variant on dedicated ML instances; several of them split the traffic by weight."""

    name: str = DEFAULT_VARIANT_NAME
    """Variant name (1-63 letters, digits, hyphens). Default: AllTraffic."""
    instance_type: str = DEFAULT_INSTANCE_TYPE
    """ML instance type, e.g. ``ml.c5.xlarge``. Default: ml.m5.large."""
    initial_instance_count: int = 1
    """Instances at creation (autoscaling may change it later). Default: 1."""
    initial_weight: float = 1.0
    """Relative share of traffic: weight / sum of all weights. Default: 1.0."""
    container_startup_health_check_timeout: Duration | None = None
    """How long the container may take to pass /ping after start (60-3600 s). Default: the endpoint's."""
    model_data_download_timeout: Duration | None = None
    """How long downloading and unpacking model.tar.gz may take (60-3600 s). Default: the endpoint's."""
    routing_strategy: str | None = None
    """How SageMaker spreads requests over the variant's instances: ``LEAST_OUTSTANDING_REQUESTS`` (to the
    instance with the fewest requests in flight; evens out uneven request costs) or ``RANDOM``.
    Default: SageMaker's (RANDOM)."""
    volume_size_gb: int | None = None
    """Size of each instance's EBS storage volume, 1-512 GB (large models and their unpacked copy live
    there). Not for instance types with local NVMe storage. Default: SageMaker's for the instance type."""
    enable_ssm_access: bool = False
    """Let operators open an SSM session into the variant's containers (needs SSM permissions of their
    own). Default: False."""
    inference_ami_version: str | None = None
    """The AMI (GPU or Neuron driver versions) the instances boot, one of the SageMaker API's
    InferenceAmiVersion values, e.g. ``al2-ami-sagemaker-inference-gpu-3-1``. Default: SageMaker's."""
    model: ModelBase | None = None
    """The model this variant serves. Default: the endpoint configuration's model."""
    managed_instance_scaling: ManagedInstanceScaling | None = None
    """Let SageMaker add and remove instances (min 0 with inference components). Default: a fixed count."""

    def __post_init__(self) -> None:
        validate_variant_name(self.name)
        validate_instance_type(self.instance_type)
        validate_instance_count(self.initial_instance_count)
        if self.managed_instance_scaling is not None:
            validate_initial_count(self.name, self.initial_instance_count, self.managed_instance_scaling)
        validate_weight(self.initial_weight)
        whole_seconds(
            "container_startup_health_check_timeout", self.container_startup_health_check_timeout, 60, 3600
        )
        whole_seconds("model_data_download_timeout", self.model_data_download_timeout, 60, 3600)
        _one_of("routing_strategy", self.routing_strategy, ROUTING_STRATEGIES)
        _one_of("inference_ami_version", self.inference_ami_version, INFERENCE_AMI_VERSIONS)
        self._validate_volume_size()

    def _validate_volume_size(self) -> None:
        size = self.volume_size_gb
        if size is None or Token.is_unresolved(size):
            return
        low, high = VOLUME_SIZE_GB
        if isinstance(size, bool) or not isinstance(size, int) or not low <= size <= high:
            raise ValueError(f"volume_size_gb must be a whole number of GB, {low}-{high}, got {size!r}")
        if self.local_storage:
            raise ValueError(
                f"volume_size_gb cannot be used with instance type {self.instance_type!r} of variant "
                f"{self.name!r}: it has local NVMe storage of a fixed size and no EBS volume to size"
            )

    @property
    def burstable(self) -> bool:
        """ml.t* instances: SageMaker does not autoscale them."""
        return not Token.is_unresolved(self.instance_type) and bool(_BURSTABLE.match(self.instance_type))

    @property
    def local_storage(self) -> bool:
        """Instance families with local NVMe storage, which SageMaker encrypts itself (no volume KMS key)."""
        return not Token.is_unresolved(self.instance_type) and instance_family(self.instance_type) in (
            LOCAL_STORAGE_FAMILIES
        )


@dataclass(frozen=True, kw_only=True)
class ServerlessVariant:
    """A serverless variant: no instances to manage, billed per request, cold starts after idle periods.

    SageMaker allows it only as the endpoint's single variant, without a VPC, data capture, deployment
    guardrails or asynchronous inference.
    """

    name: str = DEFAULT_VARIANT_NAME
    """Variant name (1-63 letters, digits, hyphens). Default: AllTraffic."""
    memory_size_mb: int = 2048
    """Memory per environment: 1024-6144 MB in steps of 1024 (vCPUs scale with it). Default: 2048."""
    max_concurrency: int = 20
    """Concurrent invocations before throttling: 1-200. Default: 20."""
    provisioned_concurrency: int | None = None
    """Environments kept warm (no cold start): 1 to max_concurrency. Default: none (all on demand)."""
    initial_weight: float = 1.0
    """Relative share of traffic. Default: 1.0."""
    model: ModelBase | None = None
    """The model this variant serves. Default: the endpoint configuration's model."""

    def __post_init__(self) -> None:
        validate_variant_name(self.name)
        memory = self.memory_size_mb
        if not Token.is_unresolved(memory) and memory not in SERVERLESS_MEMORY_SIZES_MB:
            raise ValueError(f"memory_size_mb must be 1024-6144 in steps of 1024, got {memory}")
        concurrency = self.max_concurrency
        if not Token.is_unresolved(concurrency) and not 1 <= concurrency <= SERVERLESS_MAX_CONCURRENCY:
            raise ValueError(f"max_concurrency must be 1-{SERVERLESS_MAX_CONCURRENCY}, got {concurrency}")
        provisioned = self.provisioned_concurrency
        if provisioned is not None and not Token.is_unresolved(provisioned):
            upper = concurrency if not Token.is_unresolved(concurrency) else SERVERLESS_MAX_CONCURRENCY
            if not 1 <= provisioned <= upper:
                raise ValueError(
                    f"provisioned_concurrency must be 1 to max_concurrency ({upper}), got {provisioned}"
                )
        validate_weight(self.initial_weight)


ProductionVariant = InstanceVariant | ServerlessVariant
"""Either kind of variant."""


def validate_name(what: str, name: str, pattern: re.Pattern[str] = NAME_PATTERN) -> None:
    """A SageMaker resource name (``what`` says which, in the message); a token passes unchecked."""
    if not Token.is_unresolved(name) and not pattern.fullmatch(name):
        raise ValueError(
            f"{what} must be 1-63 letters, digits or hyphens, starting and ending with a letter or digit, "
            f"got {name!r}"
        )


def validate_variant_name(name: str) -> None:
    validate_name("variant name", name)


def validate_instance_type(instance_type: str) -> None:
    if not Token.is_unresolved(instance_type) and not _INSTANCE_TYPE.fullmatch(instance_type):
        raise ValueError(
            f"instance_type must be a SageMaker ML instance type such as ml.m5.large, got {instance_type!r}"
        )


def instance_family(instance_type: str) -> str:
    """``m5d`` of ``ml.m5d.large``."""
    return instance_type.split(".")[1] if instance_type.count(".") == 2 else ""


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and not Token.is_unresolved(value) and value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")


def validate_instance_count(count: int) -> None:
    if not Token.is_unresolved(count) and count < 1:
        raise ValueError(f"initial_instance_count must be >= 1, got {count}")


def validate_weight(weight: float) -> None:
    if not Token.is_unresolved(weight) and weight < 0:
        raise ValueError(f"initial_weight must be >= 0, got {weight}")


def whole_seconds(name: str, duration: Duration | None, minimum: int, maximum: int) -> float | None:
    """``duration`` in whole seconds, checked against SageMaker's range; a token passes through unchecked."""
    if duration is None:
        return None
    seconds = duration.to_seconds(integral=False)
    if Token.is_unresolved(seconds):
        return seconds  # a token number stays a token; CloudFormation resolves it
    if seconds != int(seconds) or not minimum <= seconds <= maximum:
        raise ValueError(
            f"{name} must be {minimum}-{maximum} whole seconds, got {duration.to_human_string()}"
        )
    return int(seconds)
