"""Readiness across workers: /ping speaks for the whole server, and a loading worker holds requests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
from sklearn_server.app import NOT_READY, InferenceApp
from sklearn_server.config import ServerConfig
from sklearn_server.model import load_model
from sklearn_server.supervisor import StartupGate

from tests.server import models


def test_the_startup_gate_opens_once_every_worker_has_loaded() -> None:
    gate = StartupGate(2)

    gate.mark_loaded(1)
    half = gate.is_open()
    gate.mark_loaded(0)

    assert not half
    assert gate.is_open()


def test_ping_is_503_while_a_sibling_worker_still_loads(tmp_path: Path) -> None:
    app = InferenceApp(ServerConfig(workers=2), all_workers_ready=lambda: False)
    app.model_loaded(load_model(models.write_joblib(tmp_path, models.iris_model()) / "model.joblib"))

    async def ping() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://asgi"
        ) as client:
            return await client.get("/ping")

    response = asyncio.run(ping())
    app.close()

    assert response.status_code == 503
    assert response.json() == {"error": NOT_READY}


def post_while_loading(app: InferenceApp, then: Callable[[], None]) -> httpx.Response:
    """POST a CSV row to a worker still loading its model, call ``then()`` 0.2 s later, return the answer."""

    async def scenario() -> httpx.Response:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://asgi"
        ) as client:
            request = asyncio.ensure_future(
                client.post("/invocations", headers={"Content-Type": "text/csv"}, content=b"5.1,3.5,1.4,0.2")
            )
            await asyncio.sleep(0.2)
            then()
            return await request

    response = asyncio.run(scenario())
    app.close()
    return response


def test_a_request_reaching_a_loading_worker_waits_for_the_model(tmp_path: Path) -> None:
    app = InferenceApp(ServerConfig(workers=1))
    model = load_model(models.write_joblib(tmp_path, models.iris_model()) / "model.joblib")

    response = post_while_loading(app, lambda: app.model_loaded(model))

    assert response.status_code == 200
    assert response.json() == [0]


def test_a_request_waiting_for_a_model_that_fails_to_load_gets_the_generic_503() -> None:
    app = InferenceApp(ServerConfig(workers=1))

    response = post_while_loading(app, app.model_failed)

    assert response.status_code == 503
    assert response.json() == {"error": NOT_READY}
