"""Finding and loading the model file: joblib, skops and its trust rules, metadata, every way to fail."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import sklearn
from sklearn_server.config import MODEL_FILENAMES, ServerConfig
from sklearn_server.errors import BadRequestError, ModelFailedError, ModelLoadError
from sklearn_server.loaders import MODEL_KINDS
from sklearn_server.model import find_model_file, load_model

from tests.server import models


def test_the_single_model_file_is_found(tmp_path: Path) -> None:
    models.write_joblib(tmp_path, models.iris_model())

    assert find_model_file(tmp_path) == tmp_path / "model.joblib"


def test_a_missing_model_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=f"model directory {tmp_path / 'absent'} does not exist"):
        find_model_file(tmp_path / "absent")


def test_a_directory_without_a_model_file_lists_what_it_holds(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(b"")

    with pytest.raises(
        ModelLoadError,
        match=r"expected one of model.joblib, model.skops, xgboost-model, model.txt, model.onnx, "
        "found model.pkl",
    ):
        find_model_file(tmp_path)


def test_both_model_files_are_ambiguous(tmp_path: Path) -> None:
    models.write_ambiguous(tmp_path)

    with pytest.raises(ModelLoadError, match=r"ambiguous model .*both model\.joblib and model\.skops"):
        find_model_file(tmp_path)


def test_a_model_path_that_is_a_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").mkdir()

    with pytest.raises(ModelLoadError, match=r"model\.joblib is a directory, not a regular file"):
        find_model_file(tmp_path)


def test_a_model_path_linked_to_a_device_says_where_the_link_points(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").symlink_to("/dev/zero")

    with pytest.raises(ModelLoadError, match=r"a symbolic link to /dev/zero, which is not a regular file"):
        find_model_file(tmp_path)


def test_a_dangling_model_link_says_its_target_is_missing(tmp_path: Path) -> None:
    (tmp_path / "model.joblib").symlink_to(tmp_path / "gone.joblib")

    with pytest.raises(ModelLoadError, match=r"gone\.joblib, which does not exist"):
        find_model_file(tmp_path)


def test_a_truncated_model_file_is_called_truncated(tmp_path: Path) -> None:
    models.write_truncated(tmp_path)

    with pytest.raises(
        ModelLoadError, match=r"cannot be loaded: the file ends early: it is truncated or empty"
    ):
        load_model(tmp_path / "model.joblib")


def test_a_joblib_model_loads_with_its_feature_count(tmp_path: Path) -> None:
    models.write_joblib(tmp_path, models.iris_model())

    model = load_model(tmp_path / "model.joblib")

    assert model.n_features == 4
    assert model.predict(models.IRIS_FEATURES[:2]).tolist() == [0, 0]


def test_a_corrupt_file_is_a_load_error_naming_it(tmp_path: Path) -> None:
    models.write_corrupt(tmp_path)

    with pytest.raises(ModelLoadError, match=f"{tmp_path / 'model.joblib'} cannot be loaded"):
        load_model(tmp_path / "model.joblib")


def test_a_skops_model_loads_without_unpickling(tmp_path: Path) -> None:
    models.write_skops(tmp_path, models.iris_model())

    model = load_model(tmp_path / "model.skops")

    assert model.predict(models.IRIS_FEATURES[:1]).tolist() == [0]


def test_a_skops_model_with_an_untrusted_type_is_refused_naming_it(tmp_path: Path) -> None:
    models.write_skops(tmp_path, models.untrusted_skops_model())

    with pytest.raises(
        ModelLoadError, match=r"types skops does not trust: _operator\.neg; .*INFERENCE_SKOPS"
    ):
        load_model(tmp_path / "model.skops")


def test_a_type_listed_as_trusted_is_loaded(tmp_path: Path) -> None:
    models.write_skops(tmp_path, models.untrusted_skops_model())

    model = load_model(
        tmp_path / "model.skops", ServerConfig(workers=1, skops_trusted_types=("_operator.neg",))
    )

    assert model.predict(models.IRIS_FEATURES[:1]).shape == (1,)


def test_predict_proba_is_required_when_chosen(tmp_path: Path) -> None:
    models.write_regressor(tmp_path)

    with pytest.raises(ModelLoadError, match="LinearRegression, which has no predict_proba method"):
        load_model(tmp_path / "model.joblib", ServerConfig(workers=1, predict_method="predict_proba"))


def test_a_different_scikit_learn_version_is_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models.write_joblib(tmp_path, models.iris_model(), metadata={"sklearn_version": "1.0.2"})

    with caplog.at_level(logging.WARNING, logger="sklearn_server.model"):
        load_model(tmp_path / "model.joblib")

    (record,) = caplog.records
    assert record.levelno == logging.WARNING
    assert f"trained with scikit-learn 1.0.2 but this server runs scikit-learn {sklearn.__version__}" in (
        record.getMessage()
    )


def test_the_same_scikit_learn_version_logs_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    models.write_joblib(tmp_path, models.iris_model())

    with caplog.at_level(logging.WARNING):
        load_model(tmp_path / "model.joblib")

    assert caplog.records == []


def test_unreadable_metadata_is_a_warning_not_a_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    models.write_joblib(tmp_path, models.iris_model())
    (tmp_path / "model-metadata.json").write_text("{not json")

    with caplog.at_level(logging.WARNING, logger="sklearn_server.model"):
        model = load_model(tmp_path / "model.joblib")

    assert model.n_features == 4
    assert "not valid JSON" in caplog.text


def test_metadata_supplies_the_feature_count_an_estimator_does_not_record(tmp_path: Path) -> None:
    estimator = models.iris_model()
    del estimator.n_features_in_
    models.write_joblib(tmp_path, estimator, metadata={"n_features_in": 4})

    model = load_model(tmp_path / "model.joblib")

    assert model.n_features == 4


def test_a_value_error_from_the_model_is_a_bad_request(tmp_path: Path) -> None:
    models.write_joblib(tmp_path, models.iris_model())
    model = load_model(tmp_path / "model.joblib")

    with pytest.raises(BadRequestError, match="the model rejected the input: Input X contains NaN"):
        model.predict(np.full((1, 4), np.nan))


def test_any_other_exception_from_the_model_is_a_model_failure(tmp_path: Path) -> None:
    models.write_joblib(tmp_path, models.failing_model())
    model = load_model(tmp_path / "model.joblib")

    with pytest.raises(ModelFailedError) as failure:
        model.predict(models.IRIS_FEATURES[:1])

    assert failure.value.message == "model failed"
    assert isinstance(failure.value.__cause__, TypeError)


def test_the_contract_lists_every_model_kinds_files_in_the_order_they_are_looked_for() -> None:
    assert tuple(name for kind in MODEL_KINDS for name in kind.filenames) == MODEL_FILENAMES
