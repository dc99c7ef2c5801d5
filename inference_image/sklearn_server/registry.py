"""Multi-model mode (SAGEMAKER_MULTI_MODEL=true): the models SageMaker loads and unloads as the server runs.

The contract is SageMaker's "Custom Containers Contract for Multi-Model Endpoints"; the field names and the
pagination are those of AWS's Multi Model Server, which AWS's own multi-model containers run:

- ``POST /models`` with ``{"model_name": ..., "url": ...}`` loads the model SageMaker unpacked into ``url``
  (``/opt/ml/models/<name>/model``): 200 once it can be invoked; 409 when that name is loaded (or being
  loaded or unloaded); 507 when memory is short, so SageMaker unloads a model and tries again; 404 when
  ``url`` does not exist; 400 when it is outside INFERENCE_MULTI_MODEL_DIR, not a directory, or holds no
  model the server can load (the message says which).
- ``GET /models?limit=&next_page_token=`` lists the loaded models by name, ``limit`` (default and at most
  100) at a time; ``nextPageToken`` is there when more follow. ``GET /models/{name}`` describes one, with its
  memory; ``DELETE /models/{name}`` unloads it; ``POST /models/{name}/invoke`` is its ``/invocations``.
- A model still loading is a 503 to invoke (as Multi Model Server answers when no worker of a model is up
  yet) and a 404 to ``GET``; a model being unloaded is a 404 to both.

Each model is loaded by the same entry point as the single model (``model.load_model_directory``), so every
kind (scikit-learn, DataFrame pipelines, XGBoost, LightGBM, ONNX, user code) works here too. One limit of
user code: every model's ``code/`` directory joins ``sys.path`` and stays there, so helper modules of the
same name in two models' code resolve to the one imported first (each model's ``inference.py`` itself is
its own).

**One worker process holds every model, once.** In single-model mode the supervisor forks one worker per
CPU, each with its own copy of the model; in multi-model mode it forks one. Why:

1. A 200 to ``POST /models`` must mean that whichever process receives the model's next invocation can
   answer it. Workers share one listening socket, so with N workers each would have to load the model, and
   all N would have to agree (broadcast, vote, roll back a partial load) before the answer; a replaced worker
   would have to reload every model first. With one process the guarantee holds by construction.
2. Memory is what a multi-model endpoint is for: many models on one instance. N copies of every model hold
   N times the memory, so an instance would hold 1/N of the models before SageMaker starts evicting. AWS's
   Multi Model Server as sagemaker-inference-toolkit configures it for multi-model endpoints also keeps one
   process per model (``default_workers_per_model=1``).
3. The process still uses more than one core: loads run on a loader thread, and each model whose predictions
   are slow predicts on its own thread (``batching.py``), where numpy and scikit-learn release the GIL in
   their inner loops. The cost: fast models share one event loop, one core's worth of requests per second.

Loads run one at a time on the loader thread, so the event loop keeps answering ``/ping`` and the other
models while a model loads, and the memory a load adds can be measured. A model is counted as the larger of
the growth of the process's resident memory during its load and the size of its files. Before a load, the
size of its files is checked against the budget (INFERENCE_MULTI_MODEL_MEMORY_MB) and against the memory the
container has left; after it, the measured size against the budget (over it: unloaded again, 507).

Unloading stops new invocations of the model at once, waits for the ones in flight (at most the request
timeout), then drops it.

If the worker dies, its replacement loads every model that was loaded before it accepts a connection: the
list of names and urls is kept in memory shared with the supervisor (``ModelTable``), so what SageMaker
believes is loaded stays loaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import mmap
import os
import re
import stat
import struct
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sklearn_server.batching import Batcher
from sklearn_server.config import ENV_MULTI_MODEL_DIR, ENV_MULTI_MODEL_MEMORY_MB, ServerConfig
from sklearn_server.errors import (
    BadRequestError,
    ConflictError,
    InsufficientStorageError,
    ModelFailedError,
    ModelLoadError,
    ModelNotReadyError,
    NotFoundError,
)
from sklearn_server.logs import printable
from sklearn_server.model import LoadedModel, load_model_directory

logger = logging.getLogger("sklearn_server.registry")

LOADING: Final = "loading"
READY: Final = "ready"
UNLOADING: Final = "unloading"

MAX_NAME_CHARS: Final = 256
DEFAULT_PAGE: Final = 100
"""``GET /models``'s default and largest ``limit``, as in Multi Model Server (a larger one is cut to it)."""
MAX_COUNTED_FILES: Final = 100_000
"""Files looked at when a model directory's size is estimated; a bound on the walk, far beyond any model."""
_NAME: Final = re.compile(r"[\x21-\x2e\x30-\x7e]+")
"""Visible ASCII but ``/``: a model name is one segment of ``/models/{name}``."""
_MIB: Final = 1024 * 1024


