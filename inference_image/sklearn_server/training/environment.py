"""SageMaker's training contract, read once at start into a frozen dataclass.

SageMaker starts a training job as ``docker run IMAGE train`` with ``/opt/ml`` mounted:

- ``/opt/ml/input/config/hyperparameters.json``: every value a string (the SageMaker Python SDK writes each
  one JSON-encoded, so ``"100"``, ``"\\"gini\\""``, ``"{\\"C\\": 2}"``). Each value is parsed as JSON where it
  is JSON and kept as the string where it is not, as AWS's sagemaker-training-toolkit does.
- ``/opt/ml/input/config/inputdataconfig.json``: the channels (``{"train": {"ContentType": "text/csv"}}``).
- ``/opt/ml/input/config/resourceconfig.json``: ``current_host`` and ``hosts``.
- ``/opt/ml/input/data/<channel>/``: each channel's files.
- ``/opt/ml/model``: what is written there becomes model.tar.gz; ``/opt/ml/output/failure``: why it failed;
  ``/opt/ml/output/data``: other output (metrics.json).

The toolkit's variables override those places, so a script written for AWS's framework containers runs here
unchanged, and so does a local run without a container: ``SAGEMAKER_BASE_DIR`` (instead of /opt/ml),
``SM_INPUT_DIR``, ``SM_INPUT_CONFIG_DIR``, ``SM_MODEL_DIR``, ``SM_OUTPUT_DIR``, ``SM_OUTPUT_DATA_DIR``,
``SM_CHANNELS`` (a JSON list of names), ``SM_CHANNEL_<NAME>`` (one channel's folder) and ``SM_HPS`` (the
hyperparameters as one JSON object, instead of hyperparameters.json).

Nothing here imports numpy or scikit-learn: script mode starts the user's script without paying for them.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

BASE_DIR: Final = "/opt/ml"
HYPERPARAMETERS_FILE: Final = "hyperparameters.json"
INPUT_DATA_CONFIG_FILE: Final = "inputdataconfig.json"
RESOURCE_CONFIG_FILE: Final = "resourceconfig.json"
FAILURE_FILE: Final = "failure"
METRICS_FILE: Final = "metrics.json"

ENV_BASE_DIR: Final = "SAGEMAKER_BASE_DIR"
ENV_INPUT_DIR: Final = "SM_INPUT_DIR"
ENV_INPUT_CONFIG_DIR: Final = "SM_INPUT_CONFIG_DIR"
ENV_MODEL_DIR: Final = "SM_MODEL_DIR"
ENV_OUTPUT_DIR: Final = "SM_OUTPUT_DIR"
ENV_OUTPUT_DATA_DIR: Final = "SM_OUTPUT_DATA_DIR"
ENV_CHANNELS: Final = "SM_CHANNELS"
ENV_CHANNEL_PREFIX: Final = "SM_CHANNEL_"
ENV_HPS: Final = "SM_HPS"
ENV_PROGRAM: Final = "SAGEMAKER_PROGRAM"
ENV_SUBMIT_DIRECTORY: Final = "SAGEMAKER_SUBMIT_DIRECTORY"

FRAMEWORK_PREFIXES: Final = ("sagemaker_", "_")
"""Hyperparameters with these prefixes are the framework's (sagemaker_program, sagemaker_submit_directory,
sagemaker_job_name, ..., and _tuning_objective_metric, which a hyperparameter tuning job adds), never passed
to the user's script or the estimator (the training toolkit splits them off the same way)."""
PROGRAM_HYPERPARAMETER: Final = "sagemaker_program"
SUBMIT_DIRECTORY_HYPERPARAMETER: Final = "sagemaker_submit_directory"
CODE_DIR: Final = "/opt/ml/code"
"""Where the SageMaker Python SDK puts the user's code in a local run (SAGEMAKER_SUBMIT_DIRECTORY's
default)."""


class TrainingConfigError(ValueError):
    """A configuration file or variable cannot be read; the message names it and says what is allowed."""


