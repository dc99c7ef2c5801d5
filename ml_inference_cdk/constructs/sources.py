"""The check every construct that runs the inference image makes of its ``image`` and ``model_artifact``.

Both are strategy objects (``ContainerImage.from_...``, ``ModelArtifact.from_...``). Passing the plain string
instead is the natural first try, and without this check it fails much later, deep inside ``bind()``, as
``AttributeError: 'str' object has no attribute 'bind'``. Here it fails at once, naming the parameter, what it
got and which factory turns that value into what the construct takes.
"""

from __future__ import annotations

from pathlib import Path

from ml_inference_cdk.constructs.image import ContainerImage
from ml_inference_cdk.constructs.model_artifact import ModelArtifact

_IMAGE_FACTORIES = (
    "ContainerImage.from_asset(directory), .from_repository(repository, tag=...) or .from_image_uri(uri)"
)
_ARTIFACT_FACTORIES = "ModelArtifact.from_asset(path), .from_bucket(bucket, key) or .from_s3_uri(uri)"


def check_sources(*, image: object, model_artifact: object, prefixes_allowed: bool = False) -> None:
    """Refuse an ``image`` that is no ``ContainerImage`` or a ``model_artifact`` that is no ``ModelArtifact``.

    Args:
        prefixes_allowed: the construct is SageMaker's, which alone serves an S3 prefix of model data
            (``ModelArtifact.from_multi_model_prefix`` / ``.from_uncompressed_prefix``). Default: False, one
            model.tar.gz only.

    Raises:
        TypeError: naming the parameter, the value given and the factory to pass instead.
        ValueError: a prefix of model data where only one model.tar.gz can be served.
    """
    if not isinstance(image, ContainerImage):
        raise TypeError(f"image must be a ContainerImage, got {_described(image)}; {_image_hint(image)}")
    if not isinstance(model_artifact, ModelArtifact):
        raise TypeError(
            f"model_artifact must be a ModelArtifact, got {_described(model_artifact)}; "
            f"{_artifact_hint(model_artifact)}"
        )
    if not prefixes_allowed and not model_artifact.single_archive:
        kind = "a multi-model prefix" if model_artifact.multi_model else "an uncompressed prefix"
        raise ValueError(
            f"model_artifact is {kind}, which only SageMaker serves; this target serves one model.tar.gz: "
            f"pass {_ARTIFACT_FACTORIES}"
        )


def _described(value: object) -> str:
    if isinstance(value, str | Path):
        return f"the {type(value).__name__} {str(value)!r}"
    if value is None:
        return "None"
    name = type(value).__name__
    return f"{'an' if name[0] in 'AEIOUaeiou' else 'a'} {name}"


def _image_hint(value: object) -> str:
    if isinstance(value, Path) or (isinstance(value, str) and Path(value).is_dir()):
        return f"pass ContainerImage.from_asset({str(value)!r}) to build the folder's Dockerfile"
    if isinstance(value, str):
        return f"pass ContainerImage.from_image_uri({value!r}) to run an image already pushed"
    if hasattr(value, "repository_uri"):
        return "pass ContainerImage.from_repository(repository, tag=...) to run an image of that repository"
    return f"pass {_IMAGE_FACTORIES}"


def _artifact_hint(value: object) -> str:
    if isinstance(value, str) and value.startswith("s3://"):
        return f"pass ModelArtifact.from_s3_uri({value!r}) to serve an object already in S3"
    if isinstance(value, str | Path):
        return f"pass ModelArtifact.from_asset({str(value)!r}) to upload a local archive"
    if hasattr(value, "bucket_name"):
        return "pass ModelArtifact.from_bucket(bucket, key) to serve an object of that bucket"
    return f"pass {_ARTIFACT_FACTORIES}"
