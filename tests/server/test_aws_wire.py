"""AWS's wire format, met through the SageMaker SDK's own serializers and deserializers, on every target.

A client written for AWS's scikit-learn container builds its request with ``sagemaker.core.serializers`` and
reads the answer with ``sagemaker.core.deserializers``. Those objects, not hand-written bodies, make the
requests here, so a change in what the SDK sends or expects shows up as a failure.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import orjson
import pytest
import scipy.sparse
from sagemaker.core.deserializers import CSVDeserializer, JSONDeserializer, NumpyDeserializer
from sagemaker.core.serializers import (
    CSVSerializer,
    JSONLinesSerializer,
    JSONSerializer,
    NumpySerializer,
    SparseMatrixSerializer,
)

from tests.server import models
from tests.server.targets import Client, ServeModel

ROWS = models.IRIS_FEATURES[[0, 60, 120]]  # one of each class


def sdk_invoke(server: Client, serializer: Any, deserializer: Any, data: Any) -> Any:
    """What ``Predictor.predict(data)`` does around the HTTP call: serialize, send, deserialize."""
    response = server.request(
        "POST",
        "/invocations",
        headers={"Content-Type": serializer.CONTENT_TYPE, "Accept": deserializer.ACCEPT[0]},
        content=serializer.serialize(data),
    )
    assert response.status_code == 200, response.text
    return deserializer.deserialize(io.BytesIO(response.content), response.headers["content-type"])


def labels(model_dir: Path, rows: np.ndarray) -> list[int]:
    predicted: list[int] = joblib.load(model_dir / "model.joblib").predict(rows).tolist()
    return predicted


def test_csv_serializer_and_json_deserializer_give_a_list_of_labels(server: Client, iris_dir: Path) -> None:
    answer = sdk_invoke(server, CSVSerializer(), JSONDeserializer(), ROWS)

    assert answer == labels(iris_dir, ROWS)


def test_json_serializer_and_numpy_deserializer_give_a_1d_array_of_labels(
    server: Client, iris_dir: Path
) -> None:
    answer = sdk_invoke(server, JSONSerializer(), NumpyDeserializer(accept="application/json"), ROWS)

    assert answer.shape == (3,)
    assert answer.tolist() == labels(iris_dir, ROWS)


def test_one_row_as_a_flat_json_list_is_one_prediction(server: Client, iris_dir: Path) -> None:
    answer = sdk_invoke(server, JSONSerializer(), JSONDeserializer(), ROWS[0].tolist())

    assert answer == labels(iris_dir, ROWS[:1])


def test_one_row_as_a_1d_npy_array_is_one_prediction(server: Client, iris_dir: Path) -> None:
    answer = sdk_invoke(server, NumpySerializer(), NumpyDeserializer(), ROWS[0])

    assert answer.tolist() == labels(iris_dir, ROWS[:1])


def test_numpy_in_numpy_out(server: Client, iris_dir: Path) -> None:
    answer = sdk_invoke(server, NumpySerializer(), NumpyDeserializer(), ROWS.astype(np.float32))

    assert answer.tolist() == labels(iris_dir, ROWS)


@pytest.mark.parametrize("sparse_format", ["csr", "csc"])
def test_a_scipy_sparse_matrix_is_read_from_npz(server: Client, iris_dir: Path, sparse_format: str) -> None:
    matrix = scipy.sparse.csr_matrix(ROWS).asformat(sparse_format)

    answer = sdk_invoke(server, SparseMatrixSerializer(), JSONDeserializer(), matrix)

    assert answer == labels(iris_dir, ROWS)


def test_json_lines_in_and_out(server: Client, iris_dir: Path) -> None:
    answer = sdk_invoke(
        server, JSONLinesSerializer(), _JsonLines(), [[str(value) for value in row] for row in ROWS.tolist()]
    )

    assert answer == labels(iris_dir, ROWS)


def test_csv_answers_read_back_with_the_csv_deserializer(server: Client, iris_dir: Path) -> None:
    answer = sdk_invoke(server, CSVSerializer(), CSVDeserializer(), ROWS)

    assert answer == [[str(label)] for label in labels(iris_dir, ROWS)]


def test_a_dense_npz_with_one_array_is_its_rows(server: Client, iris_dir: Path) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, ROWS)

    response = server.request(
        "POST", "/invocations", headers={"Content-Type": "application/x-npz"}, content=buffer.getvalue()
    )

    assert response.json() == labels(iris_dir, ROWS)


def test_an_npz_that_unpacks_to_too_much_is_a_400_before_it_is_unpacked(server: Client) -> None:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, instances=np.zeros((3_000_000, 4)))  # 96 MB of zeros, ~100 KB packed

    response = server.request(
        "POST", "/invocations", headers={"Content-Type": "application/x-npz"}, content=buffer.getvalue()
    )

    assert response.status_code == 400
    assert "unpacks to" in response.json()["error"]


def test_multi_output_predict_proba_gives_rows_of_per_output_probabilities(
    serve_model: ServeModel, tmp_path: Path
) -> None:
    model = models.multi_output_model()
    server = serve_model(models.write_joblib(tmp_path, model), {"INFERENCE_PREDICT_METHOD": "predict_proba"})

    as_json = sdk_invoke(server, CSVSerializer(), JSONDeserializer(), ROWS)
    as_csv = sdk_invoke(server, CSVSerializer(), CSVDeserializer(), ROWS)

    outputs = model.predict_proba(ROWS)  # one array per output: 3 classes, then 2
    assert [[len(probabilities) for probabilities in row] for row in as_json] == [[3, 2]] * len(ROWS)
    for i, row in enumerate(as_json):
        np.testing.assert_allclose(row[0], outputs[0][i])
        np.testing.assert_allclose(row[1], outputs[1][i])
        np.testing.assert_allclose([float(v) for v in as_csv[i]], [*outputs[0][i], *outputs[1][i]])


def test_ragged_multi_output_probabilities_as_npy_are_a_406_naming_what_works(
    serve_model: ServeModel, tmp_path: Path
) -> None:
    directory = models.write_joblib(tmp_path, models.multi_output_model())
    server = serve_model(directory, {"INFERENCE_PREDICT_METHOD": "predict_proba"})

    response = server.request(
        "POST",
        "/invocations",
        headers={"Content-Type": "text/csv", "Accept": "application/x-npy"},
        content=b"1,2,3,4",
    )

    assert response.status_code == 406
    assert "application/json" in response.json()["error"]


def test_multi_output_predict_gives_a_row_of_labels_per_row(serve_model: ServeModel, tmp_path: Path) -> None:
    model = models.multi_output_model()
    server = serve_model(models.write_joblib(tmp_path, model))

    answer = sdk_invoke(server, NumpySerializer(), JSONDeserializer(), ROWS)

    assert answer == model.predict(ROWS).tolist()


class _JsonLines:
    """The SDK's JSONLinesDeserializer reads objects only; predictions of one value per line need this."""

    ACCEPT = ("application/jsonlines",)

    def deserialize(self, stream: io.BytesIO, content_type: str) -> list[Any]:
        assert content_type == "application/jsonlines"
        return [orjson.loads(line) for line in stream.read().splitlines()]


def test_the_sdk_json_lines_deserializer_reads_our_json_lines(server: Client) -> None:
    from sagemaker.core.deserializers import JSONLinesDeserializer

    response: httpx.Response = server.request(
        "POST",
        "/invocations",
        headers={"Content-Type": "text/csv", "Accept": "application/jsonlines"},
        content=b"5.1,3.5,1.4,0.2\n6.2,2.9,4.3,1.3",
    )

    assert JSONLinesDeserializer().deserialize(io.BytesIO(response.content), "application/jsonlines") == [
        0,
        1,
    ]
