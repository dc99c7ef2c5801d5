"""Where model.tar.gz comes from, and the helper that packs a fitted estimator into one.

One artifact serves every target: SageMaker downloads and unpacks it into /opt/ml/model itself; the ECS and
Kubernetes targets unpack it with an init container. Binding grants ``s3:GetObject`` on exactly that object.
SageMaker alone also serves an S3 prefix (``model_prefix.py``): many model.tar.gz for a multi-model endpoint,
or one model's files uncompressed; binding grants read on exactly that prefix.
"""

from __future__ import annotations

import abc
import ast
import gzip
import io
import json
import platform
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

from aws_cdk import Token
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct

from ml_inference_cdk.constructs.contract import MODEL_FILENAMES, MODEL_METADATA_FILENAME
from ml_inference_cdk.constructs.feature_schema import feature_schema

CODE_DIRECTORY = "code"
"""Where user inference code sits in model.tar.gz (AWS's framework-container convention)."""
USER_SCRIPT = f"{CODE_DIRECTORY}/inference.py"
_SKIPPED_CODE_NAMES = frozenset({"__pycache__", ".pytest_cache", ".mypy_cache", ".git"})

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
        folder. Its name is not checked (``model.tgz`` is as good); ``pack_model()`` writes one.

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
    found = [name for name in MODEL_FILENAMES if name in names]
    if USER_SCRIPT in names:
        if _defines_model_fn(path, USER_SCRIPT):
            return  # its model_fn loads the model: any files, or none, may sit beside it
        if len(found) != 1:
            raise ValueError(
                f"path: {str(path)!r} holds {USER_SCRIPT} without a model_fn, so the server loads the "
                f"built-in model: it must also hold exactly one of {', '.join(MODEL_FILENAMES)} at its top "
                f"level, found {found or 'none'}"
            )
        return
    if any(name.startswith(f"{CODE_DIRECTORY}/") and name.endswith(".py") for name in names):
        return  # a script SAGEMAKER_PROGRAM names: what it loads is its own business
    if len(found) != 1:
        raise ValueError(
            f"path: {str(path)!r} must hold exactly one of {', '.join(MODEL_FILENAMES)} at its top level "
            f"(or user code in {USER_SCRIPT}), found {found or 'none'}"
        )


def _defines_model_fn(path: Path, member: str) -> bool:
    """Whether the archive's ``member`` (a Python script) defines model_fn at its top level.

    Raises:
        ValueError: the script is not valid Python; the message names the line.
    """
    with tarfile.open(path, "r:gz") as archive:
        extracted = archive.extractfile(_member(archive, member))
        source = extracted.read() if extracted is not None else b""
    tree = _parsed(source, f"{str(path)!r}: {member}")
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


def _parsed(source: bytes, where: str) -> ast.Module:
    try:
        return ast.parse(source)
    except SyntaxError as error:
        raise ValueError(f"{where}:{error.lineno}: is not valid Python: {error.msg}") from error


def _normalized(member: tarfile.TarInfo) -> str:
    name = member.name
    while name.startswith("./"):
        name = name[2:]
    return name


def pack_model(
    estimator: Any,
    output: str | Path,
    *,
    serialization: Literal["joblib", "skops"] = "joblib",
    code_dir: str | Path | None = None,
) -> Path:
    """Pack a fitted scikit-learn estimator into model.tar.gz, the artifact every target serves.

    The archive holds ``model.joblib`` (or ``model.skops``, the format that loads without unpickling) and
    ``model-metadata.json`` recording the scikit-learn and Python versions it was trained with, so the
    server can warn when it runs a different scikit-learn. For an estimator fitted on a pandas DataFrame it
    also records the column names and each column's kind, ``number`` or ``string`` (see
    ``feature_schema``), which the server coerces each request's columns to.

    Args:
        estimator: a fitted estimator or pipeline with ``predict``.
        output: the archive to write; must end with .tar.gz.
        serialization: ``joblib`` or ``skops``. Default: joblib.
        code_dir: a folder holding ``inference.py`` (user inference code: model_fn, input_fn, predict_fn,
            output_fn) and anything it needs (``lib/``, ``requirements.txt``); packed as ``code/``.
            Default: no user code, the estimator is served as it is.

    Returns:
        The path written.

    Raises:
        ValueError: an unfitted/unsuitable estimator, a bad output name or serialization, or a code_dir
            that is missing, lacks inference.py or holds a script that is not valid Python.
    """
    import sklearn
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    output = Path(output)
    if not output.name.endswith(".tar.gz"):
        raise ValueError(f"output must end with .tar.gz, got {str(output)!r}")
    if serialization not in ("joblib", "skops"):
        raise ValueError(f"serialization must be 'joblib' or 'skops', got {serialization!r}")
    if not callable(getattr(estimator, "predict", None)):
        raise ValueError(f"estimator must have a predict method, got {type(estimator).__name__}")
    try:
        check_is_fitted(estimator)
    except NotFittedError as error:
        raise ValueError(f"estimator must be fitted before packing: {error}") from error

    code_files = _code_files(Path(code_dir)) if code_dir is not None else []
    model_bytes = _serialize(estimator, serialization)
    metadata = {
        "format": serialization,
        "sklearn_version": sklearn.__version__,
        "python_version": platform.python_version(),
        "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        "n_features_in": int(estimator.n_features_in_) if hasattr(estimator, "n_features_in_") else None,
        "classes": _classes(estimator),
    }
    metadata.update(feature_schema(estimator))  # a DataFrame's columns and their kinds
    output.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 everywhere: the same model packs to the same bytes, so CDK sees the same asset hash.
    with (
        output.open("wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        _add_bytes(archive, f"model.{serialization}", model_bytes)
        _add_bytes(archive, MODEL_METADATA_FILENAME, json.dumps(metadata, indent=2).encode())
        for name, data in code_files:
            _add_bytes(archive, f"{CODE_DIRECTORY}/{name}", data)
    return output


def _code_files(code_dir: Path) -> list[tuple[str, bytes]]:
    """(path inside code/, content) of every file under ``code_dir``, sorted; every script parsed."""
    if not code_dir.is_dir():
        raise ValueError(f"code_dir must be a folder holding inference.py, got {str(code_dir)!r}")
    if not (code_dir / "inference.py").is_file():
        raise ValueError(
            f"code_dir must hold inference.py (the script the server runs), found none in {str(code_dir)!r}"
        )
    files = []
    for file in sorted(code_dir.rglob("*")):
        relative = file.relative_to(code_dir)
        if not file.is_file() or _SKIPPED_CODE_NAMES.intersection(relative.parts) or file.suffix == ".pyc":
            continue
        data = file.read_bytes()
        if file.suffix == ".py":
            _parsed(data, str(file))
        files.append((relative.as_posix(), data))
    return files


def _serialize(estimator: Any, serialization: str) -> bytes:
    if serialization == "skops":
        import skops.io

        data: bytes = skops.io.dumps(estimator)
        return data
    import joblib

    buffer = io.BytesIO()
    joblib.dump(estimator, buffer)
    return buffer.getvalue()


def _add_bytes(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    archive.addfile(info, io.BytesIO(data))


def _classes(estimator: Any) -> list[Any] | None:
    """``classes_`` as plain lists; a multi-output classifier has one array of classes per output."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return None
    if isinstance(classes, list):
        return [[_plain(c) for c in part] for part in classes]
    return [_plain(c) for c in classes]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