@dataclass(frozen=True)
class TrainingEnvironment:
    """Where everything is, and what the job was asked to do."""

    input_dir: Path = Path(BASE_DIR, "input")
    input_config_dir: Path = Path(BASE_DIR, "input", "config")
    model_dir: Path = Path(BASE_DIR, "model")
    output_dir: Path = Path(BASE_DIR, "output")
    output_data_dir: Path = Path(BASE_DIR, "output", "data")
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    """The user's hyperparameters, parsed (none of FRAMEWORK_PREFIXES)."""
    framework_parameters: dict[str, Any] = field(default_factory=dict)
    """The ``sagemaker_*`` and ``_*`` hyperparameters, parsed."""
    channels: dict[str, Path] = field(default_factory=dict)
    """Each channel's name and folder."""
    input_data_config: dict[str, Any] = field(default_factory=dict)
    resource_config: dict[str, Any] = field(default_factory=dict)
    program: str | None = None
    """The user's script (SAGEMAKER_PROGRAM, else the sagemaker_program hyperparameter); None: built-in."""
    submit_directory: str = CODE_DIR
    """Where the script is (SAGEMAKER_SUBMIT_DIRECTORY, else sagemaker_submit_directory).
    Default: /opt/ml/code."""

    @property
    def failure_file(self) -> Path:
        return self.output_dir / FAILURE_FILE

    @property
    def current_host(self) -> str:
        return str(self.resource_config.get("current_host", "algo-1"))

    @property
    def hosts(self) -> list[str]:
        return [str(host) for host in self.resource_config.get("hosts", [self.current_host])]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> TrainingEnvironment:
        """Read the configuration files and the variables that override them.

        Raises:
            TrainingConfigError: a file or variable is not what SageMaker writes; the message names it.
        """
        env = os.environ if environ is None else environ
        base = Path(_get(env, ENV_BASE_DIR) or BASE_DIR)
        input_dir = Path(_get(env, ENV_INPUT_DIR) or base / "input")
        config_dir = Path(_get(env, ENV_INPUT_CONFIG_DIR) or input_dir / "config")
        output_dir = Path(_get(env, ENV_OUTPUT_DIR) or base / "output")

        hps_json = _get(env, ENV_HPS)
        raw = _json_object(hps_json, ENV_HPS) if hps_json else _read_json(config_dir / HYPERPARAMETERS_FILE)
        parsed = parse_hyperparameters(raw)
        input_data_config = _read_json(config_dir / INPUT_DATA_CONFIG_FILE)
        framework = {k: v for k, v in parsed.items() if k.startswith(FRAMEWORK_PREFIXES)}
        return cls(
            input_dir=input_dir,
            input_config_dir=config_dir,
            model_dir=Path(_get(env, ENV_MODEL_DIR) or base / "model"),
            output_dir=output_dir,
            output_data_dir=Path(_get(env, ENV_OUTPUT_DATA_DIR) or output_dir / "data"),
            hyperparameters={k: v for k, v in parsed.items() if not k.startswith(FRAMEWORK_PREFIXES)},
            framework_parameters=framework,
            channels=find_channels(env, input_dir / "data", input_data_config),
            input_data_config=input_data_config,
            resource_config=_read_json(config_dir / RESOURCE_CONFIG_FILE)
            or {"current_host": "algo-1", "hosts": ["algo-1"]},
            program=_get(env, ENV_PROGRAM) or _optional_text(framework.get(PROGRAM_HYPERPARAMETER)),
            submit_directory=_get(env, ENV_SUBMIT_DIRECTORY)
            or _optional_text(framework.get(SUBMIT_DIRECTORY_HYPERPARAMETER))
            or CODE_DIR,
        )

    def to_cmd_args(self) -> list[str]:
        """The hyperparameters as ``--name value`` arguments, sorted, as the training toolkit passes them
        (a one-letter name gets one dash; a dict becomes ``k=v,k2=v2``)."""
        args: list[str] = []
        for name in sorted(self.hyperparameters):
            value = self.hyperparameters[name]
            args.append(f"-{name}" if len(name) == 1 else f"--{name}")
            if isinstance(value, dict):
                args.append(",".join(f"{k}={v}" for k, v in sorted(value.items())))
            else:
                args.append("" if value is None else str(value))
        return args

    def to_env_vars(self) -> dict[str, str]:
        """The ``SM_*`` variables the training toolkit gives a user's script (the ones that apply here)."""
        module = self.program or ""
        values: dict[str, Any] = {
            "model_dir": str(self.model_dir),
            "input_dir": str(self.input_dir),
            "input_config_dir": str(self.input_config_dir),
            "output_dir": str(self.output_dir),
            "output_data_dir": str(self.output_data_dir),
            "output_intermediate_dir": str(self.output_dir / "intermediate"),
            "channels": sorted(self.channels),
            "hps": self.hyperparameters,
            "framework_params": self.framework_parameters,
            "input_data_config": self.input_data_config,
            "resource_config": self.resource_config,
            "hosts": self.hosts,
            "current_host": self.current_host,
            "network_interface_name": str(self.resource_config.get("network_interface_name", "eth0")),
            "num_cpus": _cpu_count(),
            "num_gpus": 0,
            "user_entry_point": module,
            "module_name": module.removesuffix(".py"),
            "module_dir": self.submit_directory,
            "user_args": self.to_cmd_args(),
        }
        values.update({f"channel_{name}": str(path) for name, path in self.channels.items()})
        values.update({f"hp_{name}": value for name, value in self.hyperparameters.items()})
        env = {f"SM_{key.upper()}": _env_value(value) for key, value in values.items()}
        env["SM_TRAINING_ENV"] = _env_value(values)
        return env


