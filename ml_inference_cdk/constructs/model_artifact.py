"""Where model.tar.gz comes from (``pack_model``, in ``packing.py``, writes one; importable from here too).

One artifact serves every target: SageMaker downloads and unpacks it into /opt/ml/model itself; the ECS and
Kubernetes targets unpack it with an init container. Binding grants ``s3:GetObject`` on exactly that object.
SageMaker alone also serves an S3 prefix (``model_prefix.py``): many model.tar.gz for a multi-model endpoint,
or one model's files uncompressed; binding grants read on exactly that prefix.
"""

from __future__ import annotations

import abc
import ast
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

from aws_cdk import Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ml_inference_cdk.constructs.contract import (
    COMPILED_MODEL_FILENAME,
    COMPILED_NATIVE_FILENAMES,
    MODEL_FILENAMES,
)
from ml_inference_cdk.constructs.packing import CODE_DIRECTORY, USER_SCRIPT, pack_model, parsed_python

__all__ = [
    "CODE_DIRECTORY",
    "USER_SCRIPT",
    "ModelArtifact",
    "ModelArtifactConfig",
    "imported_bucket",
    "pack_model",
]

_S3_URI = re.compile(r"s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>.+)")


@dataclass(frozen=True)
class ModelArtifactConfig:
    """What a bound artifact gives the construct that runs it."""

    s3_uri: str
    """``s3://BUCKET/KEY`` of model.tar.gz (SageMaker's ModelDataUrl)."""
    bucket_name: str
    object_key: str
    mode: Literal["SingleModel", "MultiModel"] = "SingleModel"
    """SageMaker's container Mode: ``MultiModel`` when ``s3_uri`` is a prefix holding many model.tar.gz."""
    compressed: bool = True
    """False when the objects under the prefix ``s3_uri`` are one model's files themselves (SageMaker's
    ModelDataSource with CompressionType None)."""
    model_caching: bool = True
    """Multi-model only: False has SageMaker unload each model right after its invocation
    (ModelCacheSetting Disabled)."""


