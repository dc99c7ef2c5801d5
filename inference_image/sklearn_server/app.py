"""HTTP: the raw ASGI app, the only module that knows about status codes, headers and bodies.

Routes: GET /ping (200 once the model is loaded, 503 before), POST /invocations, GET /execution-parameters
(what SageMaker batch transform asks). No web framework: a 1-row prediction costs ~100 us, so every layer
in front of it shows in the throughput, and three routes need no router.

In multi-model mode (SAGEMAKER_MULTI_MODEL=true) /ping is 200 from the start, /invocations is a 400 that
names the route to use, and the ``/models`` routes of ``registry.py`` answer; the registry holds the models.

Every response is JSON ``{"error": ...}`` unless it is a prediction. An ``InferenceError`` becomes its
status; anything else becomes a bare 500 with the traceback in the log, never in the response.

One log line per request (method, path, status, rows, microseconds per stage). 2xx lines are DEBUG: a
formatted line costs ~17 us (measured in-process), some 15% of what a whole 1-row request costs a worker,
so the INFO default pays only an ``isEnabledFor`` check for them. 4xx lines and 503s (the health checks that
arrive while the model loads) are INFO; other 5xx lines are WARNING, with the model's traceback logged
separately at ERROR. Set SAGEMAKER_CONTAINER_LOG_LEVEL=DEBUG to see every request.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar
from urllib.parse import parse_qsl

import orjson

from sklearn_server.batching import Batcher
from sklearn_server.config import (
    CONTENT_TYPES,
    EXECUTION_PARAMETERS_PATH,
    INVOCATIONS_PATH,
    JSON,
    MODELS_PATH,
    PING_PATH,
    ServerConfig,
)
from sklearn_server.errors import (
    BadRequestError,
    InferenceError,
    MethodNotAllowedError,
    ModelFailedError,
    ModelNotReadyError,
    NotAcceptableError,
    NotFoundError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from sklearn_server.logs import printable
from sklearn_server.model import LoadedModel, rows_of
from sklearn_server.registry import DEFAULT_PAGE, ModelRegistry, check_model_name

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

logger = logging.getLogger("sklearn_server.requests")

CUSTOM_ATTRIBUTES_HEADER: Final = b"x-amzn-sagemaker-custom-attributes"
MAX_CUSTOM_ATTRIBUTES_CHARS: Final = 1024
"""SageMaker's limit: up to 1024 visible US-ASCII characters (so characters and bytes are the same)."""
NOT_READY: Final = "the model is not ready; the server's log says why"
"""The one 503 message for every reason a model is not there: the reason (a path, an exception) is logged,
never sent to a client."""
_CACHED_HEADER_BYTES: Final = 64
"""Header values up to this long are parsed once and remembered; longer ones are parsed every time, so the
caches hold only small values whatever clients send."""

_JSON: Final = b"application/json"
_PING_OK: Final = b'{"status":"ok"}'
_INTERNAL_ERROR: Final = b'{"error":"internal server error"}'
_READ_METHODS: Final = ("GET", "HEAD")
_NOT_VISIBLE_ASCII: Final = re.compile(rb"[^\x20-\x7e]")
_ROUTES: Final = f"{PING_PATH}, {INVOCATIONS_PATH}, {EXECUTION_PARAMETERS_PATH}"
_MULTI_MODEL_ROUTES: Final = (
    f"{PING_PATH}, {MODELS_PATH}, {MODELS_PATH}/{{model_name}}, {MODELS_PATH}/{{model_name}}/invoke"
)
_TARGET_MODEL_HEADER: Final = b"x-amzn-sagemaker-target-model"
_MODELS_PREFIX: Final = MODELS_PATH + "/"
_INVOKE_SUFFIX: Final = "/invoke"

OFFLOAD_BYTES: Final = 256 * 1024
"""Bodies this large are decoded on a thread: 256 KB of CSV parse in ~30 ms, 6 MB in ~1 s (measured), too
long to hold the event loop that answers /ping."""
OFFLOAD_VALUES: Final = 50_000
"""Predictions with this many values are encoded on a thread."""

_In = TypeVar("_In")
_Out = TypeVar("_Out")


class _ClientDisconnectedError(Exception):
    """The client went away before its body arrived: there is nobody to answer."""


