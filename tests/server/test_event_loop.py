"""What runs off the event loop, so that /ping answers quickly whatever the requests cost."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Final

import numpy as np
import pytest
from sklearn_server import codecs

from tests.server import models
from tests.server.live import LiveServer, live_server
from tests.server.targets import AsgiClient, asgi_app

PING_TIMEOUT_S: Final = 1.0
"""A /ping slower than this fails the test (SageMaker allows 2 s); a free event loop answers in ~1 ms, and
the slowest body below takes longer than this to decode, so decoding it on the loop would fail."""


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


@pytest.fixture
def one_worker(tmp_path: Path) -> Iterator[LiveServer]:
    """The real entrypoint with one worker, so that every /ping goes to the worker holding the request."""
    model_dir = models.write_joblib(tmp_path / "model", models.iris_model())
    with live_server("process", model_dir, {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"}, tmp_path) as server:
        yield server


SIX_MB: Final = 6 * 1000 * 1000
"""Just under SageMaker's payload limit (6 MiB)."""
CSV_ROW: Final = b"5.1,3.5,1.4,0.2\n"
SPACED_CSV_ROW: Final = b"5.1,3.5,1.4, .2\n"
STRINGS_JSON_ROW: Final = b'["5","3","1","0"],'


def six_megabytes(content_type: str, row: bytes) -> tuple[bytes, int]:
    """A body of ``row`` repeated to just under 6 MB, and its number of rows."""
    rows = SIX_MB // len(row)
    if content_type == "text/csv":
        return row * rows, rows
    return b'{"instances": [' + (row * rows)[:-1] + b"]}", rows


@pytest.mark.parametrize(
    ("content_type", "row"),
    [("text/csv", CSV_ROW), ("text/csv", SPACED_CSV_ROW), ("application/json", STRINGS_JSON_ROW)],
    ids=["csv-fast-path", "csv-exact-path", "json-strings-exact-path"],
)
def test_ping_answers_while_a_six_megabyte_request_is_in_flight(
    one_worker: LiveServer, content_type: str, row: bytes
) -> None:
    body, rows = six_megabytes(content_type, row)
    events: list[str] = []
    answer: list[bytes] = []

    def invoke() -> None:
        connection = one_worker.connection(timeout=120)
        headers = {"Content-Type": content_type, "Accept": "text/csv"}
        connection.request("POST", "/invocations", body=body, headers=headers)
        events.append("sent")
        response = connection.getresponse()
        answer.append(response.read())
        events.append(f"invocation {response.status}")
        connection.close()

    invoking = threading.Thread(target=invoke)
    invoking.start()
    while invoking.is_alive():
        ping = one_worker.connection(timeout=PING_TIMEOUT_S)  # a ping slower than this raises
        ping.request("GET", "/ping")
        events.append(f"ping {ping.getresponse().status}")
        ping.close()
    invoking.join()

    while_processed = events[events.index("sent") + 1 : events.index("invocation 200")]
    assert len(while_processed) >= 3, events  # several pings answered after the body was sent
    assert set(while_processed) == {"ping 200"}
    assert answer[0].count(b"\n") == rows
