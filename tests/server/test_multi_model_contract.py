"""SageMaker's multi-model contract (SAGEMAKER_MULTI_MODEL=true), run unchanged against every target.

The models directory is laid out as SageMaker lays it out, one ``<name>/model`` directory per model; the
server sees it at its own path (``/opt/ml/models`` in the container), so urls are made per target. Two
models of different kinds are served side by side: the iris LogisticRegression (``model.joblib``, numbers)
and the customers Pipeline fitted on a DataFrame (packed with pack_model()).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import orjson
import pytest

from tests.server import models, user_code_models
from tests.server.conftest import TARGETS
from tests.server.targets import Client, start_multi_model_target

IRIS_ROWS = models.IRIS_FEATURES[[0, 60, 120]]
IRIS_CSV = "\n".join(",".join(str(v) for v in row) for row in IRIS_ROWS).encode()
CUSTOMER_ROWS = models.CUSTOMERS.iloc[[0, 1, 2, 5]].reset_index(drop=True)
CUSTOMER_JSON = orjson.dumps({"dataframe_records": CUSTOMER_ROWS.to_dict(orient="records")})
LIVE_TARGETS = [target for target in TARGETS if target.values[0] != "asgi"]
"""The targets behind a real socket, where a request can run while another waits for its answer."""


@pytest.fixture(scope="session")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<root>/<name>/model`` for every model the suite loads, as SageMaker unpacks them."""
    root = tmp_path_factory.mktemp("models")
    models.write_joblib(root / "iris" / "model", models.iris_model())
    models.write_packed(root / "customers" / "model", models.customer_pipeline())
    models.write_joblib(root / "slow" / "model", models.slow_loading_model(2.0))
    models.write_joblib(root / "sleepy" / "model", models.sleepy_model())
    models.write_joblib(root / "hungry" / "model", models.memory_hungry_model(64))
    models.write_joblib(root / "big" / "model", models.big_file_model(4))
    for name, answer in (("named", "names[int(label)]"), ("doubled", "2 * int(label)")):
        user_code_models.iris_with_code(
            root / name / "model",
            f"""
            import json

            names = ["setosa", "versicolor", "virginica"]

            def output_fn(prediction, accept):
                return json.dumps([{answer} for label in prediction]), "application/json"
            """,
        )
    models.write_xgboost(root / "xgboost" / "model", models.xgboost_booster("multi:softprob"))
    models.write_onnx(root / "onnx" / "model", models.iris_model())
    (root / "empty" / "model").mkdir(parents=True)
    (root / "not-a-directory").write_text("a file")
    return root


@dataclass
class ModelsServer:
    """A server in multi-model mode, and how it sees the models directory."""

    client: Client
    root: Path
    seen_as: str

    def url(self, name: str) -> str:
        """The url SageMaker would send for the model directory ``name`` of the suite."""
        return f"{self.seen_as}/{name}/model"

    def load(self, model_name: str, directory: str) -> httpx.Response:
        body = orjson.dumps({"model_name": model_name, "url": self.url(directory)})
        return self.client.request(
            "POST", "/models", headers={"Content-Type": "application/json"}, content=body
        )

    def invoke(self, model_name: str, body: bytes, content_type: str) -> httpx.Response:
        headers = {"Content-Type": content_type, "Accept": "application/json"}
        return self.client.request("POST", f"/models/{model_name}/invoke", headers=headers, content=body)

    def get(self, path: str) -> httpx.Response:
        return self.client.request("GET", path)


@pytest.fixture(params=TARGETS)
def serve_models(request: pytest.FixtureRequest, models_root: Path, tmp_path: Path) -> Iterator[Any]:
    """``serve_models(env=None)``: a server in multi-model mode for this test only."""
    yield from _serve_models(request.param, models_root, tmp_path)


@pytest.fixture(params=LIVE_TARGETS)
def serve_models_live(request: pytest.FixtureRequest, models_root: Path, tmp_path: Path) -> Iterator[Any]:
    yield from _serve_models(request.param, models_root, tmp_path)


def _serve_models(target: str, models_root: Path, tmp_path: Path) -> Iterator[Any]:
    import contextlib

    with contextlib.ExitStack() as stack:

        def start(env: dict[str, str] | None = None) -> ModelsServer:
            client, seen_as = stack.enter_context(
                start_multi_model_target(target, models_root, env or {}, tmp_path)
            )
            return ModelsServer(client, models_root, seen_as)

        yield start


