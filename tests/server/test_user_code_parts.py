"""The pure parts of user inference code: finding the script, reading what hooks return, mapping their
errors, joining batch-safe inputs, and explaining a failed pip install."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse
from sklearn_server.aws_compat.sagemaker_containers.beta.framework import worker
from sklearn_server.aws_compat.sagemaker_inference import errors as toolkit_errors
from sklearn_server.config import ServerConfig
from sklearn_server.errors import BadRequestError, ModelFailedError, ModelLoadError
from sklearn_server.loaders import user_code
from sklearn_server.user_requirements import explain_pip_failure

from tests.server.user_code_models import write_code


def config(model_dir: Path, **overrides: str) -> ServerConfig:
    return ServerConfig(workers=1, model_dir=model_dir, **overrides)  # type: ignore[arg-type]


# --- finding the script -------------------------------------------------------------------------------------


def test_the_script_is_code_inference_py_by_default(tmp_path: Path) -> None:
    write_code(tmp_path, "")

    assert user_code.find_script(config(tmp_path)) == tmp_path / "code" / "inference.py"


def test_without_code_there_is_no_script(tmp_path: Path) -> None:
    assert user_code.find_script(config(tmp_path)) is None


def test_sagemaker_program_may_be_a_module_name(tmp_path: Path) -> None:
    write_code(tmp_path, "", name="serve_me.py")

    assert user_code.find_script(config(tmp_path, program="serve_me")) == tmp_path / "code" / "serve_me.py"


def test_sagemaker_program_must_be_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"SAGEMAKER_PROGRAM='\.\./x\.py' must be a file name"):
        user_code.find_script(config(tmp_path, program="../x.py"))


def test_a_submit_directory_that_is_not_there_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"SAGEMAKER_SUBMIT_DIRECTORY=.* is not a directory"):
        user_code.find_script(config(tmp_path, submit_directory=str(tmp_path / "absent")))


def test_a_hook_that_needs_a_context_is_refused_at_load(tmp_path: Path) -> None:
    script = write_code(tmp_path / "a", "def input_fn(body, content_type, context):\n    return body\n")
    with pytest.raises(ModelLoadError, match=r"input_fn\(body, content_type, context\) cannot be called as"):
        user_code.load(script / "code" / "inference.py", config(script))


# --- what output_fn returns ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "expected"),
    [
        (b"raw", (b"raw", "text/plain")),
        ("text", (b"text", "text/plain")),
        (bytearray(b"raw"), (b"raw", "text/plain")),
        (("1,2", "text/csv"), (b"1,2", "text/csv")),
        (worker.Response("[1]", "ignored", mimetype="application/json"), (b"[1]", "application/json")),
        (worker.Response(b"[1]"), (b"[1]", "application/json")),
    ],
)
def test_output_fn_may_return_bytes_text_a_pair_or_a_response(
    returned: object, expected: tuple[bytes, str]
) -> None:
    assert user_code.response_of(returned, "text/plain", "output_fn") == expected


def test_a_response_with_an_error_status_is_answered_with_it() -> None:
    with pytest.raises(Exception, match="nope") as raised:
        user_code.response_of(worker.Response("nope", status=409), "text/plain", "output_fn")

    assert getattr(raised.value, "status", None) == 409


def test_output_fn_returning_a_dict_is_a_500_naming_what_to_return() -> None:
    with pytest.raises(ModelFailedError) as raised:
        user_code.response_of({"a": 1}, "application/json", "output_fn")

    assert "output_fn returned a dict; return bytes, str, (body, content_type)" in str(raised.value.__cause__)


# --- errors from hooks --------------------------------------------------------------------------------------


def test_the_toolkits_error_is_answered_with_its_status_and_message() -> None:
    answer = user_code._answer_for(
        toolkit_errors.GenericInferenceToolkitError(418, "teapot"), "input_fn", BadRequestError
    )

    assert (answer.status, answer.message) == (418, "teapot")


@pytest.mark.parametrize("status", [200, 302, 600, True, "404"])
def test_a_status_code_outside_400_to_599_is_a_plain_500(status: object) -> None:
    error = Exception("x")
    error.status_code = status  # type: ignore[attr-defined]

    assert isinstance(user_code._answer_for(error, "predict_fn", BadRequestError), ModelFailedError)


def test_an_unsupported_format_error_is_the_stages_status() -> None:
    error = toolkit_errors.UnsupportedFormatError("text/html")

    assert user_code._answer_for(error, "input_fn", BadRequestError).status == 400


# --- joining batch-safe inputs ------------------------------------------------------------------------------


def test_arrays_dataframes_and_sparse_matrices_join_by_rows() -> None:
    assert user_code.join_inputs([np.ones((1, 2)), np.zeros((2, 2))]).shape == (3, 2)
    frames = [pd.DataFrame({"a": [1]}), pd.DataFrame({"a": [2, 3]})]
    assert user_code.join_inputs(frames)["a"].tolist() == [1, 2, 3]
    sparse = [scipy.sparse.csr_matrix(np.eye(2)), scipy.sparse.csr_matrix(np.eye(2))]
    assert user_code.join_inputs(sparse).shape == (4, 2)


def test_inputs_of_another_kind_do_not_join() -> None:
    with pytest.raises(TypeError, match="cannot join inputs of type list"):
        user_code.join_inputs([[1], [2]])


# --- pip's failures, explained ------------------------------------------------------------------------------


def test_no_network_is_explained_as_such() -> None:
    output = "WARNING: Retrying ... Failed to establish a new connection: [Errno -3] Temporary failure"

    assert "the package index is unreachable: this container has no network" in explain_pip_failure(output)


def test_a_conflict_with_the_image_is_explained_as_such() -> None:
    output = "ERROR: Cannot install numpy==1.0 because these package versions have conflicting dependencies."

    assert "conflicts with a package the server itself runs on" in explain_pip_failure(output)
