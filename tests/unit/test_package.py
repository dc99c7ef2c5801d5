"""What other CDK apps import: the public names, the version, the type information."""

from __future__ import annotations

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