def check_model_name(name: object, where: str = "model_name") -> str:
    """``name`` if it can name a model, else a 400 naming ``where`` and what is allowed."""
    if not isinstance(name, str):
        raise BadRequestError(f"{where} must be a string, got {_json_type(name)}")
    if not 0 < len(name) <= MAX_NAME_CHARS or not _NAME.fullmatch(name):
        raise BadRequestError(
            f"{where} {printable(name)!r} is not a model name: 1 to {MAX_NAME_CHARS} visible ASCII "
            "characters other than '/'"
        )
    return name


@dataclass(eq=False, slots=True)
class RegisteredModel:
    """One model of the registry, from the moment its load is accepted until it is unloaded."""

    name: str
    url: str
    """As ``POST /models`` gave it (what ``GET /models`` answers as ``modelUrl``)."""
    path: Path
    state: str = LOADING
    model: LoadedModel | None = None
    batcher: Batcher | None = None
    memory_bytes: int = 0
    """What the model counts against the budget: an estimate while it loads, then its measured size."""
    load_seconds: float = 0.0
    in_flight: int = 0
    drained: asyncio.Event | None = None
    """Set once the last invocation in flight finishes, while the model is being unloaded."""

    def summary(self) -> dict[str, Any]:
        """The model as ``GET /models`` lists it (Multi Model Server's fields)."""
        return {"modelName": self.name, "modelUrl": self.url}

    def describe(self) -> dict[str, Any]:
        """The model as ``GET /models/{name}`` describes it."""
        model = self.model
        return {
            **self.summary(),
            "modelKind": model.kind if model is not None else None,
            "predictMethod": model.method if model is not None else None,
            "features": model.n_features if model is not None else None,
            "memoryUsage": self.memory_bytes,
            "loadTimeSeconds": round(self.load_seconds, 3),
            "invocationsInFlight": self.in_flight,
        }