def parse_hyperparameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Each value parsed as JSON where it is JSON (``"100"`` -> 100, ``"\\"gini\\""`` -> "gini",
    ``"[1, 2]"`` -> [1, 2]), else kept as it is (``"gini"`` stays "gini")."""
    parsed: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        parsed[str(name)] = value
    return parsed


def find_channels(
    env: Mapping[str, str], data_dir: Path, input_data_config: Mapping[str, Any]
) -> dict[str, Path]:
    """The channels: those in inputdataconfig.json, in SM_CHANNELS and in SM_CHANNEL_<NAME> variables, else
    (a local run without inputdataconfig.json) the folders under input/data. SM_CHANNEL_<NAME> says where
    a channel is; by default it is ``input/data/<name>``."""
    names = list(input_data_config)
    listed = _get(env, ENV_CHANNELS)
    if listed:
        try:
            extra = json.loads(listed)
        except ValueError:
            extra = None
        if not isinstance(extra, list) or not all(isinstance(name, str) for name in extra):
            raise TrainingConfigError(
                f'{ENV_CHANNELS} must be a JSON list of channel names, e.g. ["train"], got {listed!r}'
            )
        names += extra
    overrides = {
        key.removeprefix(ENV_CHANNEL_PREFIX).lower(): Path(value)
        for key, value in env.items()
        if key.startswith(ENV_CHANNEL_PREFIX) and value.strip()
    }
    names += list(overrides)
    if not names and data_dir.is_dir():
        names = sorted(path.name for path in data_dir.iterdir() if path.is_dir())
    channels: dict[str, Path] = {}
    for name in names:
        channels.setdefault(name, overrides.get(name.lower(), data_dir / name))
    return channels


def _get(env: Mapping[str, str], name: str) -> str:
    return env.get(name, "").strip()


def _optional_text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; {} when the file does not exist (a local run may leave it out)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as error:
        raise TrainingConfigError(f"{path} cannot be read: {error.strerror}") from None
    return _json_object(text, str(path))


def _json_object(text: str, where: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as error:
        raise TrainingConfigError(f"{where} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise TrainingConfigError(f"{where} must hold a JSON object, got {type(value).__name__}")
    return value


def _env_value(value: Any) -> str:
    """As the toolkit writes a variable: a string as it is, anything else as compact sorted JSON."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str)


def _cpu_count() -> int:
    from sklearn_server.config import usable_cpu_count

    return usable_cpu_count()
