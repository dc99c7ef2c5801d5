"""The constructs' side of the container contract: what they set, the server reads and accepts.

(That both sides declare the same names and values is tests/server/test_config.py; the limits of
container_environment() are pinned on both edges in test_shared_boundaries.py.)
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from ml_inference_cdk.constructs import contract
from tests.support.cdk import ROOT


@pytest.fixture(scope="module")
def server_config() -> Iterator[ModuleType]:
    """The server's config.py, loaded from its file (the image's package is not importable from here)."""
    path = ROOT / "inference_image" / "sklearn_server" / "config.py"
    spec = importlib.util.spec_from_file_location("server_config_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_every_environment_variable_the_constructs_may_set_is_read_by_the_server(
    server_config: ModuleType,
) -> None:
    environment = contract.container_environment(
        workers=2,
        timeout_seconds=30,
        default_accept="text/csv",
        log_level="debug",
        predict_method="predict_proba",
        json_response="predictions",
    )
    config = server_config.ServerConfig.from_env(environment)
    assert (
        config.workers,
        config.timeout_seconds,
        config.default_accept,
        config.predict_method,
        config.json_response,
    ) == (2, 30.0, "text/csv", "predict_proba", "predictions")
    assert set(environment) <= contract.CONTAINER_ENV_NAMES


def test_the_multi_model_switch_the_constructs_set_is_the_one_the_server_reads(
    server_config: ModuleType,
) -> None:
    if not hasattr(server_config.ServerConfig, "multi_model"):
        pytest.skip("the server's multi-model mode is on its own branch; merged, this test checks both sides")
    settings = server_config.ServerConfig.from_env({contract.ENV_MULTI_MODEL: contract.MULTI_MODEL_ENABLED})

    assert server_config.ENV_MULTI_MODEL == contract.ENV_MULTI_MODEL
    assert settings.multi_model is True
