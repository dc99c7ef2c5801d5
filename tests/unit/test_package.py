"""What other CDK apps import: the public names, the version, the type information."""

from __future__ import annotations

import importlib
import tomllib

import ml_inference_cdk
from ml_inference_cdk import constructs
from tests.support.cdk import ROOT


def test_every_public_construct_is_importable_from_the_package() -> None:
    assert set(constructs.__all__) <= set(dir(ml_inference_cdk))
    assert "SageMakerEndpoint" in ml_inference_cdk.__all__


def test_the_version_is_the_one_pyproject_declares() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert ml_inference_cdk.__version__ == declared


def test_the_package_ships_its_type_information() -> None:
    assert (ROOT / "ml_inference_cdk" / "py.typed").is_file()


def test_the_constructs_list_exactly_the_names_their_exports_module_and_the_light_ones_give() -> None:
    from ml_inference_cdk.constructs import _exports

    imported = {name for name in vars(_exports) if not name.startswith("_") and name != "annotations"}
    assert set(constructs.__all__) == imported | set(constructs._WITHOUT_AWS_CDK)


def test_packing_a_model_starts_no_aws_cdk_runtime() -> None:
    """ml-inference-pack runs where no Node is (a training job, a notebook): it must not import aws_cdk."""
    import subprocess
    import sys

    probe = (
        "import sys, ml_inference_cdk.pack_cli, ml_inference_cdk.constructs.packing; "
        "from ml_inference_cdk import Tolerance, compile_model, pack_model; "
        "print('aws_cdk' in sys.modules)"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)

    assert completed.stdout.strip() == "False"


def test_the_names_loaded_without_aws_cdk_are_the_ones_its_exports_module_imports() -> None:
    from ml_inference_cdk.constructs import _WITHOUT_AWS_CDK, _exports

    for name, module in _WITHOUT_AWS_CDK.items():
        assert getattr(constructs, name) is getattr(importlib.import_module(module), name)
        assert getattr(_exports, name, getattr(constructs, name)) is getattr(constructs, name)


def test_a_cdk_app_without_numpy_imports_every_construct() -> None:
    """A CDK app pip-installs the library without the model extra: NumPy loads only to pack or compile
    (``compile_model`` and ``CompiledModel`` are the compiler itself, and need it)."""
    import subprocess
    import sys

    probe = (
        "import sys; sys.modules['numpy'] = None; import ml_inference_cdk as library; "
        "compiler = ('compile_model', 'CompiledModel'); "
        "[getattr(library, name) for name in library.__all__ if name not in compiler]; "
        "print('ok')"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)

    assert completed.stdout.strip() == "ok", completed.stderr[-2000:]