class InferenceApp:
    """The ASGI callable of one worker.

    /ping answers 503 until ``model_loaded`` is called and ``all_workers_ready()`` says every sibling worker
    has loaded too (one process's 200 must not announce a server whose other workers are still loading).
    A prediction request that reaches a worker still loading waits for the model (up to the request
    timeout) rather than failing: the platform may route traffic on another worker's 200.
    """

    def __init__(
        self,
        config: ServerConfig,
        *,
        all_workers_ready: Callable[[], bool] = lambda: True,
        registry: ModelRegistry | None = None,
    ) -> None:
        self._config = config
        self._registry = registry
        self._all_workers_ready = all_workers_ready
        self._loaded = asyncio.Event()
        self._codec_thread: ThreadPoolExecutor | None = None  # made on first use: after the fork
        self._default_accept = config.default_accept
        self._max_payload = config.max_payload_bytes
        self._model: LoadedModel | None = None
        self._batcher: Batcher | None = None
        self._execution_parameters = orjson.dumps(
            {
                "MaxConcurrentTransforms": config.workers,
                "BatchStrategy": "MULTI_RECORD",
                "MaxPayloadInMB": config.max_payload_mb,
            }
        )

    @property
    def registry(self) -> ModelRegistry | None:
        """The models of multi-model mode; None in single-model mode."""
        return self._registry

    def model_loaded(self, model: LoadedModel) -> None:
        """Start serving predictions from ``model``. Call on the event loop's thread."""
        self._batcher = Batcher(
            model.predict,
            join=model.join,
            max_rows=self._config.max_batch_rows,
            max_wait_ms=self._config.max_batch_wait_ms,
            timeout_s=self._config.timeout_seconds,
        )
        self._model = model
        self._loaded.set()

    def model_failed(self) -> None:
        """Keep /ping at 503 (the reason is in the log); requests waiting for the model get that 503."""
        self._loaded.set()

    def close(self) -> None:
        if self._batcher is not None:
            self._batcher.close()
        if self._registry is not None:
            self._registry.close()
        if self._codec_thread is not None:
            self._codec_thread.shutdown(wait=False, cancel_futures=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off and there are no websockets
            return
        started = time.perf_counter_ns()
        method: str = scope["method"]
        path: str = scope["path"]
        # [rows, read, decode, predict, encode]: filled in by _invoke as it goes, for the log line.
        stages = [0, 0, 0, 0, 0]
        extra: Headers = []
        try:
            if self._registry is not None:
                status, content_type, body = await self._multi_model(scope, receive, extra, stages)
            elif path == INVOCATIONS_PATH:
                if method != "POST":
                    raise MethodNotAllowedError(method, ("POST",))
                status, content_type, body = await self._invoke(scope, receive, extra, stages)
            elif path == PING_PATH:
                if method not in _READ_METHODS:
                    raise MethodNotAllowedError(method, _READ_METHODS)
                if self._model is None:
                    raise ModelNotReadyError(NOT_READY)
                if not self._all_workers_ready():
                    raise ModelNotReadyError(NOT_READY)
                status, content_type, body = 200, _JSON, _PING_OK
            elif path == EXECUTION_PARAMETERS_PATH:
                if method not in _READ_METHODS:
                    raise MethodNotAllowedError(method, _READ_METHODS)
                status, content_type, body = 200, _JSON, self._execution_parameters
            else:
                raise NotFoundError(f"no such path: {_printable(path)}; this server answers {_ROUTES}")
        except InferenceError as error:
            status, content_type, body = error.status, _JSON, orjson.dumps({"error": error.message})
            extra.extend(error.headers)
            if isinstance(error, ModelFailedError):
                logger.error("the model failed on %s %s", method, printable(path), exc_info=error)
        except _ClientDisconnectedError:
            return
        except Exception:
            logger.exception("unexpected error answering %s %s", method, printable(path))
            status, content_type, body = 500, _JSON, _INTERNAL_ERROR
            extra.clear()

        headers: Headers = [(b"content-type", content_type), (b"content-length", b"%d" % len(body)), *extra]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

        level = _log_level(status)
        if logger.isEnabledFor(level):
            rows, read, decode, predict, encode = stages
            logger.log(
                level,
                "%s %s %d rows=%d read_us=%d decode_us=%d predict_us=%d encode_us=%d total_us=%d",
                method,
                printable(path),
                status,
                rows,
                read // 1000,
                decode // 1000,
                predict // 1000,
                encode // 1000,
                (time.perf_counter_ns() - started) // 1000,
            )

    async def _multi_model(
        self, scope: Scope, receive: Receive, extra: Headers, stages: list[int]
    ) -> tuple[int, bytes, bytes]:
        """Multi-model mode's routes (see ``registry.py``)."""
        registry = self._registry
        assert registry is not None
        method: str = scope["method"]
        path: str = scope["path"]
        if path == PING_PATH:
            if method not in _READ_METHODS:
                raise MethodNotAllowedError(method, _READ_METHODS)
            if not self._all_workers_ready():
                raise ModelNotReadyError(NOT_READY)
            return 200, _JSON, _PING_OK
        if path == MODELS_PATH:
            if method == "POST":
                name, url = _load_request(await self._read_body(receive, _content_length(scope)))
                await registry.load(name, url)
                return 200, _JSON, orjson.dumps({"status": f'Model "{name}" loaded'})
            if method in _READ_METHODS:
                models, next_start = registry.page(*_page_request(scope["query_string"]))
                listed: dict[str, Any] = {"models": [model.summary() for model in models]}
                if next_start is not None:
                    listed["nextPageToken"] = str(next_start)
                return 200, _JSON, orjson.dumps(listed)
            raise MethodNotAllowedError(method, ("GET", "HEAD", "POST"))
        if path.startswith(_MODELS_PREFIX):
            name = path[len(_MODELS_PREFIX) :]
            if name.endswith(_INVOKE_SUFFIX) and "/" not in name[: -len(_INVOKE_SUFFIX)]:
                if method != "POST":
                    raise MethodNotAllowedError(method, ("POST",))
                entry = registry.acquire(name[: -len(_INVOKE_SUFFIX)])
                try:
                    assert entry.model is not None
                    assert entry.batcher is not None
                    return await self._invoke(scope, receive, extra, stages, (entry.model, entry.batcher))
                finally:
                    registry.release(entry)
            if name and "/" not in name:
                if method in _READ_METHODS:
                    return 200, _JSON, orjson.dumps(registry.get(name).describe())
                if method == "DELETE":
                    await registry.unload(name)
                    return 200, _JSON, orjson.dumps({"status": f'Model "{name}" unloaded'})
                raise MethodNotAllowedError(method, ("GET", "HEAD", "DELETE"))
        if path == INVOCATIONS_PATH:
            target = dict(scope["headers"]).get(_TARGET_MODEL_HEADER)
            named = f" (X-Amzn-SageMaker-Target-Model: {_printable(target)})" if target is not None else ""
            raise BadRequestError(
                f"this server runs in multi-model mode (SAGEMAKER_MULTI_MODEL=true): invoke a loaded model "
                f"with POST {MODELS_PATH}/{{model_name}}/invoke, not {INVOCATIONS_PATH}{named}"
            )
        raise NotFoundError(f"no such path: {_printable(path)}; this server answers {_MULTI_MODEL_ROUTES}")

    async def _invoke(
        self,
        scope: Scope,
        receive: Receive,
        extra: Headers,
        stages: list[int],
        served: tuple[LoadedModel, Batcher] | None = None,
    ) -> tuple[int, bytes, bytes]:
        """POST /invocations, or a model's invoke (``served``): headers, read, decode, predict, encode."""
        content_type = accept = content_length = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                if content_type is not None:
                    raise BadRequestError("the request has two Content-Type headers; send exactly one")
                content_type = value
            elif name == b"accept":
                accept = value if accept is None else accept + b"," + value  # RFC 9110: a list, joinable
            elif name == b"content-length":
                content_length = value
            elif name == b"content-encoding":
                _check_content_encoding(value)
            elif name == CUSTOM_ATTRIBUTES_HEADER:
                _check_custom_attributes(value, already_seen=len(extra) > 0)
                extra.append((CUSTOM_ATTRIBUTES_HEADER, value))

        if served is not None:
            model, batcher = served
        else:
            if self._model is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._loaded.wait(), self._config.timeout_seconds)
            if self._model is None or self._batcher is None:
                raise ModelNotReadyError(NOT_READY)
            model, batcher = self._model, self._batcher
        # No Content-Type is JSON, as in AWS's framework containers.
        read_as = media_type(content_type) if content_type is not None else JSON
        if model.input_types is not None and read_as not in model.input_types:
            raise UnsupportedMediaTypeError(
                f"unsupported Content-Type {_printable(read_as)}; supported: {', '.join(model.input_types)}"
            )
        answer_as = self._answer_as(accept or b"", model.output_types)
        decode, encode = model.decode, model.encode

        t0 = time.perf_counter_ns()
        body = await self._read_body(receive, content_length)
        t1 = time.perf_counter_ns()
        if len(body) < OFFLOAD_BYTES:
            data = decode(body, read_as)
        else:
            data = await self._off_loop(lambda raw: decode(raw, read_as), body)
        stages[0] = rows_of(data)
        t2 = time.perf_counter_ns()
        predictions = await batcher.predict(data)
        t3 = time.perf_counter_ns()
        if getattr(predictions, "size", 0) < OFFLOAD_VALUES:
            response, answered_as = encode(predictions, answer_as)
        else:
            response, answered_as = await self._off_loop(lambda out: encode(out, answer_as), predictions)
        stages[1:] = [t1 - t0, t2 - t1, t3 - t2, time.perf_counter_ns() - t3]
        return 200, answered_as.encode("latin-1"), response

    def _answer_as(self, accept: bytes, output_types: tuple[str, ...] | None) -> str:
        """The media type to answer with: negotiated among ``output_types``, or (None: user code's
        ``output_fn`` writes anything) the first type the client lists, the default for none or ``*/*``."""
        if output_types is None:
            return first_media_type(accept) or self._default_accept
        answer_as = negotiate(accept, self._default_accept, output_types)
        if answer_as is None:
            raise NotAcceptableError(
                f"no supported type satisfies Accept: {_printable(accept)}; "
                f"supported: {', '.join(output_types)}"
            )
        return answer_as

    async def _off_loop(self, function: Callable[[_In], _Out], argument: _In) -> _Out:
        """Run a long decode or encode on the codec thread, so the loop keeps answering /ping meanwhile."""
        if self._codec_thread is None:
            self._codec_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="codec")
        return await asyncio.get_running_loop().run_in_executor(self._codec_thread, function, argument)

    async def _read_body(self, receive: Receive, content_length: bytes | None) -> bytes:
        """The whole body, refusing (413) at once when Content-Length is over the limit, or as soon as
        a chunked body crosses it: an oversized body is never held in memory."""
        limit = self._max_payload
        if content_length is not None:
            try:
                declared = int(content_length) if content_length.isdigit() else -1
            except ValueError:
                declared = -1
            if declared < 0:
                raise BadRequestError("Content-Length is not a number") from None
            if declared > limit:
                raise PayloadTooLargeError.for_size(f"{declared} bytes", limit)
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientDisconnectedError
        body: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            if len(body) > limit:
                raise PayloadTooLargeError.for_size(f"{len(body)} bytes", limit)
            return body
        chunks = [body]
        size = len(body)
        while True:
            message = await receive()
            if message["type"] != "http.request":
                raise _ClientDisconnectedError
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise PayloadTooLargeError.for_size(f"over {limit} bytes", limit)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _content_length(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return bytes(value)
    return None


def _load_request(body: bytes) -> tuple[str, str]:
    """``POST /models``'s body: ``{"model_name": ..., "url": ...}`` (other fields, Multi Model Server's
    ``batch_size`` and the like, are ignored). A 400 names the field that is wrong."""
    try:
        request = orjson.loads(body)
    except orjson.JSONDecodeError:
        request = None
    if not isinstance(request, dict):
        raise BadRequestError('the body must be a JSON object: {"model_name": "...", "url": "..."}')
    for field in ("model_name", "url"):
        if field not in request:
            raise BadRequestError(f'the body has no "{field}": send {{"model_name": "...", "url": "..."}}')
    url = request["url"]
    if not isinstance(url, str) or not url:
        raise BadRequestError("url must be a non-empty string: the directory the model was unpacked into")
    return check_model_name(request["model_name"]), url


def _page_request(query: bytes) -> tuple[int, int]:
    """``GET /models``'s (limit, start) from ``limit`` and ``next_page_token``, as Multi Model Server reads
    them: a limit over the default is cut to it."""
    limit, start = DEFAULT_PAGE, 0
    for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if key in ("limit", "next_page_token"):
            number = int(value) if value.isascii() and value.isdigit() and len(value) < 10 else -1
            if key == "limit":
                if number < 1:
                    raise BadRequestError(
                        f"limit must be a whole number of at least 1 (over {DEFAULT_PAGE} counts as "
                        f"{DEFAULT_PAGE}), got {_printable(value)}"
                    )
                limit = min(number, DEFAULT_PAGE)
            else:
                if number < 0:
                    raise BadRequestError(
                        f"next_page_token must be a token a previous GET {MODELS_PATH} answered, "
                        f"got {_printable(value)}"
                    )
                start = number
    return limit, start


def _log_level(status: int) -> int:
    if status < 400:
        return logging.DEBUG
    if status < 500 or status == 503:
        return logging.INFO
    return logging.WARNING


def _check_content_encoding(value: bytes) -> None:
    if value.strip().lower() not in (b"", b"identity"):
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {_printable(value)} is not supported; send the body uncompressed"
        )


