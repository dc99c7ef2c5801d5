"""Fuzzing bodies, content types and headers: no 5xx (but the injected model failure), JSON errors only.

Most examples run against the app in this process (fast); a smaller number go over a real socket to the real
entrypoint, where the server's own HTTP layer sits in front of the app. Framing headers (Content-Length,
Transfer-Encoding, Host, Connection, Expect) are left to the HTTP client: a request whose framing is broken
never reaches the app; test_hostile.py covers what the HTTP layer answers to those.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import timedelta

import httpx
import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn_server.config import CONTENT_TYPES, INPUT_ONLY_CONTENT_TYPES

from tests.server import models
from tests.server.targets import AsgiClient, Client, HttpClient, asgi_app, serve_process, wait_until_ready

Request = tuple[str, str, dict[str, str], bytes]
"""method, path, headers, body"""

FRAMING_HEADERS = {"content-length", "transfer-encoding", "host", "connection", "expect", "upgrade", "te"}
SUPPORTED = [*CONTENT_TYPES, *INPUT_ONLY_CONTENT_TYPES]

# What an HTTP client can send at all: printable ASCII, no surrounding blanks.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60).map(str.strip)
header_names = st.text(
    st.sampled_from("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"),
    min_size=1,
    max_size=20,
).filter(lambda name: name.lower() not in FRAMING_HEADERS | {"content-type", "accept"})

content_types = st.one_of(
    st.sampled_from(
        [*SUPPORTED, "TEXT/CSV; charset=utf-8", "application/json;charset=latin-1", "text/plain"]
    ),
    header_text,
)
accepts = st.one_of(
    st.none(),
    st.sampled_from(
        ["*/*", "text/*", "text/csv;q=0.1, application/x-npy", "application/json;q=0", "image/png"]
    ),
    header_text,
)
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-(2**70), 2**70))
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=10)),
    lambda children: st.one_of(
        st.lists(children, max_size=6),
        st.dictionaries(st.sampled_from(["instances", "x"]), children, max_size=2),
    ),
    max_leaves=40,
)


def json_body(value: object) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # integers beyond 64 bits
        return repr(value).encode()


def npy_body(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


npy_arrays = hnp.arrays(
    dtype=st.one_of(
        hnp.integer_dtypes(), hnp.floating_dtypes(), hnp.boolean_dtypes(), hnp.unicode_string_dtypes()
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
)
csv_cells = st.one_of(numbers.map(str), st.sampled_from(["", " ", "nan", "inf", "x", '"1"', "1e999"]))
csv_bodies = st.lists(st.lists(csv_cells, min_size=1, max_size=6), min_size=0, max_size=8).map(
    lambda rows: "\n".join(",".join(row) for row in rows).encode()
)


def npz_body(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


npz_members = st.dictionaries(
    st.sampled_from(["instances", "x", "format", "shape", "data", "indices", "indptr", "row", "col"]),
    st.one_of(
        npy_arrays, st.sampled_from([np.array("csr"), np.array("coo"), np.array([2, 4]), np.array([-1, 4])])
    ),
    max_size=6,
)
bodies = st.one_of(
    st.binary(max_size=300),
    csv_bodies,
    json_values.map(json_body),
    json_values.map(lambda value: b"\n".join(json_body(value) for _ in range(2))),
    npy_arrays.map(npy_body),
    npy_arrays.map(npy_body).map(lambda data: data[: len(data) // 2]),
    npz_members.map(npz_body),
    npz_members.map(npz_body).map(lambda data: data[: len(data) // 2]),
)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    method, path = draw(
        st.one_of(
            st.just(("POST", "/invocations")),
            st.just(("POST", "/invocations")),
            st.just(("POST", "/invocations")),
            st.sampled_from([("GET", "/ping"), ("GET", "/execution-parameters"), ("PUT", "/invocations")]),
            st.tuples(
                st.sampled_from(["GET", "POST", "DELETE"]), st.text("abc/-._~", max_size=12).map("/{}".format)
            ),
        )
    )
    headers = draw(st.dictionaries(header_names, header_text, max_size=4))
    if draw(st.integers(0, 9)):  # mostly present, mostly supported
        headers["Content-Type"] = draw(
            st.one_of(st.sampled_from(SUPPORTED), st.sampled_from(SUPPORTED), content_types)
        )
    accept = draw(accepts)
    if accept is not None:
        headers["Accept"] = accept
    if draw(st.booleans()):
        headers["X-Amzn-SageMaker-Custom-Attributes"] = draw(
            st.one_of(header_text, st.integers(1000, 1100).map(lambda n: "a" * n))
        )
    return method, path, headers, draw(bodies)


def check(response: httpx.Response, *, model_may_fail: bool = False) -> None:
    """The invariants every response keeps, whatever was sent."""
    if response.status_code == 500 and model_may_fail:
        assert response.json() == {"error": "model failed"}
        return
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json"
        body = response.json()
        assert isinstance(body["error"], str)
        assert "Traceback" not in body["error"]
    elif response.request.url.path == "/invocations":
        assert response.headers["content-type"] in CONTENT_TYPES


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsgiClient]:
    client = AsgiClient(
        asgi_app(models.write_joblib(tmp_path_factory.mktemp("iris"), models.iris_model()), {})
    )
    yield client
    client.close()


@pytest.fixture(scope="module")
def failing_in_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AsgiClient]:
    model_dir = models.write_joblib(tmp_path_factory.mktemp("failing"), models.failing_model())
    client = AsgiClient(asgi_app(model_dir, {}))
    yield client
    client.close()


@pytest.fixture(scope="module")
def over_http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpClient]:
    model_dir = models.write_joblib(tmp_path_factory.mktemp("iris"), models.iris_model())
    logs = tmp_path_factory.mktemp("logs")
    with serve_process(model_dir, {}, logs) as served, HttpClient("process", served.base_url) as client:
        wait_until_ready(client, served)
        yield client


def send(client: Client, call: Request) -> httpx.Response:
    method, path, headers, body = call
    return client.request(method, path, headers=headers, content=body)


FUZZ = settings(
    deadline=timedelta(seconds=2),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# numpy warns (overflow in the model's matmul) on extreme values; only tests turn warnings into errors.
@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(FUZZ, max_examples=400)
@given(call=requests())
def test_the_app_answers_anything_without_a_5xx(in_process: AsgiClient, call: Request) -> None:
    check(send(in_process, call))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(FUZZ, max_examples=100)
@given(call=requests())
def test_a_failing_model_gives_only_its_own_500(failing_in_process: AsgiClient, call: Request) -> None:
    check(send(failing_in_process, call), model_may_fail=True)


@settings(FUZZ, max_examples=60)
@given(call=requests())
def test_the_real_server_answers_anything_without_a_5xx(over_http: HttpClient, call: Request) -> None:
    check(send(over_http, call))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@settings(FUZZ, max_examples=60)
@given(body=bodies, content_type=st.sampled_from(SUPPORTED))
def test_every_supported_type_refuses_garbage_with_a_400_or_answers(
    in_process: AsgiClient, body: bytes, content_type: str
) -> None:
    response = in_process.request(
        "POST", "/invocations", headers={"Content-Type": content_type}, content=body
    )

    assert response.status_code in (200, 400)
    check(response)


def test_the_fuzzed_app_serves_a_valid_request(in_process: AsgiClient) -> None:
    response = in_process.request(
        "POST", "/invocations", headers={"Content-Type": "text/csv"}, content=b"1,2,3,4"
    )

    assert response.status_code == 200