class ModelRegistry:
    """The models of one worker, by name. Every method but ``restore`` runs on the worker's event loop."""

    def __init__(
        self,
        config: ServerConfig,
        *,
        table: ModelTable | None = None,
        load: Callable[[Path, ServerConfig], LoadedModel] = load_model_directory,
    ) -> None:
        self._config = config
        self._root = config.multi_model_dir.resolve()
        self._budget = config.multi_model_memory_mb * _MIB if config.multi_model_memory_mb else None
        self._table = table
        self._load = load
        self._models: dict[str, RegisteredModel] = {}
        self._loader: ThreadPoolExecutor | None = None  # made on first use: after the fork

    # --- loading and unloading --------------------------------------------------------------------------

    async def load(self, name: str, url: str) -> RegisteredModel:
        """Load the model in ``url`` as ``name``; returns once it can be invoked.

        Raises:
            ConflictError: ``name`` is loaded, loading or unloading (409).
            NotFoundError: ``url`` does not exist (404).
            BadRequestError: ``url`` is outside the models directory, not a directory, or holds no model
                the server can load (400).
            InsufficientStorageError: the model does not fit the memory budget or the memory left (507).
            ModelFailedError: loading failed unexpectedly; the traceback is in the log (500).
        """
        self._check_free(name)
        path = self._model_path(url)
        entry = RegisteredModel(name, url, path)
        self._models[name] = entry  # before the first await: a second load of this name is a 409 from now on
        try:
            loop = asyncio.get_running_loop()
            estimate = await loop.run_in_executor(self._loader_thread(), directory_size, path)
            self._check_room(name, estimate)
            entry.memory_bytes = estimate
            model, grown, seconds = await loop.run_in_executor(
                self._loader_thread(), self._measured_load, path
            )
            entry.memory_bytes = max(grown, estimate)
            self._check_budget_after(name, entry)
        except BaseException:
            del self._models[name]
            raise
        entry.model, entry.load_seconds = model, seconds
        entry.batcher = self._batcher(model)
        entry.state = READY
        self._save_table()
        logger.info(
            "loaded model %r from %s in %.2f s: %s, %d MiB counted, %d models loaded",
            name,
            path,
            seconds,
            model.kind,
            entry.memory_bytes // _MIB,
            len(self._models),
        )
        return entry

    async def unload(self, name: str) -> None:
        """Stop serving ``name``, let its invocations in flight finish (at most the request timeout), drop it.

        Raises:
            NotFoundError: ``name`` is not loaded (404).
            ConflictError: ``name`` is still loading (409).
        """
        entry = self._models.get(name)
        if entry is None or entry.state == UNLOADING:
            raise NotFoundError(f"model {name!r} is not loaded")
        if entry.state == LOADING:
            raise ConflictError(
                f"model {name!r} is still loading; unload it once its POST /models has answered"
            )
        entry.state = UNLOADING
        if entry.in_flight:
            entry.drained = asyncio.Event()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.drained.wait(), self._config.timeout_seconds)
        del self._models[name]
        if entry.batcher is not None:
            entry.batcher.close()
        entry.model = entry.batcher = None
        self._save_table()
        # Fitted models hold reference cycles now and then; collect them off the loop.
        await asyncio.get_running_loop().run_in_executor(self._loader_thread(), gc.collect)
        logger.info("unloaded model %r, %d models loaded", name, len(self._models))

    def restore(self) -> int:
        """Load every model the shared table lists, here and now (a replacement worker, before it serves).
        A model that no longer loads is logged and left out. Returns how many were loaded."""
        if self._table is None:
            return 0
        listed = self._table.read()
        for name, url in listed.items():
            try:
                path = self._model_path(url)
                model, grown, seconds = self._measured_load(path)
            except Exception as error:
                logger.error("could not reload model %r from %s: %s", name, printable(url), error)
                continue
            entry = RegisteredModel(
                name, url, path, READY, model, memory_bytes=max(grown, directory_size(path))
            )
            entry.load_seconds, entry.batcher = seconds, self._batcher(model)
            self._models[name] = entry
        self._save_table()
        if listed:
            logger.info(
                "reloaded %d of the %d models the previous worker held", len(self._models), len(listed)
            )
        return len(self._models)

    # --- serving ----------------------------------------------------------------------------------------

    def acquire(self, name: str) -> RegisteredModel:
        """The model to invoke as ``name``, counted in flight until ``release``.

        Raises:
            NotFoundError: ``name`` is not loaded, or is being unloaded (404).
            ModelNotReadyError: ``name`` is still loading (503).
        """
        entry = self._models.get(name)
        if entry is None or entry.state == UNLOADING:
            raise NotFoundError(f"model {name!r} is not loaded; load it with POST /models")
        if entry.state == LOADING:
            raise ModelNotReadyError(
                f"model {name!r} is still loading; invoke it once POST /models has answered"
            )
        entry.in_flight += 1
        return entry

    def release(self, entry: RegisteredModel) -> None:
        entry.in_flight -= 1
        if entry.in_flight == 0 and entry.drained is not None:
            entry.drained.set()

    def get(self, name: str) -> RegisteredModel:
        """The loaded model ``name``. Raises NotFoundError (404) unless it is loaded and not unloading."""
        entry = self._models.get(name)
        if entry is None or entry.state != READY:
            state = "is still loading" if entry is not None and entry.state == LOADING else "is not loaded"
            raise NotFoundError(f"model {name!r} {state}")
        return entry

    def page(self, limit: int, start: int) -> tuple[list[RegisteredModel], int | None]:
        """Up to ``limit`` loaded models by name from position ``start``, and where the next page starts
        (None: this was the last)."""
        ready = sorted((entry for entry in self._models.values() if entry.state == READY), key=_by_name)
        end = start + limit
        return ready[start:end], end if end < len(ready) else None

    def close(self) -> None:
        for entry in self._models.values():
            if entry.batcher is not None:
                entry.batcher.close()
        if self._loader is not None:
            self._loader.shutdown(wait=False, cancel_futures=True)

    # --- checks and measurements ------------------------------------------------------------------------

    def _check_free(self, name: str) -> None:
        entry = self._models.get(name)
        if entry is not None:
            doing = {LOADING: "is being loaded", READY: "is already loaded", UNLOADING: "is being unloaded"}
            raise ConflictError(f"model {name!r} {doing[entry.state]} (from {printable(entry.url)!r})")

    def _model_path(self, url: str) -> Path:
        path = Path(url.removeprefix("file://"))
        if not path.is_absolute():
            raise BadRequestError(f"url {printable(url)!r} must be an absolute path in {self._root}")
        resolved = path.resolve()
        if not resolved.is_relative_to(self._root):
            raise BadRequestError(
                f"url {printable(url)!r} is outside {self._root}, the only place models are loaded from "
                f"({ENV_MULTI_MODEL_DIR})"
            )
        if not resolved.exists():
            raise NotFoundError(f"url {printable(url)!r} does not exist")
        if not resolved.is_dir():
            raise BadRequestError(
                f"url {printable(url)!r} is not a directory: it must be where model.tar.gz was unpacked"
            )
        return resolved

    def _counted_bytes(self) -> int:
        return sum(entry.memory_bytes for entry in self._models.values())

    def _check_room(self, name: str, estimate: int) -> None:
        if self._budget is not None and self._counted_bytes() + estimate > self._budget:
            raise self._over_budget(name, estimate, "its files are")
        available = available_memory_bytes()
        if available is not None and estimate > available:
            raise InsufficientStorageError(
                f"model {name!r} needs at least {_mib(estimate)} (its files) and the container has "
                f"{_mib(available)} of memory left; unload a model first"
            )

    def _check_budget_after(self, name: str, entry: RegisteredModel) -> None:
        if self._budget is not None and self._counted_bytes() > self._budget:
            raise self._over_budget(name, entry.memory_bytes, "it took")

    def _over_budget(self, name: str, size: int, measured: str) -> InsufficientStorageError:
        others = self._counted_bytes() - self._models[name].memory_bytes
        assert self._budget is not None
        return InsufficientStorageError(
            f"model {name!r} does not fit the memory budget: {measured} {_mib(size)}, the loaded models hold "
            f"{_mib(others)} of {ENV_MULTI_MODEL_MEMORY_MB}={self._budget // _MIB}; unload a model first"
        )

    def _measured_load(self, path: Path) -> tuple[LoadedModel, int, float]:
        """Load ``path`` (on the loader thread): the model, how much resident memory grew, the seconds taken.

        Raises:
            BadRequestError: the directory holds no model the server can load (400).
            InsufficientStorageError: the load ran out of memory (507).
            ModelFailedError: anything else; logged with its traceback (500).
        """
        before, started = resident_bytes(), time.monotonic()
        try:
            model = self._load(path, self._config)
        except ModelLoadError as error:
            raise BadRequestError(str(error)) from None
        except MemoryError:
            raise InsufficientStorageError(
                f"loading {path} ran out of memory; unload a model first"
            ) from None
        except Exception as error:
            logger.exception("loading %s failed", path)
            raise ModelFailedError(
                f"loading {path} failed ({type(error).__name__}); the log says why"
            ) from None
        return model, max(resident_bytes() - before, 0), time.monotonic() - started

    def _batcher(self, model: LoadedModel) -> Batcher:
        config = self._config
        return Batcher(
            model.predict,
            join=model.join,
            max_rows=config.max_batch_rows,
            max_wait_ms=config.max_batch_wait_ms,
            timeout_s=config.timeout_seconds,
        )

    def _loader_thread(self) -> ThreadPoolExecutor:
        if self._loader is None:
            self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-loader")
        return self._loader

    def _save_table(self) -> None:
        if self._table is not None:
            ready = {entry.name: entry.url for entry in self._models.values() if entry.state == READY}
            self._table.write(ready)