def _check_custom_attributes(value: bytes, *, already_seen: bool) -> None:
    if already_seen:
        raise BadRequestError("the request has two X-Amzn-SageMaker-Custom-Attributes headers; send one")
    if len(value) > MAX_CUSTOM_ATTRIBUTES_CHARS:
        raise BadRequestError(
            f"X-Amzn-SageMaker-Custom-Attributes is {len(value)} characters long; "
            f"at most {MAX_CUSTOM_ATTRIBUTES_CHARS} are allowed"
        )
    if _NOT_VISIBLE_ASCII.search(value):
        raise BadRequestError(
            "X-Amzn-SageMaker-Custom-Attributes may hold only visible US-ASCII characters and spaces"
        )


def _printable(value: bytes | str) -> str:
    """A client's value fit for a log line or a message: quoted, escaped, at most 100 characters."""
    text = value.decode("latin-1") if isinstance(value, bytes) else value
    return repr(text if len(text) <= 100 else text[:100] + "...")


def media_type(content_type: bytes) -> str:
    """``Text/CSV; charset=utf-8`` -> ``text/csv``: parameters dropped, case folded."""
    if len(content_type) <= _CACHED_HEADER_BYTES:
        return _media_type_cached(content_type)
    return _media_type(content_type)


def _media_type(content_type: bytes) -> str:
    return content_type.split(b";", 1)[0].strip().lower().decode("latin-1")


