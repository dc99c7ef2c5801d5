"""The DataFrame loader in this process: how kinds are decided, what each error says, batching, and fuzzing.

test_kind_dataframe.py runs the same model over HTTP on every target; this file holds what is cheaper and
clearer to check on the LoadedModel itself.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn_server.batching import Batcher
from sklearn_server.config import ServerConfig
from sklearn_server.errors import BadRequestError, InferenceError, UnsupportedMediaTypeError
from sklearn_server.loaders import dataframe
from sklearn_server.model import LoadedModel, load_model

from ml_inference_cdk.constructs.feature_schema import feature_schema
from tests.server import models

JSON = "application/json"
PIPELINE = models.customer_pipeline()
ROWS = models.CUSTOMERS.iloc[[0, 1, 2, 5]].reset_index(drop=True)


def passthrough_model() -> Pipeline:
    """``code`` passes through untouched to an encoder-free step: its kind cannot be read from the model."""
    frame = pd.DataFrame({"city": ["paris", "rome", "oslo", "rome"], "code": [1.0, 2.0, 3.0, 4.0]})
    columns = ColumnTransformer([("text", OneHotEncoder(), ["city"])], remainder="passthrough")
    return Pipeline([("columns", columns), ("classify", LogisticRegression())]).fit(frame, [0, 1, 0, 1])


def loaded(estimator: Any, tmp_path: Path, *, packed: bool = True) -> LoadedModel:
    directory = tmp_path / "model"
    if packed:
        models.write_packed(directory, estimator)
    else:
        models.write_joblib(directory, estimator)
    return load_model(directory / "model.joblib", ServerConfig(workers=1))


@pytest.fixture(scope="module")
def customers(tmp_path_factory: pytest.TempPathFactory) -> LoadedModel:
    return loaded(PIPELINE, tmp_path_factory.mktemp("customers"))


def predict(model: LoadedModel, body: bytes, media_type: str = JSON) -> list[Any]:
    labels: list[Any] = model.predict(model.decode(body, media_type)).tolist()
    return labels


def rejection(model: LoadedModel, body: bytes, media_type: str = JSON) -> str:
    with pytest.raises(BadRequestError) as raised:
        model.predict(model.decode(body, media_type))
    return raised.value.message


# --- kinds ----------------------------------------------------------------------------------------------


def test_pack_model_records_each_columns_kind_as_the_encoders_learned_it(tmp_path: Path) -> None:
    models.write_packed(tmp_path / "model", PIPELINE)

    metadata = json.loads((tmp_path / "model" / "model-metadata.json").read_text())

    assert metadata["feature_names"] == ["city", "plan", "age", "income"]
    assert metadata["feature_dtypes"] == {
        "city": "string",
        "plan": "string",
        "age": "number",
        "income": "number",
    }


def test_pack_model_records_no_columns_for_a_model_fitted_on_numbers(tmp_path: Path) -> None:
    models.write_packed(tmp_path / "model", models.iris_model())

    metadata = json.loads((tmp_path / "model" / "model-metadata.json").read_text())

    assert "feature_names" not in metadata
    assert "feature_dtypes" not in metadata


@pytest.mark.parametrize("estimator", [PIPELINE, models.iris_frame_model(), passthrough_model()])
def test_the_server_reads_the_kinds_from_the_estimator_as_pack_model_does(estimator: Any) -> None:
    schema = dataframe.schema_of(estimator, {}, Path("model.joblib"))

    assert dict(zip(schema.names, schema.kinds, strict=True)) == {
        name: feature_schema(estimator)["feature_dtypes"].get(name) for name in schema.names
    }


def test_metadata_decides_a_columns_kind_over_the_estimator() -> None:
    metadata = {"feature_dtypes": {"age": "string"}}

    schema = dataframe.schema_of(PIPELINE, metadata, Path("model.joblib"))

    assert schema.kinds == ("string", "string", "string", "number")


def test_a_column_of_unknown_kind_is_inferred_from_each_request(tmp_path: Path) -> None:
    model = loaded(passthrough_model(), tmp_path)

    frame = model.decode(b'[{"city": "rome", "code": "2"}, {"city": "oslo", "code": null}]', JSON)

    assert frame["code"].dtype == np.float64


def test_a_model_without_metadata_reads_text_columns_from_its_encoders(tmp_path: Path) -> None:
    model = loaded(PIPELINE, tmp_path, packed=False)

    assert predict(model, orjson.dumps([{"city": "rome", "plan": 2, "age": 30, "income": 2}])) == [
        PIPELINE.predict(pd.DataFrame([{"city": "rome", "plan": "2", "age": 30, "income": 2.0}]))[0]
    ]


def test_a_numeric_dataframe_model_reads_positional_npy_rows(tmp_path: Path) -> None:
    import io

    model = loaded(models.iris_frame_model(), tmp_path)
    buffer = io.BytesIO()
    np.save(buffer, models.IRIS_FEATURES[:3])

    assert predict(model, buffer.getvalue(), "application/x-npy") == [0, 0, 0]


# --- errors ---------------------------------------------------------------------------------------------


def test_a_body_with_two_protocol_fields_is_a_400_naming_them(customers: LoadedModel) -> None:
    message = rejection(customers, b'{"instances": [], "inputs": []}')

    assert "more than one: instances, inputs" in message


def test_an_object_without_a_protocol_field_lists_the_accepted_shapes(customers: LoadedModel) -> None:
    message = rejection(customers, b'{"city": "rome"}')

    assert "dataframe_split" in message
    assert "dataframe_records" in message


def test_a_row_of_the_wrong_width_is_a_400_naming_it(customers: LoadedModel) -> None:
    message = rejection(customers, b'{"dataframe_split": {"columns": ["city", "plan", "age", "income"], '
                                   b'"data": [["rome", "2", 30, 2.0], ["oslo", 3]]}}')  # fmt: skip

    assert "dataframe_split.data[1] has 2 values, but there are 4 columns" in message


def test_many_unknown_columns_are_named_up_to_a_limit(customers: LoadedModel) -> None:
    record = {"city": "rome", "plan": "2", "age": 30, "income": 2.0} | {f"extra{i}": 0 for i in range(25)}

    message = rejection(customers, orjson.dumps([record]))

    assert "'extra9' and 15 more" in message


def test_a_repeated_column_is_a_400(customers: LoadedModel) -> None:
    message = rejection(customers, b"city,plan,age,age,income\nrome,2,30,30,2.0\n", "text/csv")

    assert "repeated column 'age'" in message


def test_a_csv_row_with_a_value_missing_is_a_400_naming_the_row(customers: LoadedModel) -> None:
    message = rejection(customers, b"city,plan,age,income\nrome,2,30,2.0\noslo,3,40\n", "text/csv")

    assert "CSV row 2 has 3 values" in message


def test_text_in_a_number_column_of_a_csv_names_the_column_and_row(customers: LoadedModel) -> None:
    message = rejection(customers, b"city,plan,age,income\nrome,2,30,2.0\noslo,3,forty,1\n", "text/csv")

    assert message.startswith("column 'age' holds numbers, but row 2 has a string ('forty')")


def test_npz_is_refused_for_a_model_with_text_columns(customers: LoadedModel) -> None:
    assert customers.input_types is not None
    assert "application/x-npz" not in customers.input_types
    with pytest.raises(UnsupportedMediaTypeError):
        customers.decode(b"", "application/x-npz")


# --- batching -------------------------------------------------------------------------------------------


def test_concurrent_requests_are_joined_into_one_predict_call(customers: LoadedModel) -> None:
    assert customers.join is not None
    calls: list[int] = []

    def counted(frame: pd.DataFrame) -> Any:
        calls.append(len(frame))
        return customers.predict(frame)

    bodies = [
        orjson.dumps([{"city": c, "plan": "1", "age": 30, "income": 2}]) for c in ("rome", "oslo", "lima")
    ]
    frames = [customers.decode(body, JSON) for body in bodies]

    async def all_at_once() -> list[Any]:
        batcher = Batcher(counted, join=customers.join)
        try:
            return await asyncio.gather(*(batcher.predict(frame) for frame in frames))
        finally:
            batcher.close()

    answers = asyncio.run(all_at_once())

    assert calls == [3]
    assert [answer.tolist() for answer in answers] == [PIPELINE.predict(frame).tolist() for frame in frames]


# --- fuzzing --------------------------------------------------------------------------------------------

names = st.sampled_from(["city", "plan", "age", "income", "other", ""])
cells = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(), st.text(max_size=8))
values = st.recursive(
    cells,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(names, inner, max_size=4),
    max_leaves=12,
)
records = st.lists(st.dictionaries(names, values, max_size=5), max_size=4)
documents = st.one_of(
    values,
    records,
    st.dictionaries(
        st.sampled_from([*dataframe.FRAME_FIELDS, "columns", "data"]), values | records, max_size=2
    ),
    st.fixed_dictionaries(
        {"dataframe_split": st.fixed_dictionaries({"columns": st.lists(names, max_size=5), "data": values})}
    ),
)


def json_body(document: Any) -> bytes:
    try:
        return orjson.dumps(document)
    except TypeError:  # integers beyond 64 bits
        return repr(document).encode()


def answers_or_refuses(model: LoadedModel, body: bytes, media_type: str) -> None:
    """A prediction per row, or an InferenceError with a 4xx status: never anything else."""
    try:
        frame = model.decode(body, media_type)
        output = model.predict(frame)
    except InferenceError as error:
        status, message = error.status, error.message
    else:
        assert len(output) == len(frame)
        return
    assert 400 <= status < 500, f"{status}: {message}"  # never a 500: bad input is the client's to fix


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents)
def test_no_json_document_crashes_the_decoder(customers: LoadedModel, document: Any) -> None:
    answers_or_refuses(customers, json_body(document), JSON)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    lines=st.lists(st.lists(st.one_of(names, st.text(max_size=6), st.just("3.5")), max_size=6), max_size=4),
    media_type=st.sampled_from(["text/csv", "application/jsonlines"]),
)
def test_no_csv_or_jsonlines_body_crashes_the_decoder(
    customers: LoadedModel, lines: list[list[str]], media_type: str
) -> None:
    body = "\n".join(",".join(line) for line in lines).encode()
    answers_or_refuses(customers, body, media_type)


# --- the numeric fast path for a model fitted on a DataFrame of numbers ---------------------------------


def test_a_model_fitted_on_a_numeric_dataframe_predicts_from_float_arrays(tmp_path: Path) -> None:
    model = loaded(models.iris_frame_model(), tmp_path)

    decoded = model.decode(b'{"dataframe_records": [{"sepal_length": 5.1, "sepal_width": 3.5, '
                           b'"petal_length": 1.4, "petal_width": 0.2}]}', JSON)  # fmt: skip

    assert model.details["predicts_from"] == "arrays"
    assert isinstance(decoded, np.ndarray)
    assert model.predict(decoded).tolist() == [0]


def test_a_model_that_selects_columns_by_name_keeps_predicting_from_dataframes(tmp_path: Path) -> None:
    frame = pd.DataFrame(models.IRIS_FEATURES[:, :2], columns=["a", "b"])
    by_name = Pipeline(
        [("columns", ColumnTransformer([("b", "passthrough", ["b"])])), ("classify", LogisticRegression())]
    ).fit(frame, models.IRIS_LABELS)

    model = loaded(by_name, tmp_path)

    assert model.details["predicts_from"] == "DataFrames"
    assert predict(model, b"a,b\n5.1,3.5\n", "text/csv") == by_name.predict(frame[:1]).tolist()