class ModelArtifact(abc.ABC):
    """The model.tar.gz a target serves (one model file at its top level: see contract.MODEL_FILENAMES,
    and/or user inference code in code/inference.py)."""

    @staticmethod
    def from_asset(path: str | Path) -> ModelArtifact:
        """Upload a local model.tar.gz as a CDK file asset.

        The archive is checked at synth time: it must be a gzip tarball with exactly one of model.joblib,
        model.skops, xgboost-model, model.txt or model.onnx at its top level (none is needed when
        code/inference.py defines a model_fn; its Python must parse) and no member escaping the extraction
        folder. A compiled archive (``pack_model(..., compile="onnx")``) holds model.onnx beside
        model.joblib or model.skops and is taken unchanged: the server runs model.onnx when the metadata's
        ``compiled`` record says it was verified, and the native model otherwise. Its name is not checked
        (``model.tgz`` is as good); ``pack_model()`` writes one.

        Raises:
            ValueError: the file is missing, not a gzip tarball, or holds no (or two) model files.
        """
        artifact = Path(path)
        _validate_archive(artifact)
        return _AssetArtifact(artifact.resolve())

    @staticmethod
    def from_bucket(bucket: s3.IBucket, key: str) -> ModelArtifact:
        """Serve an object already in S3 (for instance the output of a SageMaker training job).

        The object must be a gzip tarball like the one ``pack_model()`` writes; its key may be named anything
        (CDK names file assets ``<hash>.gz``, and SageMaker requires no suffix).

        Raises:
            ValueError: the key is empty or starts with "/".
        """
        if not Token.is_unresolved(key) and (not key or key.startswith("/")):
            raise ValueError(f"key must be a non-empty S3 key without a leading '/', got {key!r}")
        return _BucketArtifact(bucket=bucket, bucket_name=None, key=key)

    @staticmethod
    def from_s3_uri(uri: str) -> ModelArtifact:
        """Serve ``s3://BUCKET/KEY``; the bucket is imported by name when bound.

        Any key is accepted, so a stack's own ``ModelDataUrl`` output (``s3://cdk-...-assets-.../<hash>.gz``)
        can be passed back; the object must be a gzip tarball like the one ``pack_model()`` writes.

        Raises:
            ValueError: not an s3:// URI with a bucket name (3-63 characters) and a key.
        """
        match = _S3_URI.fullmatch(uri) if not Token.is_unresolved(uri) else None
        if match is None:
            raise ValueError(
                "uri must be s3://BUCKET/KEY with a bucket name of 3-63 lowercase letters, digits, '.' and "
                f"'-', e.g. s3://my-models/iris/model.tar.gz, got {uri!r}"
            )
        return _BucketArtifact(bucket=None, bucket_name=match["bucket"], key=match["key"])

    @staticmethod
    def from_multi_model_prefix(
        bucket: s3.IBucket, prefix: str, *, model_caching: bool = True
    ) -> ModelArtifact:
        """Serve every model.tar.gz under ``prefix`` from one SageMaker multi-model endpoint (SageMaker only).

        SageMaker downloads and loads a model when a request names it (``TargetModel``, the key relative to
        the prefix, e.g. ``customer-a.tar.gz``), and unloads the least used ones when memory is short. Adding
        a model is uploading it under the prefix; the endpoint does not change. The container runs with
        SAGEMAKER_MULTI_MODEL=true; its role may read the objects under ``prefix`` and nothing else.

        Args:
            bucket: the bucket holding the models.
            prefix: the folder of the models, ending with "/" (e.g. ``models/``).
            model_caching: keep loaded models for the next request; False unloads each model right after
                its invocation, for many models each invoked rarely. Default: True.

        Raises:
            ValueError: the prefix is empty, starts with "/", lacks the trailing "/" or holds a wildcard.
        """
        from ml_inference_cdk.constructs.model_prefix import PrefixArtifact, validate_prefix

        validate_prefix(prefix)
        return PrefixArtifact(
            bucket=bucket, bucket_name=None, prefix=prefix, multi_model=True, model_caching=model_caching
        )

    @staticmethod
    def from_multi_model_s3_uri(uri: str, *, model_caching: bool = True) -> ModelArtifact:
        """``from_multi_model_prefix`` for ``s3://BUCKET/PREFIX/``; the bucket is imported by name when bound.

        Raises:
            ValueError: not an s3:// URI with a bucket and a prefix ending with "/".
        """
        from ml_inference_cdk.constructs.model_prefix import PrefixArtifact, parse_prefix_uri

        bucket_name, prefix = parse_prefix_uri(uri)
        return PrefixArtifact(
            bucket=None, bucket_name=bucket_name, prefix=prefix, multi_model=True, model_caching=model_caching
        )

    @staticmethod
    def from_uncompressed_prefix(bucket: s3.IBucket, prefix: str) -> ModelArtifact:
        """Serve one model whose files lie uncompressed under ``prefix`` (SageMaker only).

        SageMaker copies every object under the prefix to /opt/ml/model, keeping the rest of its key as the
        path (``models/iris/model.joblib`` -> ``/opt/ml/model/model.joblib``), so a large model starts without
        a tar.gz to unpack. Its role may list and read the objects under ``prefix`` and nothing else.

        Args:
            bucket: the bucket holding the model's files.
            prefix: their folder, ending with "/" as SageMaker requires (e.g. ``models/iris/``).

        Raises:
            ValueError: the prefix is empty, starts with "/", lacks the trailing "/" or holds a wildcard.
        """
        from ml_inference_cdk.constructs.model_prefix import PrefixArtifact, validate_prefix

        validate_prefix(prefix)
        return PrefixArtifact(bucket=bucket, bucket_name=None, prefix=prefix, multi_model=False)

    @staticmethod
    def from_uncompressed_s3_uri(uri: str) -> ModelArtifact:
        """``from_uncompressed_prefix`` for ``s3://BUCKET/PREFIX/``; the bucket is imported by name on bind.

        Raises:
            ValueError: not an s3:// URI with a bucket and a prefix ending with "/".
        """
        from ml_inference_cdk.constructs.model_prefix import PrefixArtifact, parse_prefix_uri

        bucket_name, prefix = parse_prefix_uri(uri)
        return PrefixArtifact(bucket=None, bucket_name=bucket_name, prefix=prefix, multi_model=False)

    @property
    def single_archive(self) -> bool:
        """One model.tar.gz, which every target serves; False for the prefixes only SageMaker serves."""
        return True

    @property
    def multi_model(self) -> bool:
        """Many models under a prefix, for a SageMaker multi-model endpoint."""
        return False

    @abc.abstractmethod
    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ModelArtifactConfig:
        """Create what the artifact needs in ``scope`` (once) and let ``grantable`` read it."""


class _AssetArtifact(ModelArtifact):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._assets: dict[str, s3_assets.Asset] = {}

    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ModelArtifactConfig:
        key = scope.node.path
        if key not in self._assets:
            self._assets[key] = s3_assets.Asset(scope, "ModelArtifact", path=str(self._path))
        asset = self._assets[key]
        _grant_get_object(grantable, asset.bucket, asset.s3_object_key)
        return ModelArtifactConfig(
            s3_uri=asset.s3_object_url, bucket_name=asset.s3_bucket_name, object_key=asset.s3_object_key
        )


class _BucketArtifact(ModelArtifact):
    def __init__(self, *, bucket: s3.IBucket | None, bucket_name: str | None, key: str) -> None:
        self._bucket = bucket
        self._bucket_name = bucket_name
        self._key = key

    def bind(self, scope: Construct, grantable: iam.IGrantable) -> ModelArtifactConfig:
        bucket = self._bucket or self._import(scope)
        _grant_get_object(grantable, bucket, self._key)
        return ModelArtifactConfig(
            s3_uri=f"s3://{bucket.bucket_name}/{self._key}",
            bucket_name=bucket.bucket_name,
            object_key=self._key,
        )

    def _import(self, scope: Construct) -> s3.IBucket:
        assert self._bucket_name is not None
        return imported_bucket(scope, self._bucket_name)


