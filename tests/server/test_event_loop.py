"""What runs off the event loop, so that /ping answers quickly whatever the requests cost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn_server import codecs

from tests.server import models
from tests.server.targets import AsgiClient, asgi_app


@pytest.fixture
def client(tmp_path: Path) -> Iterator[AsgiClient]:
    served = AsgiClient(asgi_app(models.write_joblib(tmp_path, models.iris_model()), {}))
    yield served
    served.close()


@pytest.fixture
def decoding_threads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The name of the thread each CSV body is decoded on."""
    threads: list[str] = []
    decode = codecs.decode_csv

    def recording(body: bytes, n_features: int | None) -> np.ndarray:
        threads.append(threading.current_thread().name)
        return decode(body, n_features)

    monkeypatch.setitem(codecs.DECODERS, "text/csv", recording)
    return threads


def test_a_small_body_is_decoded_on_the_event_loop(client: AsgiClient, decoding_threads: list[str]) -> None:
    client.request("POST", "/invocations", headers={"Content-Type": "text/csv"}, content=b"5.1,3.5,1.4,0.2")

    assert decoding_threads == [threading.current_thread().name]


def test_a_large_body_is_decoded_on_the_codec_thread(client: AsgiClient, decoding_threads: list[str]) -> None:
    body = b"5.1,3.5,1.4,0.2\n" * 20_000  # 320 KB

    response = client.request("POST", "/invocations", headers={"Content-Type": "text/csv"}, content=body)

    assert response.status_code == 200
    assert len(response.json()) == 20_000
    assert decoding_threads[0].startswith("codec")