def error_of(response: httpx.Response) -> str:
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


def iris_labels() -> list[int]:
    labels: list[int] = models.iris_model().predict(IRIS_ROWS).tolist()
    return labels


def customer_labels(models_root: Path) -> list[str]:
    pipeline = joblib.load(models_root / "customers" / "model" / "model.joblib")
    labels: list[str] = pipeline.predict(CUSTOMER_ROWS).tolist()
    return labels


# --- health and routes --------------------------------------------------------------------------------------


def test_ping_is_healthy_with_no_model_loaded(serve_models: Any) -> None:
    server = serve_models()

    assert server.get("/ping").status_code == 200
    assert server.get("/models").json() == {"models": []}


def test_invocations_without_a_target_model_is_a_400_naming_the_route(serve_models: Any) -> None:
    server = serve_models()
    assert server.load("iris", "iris").status_code == 200

    response = server.client.request(
        "POST", "/invocations", headers={"Content-Type": "text/csv"}, content=IRIS_CSV
    )

    assert response.status_code == 400
    assert "/models/{model_name}/invoke" in error_of(response)


# --- loading, listing, invoking -----------------------------------------------------------------------------


def test_two_models_of_different_kinds_each_answer_their_own_predictions(
    serve_models: Any, models_root: Path
) -> None:
    server = serve_models()

    assert server.load("iris", "iris").status_code == 200
    assert server.load("customers", "customers").status_code == 200
    iris = server.invoke("iris", IRIS_CSV, "text/csv")
    customers = server.invoke("customers", CUSTOMER_JSON, "application/json")

    assert (iris.status_code, iris.json()) == (200, iris_labels())
    assert (customers.status_code, customers.json()) == (200, customer_labels(models_root))


def test_framework_models_load_beside_each_other_with_the_single_model_loaders(serve_models: Any) -> None:
    import onnxruntime
    import xgboost

    server = serve_models()

    assert server.load("xgboost", "xgboost").status_code == 200
    assert server.load("onnx", "onnx").status_code == 200
    boosted = server.invoke("xgboost", IRIS_CSV, "text/csv")
    exported = server.invoke("onnx", IRIS_CSV, "text/csv")

    booster = models.xgboost_booster("multi:softprob")
    np.testing.assert_allclose(boosted.json(), booster.predict(xgboost.DMatrix(IRIS_ROWS)), rtol=1e-6)
    session = onnxruntime.InferenceSession(
        models.onnx_export(models.iris_model()), providers=["CPUExecutionProvider"]
    )
    labels = session.run(None, {session.get_inputs()[0].name: IRIS_ROWS.astype(np.float32)})[0]
    assert exported.json() == labels.tolist()
    assert server.get("/models/xgboost").json()["modelKind"] == "XGBoost Booster (multi:softprob)"


def test_two_models_with_their_own_inference_code_each_run_their_own_script(serve_models: Any) -> None:
    server = serve_models()

    assert server.load("named", "named").status_code == 200
    assert server.load("doubled", "doubled").status_code == 200
    named = server.invoke("named", IRIS_CSV, "text/csv")
    doubled = server.invoke("doubled", IRIS_CSV, "text/csv")

    assert named.json() == [str(models.IRIS_NAMES[label]) for label in iris_labels()]
    assert doubled.json() == [2 * label for label in iris_labels()]


def test_the_list_names_each_model_and_its_url_in_name_order(serve_models: Any) -> None:
    server = serve_models()
    for name in ("c", "a", "b"):
        assert server.load(name, "iris").status_code == 200

    listed = server.get("/models").json()

    assert listed == {"models": [{"modelName": name, "modelUrl": server.url("iris")} for name in "abc"]}


def test_the_list_pages_with_limit_and_next_page_token(serve_models: Any) -> None:
    server = serve_models()
    for name in ("a", "b", "c"):
        assert server.load(name, "iris").status_code == 200

    first = server.get("/models?limit=2").json()
    second = server.get(f"/models?limit=2&next_page_token={first['nextPageToken']}").json()

    assert [model["modelName"] for model in first["models"]] == ["a", "b"]
    assert [model["modelName"] for model in second["models"]] == ["c"]
    assert "nextPageToken" not in second


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("limit=0", "limit"),
        ("limit=two", "limit"),
        ("limit=%C2%B2", "limit"),  # a superscript two: a digit to str.isdigit, not a number
        ("next_page_token=-1", "next_page_token"),
    ],
)
def test_a_bad_page_request_is_a_400_naming_the_parameter(serve_models: Any, query: str, named: str) -> None:
    response = serve_models().get(f"/models?{query}")

    assert response.status_code == 400
    assert error_of(response).startswith(named)