class ModelTable:
    """The names and urls of the loaded models, in memory shared across fork, so a replacement worker can
    load what its predecessor held. One writer at a time (the one worker); two halves written in turn, and a
    byte that says which is current, so a worker that dies mid-write leaves the previous table intact."""

    HALF_BYTES: Final = 2 * _MIB

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, 1 + 2 * self.HALF_BYTES)  # anonymous, shared with the forked workers
        self._memory[0] = 0
        self._write_half(0, b"{}")

    def read(self) -> dict[str, str]:
        half = self._memory[0]
        offset = 1 + half * self.HALF_BYTES
        (length,) = struct.unpack_from("<I", self._memory, offset)
        table: dict[str, str] = json.loads(self._memory[offset + 4 : offset + 4 + length])
        return table

    def write(self, models: dict[str, str]) -> None:
        encoded = json.dumps(models).encode()
        if len(encoded) + 4 > self.HALF_BYTES:
            logger.warning("%d models are too many to remember for a replacement worker", len(models))
            return
        spare = 1 - self._memory[0]
        self._write_half(spare, encoded)
        self._memory[0] = spare

    def _write_half(self, half: int, encoded: bytes) -> None:
        offset = 1 + half * self.HALF_BYTES
        struct.pack_into("<I", self._memory, offset, len(encoded))
        self._memory[offset + 4 : offset + 4 + len(encoded)] = encoded


