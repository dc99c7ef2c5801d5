"""User inference code (``code/inference.py``), on every target: the hooks, AWS's scripts unchanged, batching,
errors, code/requirements.txt, SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY.

Most behaviours run in-process and as a process (``serve_local``); the ones a container changes (imports
from a read-only mount, pip in the image, a read-only root) also run in the real container (``serve_model``).
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.server import container_target, models
from tests.server.live import live_server
from tests.server.targets import SERVE, Call, Client, ServeModel, server_environment, start_target
from tests.server.user_code_models import aws_test_resource_model, iris_with_code, wheel, write_code

JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
IRIS_ROW = "5.1,3.5,1.4,0.2"
FAIL_FAST_S = 60.0
"""Bound on how long a server with broken user code may take to exit (a bound, not a measurement)."""


@pytest.fixture(params=["asgi", "process"])
def serve_local(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServeModel]:
    """Like ``serve_model``, without the container: for behaviours the container does not change."""
    with contextlib.ExitStack() as stack:

        def start(model_dir: Path, env: dict[str, str] | None = None) -> Client:
            return stack.enter_context(start_target(request.param, model_dir, env or {}, tmp_path))

        yield start


def run_serve(
    model_dir: Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real entrypoint with ``model_dir``; returns once it exits (bounded by FAIL_FAST_S)."""
    return subprocess.run(
        [sys.executable, str(SERVE), "serve"],
        env=server_environment(model_dir, env or {}),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=FAIL_FAST_S,
        check=False,
    )


# --- AWS's scripts, unchanged -------------------------------------------------------------------------------

SDK_STYLE_SCRIPT = """
# Written exactly in the style of the SageMaker Python SDK's guide to AWS's scikit-learn container
# (aws/sagemaker-python-sdk, doc/frameworks/sklearn/using_sklearn.rst, "Deploy a Scikit-learn model"):
# the four hooks, with the sagemaker_containers encoders and worker.Response that container ships.
import os

import joblib
from sagemaker_containers.beta.framework import encoders, worker


def model_fn(model_dir):
    clf = joblib.load(os.path.join(model_dir, "model.joblib"))
    return clf


def input_fn(request_body, request_content_type):
    if request_content_type == "application/json":
        return encoders.decode(request_body, request_content_type)
    raise ValueError("This model only supports application/json input")


def predict_fn(input_data, model):
    return model.predict_proba(input_data)


def output_fn(prediction, content_type):
    return worker.Response(encoders.encode(prediction, content_type), content_type, mimetype=content_type)
"""


def test_an_inference_py_written_for_aws_sklearn_container_runs_unchanged(
    serve_model: ServeModel, tmp_path: Path
) -> None:
    server = serve_model(iris_with_code(tmp_path / "model", SDK_STYLE_SCRIPT))

    response = server.request(
        "POST", "/invocations", headers={**JSON, "Accept": "text/csv"}, content=f"[[{IRIS_ROW}]]"
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv"
    probabilities = [float(value) for value in response.text.strip().split(",")]
    assert len(probabilities) == 3
    assert probabilities.index(max(probabilities)) == 0  # setosa


# aws/sagemaker-scikit-learn-container, test/resources/module/user_code.tar.gz (script.py), verbatim
# (Apache-2.0): a training script that also defines model_fn, loading a pickle named "sklearn-model".
AWS_TEST_RESOURCE_SCRIPT = """\
import argparse
import os
import glob
import pickle

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestRegressor

# inference functions ---------------
def model_fn(model_dir):
    print('loading sklearn-model from: {}'.format(model_dir))
    _loaded_model = pickle.load(open(os.path.join(model_dir, 'sklearn-model'), 'rb'))
    #_loaded_model = joblib.load(os.path.join(model_dir, 'model.joblib'))
    return _loaded_model


if __name__ =='__main__':

    print('extracting arguments')
    parser = argparse.ArgumentParser()
    parser.add_argument('--n-estimators', type=int, default=10)
    args, _ = parser.parse_known_args()
    model = RandomForestRegressor(n_estimators=args.n_estimators, n_jobs=-1)
"""


# AWS's script never closes the pickle it opens; in-process that is an (unraisable) ResourceWarning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_aws_own_test_script_named_by_sagemaker_program_runs_unchanged(
    serve_model: ServeModel, tmp_path: Path
) -> None:
    model_dir = write_code(
        aws_test_resource_model(tmp_path / "model"), AWS_TEST_RESOURCE_SCRIPT, name="script.py"
    )
    server = serve_model(model_dir, {"SAGEMAKER_PROGRAM": "script.py"})

    response = server.request("POST", "/invocations", headers=CSV, content=f"{IRIS_ROW}\n6.7,3.0,5.2,2.3")

    assert response.status_code == 200, response.text
    first, second = response.json()
    assert first < 0.5 < 1.5 < second  # a regressor fitted on labels 0..2: setosa low, virginica high