def test_a_limit_over_a_hundred_counts_as_a_hundred_as_in_multi_model_server(serve_models: Any) -> None:
    server = serve_models()
    assert server.load("iris", "iris").status_code == 200

    response = server.get("/models?limit=1000")

    assert response.json() == {"models": [{"modelName": "iris", "modelUrl": server.url("iris")}]}


def test_get_describes_a_loaded_model_with_the_memory_it_holds(serve_models: Any) -> None:
    server = serve_models()
    assert server.load("customers", "customers").status_code == 200

    described = server.get("/models/customers").json()

    assert described["modelName"] == "customers"
    assert described["modelUrl"] == server.url("customers")
    assert described["modelKind"] == "scikit-learn Pipeline on a DataFrame"
    model_file = server.root / "customers" / "model" / "model.joblib"
    assert described["memoryUsage"] >= model_file.stat().st_size


def test_loading_a_loaded_name_again_is_a_409(serve_models: Any) -> None:
    server = serve_models()
    assert server.load("iris", "iris").status_code == 200

    again = server.load("iris", "customers")

    assert again.status_code == 409
    assert "already loaded" in error_of(again)
    assert server.invoke("iris", IRIS_CSV, "text/csv").json() == iris_labels()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/models/nothing"), ("DELETE", "/models/nothing"), ("POST", "/models/nothing/invoke")],
)
def test_an_unknown_model_is_a_404(serve_models: Any, method: str, path: str) -> None:
    response = serve_models().client.request(method, path, content=IRIS_CSV if method == "POST" else None)

    assert response.status_code == 404
    assert "'nothing' is not loaded" in error_of(response)


def test_unloading_one_model_leaves_the_other_answering(serve_models: Any, models_root: Path) -> None:
    server = serve_models()
    assert server.load("iris", "iris").status_code == 200
    assert server.load("customers", "customers").status_code == 200

    unloaded = server.client.request("DELETE", "/models/iris")

    assert unloaded.status_code == 200
    assert server.invoke("iris", IRIS_CSV, "text/csv").status_code == 404
    assert server.get("/models/iris").status_code == 404
    assert [model["modelName"] for model in server.get("/models").json()["models"]] == ["customers"]
    assert server.invoke("customers", CUSTOMER_JSON, "application/json").json() == customer_labels(
        models_root
    )
    assert server.load("iris", "iris").status_code == 200  # and it can come back


# --- memory -------------------------------------------------------------------------------------------------


def test_a_model_whose_files_exceed_the_memory_budget_is_a_507_before_loading(serve_models: Any) -> None:
    server = serve_models({"INFERENCE_MULTI_MODEL_MEMORY_MB": "2"})

    response = server.load("big", "big")

    assert response.status_code == 507
    assert "INFERENCE_MULTI_MODEL_MEMORY_MB=2" in error_of(response)
    assert server.get("/models").json() == {"models": []}


def test_a_model_that_grows_past_the_memory_budget_once_loaded_is_a_507_and_unloaded(
    serve_models: Any,
) -> None:
    server = serve_models(
        {"INFERENCE_MULTI_MODEL_MEMORY_MB": "32"}
    )  # its file is tiny; in memory it is 64 MiB

    response = server.load("hungry", "hungry")

    assert response.status_code == 507
    assert "it took" in error_of(response)
    assert server.get("/models/hungry").status_code == 404
    assert server.load("iris", "iris").status_code == 200  # the refused model holds none of the budget


# --- bad requests -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"not json", "JSON object"),
        (b'["iris", "/opt/ml/models/iris/model"]', "JSON object"),
        (b'{"url": "/opt/ml/models/iris/model"}', '"model_name"'),
        (b'{"model_name": "iris"}', '"url"'),
        (b'{"model_name": 7, "url": "/opt/ml/models/iris/model"}', "model_name must be a string"),
        (b'{"model_name": "a/b", "url": "/opt/ml/models/iris/model"}', "model_name"),
        (b'{"model_name": "iris", "url": ""}', "url"),
        (b'{"model_name": "iris", "url": ["/opt/ml/models/iris/model"]}', "url"),
    ],
)
def test_a_bad_load_body_is_a_400_naming_the_field(serve_models: Any, body: bytes, named: str) -> None:
    response = serve_models().client.request(
        "POST", "/models", headers={"Content-Type": "application/json"}, content=body
    )

    assert response.status_code == 400
    assert named in error_of(response)


