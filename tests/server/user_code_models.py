"""Model directories with user inference code (``code/inference.py``), as model.tar.gz would unpack them.

Scripts are written as source text: the container imports them from the mounted directory with nothing but
the image's libraries. ``wheel`` builds a tiny pure-Python wheel by hand (a wheel is a zip file), so the
requirements tests install from ``code/`` with ``--no-index`` and never need the network.
"""

from __future__ import annotations

import base64
import hashlib
import pickle
import textwrap
import zipfile
from pathlib import Path

from sklearn.ensemble import RandomForestRegressor

from tests.server import models


def write_code(
    model_dir: Path, source: str, *, name: str = "inference.py", code_dir: Path | None = None
) -> Path:
    """``model_dir`` (created) with ``source`` as ``code/<name>`` (or in ``code_dir``); returns model_dir."""
    model_dir.mkdir(parents=True, exist_ok=True)
    directory = code_dir or model_dir / "code"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(textwrap.dedent(source))
    return model_dir


def iris_with_code(model_dir: Path, source: str, **kwargs: object) -> Path:
    """The iris LogisticRegression as model.joblib, with ``source`` as its inference code."""
    models.write_joblib(model_dir, models.iris_model())
    return write_code(model_dir, source, **kwargs)  # type: ignore[arg-type]


def aws_test_resource_model(model_dir: Path) -> Path:
    """What AWS's own test resource script (see AWS_SCRIPT) loads: a pickled regressor named sklearn-model."""
    model_dir.mkdir(parents=True, exist_ok=True)
    regressor = RandomForestRegressor(n_estimators=3, random_state=0).fit(
        models.IRIS_FEATURES, models.IRIS_LABELS
    )
    (model_dir / "sklearn-model").write_bytes(pickle.dumps(regressor))
    return model_dir


def wheel(directory: Path, name: str, version: str, module_source: str) -> Path:
    """A pure-Python wheel ``name-version-py3-none-any.whl`` holding one module, ``name.py``."""
    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": module_source.encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = [f"{path},sha256={_digest(data)},{len(data)}" for path, data in files.items()]
    files[f"{dist_info}/RECORD"] = ("\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n").encode()
    path = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return path


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