_media_type_cached: Final = functools.lru_cache(maxsize=256)(_media_type)


def first_media_type(accept: bytes) -> str | None:
    """The first media type the Accept header lists with q > 0 (parameters dropped); None for none or
    ``*/*``. What user code's ``output_fn`` receives."""
    for media, quality, _position in _accept_ranges(accept):
        if quality > 0:
            return None if media in ("*/*", "*") else media
    return None


def negotiate(accept: bytes, default: str, supported: tuple[str, ...] = CONTENT_TYPES) -> str | None:
    """See ``_negotiate``; only short Accept values are remembered."""
    if len(accept) <= _CACHED_HEADER_BYTES:
        return _negotiate_cached(accept, default, supported)
    return _negotiate(accept, default, supported)


def _accept_ranges(accept: bytes) -> list[tuple[str, float, int]]:
    """(media range, q-value, position) for each range the Accept header lists."""
    ranges: list[tuple[str, float, int]] = []
    for position, part in enumerate(accept.decode("latin-1").split(",")):
        media, *params = part.split(";")
        media = media.strip().lower()
        if not media:
            continue
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = min(max(float(value), 0.0), 1.0)
                except ValueError:
                    quality = 0.0
                if quality != quality:  # NaN
                    quality = 0.0
        ranges.append((media, quality, position))
    return ranges


def _negotiate(accept: bytes, default: str, supported: tuple[str, ...]) -> str | None:
    """The supported type the Accept header prefers, ``default`` for none or ``*/*``; None if nothing fits.

    Each supported type takes the q-value of the most specific range that matches it (``text/csv`` over
    ``text/*`` over ``*/*``). Highest q wins; then the more specific match; then the range listed first;
    then the default type.
    """
    ranges = _accept_ranges(accept)
    if not ranges:
        return default if default in supported else supported[0]

    best: str | None = None
    best_rank: tuple[float, int, int, bool] | None = None
    for candidate in supported:
        family = candidate.split("/", 1)[0] + "/*"
        match: tuple[int, float, int] | None = None
        for media, quality, position in ranges:
            specificity = (
                2 if media == candidate else 1 if media == family else 0 if media in ("*/*", "*") else -1
            )
            if specificity >= 0 and (match is None or specificity > match[0]):
                match = (specificity, quality, position)
        if match is None or match[1] <= 0:
            continue
        rank = (match[1], match[0], -match[2], candidate == default)
        if best_rank is None or rank > best_rank:
            best, best_rank = candidate, rank
    return best


_negotiate_cached: Final = functools.lru_cache(maxsize=256)(_negotiate)