def test_a_url_that_does_not_exist_is_a_404(serve_models: Any) -> None:
    response = serve_models().load("ghost", "ghost")

    assert response.status_code == 404
    assert "does not exist" in error_of(response)


@pytest.mark.parametrize(
    ("directory", "named"),
    [("empty", "no model file"), ("not-a-directory", "not a directory")],
)
def test_a_url_without_a_model_is_a_400_saying_why(serve_models: Any, directory: str, named: str) -> None:
    server = serve_models()
    url = f"{server.seen_as}/{directory}" + ("/model" if directory == "empty" else "")
    response = server.client.request("POST", "/models", content=orjson.dumps({"model_name": "x", "url": url}))

    assert response.status_code == 400
    assert named in error_of(response)


def test_a_url_outside_the_models_directory_is_a_400(serve_models: Any) -> None:
    response = serve_models().client.request(
        "POST", "/models", content=orjson.dumps({"model_name": "etc", "url": "/etc"})
    )

    assert response.status_code == 400
    assert "outside" in error_of(response)


# --- concurrency (real sockets: one request runs while another waits) --------------------------------------


def test_a_model_still_loading_is_a_503_to_invoke_and_a_409_to_load_again(serve_models_live: Any) -> None:
    server = serve_models_live()
    loading = _load_in_background(server, "slow", "slow")
    _wait_until_loading(server, "slow")

    invoke = server.invoke("slow", IRIS_CSV, "text/csv")
    again = server.load("slow", "slow")
    loading.join(30)

    assert invoke.status_code == 503
    assert "still loading" in error_of(invoke)
    assert again.status_code == 409
    assert loading.result is not None
    assert loading.result.status_code == 200
    assert server.invoke("slow", IRIS_CSV, "text/csv").status_code == 200


def test_loading_a_model_does_not_hold_up_the_others(serve_models_live: Any) -> None:
    server = serve_models_live()
    assert server.load("iris", "iris").status_code == 200
    loading = _load_in_background(server, "slow", "slow")
    _wait_until_loading(server, "slow")

    started = time.monotonic()
    answers = [server.invoke("iris", IRIS_CSV, "text/csv") for _ in range(5)]
    elapsed = time.monotonic() - started
    still_loading = loading.is_alive()
    loading.join(30)

    assert [answer.json() for answer in answers] == [iris_labels()] * 5
    assert still_loading  # the answers came while the 2 s load went on
    assert elapsed < 1.5


def test_unloading_waits_for_the_invocations_in_flight(serve_models_live: Any) -> None:
    server = serve_models_live()
    assert server.load("sleepy", "sleepy").status_code == 200
    invoking = _Background(server, "POST", "/models/sleepy/invoke", b"1,0,0,0", "text/csv")  # 1 s
    _wait_until(lambda: server.get("/models/sleepy").json()["invocationsInFlight"] == 1)

    started = time.monotonic()
    unloaded = server.client.request("DELETE", "/models/sleepy")
    waited = time.monotonic() - started
    invoking.join(30)

    assert unloaded.status_code == 200
    assert invoking.result is not None
    assert (invoking.result.status_code, invoking.result.json()) == (200, [1])
    assert waited > 0.2
    assert server.get("/models/sleepy").status_code == 404


class _Background(threading.Thread):
    """One request on its own connection and thread; ``result`` once it is answered."""

    def __init__(self, server: ModelsServer, method: str, path: str, body: bytes, content_type: str) -> None:
        super().__init__(daemon=True)
        self.base_url = server.client.base_url
        self.request = (method, path, body, content_type)
        self.result: httpx.Response | None = None
        self.start()

    def run(self) -> None:
        method, path, body, content_type = self.request
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            self.result = client.request(method, path, content=body, headers={"Content-Type": content_type})


def _load_in_background(server: ModelsServer, name: str, directory: str) -> _Background:
    body = orjson.dumps({"model_name": name, "url": server.url(directory)})
    return _Background(server, "POST", "/models", body, "application/json")


def _wait_until(condition: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {timeout:g} s")
        time.sleep(0.02)


def _wait_until_loading(server: ModelsServer, name: str) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        response = server.get(f"/models/{name}")
        if response.status_code == 404 and "still loading" in error_of(response):
            return
        time.sleep(0.02)
    pytest.fail(f"model {name!r} never reported that it was loading")
