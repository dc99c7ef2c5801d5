"""DataFrame pipelines on every target: MLflow's scoring protocol, CSV with a header, column errors, dtypes.

The model is ``models.customer_pipeline()`` packed with pack_model(), so model-metadata.json types its
columns (city and plan text, age and income numbers). Every accepted request shape must predict what the
pipeline's own ``predict`` says for the same DataFrame.

One server per target serves the whole module (a container start costs seconds); the few tests that need
another model start their own with ``serve_model``.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest

from tests.server import models
from tests.server.conftest import TARGETS
from tests.server.targets import Call, Client, ServeModel, start_target

ROWS = models.CUSTOMERS.iloc[[0, 1, 2, 5]].reset_index(drop=True)
COLUMNS = list(ROWS.columns)
SHUFFLED = ["income", "plan", "city", "age"]


@pytest.fixture(scope="module")
def pipeline() -> Any:
    return models.customer_pipeline()


@pytest.fixture(scope="module", params=TARGETS)
def dataframe_server(
    request: pytest.FixtureRequest, pipeline: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Client]:
    model_dir = models.write_packed(tmp_path_factory.mktemp("customers") / "model", pipeline)
    with start_target(request.param, model_dir, {}, tmp_path_factory.mktemp("logs")) as client:
        yield client


def invoke(
    server: Client, body: bytes, content_type: str, accept: str = "application/json"
) -> httpx.Response:
    return server.request(
        "POST", "/invocations", headers={"Content-Type": content_type, "Accept": accept}, content=body
    )


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    message: str = response.json()["error"]
    return message


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{name: _plain(value) for name, value in row.items()} for _, row in frame.iterrows()]


def rows(frame: pd.DataFrame) -> list[list[Any]]:
    return [[_plain(value) for value in row] for row in frame.itertuples(index=False)]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def csv_text(frame: pd.DataFrame, *, header: bool) -> bytes:
    return frame.to_csv(index=False, header=header).encode()


def jsonlines(items: list[Any]) -> bytes:
    return b"".join(orjson.dumps(item) + b"\n" for item in items)


REQUESTS: dict[str, tuple[str, bytes]] = {
    "dataframe_split": (
        "application/json",
        orjson.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows(ROWS), "index": [7, 8, 9, 10]}}),
    ),
    "dataframe_split, columns in another order": (
        "application/json",
        orjson.dumps({"dataframe_split": {"columns": SHUFFLED, "data": rows(ROWS[SHUFFLED])}}),
    ),
    "dataframe_records": ("application/json", orjson.dumps({"dataframe_records": records(ROWS)})),
    "instances of records": ("application/json", orjson.dumps({"instances": records(ROWS)})),
    "instances of rows": ("application/json", orjson.dumps({"instances": rows(ROWS)})),
    "inputs of columns": (
        "application/json",
        orjson.dumps({"inputs": {name: [_plain(v) for v in ROWS[name]] for name in SHUFFLED}}),
    ),
    "inputs of records": ("application/json", orjson.dumps({"inputs": records(ROWS)})),
    "a bare list of records": ("application/json", orjson.dumps(records(ROWS))),
    "a bare list of rows": ("application/json", orjson.dumps(rows(ROWS))),
    "JSON lines of records": ("application/jsonlines", jsonlines(records(ROWS))),
    "JSON lines of rows": ("application/jsonlines", jsonlines(rows(ROWS))),
    "CSV with a header": ("text/csv", csv_text(ROWS, header=True)),
    "CSV with a header, columns in another order": ("text/csv", csv_text(ROWS[SHUFFLED], header=True)),
    "CSV without a header": ("text/csv", csv_text(ROWS, header=False)),
}


@pytest.mark.parametrize("shape", list(REQUESTS))
def test_every_request_shape_predicts_what_the_pipeline_predicts(
    dataframe_server: Client, pipeline: Any, shape: str
) -> None:
    content_type, body = REQUESTS[shape]

    response = invoke(dataframe_server, body, content_type)

    assert response.status_code == 200, response.text
    assert response.json() == pipeline.predict(ROWS).tolist()


def test_predictions_come_back_in_the_format_asked_for(dataframe_server: Client, pipeline: Any) -> None:
    response = invoke(dataframe_server, csv_text(ROWS, header=True), "text/csv", accept="text/csv")

    assert response.headers["content-type"] == "text/csv"
    assert response.text.splitlines() == pipeline.predict(ROWS).tolist()


def test_one_record_is_one_row(dataframe_server: Client, pipeline: Any) -> None:
    response = invoke(
        dataframe_server, orjson.dumps({"dataframe_records": records(ROWS)[:1]}), "application/json"
    )

    assert response.json() == pipeline.predict(ROWS[:1]).tolist()


def test_missing_and_unknown_columns_are_a_400_naming_them(dataframe_server: Client) -> None:
    record = {"city": "rome", "plan": "2", "agee": 30, "salary": 2.0}

    response = invoke(dataframe_server, orjson.dumps([record]), "application/json")

    assert response.status_code == 400
    message = error_of(response)
    assert "missing columns 'age', 'income'" in message
    assert "unknown columns 'agee', 'salary'" in message
    assert "the model expects 'city', 'plan', 'age', 'income'" in message


def test_a_csv_header_with_an_unknown_column_is_a_400_naming_it(dataframe_server: Client) -> None:
    response = invoke(dataframe_server, b"city,plan,age,income,town\nrome,2,30,2.0,x\n", "text/csv")

    assert response.status_code == 400
    assert "unknown column 'town'" in error_of(response)


def test_text_in_a_number_column_is_a_400_naming_the_column_the_row_and_the_value(
    dataframe_server: Client,
) -> None:
    body = records(ROWS)
    body[2]["age"] = "forty"

    response = invoke(dataframe_server, orjson.dumps({"dataframe_records": body}), "application/json")

    assert response.status_code == 400
    message = error_of(response)
    assert "column 'age'" in message
    assert "row 3" in message
    assert "'forty'" in message


def test_a_column_may_mix_numbers_and_numeric_strings(dataframe_server: Client, pipeline: Any) -> None:
    mixed = [
        {"city": "paris", "plan": 1, "age": "23", "income": 1.5},  # plan, a text column, sent as a number
        {"city": "rome", "plan": "2", "age": 35, "income": "2.25"},
    ]

    response = invoke(dataframe_server, orjson.dumps(mixed), "application/json")

    assert response.status_code == 200, response.text
    assert response.json() == pipeline.predict(ROWS[:2]).tolist()


def test_null_is_a_missing_value(dataframe_server: Client, pipeline: Any) -> None:
    frame = ROWS.copy()
    frame["income"] = frame["income"].astype(object)
    frame.loc[1, "income"] = None
    expected = pipeline.predict(frame.astype({"income": float})).tolist()

    response = invoke(
        dataframe_server,
        orjson.dumps({"dataframe_split": {"columns": COLUMNS, "data": rows(frame)}}),
        "application/json",
    )

    assert response.json() == expected


def test_an_npy_body_is_a_415_for_a_model_with_text_columns(dataframe_server: Client) -> None:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros((1, 4)))

    response = invoke(dataframe_server, buffer.getvalue(), "application/x-npy")

    assert response.status_code == 415
    assert "text/csv" in error_of(response)


def test_concurrent_requests_each_get_their_own_predictions(dataframe_server: Client, pipeline: Any) -> None:
    bodies = [orjson.dumps({"dataframe_records": records(ROWS.iloc[[i]])}) for i in range(len(ROWS))] * 4
    calls = [Call("POST", "/invocations", {"Content-Type": "application/json"}, body) for body in bodies]

    responses = dataframe_server.request_many(calls)

    expected = pipeline.predict(ROWS).tolist() * 4
    assert [response.json()[0] for response in responses] == expected


# --- other models ------------------------------------------------------------------------------------------


def test_without_metadata_each_column_kind_is_inferred_from_the_request(
    serve_model: ServeModel, tmp_path: Path, pipeline: Any
) -> None:
    model_dir = models.write_joblib(tmp_path / "model", pipeline)  # no feature_dtypes in its metadata
    server = serve_model(model_dir)

    response = invoke(server, csv_text(ROWS, header=True).replace(b",1,", b",x1,"), "text/csv")
    answered = invoke(server, orjson.dumps({"dataframe_records": records(ROWS)}), "application/json")

    assert response.status_code == 200, response.text  # "x1" in plan: an unknown category, ignored
    assert answered.json() == pipeline.predict(ROWS).tolist()


def test_a_model_fitted_on_a_numeric_dataframe_takes_positional_and_named_rows(
    serve_model: ServeModel, tmp_path: Path
) -> None:
    model = models.iris_frame_model()
    server = serve_model(models.write_packed(tmp_path / "model", model))
    frame = pd.DataFrame(models.IRIS_FEATURES[[0, 60, 120]], columns=model.feature_names_in_)
    buffer = io.BytesIO()
    np.save(buffer, frame.to_numpy())

    answers = [
        invoke(server, csv_text(frame, header=False), "text/csv"),
        invoke(server, csv_text(frame, header=True), "text/csv"),
        invoke(server, buffer.getvalue(), "application/x-npy"),
        invoke(server, orjson.dumps({"dataframe_records": records(frame)}), "application/json"),
    ]

    assert [answer.json() for answer in answers] == [model.predict(frame).tolist()] * 4
