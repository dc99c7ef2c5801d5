"""The environment, read once: defaults, parsing, clear refusals, and the same names as the CDK contract."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType

import pytest
from sklearn_server import config
from sklearn_server.config import ConfigError, HttpLimits, ServerConfig, usable_cpu_count

from tests.server.targets import ROOT


def load_contract() -> ModuleType:
    """ml_inference_cdk/constructs/contract.py by path: importing the package would import aws_cdk."""
    path = ROOT / "ml_inference_cdk" / "constructs" / "contract.py"
    spec = importlib.util.spec_from_file_location("contract_under_test", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SERVER_ONLY_NAMES = {
    config.ENV_SKOPS_TRUSTED_TYPES,
    config.ENV_USE_COMPILED,
    *config.LIMIT_ENV_NAMES,
    *config.MULTI_MODEL_ENV_NAMES,
}
"""Settings of the server alone: the constructs pass them through ``environment=`` like any variable."""


@pytest.mark.parametrize(
    "name",
    [
        "CONTAINER_PORT",
        "MODEL_DIR",
        "PING_PATH",
        "INVOCATIONS_PATH",
        "MODEL_FILENAMES",
        "MODEL_METADATA_FILENAME",
        "CONTENT_TYPES",
        "PREDICT_METHODS",
        "CONTAINER_ENV_NAMES",
        *(
            name
            for name in dir(config)
            if name.startswith("ENV_") and getattr(config, name) not in SERVER_ONLY_NAMES
        ),
    ],
)
def test_the_server_declares_what_the_cdk_contract_declares(name: str) -> None:
    assert getattr(config, name) == getattr(load_contract(), name)


def test_every_variable_the_server_reads_is_declared_once() -> None:
    declared = {value for name, value in vars(config).items() if name.startswith("ENV_")}

    assert declared == config.CONTAINER_ENV_NAMES | SERVER_ONLY_NAMES


def test_the_defaults_follow_sagemaker() -> None:
    settings = ServerConfig.from_env({})

    assert settings.port == 8080
    assert settings.timeout_seconds == 60
    assert settings.default_accept == "application/json"
    assert settings.log_level == logging.INFO
    assert settings.max_payload_bytes == 6 * 1024 * 1024
    assert settings.model_dir == Path("/opt/ml/model")
    assert settings.predict_method == "predict"
    assert settings.workers == usable_cpu_count()
    assert (settings.max_batch_rows, settings.max_batch_wait_ms) == (256, 0)


def test_every_variable_is_read() -> None:
    settings = ServerConfig.from_env(
        {
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "2.5",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "Text/CSV",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "debug",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20",
            "SM_MODEL_DIR": "/models/iris",
            "INFERENCE_PREDICT_METHOD": "predict_proba",
            "INFERENCE_MAX_BATCH_ROWS": "64",
            "INFERENCE_MAX_BATCH_WAIT_MS": "1.5",
            "INFERENCE_SKOPS_TRUSTED_TYPES": "mylib.Scaler, mylib.clip ,",
        }
    )

    assert settings == ServerConfig(
        port=9090,
        workers=3,
        timeout_seconds=2.5,
        default_accept="text/csv",
        log_level=logging.DEBUG,
        max_payload_mb=20,
        model_dir=Path("/models/iris"),
        predict_method="predict_proba",
        max_batch_rows=64,
        max_batch_wait_ms=1.5,
        skops_trusted_types=("mylib.Scaler", "mylib.clip"),
    )


@pytest.mark.parametrize(("raw", "level"), [("20", logging.INFO), ("WARNING", logging.WARNING), ("10", 10)])
def test_the_log_level_is_a_name_or_a_number(raw: str, level: int) -> None:
    assert ServerConfig.from_env({"SAGEMAKER_CONTAINER_LOG_LEVEL": raw}).log_level == level


def test_an_empty_value_counts_as_unset() -> None:
    assert ServerConfig.from_env({"SAGEMAKER_BIND_TO_PORT": " "}).port == 8080


@pytest.mark.parametrize(
    ("name", "raw", "allowed"),
    [
        ("SAGEMAKER_BIND_TO_PORT", "http", "whole number from 0 to 65535"),
        ("SAGEMAKER_BIND_TO_PORT", "70000", "whole number from 0 to 65535"),
        ("SAGEMAKER_MODEL_SERVER_WORKERS", "0", "whole number from 1"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "-1", "seconds above 0"),
        ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "nan", "seconds above 0"),
        ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/html", "one of text/csv, application/json"),
        ("SAGEMAKER_CONTAINER_LOG_LEVEL", "LOUD", "DEBUG, INFO, WARNING"),
        ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "6.5", "whole number"),
        ("INFERENCE_PREDICT_METHOD", "transform", "one of predict, predict_proba"),
        ("INFERENCE_MAX_BATCH_ROWS", "0", "whole number from 1"),
        ("INFERENCE_MAX_BATCH_WAIT_MS", "5000", "milliseconds from 0 to 1000"),
        ("SAGEMAKER_MULTI_MODEL", "yes", "true or false"),
        ("INFERENCE_MULTI_MODEL_DIR", "models", "an absolute path"),
        ("INFERENCE_MULTI_MODEL_MEMORY_MB", "1.5", "whole number from 1"),
    ],
)
def test_a_bad_value_is_refused_naming_variable_value_and_what_is_allowed(
    name: str, raw: str, allowed: str
) -> None:
    with pytest.raises(ConfigError, match=f"{name}='{raw}' is not valid: must be .*{allowed}"):
        ServerConfig.from_env({name: raw})


RANGES = [
    ("SAGEMAKER_BIND_TO_PORT", "0", "-1", "65535", "65536"),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "1", "0", "1024", "1025"),
    ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "0.001", "0", "3600", "3600.001"),
    ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "1", "0", "1024", "1025"),
    ("INFERENCE_MAX_BATCH_ROWS", "1", "0", "1000000", "1000001"),
    ("INFERENCE_MAX_BATCH_WAIT_MS", "0", "-0.001", "1000", "1000.001"),
    ("INFERENCE_MAX_REQUEST_LINE_BYTES", "256", "255", "1048576", "1048577"),
    ("INFERENCE_MAX_HEADER_BYTES", "1024", "1023", "16777216", "16777217"),
    ("INFERENCE_MAX_HEADER_COUNT", "8", "7", "10000", "10001"),
    ("INFERENCE_HEADER_TIMEOUT_SECONDS", "0.001", "0", "3600", "3600.001"),
    ("INFERENCE_BODY_TIMEOUT_SECONDS", "0.001", "0", "3600", "3600.001"),
    ("INFERENCE_KEEP_ALIVE_SECONDS", "0.001", "0", "3600", "3600.001"),
    ("INFERENCE_MAX_CONNECTIONS", "16", "15", "1000000", "1000001"),
    ("INFERENCE_MULTI_MODEL_MEMORY_MB", "1", "0", "16777216", "16777217"),
]
"""(variable, lowest allowed, one below it, highest allowed, one above it) for every bounded setting."""


@pytest.mark.parametrize(
    ("name", "value", "accepted"),
    [
        case
        for name, low, below, high, above in RANGES
        for case in [(name, low, True), (name, below, False), (name, high, True), (name, above, False)]
    ],
    ids=lambda part: str(part),
)
def test_every_bounded_setting_accepts_its_limits_and_refuses_one_past_them(
    name: str, value: str, accepted: bool
) -> None:
    if accepted:
        ServerConfig.from_env({name: value})
    else:
        with pytest.raises(ConfigError, match=f"{name}='{value}' is not valid"):
            ServerConfig.from_env({name: value})


def test_every_http_limit_is_read() -> None:
    names = {
        "INFERENCE_MAX_REQUEST_LINE_BYTES": "4096",
        "INFERENCE_MAX_HEADER_BYTES": "32768",
        "INFERENCE_MAX_HEADER_COUNT": "50",
        "INFERENCE_HEADER_TIMEOUT_SECONDS": "5",
        "INFERENCE_BODY_TIMEOUT_SECONDS": "20",
        "INFERENCE_KEEP_ALIVE_SECONDS": "30",
        "INFERENCE_MAX_CONNECTIONS": "500",
    }

    limits = ServerConfig.from_env(names).limits

    assert limits == HttpLimits(4096, 32768, 50, 5.0, 20.0, 30.0, 500)
    assert set(names) == config.LIMIT_ENV_NAMES


def test_multi_model_mode_is_off_unless_sagemaker_multi_model_says_true() -> None:
    settings = ServerConfig.from_env({})

    assert settings.multi_model is False
    assert settings.multi_model_dir == Path("/opt/ml/models")
    assert settings.multi_model_memory_mb is None


def test_multi_model_mode_reads_its_switch_directory_and_budget() -> None:
    settings = ServerConfig.from_env(
        {
            "SAGEMAKER_MULTI_MODEL": "TRUE",
            "INFERENCE_MULTI_MODEL_DIR": "/srv/models",
            "INFERENCE_MULTI_MODEL_MEMORY_MB": "2048",
        }
    )

    assert settings.multi_model is True
    assert settings.multi_model_dir == Path("/srv/models")
    assert settings.multi_model_memory_mb == 2048


def test_multi_model_mode_runs_one_worker_process_whatever_the_worker_setting() -> None:
    settings = ServerConfig.from_env({"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_MODEL_SERVER_WORKERS": "4"})

    assert settings.workers == 4
    assert settings.worker_processes == 1
    assert ServerConfig.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "4"}).worker_processes == 4


def test_the_configuration_cannot_change_after_start() -> None:
    settings = ServerConfig.from_env({})

    with pytest.raises(AttributeError):
        settings.port = 9000  # type: ignore[misc]


def test_workers_default_to_the_cgroup_cpu_quota(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")

    assert usable_cpu_count(tmp_path) == min(2, usable_cpu_count(tmp_path / "none"))


def test_an_unlimited_cgroup_leaves_the_affinity_mask(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("max 100000\n")

    assert usable_cpu_count(tmp_path) == usable_cpu_count(tmp_path / "none")