# --- each hook alone ----------------------------------------------------------------------------------------


def test_input_fn_alone_receives_json_as_text_and_feeds_the_built_in_model(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    source = """
    import json
    import numpy as np

    def input_fn(body, content_type):
        assert isinstance(body, str) and content_type == "application/json", (type(body), content_type)
        return np.array([json.loads(body)["measurements"]], dtype=float)
    """
    server = serve_local(iris_with_code(tmp_path / "model", source))

    response = server.request(
        "POST", "/invocations", headers=JSON, content=json.dumps({"measurements": [5.1, 3.5, 1.4, 0.2]})
    )

    assert response.status_code == 200, response.text
    assert response.json() == [0]


def test_input_fn_receives_bytes_for_any_other_content_type(serve_local: ServeModel, tmp_path: Path) -> None:
    source = """
    import numpy as np

    def input_fn(body, content_type):
        assert isinstance(body, bytes), type(body)
        assert content_type == "application/octet-stream", content_type
        return np.frombuffer(body, dtype="<f8").reshape(1, -1)
    """
    server = serve_local(iris_with_code(tmp_path / "model", source))

    body = np.array([6.7, 3.0, 5.2, 2.3], dtype="<f8").tobytes()
    response = server.request(
        "POST", "/invocations", headers={"Content-Type": "application/octet-stream"}, content=body
    )

    assert response.status_code == 200, response.text
    assert response.json() == [2]


def test_predict_fn_alone_receives_the_fitted_estimator_of_the_model_file(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    source = """
    def predict_fn(data, model):
        return [f"{type(model).__name__}:{label}" for label in model.predict(data)]
    """
    server = serve_local(iris_with_code(tmp_path / "model", source))

    response = server.request("POST", "/invocations", headers=CSV, content=IRIS_ROW)

    assert response.status_code == 200, response.text
    assert response.json() == ["LogisticRegression:0"]


def test_output_fn_alone_answers_with_what_it_returns_as_the_accepted_type(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    source = """
    def output_fn(prediction, accept):
        return f"{accept} says {prediction[0]}"
    """
    server = serve_local(iris_with_code(tmp_path / "model", source))

    response = server.request(
        "POST", "/invocations", headers={**CSV, "Accept": "text/plain, */*"}, content=IRIS_ROW
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain"
    assert response.text == "text/plain says 0"


def test_output_fn_may_return_body_and_content_type(serve_local: ServeModel, tmp_path: Path) -> None:
    source = """
    def output_fn(prediction, accept):
        return b"<label>" + str(prediction[0]).encode() + b"</label>", "application/xml"
    """
    server = serve_local(iris_with_code(tmp_path / "model", source))

    response = server.request("POST", "/invocations", headers=CSV, content=IRIS_ROW)

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/xml"
    assert response.text == "<label>0</label>"


def test_model_fn_alone_needs_no_model_file(serve_local: ServeModel, tmp_path: Path) -> None:
    source = """
    import json, os
    import numpy as np

    class Threshold:
        def __init__(self, cut):
            self.cut = cut

        def predict(self, rows):
            return (rows[:, 2] > self.cut).astype(int)

    def model_fn(model_dir):
        with open(os.path.join(model_dir, "threshold.json")) as f:
            return Threshold(json.load(f)["petal_length"])
    """
    model_dir = write_code(tmp_path / "model", source)
    (model_dir / "threshold.json").write_text('{"petal_length": 2.5}')
    server = serve_local(model_dir)

    response = server.request("POST", "/invocations", headers=CSV, content=f"{IRIS_ROW}\n6.7,3.0,5.2,2.3")

    assert response.status_code == 200, response.text
    assert response.json() == [0, 1]


def test_all_four_hooks_together_replace_every_stage(serve_local: ServeModel, tmp_path: Path) -> None:
    source = """
    import json
    import numpy as np

    def model_fn(model_dir):
        return {"scale": 10}

    def input_fn(body, content_type):
        return np.array(json.loads(body)["values"], dtype=float)

    def predict_fn(data, model):
        return data * model["scale"]

    def output_fn(prediction, accept):
        return json.dumps({"scaled": prediction.tolist(), "accept": accept}), "application/json"
    """
    server = serve_local(write_code(tmp_path / "model", source))

    response = server.request(
        "POST",
        "/invocations",
        headers={**JSON, "Accept": "application/vnd.custom"},
        content='{"values": [1, 2]}',
    )

    assert response.status_code == 200, response.text
    assert response.json() == {"scaled": [10.0, 20.0], "accept": "application/vnd.custom"}


def test_transform_fn_does_all_the_work_with_the_request_types(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    source = """
    import numpy as np

    def transform_fn(model, body, content_type, accept):
        rows = np.array([[float(v) for v in line.split(",")] for line in body.splitlines()])
        return ",".join(str(label) for label in model.predict(rows)), accept
    """
    server = serve_local(iris_with_code(tmp_path / "model", source))

    response = server.request(
        "POST", "/invocations", headers={**CSV, "Accept": "text/csv"}, content=f"{IRIS_ROW}\n6.7,3.0,5.2,2.3"
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv"
    assert response.text == "0,2"


def test_code_lib_is_on_the_import_path(serve_local: ServeModel, tmp_path: Path) -> None:
    model_dir = iris_with_code(
        tmp_path / "model",
        """
        import usercode_labels

        def output_fn(prediction, accept):
            return usercode_labels.NAMES[int(prediction[0])], "text/plain"
        """,
    )
    write_code(
        model_dir,
        'NAMES = ["setosa", "versicolor", "virginica"]\n',
        name="usercode_labels.py",
        code_dir=model_dir / "code" / "lib",
    )
    server = serve_local(model_dir)

    response = server.request("POST", "/invocations", headers=CSV, content=IRIS_ROW)

    assert response.text == "setosa"


def test_sagemaker_submit_directory_names_a_local_code_directory(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    model_dir = models.write_joblib(tmp_path / "model", models.iris_model())
    write_code(
        model_dir,
        "def output_fn(prediction, accept):\n    return 'from elsewhere', 'text/plain'\n",
        name="serve_me.py",
        code_dir=elsewhere,
    )
    server = serve_local(
        model_dir, {"SAGEMAKER_SUBMIT_DIRECTORY": str(elsewhere), "SAGEMAKER_PROGRAM": "serve_me"}
    )

    response = server.request("POST", "/invocations", headers=CSV, content=IRIS_ROW)

    assert response.text == "from elsewhere"


# --- micro-batching -----------------------------------------------------------------------------------------

COUNTING_SCRIPT = """
import time
import numpy as np

{declaration}

def predict_fn(data, model):
    time.sleep(0.3)  # long enough for the other requests to arrive and queue behind this call
    return np.full(len(data), len(data))  # each row answers with the rows its predict_fn call held
"""


def rows_per_call(server: Client, requests: int = 8) -> list[int]:
    """The rows of the predict_fn call that answered each of ``requests`` concurrent 1-row requests."""
    calls = [Call("POST", "/invocations", CSV, IRIS_ROW.encode()) for _ in range(requests)]
    responses = server.request_many(calls)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    return [r.json()[0] for r in responses]


def test_a_batch_safe_predict_fn_is_called_with_concurrent_requests_joined(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    source = COUNTING_SCRIPT.format(declaration="BATCH_SAFE = True")
    server = serve_local(iris_with_code(tmp_path / "model", source))

    assert max(rows_per_call(server)) > 1


def test_predict_fn_is_called_once_per_request_unless_declared_batch_safe(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    source = COUNTING_SCRIPT.format(declaration="")
    server = serve_local(iris_with_code(tmp_path / "model", source))

    assert rows_per_call(server) == [1] * 8


# --- errors -------------------------------------------------------------------------------------------------

FAILING_SCRIPT = """
def predict_fn(data, model):
    raise RuntimeError("the secret table moved")
"""


def test_an_exception_in_user_code_is_a_500_without_its_details(
    serve_local: ServeModel, tmp_path: Path
) -> None:
    server = serve_local(iris_with_code(tmp_path / "model", FAILING_SCRIPT))

    response = server.request("POST", "/invocations", headers=CSV, content=IRIS_ROW)

    assert response.status_code == 500
    assert response.json() == {"error": "predict_fn failed; the server's log has the traceback"}
    assert "secret" not in response.text


def test_the_traceback_of_an_exception_in_user_code_is_logged(tmp_path: Path) -> None:
    model_dir = iris_with_code(tmp_path / "model", FAILING_SCRIPT)
    with live_server("process", model_dir, {}, tmp_path) as server:
        connection = server.connection()
        connection.request("POST", "/invocations", body=IRIS_ROW, headers=CSV)
        assert connection.getresponse().status == 500
        connection.close()
        log = server.log()

    assert "Traceback (most recent call last)" in log
    assert 'inference.py", line 3, in predict_fn' in log
    assert "RuntimeError: the secret table moved" in log


STATUS_SCRIPT = """
from sagemaker_inference import errors
from sklearn_server.errors import BadRequestError


class Busy(Exception):
    status_code = 429


def input_fn(body, content_type):
    if body == "toolkit":
        raise errors.GenericInferenceToolkitError(422, "toolkit says no")
    if body == "own":
        raise Busy("come back later")
    raise BadRequestError("our own 400")
"""


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [("toolkit", 422, "toolkit says no"), ("own", 429, "come back later"), ("other", 400, "our own 400")],
)
def test_an_exception_carrying_an_http_status_is_answered_with_it(
    serve_local: ServeModel, tmp_path: Path, body: str, status: int, message: str
) -> None:
    server = serve_local(iris_with_code(tmp_path / "model", STATUS_SCRIPT))

    response = server.request("POST", "/invocations", headers=CSV, content=body)

    assert response.status_code == status
    assert response.json() == {"error": message}


def test_an_unsupported_accept_in_aws_encoders_is_a_406(serve_local: ServeModel, tmp_path: Path) -> None:
    server = serve_local(iris_with_code(tmp_path / "model", SDK_STYLE_SCRIPT))

    response = server.request(
        "POST", "/invocations", headers={**JSON, "Accept": "text/html"}, content=f"[[{IRIS_ROW}]]"
    )

    assert response.status_code == 406
    assert "Content type text/html is not supported" in response.json()["error"]


# --- start-up errors ----------------------------------------------------------------------------------------


def test_a_syntax_error_stops_the_server_naming_file_and_line(tmp_path: Path) -> None:
    model_dir = iris_with_code(tmp_path / "model", "def model_fn(model_dir)\n    return 1\n")

    completed = run_serve(model_dir, tmp_path)

    assert completed.returncode == 1
    assert f"{model_dir / 'code' / 'inference.py'}:1: syntax error in user code" in completed.stderr


def test_an_import_error_stops_the_server_naming_file_and_line(tmp_path: Path) -> None:
    model_dir = iris_with_code(tmp_path / "model", "import os\nimport not_installed_anywhere\n")

    completed = run_serve(model_dir, tmp_path)

    assert completed.returncode == 1
    assert f"{model_dir / 'code' / 'inference.py'}:2: importing inference.py raised ModuleNotFoundError" in (
        completed.stderr
    )


def test_transform_fn_with_other_hooks_stops_the_server(tmp_path: Path) -> None:
    source = "def transform_fn(m, b, c, a):\n    return b\n\ndef input_fn(b, c):\n    return b\n"
    model_dir = iris_with_code(tmp_path / "model", source)

    completed = run_serve(model_dir, tmp_path)

    assert completed.returncode == 1
    assert "transform_fn cannot be combined with input_fn, predict_fn or output_fn" in completed.stderr


def test_code_without_model_fn_and_without_model_file_stops_the_server(tmp_path: Path) -> None:
    model_dir = write_code(tmp_path / "model", "def output_fn(p, a):\n    return 'x'\n")

    completed = run_serve(model_dir, tmp_path)

    assert completed.returncode == 1
    assert "defines no model_fn, so the built-in model is loaded: no model file in" in completed.stderr


def test_an_s3_submit_directory_stops_the_server_saying_to_pack_the_code(tmp_path: Path) -> None:
    model_dir = models.write_joblib(tmp_path / "model", models.iris_model())

    completed = run_serve(model_dir, tmp_path, {"SAGEMAKER_SUBMIT_DIRECTORY": "s3://bucket/sourcedir.tar.gz"})

    assert completed.returncode == 1
    assert "does not download code from S3; pack it into model.tar.gz under code/" in completed.stderr


def test_a_missing_sagemaker_program_stops_the_server(tmp_path: Path) -> None:
    model_dir = models.write_joblib(tmp_path / "model", models.iris_model())

    completed = run_serve(model_dir, tmp_path, {"SAGEMAKER_PROGRAM": "serve_me.py"})

    assert completed.returncode == 1
    assert f"no user script at {model_dir / 'code' / 'serve_me.py'}" in completed.stderr


# --- code/requirements.txt ----------------------------------------------------------------------------------


def with_requirements(model_dir: Path, requirements: str) -> Path:
    """The iris model, code that imports ``usercode_tinydep``, and ``requirements`` next to its wheel."""
    iris_with_code(
        model_dir,
        """
        import usercode_tinydep

        def output_fn(prediction, accept):
            return usercode_tinydep.GREETING, "text/plain"
        """,
    )
    wheel(model_dir / "code" / "wheels", "usercode_tinydep", "1.0", 'GREETING = "installed at start"\n')
    (model_dir / "code" / "requirements.txt").write_text(requirements)
    return model_dir


def test_code_requirements_are_installed_at_start(serve_model: ServeModel, tmp_path: Path) -> None:
    model_dir = with_requirements(
        tmp_path / "model", "--no-index\n--find-links ./wheels\nusercode_tinydep==1.0\n"
    )
    server = serve_model(model_dir)

    response = server.request("POST", "/invocations", headers=CSV, content=IRIS_ROW)

    assert response.status_code == 200, response.text
    assert response.text == "installed at start"


def test_an_unresolvable_requirement_stops_the_server_saying_so(tmp_path: Path) -> None:
    model_dir = with_requirements(
        tmp_path / "model", "--no-index\n--find-links ./wheels\nusercode_tinydep==2.0\n"
    )

    completed = run_serve(model_dir, tmp_path)

    assert completed.returncode == 1
    assert "cannot install" in completed.stderr
    assert "a requirement cannot be found: No matching distribution found for usercode_tinydep==2.0" in (
        completed.stderr
    )


@pytest.mark.container
def test_requirements_on_a_read_only_root_without_a_writable_tmp_stop_the_container(tmp_path: Path) -> None:
    model_dir = with_requirements(
        tmp_path / "model", "--no-index\n--find-links ./wheels\nusercode_tinydep==1.0\n"
    )
    image = container_target.built_image()
    mount = tmp_path / "mount"
    subprocess.run(["cp", "-r", str(model_dir), str(mount)], check=True)
    subprocess.run(["chmod", "-R", "a+rX", str(tmp_path)], check=True)

    started = container_target.podman(
        "run",
        "--detach",
        "--read-only",
        "--read-only-tmpfs=false",
        "--volume",
        f"{mount}:{container_target.CONTAINER_MODEL_DIR}:ro",
        image,
        "serve",
    )
    container_id = started.stdout.strip()
    try:
        status = int(container_target.podman("wait", container_id, timeout=FAIL_FAST_S).stdout.strip())
        log = container_target.logs(container_id)
    finally:
        container_target.podman("rm", "--force", container_id, check=False)

    assert status == 1, log
    assert "no writable temporary directory" in log
    assert "mount a tmpfs at /tmp" in log
