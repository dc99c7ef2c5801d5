"""The SageMaker container contract, run unchanged against every target (in-process, process, container)."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import joblib
import numpy as np
import orjson
import pytest
from sklearn_server.app import NOT_READY

from tests.server import models
from tests.server.targets import Call, Client, ServeModel

CSV = {"Content-Type": "text/csv"}
IRIS_ROWS = models.IRIS_FEATURES[[0, 60, 120]]  # one of each class
IRIS_CSV = "\n".join(",".join(str(v) for v in row) for row in IRIS_ROWS).encode()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def error_of(response: httpx.Response) -> str:
    """The message of a JSON error body; fails the test if the body is anything else."""
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


def invoke(
    server: Client, content: bytes | AsyncIterator[bytes], content_type: str = "text/csv", **headers: str
) -> httpx.Response:
    return server.request(
        "POST", "/invocations", headers={"Content-Type": content_type, **headers}, content=content
    )


def expected_labels(model_dir: Path, rows: np.ndarray) -> list[int]:
    model = joblib.load(model_dir / "model.joblib")
    labels: list[int] = model.predict(rows).tolist()
    return labels


# --- routes -------------------------------------------------------------------------------------------------


def test_ping_answers_200_once_the_model_is_loaded(server: Client) -> None:
    response = server.request("GET", "/ping")

    assert response.status_code == 200


def test_execution_parameters_describe_batch_transform(server: Client) -> None:
    response = server.request("GET", "/execution-parameters")

    assert response.status_code == 200
    assert response.json() == {
        "MaxConcurrentTransforms": 2,
        "BatchStrategy": "MULTI_RECORD",
        "MaxPayloadInMB": 6,
    }


def test_an_unknown_path_is_a_404_json_error(server: Client) -> None:
    response = server.request("GET", "/predict")

    assert response.status_code == 404
    assert "/invocations" in error_of(response)


def test_a_wrong_method_is_a_405_naming_the_allowed_one(server: Client) -> None:
    response = server.request("GET", "/invocations")

    assert response.status_code == 405
    assert response.headers["allow"] == "POST"
    assert "POST" in error_of(response)


# --- content types ------------------------------------------------------------------------------------------


def test_csv_rows_in_give_as_many_csv_lines_out(server: Client, iris_dir: Path) -> None:
    response = invoke(server, IRIS_CSV, Accept="text/csv")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv"
    assert response.text.splitlines() == [str(label) for label in expected_labels(iris_dir, IRIS_ROWS)]


def test_json_instances_give_json_predictions(server: Client, iris_dir: Path) -> None:
    body = orjson.dumps({"instances": IRIS_ROWS.tolist()})

    response = invoke(server, body, "application/json", Accept="application/json")

    assert response.status_code == 200
    assert response.json() == expected_labels(iris_dir, IRIS_ROWS)


def test_a_bare_json_list_of_rows_is_accepted(server: Client, iris_dir: Path) -> None:
    response = invoke(server, orjson.dumps(IRIS_ROWS.tolist()), "application/json")

    assert response.json() == expected_labels(iris_dir, IRIS_ROWS)


def test_the_predictions_envelope_is_one_setting_away(serve_model: ServeModel, iris_dir: Path) -> None:
    server = serve_model(iris_dir, {"INFERENCE_JSON_RESPONSE": "predictions"})

    response = invoke(server, orjson.dumps({"instances": IRIS_ROWS.tolist()}), "application/json")

    assert response.json() == {"predictions": expected_labels(iris_dir, IRIS_ROWS)}


def test_npy_in_gives_npy_out(server: Client, iris_dir: Path) -> None:
    response = invoke(server, npy(IRIS_ROWS), "application/x-npy", Accept="application/x-npy")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-npy"
    predictions = np.load(io.BytesIO(response.content), allow_pickle=False)
    assert predictions.tolist() == expected_labels(iris_dir, IRIS_ROWS)


def test_float32_and_integer_npy_arrays_are_accepted(server: Client) -> None:
    for array in (IRIS_ROWS.astype(np.float32), np.rint(IRIS_ROWS).astype(np.int16)):
        assert invoke(server, npy(array), "application/x-npy").status_code == 200


def test_no_accept_header_answers_with_the_default_accept(server: Client) -> None:
    response = invoke(server, IRIS_CSV)

    assert response.headers["content-type"] == "application/json"


def test_accept_any_answers_with_the_default_accept(server: Client) -> None:
    response = invoke(server, IRIS_CSV, Accept="*/*")

    assert response.headers["content-type"] == "application/json"


def test_accept_q_values_choose_the_preferred_type(server: Client) -> None:
    response = invoke(server, IRIS_CSV, Accept="text/csv;q=0.5, application/x-npy;q=0.9, */*;q=0.1")

    assert response.headers["content-type"] == "application/x-npy"


def test_accept_text_any_answers_csv(server: Client) -> None:
    response = invoke(server, IRIS_CSV, Accept="text/*")

    assert response.headers["content-type"] == "text/csv"


def test_an_unsatisfiable_accept_is_a_406_listing_the_supported_types(server: Client) -> None:
    response = invoke(server, IRIS_CSV, Accept="text/html, application/xml;q=0.9")

    assert response.status_code == 406
    assert all(t in error_of(response) for t in ("text/csv", "application/json", "application/x-npy"))


def test_content_type_parameters_and_case_are_ignored(server: Client) -> None:
    response = invoke(server, IRIS_CSV, "Text/CSV; charset=utf-8", Accept="TEXT/CSV")

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv"


def test_an_unsupported_content_type_is_a_415_listing_the_supported_types(server: Client) -> None:
    response = invoke(server, b"<rows/>", "application/xml")

    assert response.status_code == 415
    assert all(t in error_of(response) for t in ("text/csv", "application/json", "application/x-npy"))


def test_a_missing_content_type_is_read_as_json(server: Client, iris_dir: Path) -> None:
    response = server.request("POST", "/invocations", content=orjson.dumps(IRIS_ROWS.tolist()))

    assert response.status_code == 200
    assert response.json() == expected_labels(iris_dir, IRIS_ROWS)


def test_a_missing_content_type_with_a_csv_body_is_a_400_saying_json(server: Client) -> None:
    response = server.request("POST", "/invocations", content=IRIS_CSV)

    assert response.status_code == 400
    assert "JSON" in error_of(response)


def test_the_default_accept_comes_from_the_environment(serve_model: ServeModel, iris_dir: Path) -> None:
    server = serve_model(iris_dir, {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"})

    response = invoke(server, IRIS_CSV)

    assert response.headers["content-type"] == "text/csv"
    assert len(response.text.splitlines()) == len(IRIS_ROWS)


def test_text_labels_come_back_as_text_in_every_format(serve_model: ServeModel, tmp_path: Path) -> None:
    server = serve_model(models.write_joblib(tmp_path / "model", models.iris_text_label_model()))
    expected = ["setosa", "versicolor", "virginica"]

    as_csv = invoke(server, IRIS_CSV, Accept="text/csv")
    as_json = invoke(server, IRIS_CSV, Accept="application/json")
    as_npy = invoke(server, IRIS_CSV, Accept="application/x-npy")

    assert as_csv.text.splitlines() == expected
    assert as_json.json() == expected
    assert np.load(io.BytesIO(as_npy.content), allow_pickle=False).tolist() == expected


def test_predict_proba_is_chosen_by_the_environment(serve_model: ServeModel, iris_dir: Path) -> None:
    server = serve_model(iris_dir, {"INFERENCE_PREDICT_METHOD": "predict_proba"})

    as_csv = invoke(server, IRIS_CSV, Accept="text/csv")
    as_json = invoke(server, IRIS_CSV, Accept="application/json")

    expected = joblib.load(iris_dir / "model.joblib").predict_proba(IRIS_ROWS)
    lines = [[float(p) for p in line.split(",")] for line in as_csv.text.splitlines()]
    np.testing.assert_allclose(lines, expected)
    np.testing.assert_allclose(as_json.json(), expected)


def test_a_skops_model_is_served(serve_model: ServeModel, tmp_path: Path) -> None:
    server = serve_model(models.write_skops(tmp_path / "model", models.iris_model()))

    response = invoke(server, IRIS_CSV, Accept="text/csv")

    assert response.status_code == 200
    assert response.text.splitlines() == ["0", "1", "2"]


# --- malformed requests -------------------------------------------------------------------------------------


def test_a_ragged_csv_row_is_a_400_naming_the_row(server: Client) -> None:
    response = invoke(server, b"5.1,3.5,1.4,0.2\n6.2,3.4,5.4\n")

    assert response.status_code == 400
    assert "row 2" in error_of(response)


def test_a_non_numeric_csv_cell_is_a_400_naming_row_and_column(server: Client) -> None:
    response = invoke(server, b"5.1,3.5,1.4,0.2\n6.2,3.4,abc,2.3")

    assert response.status_code == 400
    assert "row 2, column 3" in error_of(response)
    assert "abc" in error_of(response)


def test_a_csv_header_row_is_a_400(server: Client) -> None:
    response = invoke(server, b"sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2")

    assert response.status_code == 400
    assert "row 1, column 1" in error_of(response)


@pytest.mark.parametrize("content_type", ["text/csv", "application/json", "application/x-npy"])
def test_an_empty_body_is_a_400(server: Client, content_type: str) -> None:
    response = invoke(server, b"", content_type)

    assert response.status_code == 400
    assert error_of(response)


@pytest.mark.parametrize("body", [b"[5.1, 3.5, 1.4, 0.2]", b'{"instances": [5.1, 3.5, 1.4, 0.2]}'])
def test_a_flat_json_list_is_one_row(server: Client, iris_dir: Path, body: bytes) -> None:
    response = invoke(server, body, "application/json")

    assert response.status_code == 200
    assert response.json() == expected_labels(iris_dir, IRIS_ROWS[:1])


def test_numbers_sent_as_json_strings_are_numbers(server: Client, iris_dir: Path) -> None:
    rows = [[str(value) for value in row] for row in IRIS_ROWS.tolist()]

    response = invoke(server, orjson.dumps(rows), "application/json")

    assert response.json() == expected_labels(iris_dir, IRIS_ROWS)


def test_a_flat_json_list_of_the_wrong_width_is_a_400_with_expected_and_got(server: Client) -> None:
    response = invoke(server, b"[5.1, 3.5, 1.4]", "application/json")

    assert response.status_code == 400
    assert "expected 4 features, got 3" in error_of(response)


def test_json_null_is_a_missing_value_the_model_may_refuse(server: Client) -> None:
    response = invoke(server, b"[[5.1, null, 1.4, 0.2]]", "application/json")

    assert response.status_code == 400
    assert "NaN" in error_of(response)


def test_a_non_number_in_json_is_a_400_naming_the_field(server: Client) -> None:
    response = invoke(
        server, b'{"instances": [[5.1, 3.5, 1.4, 0.2], [6.2, "x", 5.4, 2.3]]}', "application/json"
    )

    assert response.status_code == 400
    assert "instances[1][1]" in error_of(response)


def test_json_inputs_is_another_name_for_instances(server: Client, iris_dir: Path) -> None:
    response = invoke(server, b'{"inputs": [[5.1, 3.5, 1.4, 0.2]]}', "application/json")

    assert response.json() == expected_labels(iris_dir, IRIS_ROWS[:1])


def test_json_without_instances_is_a_400_naming_the_field(server: Client) -> None:
    response = invoke(server, b'{"rows": [[5.1, 3.5, 1.4, 0.2]]}', "application/json")

    assert response.status_code == 400
    assert "instances" in error_of(response)


def test_invalid_json_is_a_400(server: Client) -> None:
    response = invoke(server, b'{"instances": [[5.1, 3.5', "application/json")

    assert response.status_code == 400
    assert "JSON" in error_of(response)


def test_a_one_dimensional_npy_array_is_one_row(server: Client, iris_dir: Path) -> None:
    response = invoke(server, npy(IRIS_ROWS[0]), "application/x-npy", Accept="application/json")

    assert response.status_code == 200
    assert response.json() == expected_labels(iris_dir, IRIS_ROWS[:1])


def test_a_three_dimensional_npy_array_is_a_400(server: Client) -> None:
    response = invoke(server, npy(IRIS_ROWS.reshape(1, 3, 4)), "application/x-npy")

    assert response.status_code == 400
    assert "2-D" in error_of(response)


def test_a_pickled_npy_array_is_refused_not_loaded(server: Client) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.array([[object()]], dtype=object), allow_pickle=True)

    response = invoke(server, buffer.getvalue(), "application/x-npy")

    assert response.status_code == 400


def test_an_npy_header_larger_than_its_data_is_a_400(server: Client) -> None:
    truncated = npy(np.zeros((1000, 4)))[:-8]

    response = invoke(server, truncated, "application/x-npy")

    assert response.status_code == 400


def test_a_wrong_feature_count_is_a_400_with_expected_and_got(server: Client) -> None:
    response = invoke(server, b"5.1,3.5,1.4")

    assert response.status_code == 400
    assert "expected 4 features, got 3" in error_of(response)


def test_input_the_model_refuses_is_a_400_with_its_reason(server: Client) -> None:
    response = invoke(server, b"nan,3.5,1.4,0.2")

    assert response.status_code == 400
    assert "NaN" in error_of(response)


# --- size limit ---------------------------------------------------------------------------------------------


def raw_exchange(base_url: str, head: bytes, chunks: list[bytes]) -> bytes:
    """Send ``head`` then ``chunks`` on a raw socket, stopping when the server closes; everything it sent."""
    address = urlsplit(base_url)
    assert address.hostname is not None
    assert address.port is not None
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(head)
        with contextlib.suppress(OSError):  # the server stopped reading and closed: its answer is on its way
            for chunk in chunks:
                sock.sendall(chunk)
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while data := sock.recv(65536):
                received += data
        return received


def test_a_content_length_over_the_limit_is_a_413_answered_before_the_body(server: Client) -> None:
    if server.target == "asgi":
        response = invoke(server, b"1" * (6 * 1024 * 1024 + 1))
        assert response.status_code == 413
        assert "limit" in error_of(response)
        return
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
        b"Content-Length: 6291457\r\n\r\n"
    )

    received = raw_exchange(server.base_url, head, [])  # no body sent at all: the answer must not wait for it

    status_line, _, rest = received.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large"
    assert b"connection: close" in rest.lower()
    assert b'{"error":' in rest


def test_a_chunked_body_over_the_limit_is_a_413(server: Client) -> None:
    if server.target == "asgi":

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(7):
                yield b"1" * (1024 * 1024)

        response = invoke(server, chunks())
        assert response.status_code == 413
        return
    head = (
        b"POST /invocations HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    megabyte = b"1" * (1024 * 1024)
    chunk = b"%x\r\n" % len(megabyte) + megabyte + b"\r\n"

    received = raw_exchange(server.base_url, head, [chunk] * 8 + [b"0\r\n\r\n"])

    assert received.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in received.lower()


def test_a_body_just_under_the_limit_is_read(server: Client) -> None:
    row = b"5.1,3.5,1.4,0.2\n"
    body = row * ((6 * 1024 * 1024 - 1) // len(row))

    response = invoke(server, body, Accept="text/csv")

    assert response.status_code == 200
    assert len(response.text.splitlines()) == body.count(b"\n")


# --- headers ------------------------------------------------------------------------------------------------


def test_custom_attributes_are_echoed_back(server: Client) -> None:
    response = invoke(server, IRIS_CSV, **{"X-Amzn-SageMaker-Custom-Attributes": "trace=abc-123,variant=b"})

    assert response.status_code == 200
    assert response.headers["x-amzn-sagemaker-custom-attributes"] == "trace=abc-123,variant=b"


def test_custom_attributes_over_1024_characters_are_a_400(server: Client) -> None:
    response = invoke(server, IRIS_CSV, **{"X-Amzn-SageMaker-Custom-Attributes": "a" * 1025})

    assert response.status_code == 400
    assert "1024" in error_of(response)


def test_other_headers_are_ignored(server: Client) -> None:
    response = invoke(
        server,
        IRIS_CSV,
        Accept="text/csv",
        Authorization="Bearer whatever",
        **{"X-Amzn-SageMaker-Target-Model": "other.tar.gz", "X-Forwarded-For": "10.0.0.1", "Cookie": "a=b"},
    )

    assert response.status_code == 200
    assert len(response.text.splitlines()) == len(IRIS_ROWS)


# --- the model misbehaving ----------------------------------------------------------------------------------


def test_a_failing_model_is_a_500_that_reveals_nothing(serve_model: ServeModel, tmp_path: Path) -> None:
    server = serve_model(models.write_joblib(tmp_path / "model", models.failing_model()))

    response = invoke(server, IRIS_CSV)

    assert response.status_code == 500
    assert error_of(response) == "model failed"
    assert all(word not in response.text for word in ("Traceback", "TypeError", "invert", "File "))


def test_a_prediction_over_the_timeout_is_a_504(serve_model: ServeModel, tmp_path: Path) -> None:
    server = serve_model(
        models.write_joblib(tmp_path / "model", models.sleepy_model()),
        {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "0.5"},
    )

    response = invoke(server, b"3,0,0,0")

    assert response.status_code == 504
    assert "0.5 s" in error_of(response)


def test_ping_stays_fast_while_a_slow_model_is_busy(serve_model: ServeModel, tmp_path: Path) -> None:
    server = serve_model(
        models.write_joblib(tmp_path / "model", models.sleepy_model()),
        {"SAGEMAKER_MODEL_SERVER_WORKERS": "1"},
    )
    slow = [Call("POST", "/invocations", CSV, b"0.75,0,0,0") for _ in range(4)]  # 3 s of predicting
    pings: list[tuple[int, float]] = []

    def ping_meanwhile() -> None:
        time.sleep(0.3)
        for _ in range(5):
            started = time.monotonic()
            status = server.request("GET", "/ping").status_code
            pings.append((status, time.monotonic() - started))
            time.sleep(0.2)

    if server.target == "asgi":  # one event loop: the pings must share it with the slow requests
        calls = [*slow, *(Call("GET", "/ping") for _ in range(5))]
        started = time.monotonic()
        responses = server.request_many(calls)
        assert [r.status_code for r in responses] == [200] * len(calls)
        assert time.monotonic() - started < 10
        return
    pinger = threading.Thread(target=ping_meanwhile)
    pinger.start()
    responses = server.request_many(slow)
    pinger.join(10)

    assert [r.status_code for r in responses] == [200] * len(slow)
    assert [status for status, _ in pings] == [200] * 5
    assert max(seconds for _, seconds in pings) < 2.0


def test_ping_is_503_while_the_model_loads_then_200(serve_model: ServeModel, tmp_path: Path) -> None:
    server = serve_model(
        models.write_joblib(tmp_path / "model", models.slow_loading_model(2.0)), wait_ready=False
    )
    statuses: list[int] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and 200 not in statuses:
        try:
            response = server.request("GET", "/ping")
        except httpx.TransportError:
            time.sleep(0.05)  # the container's port is not published yet
            continue
        statuses.append(response.status_code)
        if response.status_code == 503:
            assert error_of(response) == NOT_READY
        time.sleep(0.1)

    assert statuses[0] == 503
    assert statuses[-1] == 200
    assert set(statuses) == {503, 200}


# --- micro-batching -----------------------------------------------------------------------------------------


def test_concurrent_requests_of_mixed_sizes_get_exactly_their_own_predictions(
    server: Client, iris_dir: Path
) -> None:
    generator = np.random.default_rng(7)
    bodies = []
    for size in generator.integers(1, 51, 60):
        rows = models.IRIS_FEATURES[generator.integers(0, len(models.IRIS_FEATURES), size)]
        bodies.append(rows + generator.normal(0, 0.3, rows.shape))
    calls = [
        Call(
            "POST",
            "/invocations",
            {**CSV, "Accept": "application/json"},
            "\n".join(",".join(repr(float(v)) for v in row) for row in rows).encode(),
        )
        for rows in bodies
    ]

    responses = server.request_many(calls)

    model = joblib.load(iris_dir / "model.joblib")
    assert [r.status_code for r in responses] == [200] * len(calls)
    assert [r.json() for r in responses] == [model.predict(rows).tolist() for rows in bodies]