def directory_size(path: Path) -> int:
    """Bytes in the regular files under ``path`` (symbolic links not followed), at most MAX_COUNTED_FILES."""
    total = counted = 0
    for directory, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                info = (Path(directory) / name).lstat()
                if stat.S_ISREG(info.st_mode):
                    total += info.st_size
            counted += 1
            if counted >= MAX_COUNTED_FILES:
                return total
    return total


def resident_bytes() -> int:
    """This process's resident memory (Linux; 0 where /proc is missing)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def available_memory_bytes(cgroup_root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """The memory this container can still take: its cgroup's limit less its usage, or the host's
    MemAvailable when smaller or when there is no limit; None when neither can be read."""
    candidates: list[int] = []
    for limit_file, usage_file in (
        ("memory.max", "memory.current"),  # cgroup v2
        ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes"),  # v1
    ):
        try:
            limit = (cgroup_root / limit_file).read_text().strip()
            usage = int((cgroup_root / usage_file).read_text())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 1 << 60:
            candidates.append(max(int(limit) - usage, 0))
        break
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                candidates.append(int(line.split()[1]) * 1024)
    return min(candidates) if candidates else None


def _by_name(entry: RegisteredModel) -> str:
    return entry.name


def _mib(size: int) -> str:
    return f"{size / _MIB:.1f} MiB"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "a number", float: "a number", list: "a list", dict: "an object"}.get(
        type(value), type(value).__name__
    )
