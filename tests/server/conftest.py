"""Fixtures: the server under test on every target (see targets.py), and the iris model directory."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.server import models
from tests.server.targets import Client, ServeModel, start_target

TARGETS = [
    pytest.param("asgi", id="asgi"),
    pytest.param("process", id="process"),
    pytest.param("container", id="container", marks=pytest.mark.container),
]


@pytest.fixture(scope="session")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return models.write_joblib(tmp_path_factory.mktemp("iris"), models.iris_model())


@pytest.fixture(scope="session", params=TARGETS)
def server(
    request: pytest.FixtureRequest, iris_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    """The iris LogisticRegression with default settings, once per session and target."""
    with start_target(request.param, iris_dir, {}, tmp_path_factory.mktemp("logs")) as client:
        yield client


@pytest.fixture(params=TARGETS)
def serve_model(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServeModel]:
    """Start a server for this test only: ``serve_model(model_dir, env=None, wait_ready=True)``."""
    with contextlib.ExitStack() as stack:

        def start(
            model_dir: Path, env: Mapping[str, str] | None = None, *, wait_ready: bool = True
        ) -> Client:
            return stack.enter_context(
                start_target(request.param, model_dir, env or {}, tmp_path, wait_ready=wait_ready)
            )

        yield start