def imported_bucket(scope: Construct, bucket_name: str) -> s3.IBucket:
    """The bucket of that name, imported once per scope."""
    construct_id = "ModelBucket" + re.sub(r"[^A-Za-z0-9]", "", bucket_name)
    existing = scope.node.try_find_child(construct_id)
    if existing is not None:  # isinstance(x, s3.IBucket) raises TypeError: jsii interfaces are protocols
        return cast(s3.IBucket, existing)
    return s3.Bucket.from_bucket_name(scope, construct_id, bucket_name)


def _grant_get_object(grantable: iam.IGrantable, bucket: s3.IBucket, key: str) -> None:
    """Read on exactly one object: not the bucket listing, not the other objects."""
    iam.Grant.add_to_principal(
        grantee=grantable, actions=["s3:GetObject"], resource_arns=[bucket.arn_for_objects(key)]
    )
    if bucket.encryption_key is not None:
        bucket.encryption_key.grant_decrypt(grantable)


def _validate_archive(path: Path) -> None:
    if path.is_dir():
        raise ValueError(
            f"path must be a model.tar.gz file, got the folder {str(path)!r}; "
            "pack a fitted estimator into one with pack_model(estimator, path)"
        )
    if not path.is_file():
        raise ValueError(
            f"path: no such file {str(path)!r}; pack a fitted estimator into one with "
            "pack_model(estimator, path)"
        )
    try:
        with tarfile.open(path, "r:gz") as archive:
            names = [_normalized(member) for member in archive.getmembers()]
    except (tarfile.TarError, OSError, EOFError) as error:
        raise ValueError(
            f"path: {str(path)!r} is not a readable gzip tar archive, SageMaker's model format "
            f"(pack_model() writes one): {error}"
        ) from error
    for name in names:
        if name.startswith("/") or ".." in name.split("/"):
            raise ValueError(f"path: {str(path)!r} has a member outside the extraction folder: {name!r}")
    found = _model_files(names)
    if USER_SCRIPT in names:
        if _defines_model_fn(path, USER_SCRIPT):
            return  # its model_fn loads the model: any files, or none, may sit beside it
        if len(found) != 1:
            raise ValueError(
                f"path: {str(path)!r} holds {USER_SCRIPT} without a model_fn, so the server loads the "
                f"built-in model: it must also hold exactly one of {', '.join(MODEL_FILENAMES)} at its top "
                f"level{_COMPILED_NOTE}, found {found or 'none'}"
            )
        return
    if any(name.startswith(f"{CODE_DIRECTORY}/") and name.endswith(".py") for name in names):
        return  # a script SAGEMAKER_PROGRAM names: what it loads is its own business
    if len(found) != 1:
        raise ValueError(
            f"path: {str(path)!r} must hold exactly one of {', '.join(MODEL_FILENAMES)} at its top level "
            f"(or user code in {USER_SCRIPT}){_COMPILED_NOTE}, found {found or 'none'}"
        )


_COMPILED_NOTE = (
    f"; {COMPILED_MODEL_FILENAME} may also sit beside {' or '.join(COMPILED_NATIVE_FILENAMES)} "
    "(a compiled archive, pack_model(..., compile='onnx'))"
)


def _model_files(names: list[str]) -> list[str]:
    """The model files among ``names`` the server chooses from, a compiled copy not counted.

    ``model.onnx`` beside ``model.joblib`` or ``model.skops`` is that model compiled: the server serves it
    only when model-metadata.json's ``compiled`` record says it was verified (and its sha256 matches), and
    the native model otherwise, logging why. Either way the archive serves, so neither case is refused here.
    """
    found: list[str] = [name for name in MODEL_FILENAMES if name in names]
    if COMPILED_MODEL_FILENAME in found and any(name in found for name in COMPILED_NATIVE_FILENAMES):
        found.remove(COMPILED_MODEL_FILENAME)
    return found


def _defines_model_fn(path: Path, member: str) -> bool:
    """Whether the archive's ``member`` (a Python script) defines model_fn at its top level.

    Raises:
        ValueError: the script is not valid Python; the message names the line.
    """
    with tarfile.open(path, "r:gz") as archive:
        extracted = archive.extractfile(_member(archive, member))
        source = extracted.read() if extracted is not None else b""
    tree = parsed_python(source, f"{str(path)!r}: {member}")
    return any(_binds_model_fn(node) for node in tree.body)


def _binds_model_fn(node: ast.stmt) -> bool:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
        return node.name == "model_fn"
    if isinstance(node, ast.Assign):
        return any(isinstance(target, ast.Name) and target.id == "model_fn" for target in node.targets)
    if isinstance(node, ast.ImportFrom | ast.Import):
        return any((alias.asname or alias.name) == "model_fn" for alias in node.names)
    return False


def _member(archive: tarfile.TarFile, name: str) -> tarfile.TarInfo:
    return next(member for member in archive.getmembers() if _normalized(member) == name)


def _normalized(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    return name
