"""Process management: one supervisor, N forked workers sharing one listening socket.

Start-up, in the order that keeps the SageMaker contract:

1. Read the configuration once. A bad value: one log line naming the variable, the value and what is
   allowed; exit 2.
2. Bind the port first, before anything heavy is imported, so connections are accepted within 250 ms of
   start (the kernel queues them until a worker takes them).
3. Find the model file, or the user's inference script (which takes precedence). Missing or ambiguous: a
   log line naming the path and the reason; exit 1 without starting any worker. User code installs its
   code/requirements.txt and is imported here, once: a failed install, a syntax error or an import error
   is the same kind of start-up error, naming the file and line.
4. Pin the BLAS thread pools to one thread (unless the user set them), import numpy, scikit-learn and the
   server, and ``gc.freeze()``: the workers share these pages copy-on-write.
5. Fork the workers. Each serves at once, /ping answering 503, and loads the model on a background thread.
   (A worker that replaces one that died loads the model first and only then accepts connections.)
   /ping turns 200 once *every* worker has loaded (a ``StartupGate`` in memory shared by the workers), so
   the platform never routes traffic on the word of one worker while another still loads.

Multi-model mode (SAGEMAKER_MULTI_MODEL=true): step 3 is skipped (there is no model yet) and one worker is
forked, whatever SAGEMAKER_MODEL_SERVER_WORKERS says: it holds every model SageMaker loads, once, and /ping is
200 as soon as it serves. ``registry.py`` says why one worker, and how its replacement reloads the models.

Failure policy: fail fast. A worker that cannot load the model logs the file and the reason and exits with
``EXIT_MODEL_LOAD_FAILED``; the supervisor then stops every worker and exits 1. Staying up unhealthy would
only make SageMaker, ECS or Kubernetes wait out a health-check window (up to an hour on SageMaker) for a
model that will never load; a container that exits is reported as failed at once, with the reason in its
log. A worker that dies *later* (after serving) is replaced, unless workers keep dying
(``MAX_RESTARTS`` within ``RESTART_WINDOW_S``), which is also fatal.

Shutdown: SIGTERM or SIGINT to the supervisor closes its copy of the socket and forwards the signal; each
worker stops accepting, answers what arrives on its open connections for a moment, finishes its
in-flight requests (``http_server``'s graceful shutdown, bounded by its ``GRACEFUL_SHUTDOWN_S``), and
exits. Stragglers are killed at ``KILL_AFTER_S``, well inside the 30 s
SageMaker and ECS allow before their own SIGKILL. Then the supervisor exits 0.

Every wait here has a bound: nothing can hang the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import mmap
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Final

from sklearn_server.config import ConfigError, ServerConfig
from sklearn_server.errors import ModelLoadError
from sklearn_server.logs import configure_logging

if TYPE_CHECKING:
    from sklearn_server.app import InferenceApp
    from sklearn_server.http_server import HttpServer
    from sklearn_server.model import LoadedModel

logger = logging.getLogger("sklearn_server.supervisor")

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_MODEL_LOAD_FAILED: Final = 3
"""A worker's exit status when the model cannot be loaded; the supervisor then exits EXIT_FAILED."""

KILL_AFTER_S: Final = 25.0
"""When the supervisor SIGKILLs workers that have not exited after SIGTERM (they give requests in flight
http_server.GRACEFUL_SHUTDOWN_S, 20 s, first)."""
MAX_RESTARTS: Final = 5
RESTART_WINDOW_S: Final = 60.0
BLAS_THREAD_VARIABLES: Final = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
"""One BLAS thread per worker: N workers x N threads would oversubscribe the CPUs."""

_SIGNALS: Final = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
SERVING_ONLY: Final = "the image runs `serve` or `train`"


def main(argv: Sequence[str]) -> int:
    """The ``serve`` entrypoint: ``serve`` (or no argument) runs the server; anything else is an error (the
    ``serve`` script hands ``train`` to the trainer before this)."""
    command = list(argv[1:])
    if command not in ([], ["serve"]):
        print(f"{SERVING_ONLY} (got `{' '.join(command)}`)", file=sys.stderr)
        return EXIT_USAGE

    configure_logging(logging.INFO)
    try:
        config = ServerConfig.from_env()
    except ConfigError as error:
        logger.error("cannot start: %s", error)
        return EXIT_USAGE
    configure_logging(config.log_level)

    from sklearn_server.http_server import raise_open_file_limit

    raise_open_file_limit()
    try:
        listener = bind(config.port)
    except OSError as error:
        logger.error("cannot listen on port %d: %s", config.port, error)
        return EXIT_FAILED
    logger.info("listening on port %d", listener.getsockname()[1])
    with listener:
        from sklearn_server.model import find_model_source, prepare_model_source

        for name in BLAS_THREAD_VARIABLES:  # before user code is imported: it imports numpy
            os.environ.setdefault(name, "1")
        if config.multi_model:
            return Supervisor(config, None, listener).run()
        try:
            model_path = find_model_source(config)
            prepare_model_source(model_path)
        except ModelLoadError as error:
            logger.error("cannot start: %s", error)
            return EXIT_FAILED
        return Supervisor(config, model_path, listener).run()


def bind(port: int) -> socket.socket:
    """A listening TCP socket on every address: IPv6 dual-stack where available, else IPv4."""
    try:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("::", port))
        except OSError:
            sock.close()
            raise
    except OSError:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
        except OSError:
            sock.close()
            raise
    sock.listen(2048)
    sock.setblocking(False)
    return sock


class StartupGate:
    """Open once every worker has loaded the model once: a byte per worker in memory shared across fork.

    A replacement worker inherits its predecessor's byte, so replacing one worker does not take the whole
    server out of service (its own /ping says 503 while it loads; its siblings keep answering 200).
    """

    def __init__(self, workers: int) -> None:
        self._slots = mmap.mmap(-1, workers)  # anonymous and MAP_SHARED: the forked workers see each other
        self._all_loaded = b"\x01" * workers
        self._open = False

    def mark_loaded(self, slot: int) -> None:
        self._slots[slot] = 1

    def has_loaded(self, slot: int) -> bool:
        """Whether a worker in ``slot`` has loaded the model before (its replacement then loads first)."""
        return self._slots[slot] == 1

    def is_open(self) -> bool:
        if not self._open:
            self._open = self._slots[:] == self._all_loaded
        return self._open


class Supervisor:
    """Forks the workers, replaces the ones that die, and stops them all on SIGTERM."""

    def __init__(self, config: ServerConfig, model_path: Path | None, listener: socket.socket) -> None:
        """``model_path``: the model (``find_model_source``); None in multi-model mode."""
        self._config = config
        self._model_path = model_path
        self._listener = listener
        self._gate = StartupGate(config.worker_processes)
        self._workers: dict[int, int] = {}  # pid -> slot in the startup gate
        self._restarts: list[float] = []
        self._app: InferenceApp | None = None

    def run(self) -> int:
        # Signals are taken synchronously (sigtimedwait), never by handlers: blocked, they queue.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        self._prepare()
        logger.info(
            "serving %s on port %d with %d workers",
            self._model_path or "in multi-model mode (POST /models loads a model)",
            self._listener.getsockname()[1],
            self._config.worker_processes,
        )
        for slot in range(self._config.worker_processes):
            self._spawn(slot)
        while True:
            received = signal.sigtimedwait(_SIGNALS, 1.0)
            if received is None:
                continue
            if received.si_signo in (signal.SIGTERM, signal.SIGINT):
                return self._shutdown(signal.Signals(received.si_signo))
            for pid, slot, code in self._reap():
                if code == EXIT_MODEL_LOAD_FAILED:
                    logger.error("worker %d could not load the model; stopping", pid)
                    self._stop_workers(signal.SIGTERM)
                    return EXIT_FAILED
                now = time.monotonic()
                self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S] + [now]
                if len(self._restarts) > MAX_RESTARTS:
                    logger.error(
                        "worker %d exited (%s); %d workers died within %.0f s, giving up",
                        pid,
                        _describe(code),
                        len(self._restarts),
                        RESTART_WINDOW_S,
                    )
                    self._stop_workers(signal.SIGTERM)
                    return EXIT_FAILED
                logger.warning(
                    "worker %d exited (%s); starting a replacement, which loads the model before it accepts "
                    "connections",
                    pid,
                    _describe(code),
                )
                self._spawn(slot)

    def _prepare(self) -> None:
        """Import everything the workers need once, here, so they share it copy-on-write."""
        # Imported for their side effect: loaded once here, their pages are shared by every worker.
        import httptools  # noqa: F401
        import joblib  # noqa: F401
        import numpy  # noqa: F401
        import sklearn.utils.validation  # noqa: F401  (sklearn.base, scipy: most of the start-up time)
        import uvloop  # noqa: F401

        import sklearn_server.http_server  # noqa: F401
        from sklearn_server.app import InferenceApp

        registry = None
        if self._config.multi_model:
            from sklearn_server.registry import ModelRegistry, ModelTable

            registry = ModelRegistry(self._config, table=ModelTable())  # the table is shared across fork
        self._app = InferenceApp(self._config, all_workers_ready=self._gate.is_open, registry=registry)
        gc.collect()
        gc.freeze()

    def _spawn(self, slot: int) -> None:
        replacing = self._gate.has_loaded(slot)
        pid = os.fork()
        if pid == 0:  # the worker
            code = EXIT_FAILED
            try:
                assert self._app is not None
                loaded = partial(self._gate.mark_loaded, slot)
                code = run_worker(
                    self._app,
                    self._listener,
                    self._config,
                    self._model_path,
                    on_loaded=loaded,
                    load_first=replacing,
                )
            except BaseException:
                logger.exception("worker crashed")
            finally:
                logging.shutdown()
                os._exit(code)
        self._workers[pid] = slot

    def _reap(self) -> list[tuple[int, int, int]]:
        """(pid, slot, exit code; negative = killed by that signal) of every worker that has exited."""
        exited = []
        while self._workers:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            slot = self._workers.pop(pid, None)
            if slot is not None:
                exited.append((pid, slot, os.waitstatus_to_exitcode(status)))
        return exited

    def _shutdown(self, received: signal.Signals) -> int:
        logger.info("%s received: stopping %d workers", received.name, len(self._workers))
        self._listener.close()
        self._stop_workers(received)
        logger.info("stopped")
        return EXIT_OK

    def _stop_workers(self, sig: signal.Signals) -> None:
        """Signal every worker and wait, bounded: SIGKILL at KILL_AFTER_S, then give up after 5 s more."""
        self._signal_workers(sig)
        deadline = time.monotonic() + KILL_AFTER_S
        killed = False
        while self._workers:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if killed:
                    logger.error("workers %s did not exit even after SIGKILL", sorted(self._workers))
                    return
                logger.warning(
                    "workers %s still running after %.0f s: killing", sorted(self._workers), KILL_AFTER_S
                )
                self._signal_workers(signal.SIGKILL)
                killed, deadline = True, time.monotonic() + 5.0
                continue
            received = signal.sigtimedwait(_SIGNALS, min(remaining, 0.5))
            if received is not None and received.si_signo in (signal.SIGTERM, signal.SIGINT):
                self._signal_workers(signal.Signals(received.si_signo))  # a second Ctrl+C: answer 503s now
            for pid, _, code in self._reap():
                if code not in (0, EXIT_MODEL_LOAD_FAILED):
                    logger.warning("worker %d exited (%s)", pid, _describe(code))

    def _signal_workers(self, sig: signal.Signals) -> None:
        for pid in list(self._workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)


def _describe(code: int) -> str:
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"


# --- the worker ---------------------------------------------------------------------------------------------


def run_worker(
    app: InferenceApp,
    listener: socket.socket,
    config: ServerConfig,
    model_path: Path | None,
    *,
    on_loaded: Callable[[], None] = lambda: None,
    load_first: bool = False,
) -> int:
    """Serve on ``listener`` until SIGTERM; the exit status.

    A first-generation worker serves at once (/ping 503) while the model loads on a thread, so the platform
    sees a live server within its startup window. A replacement (``load_first``) loads the model before it
    accepts a connection: its siblings keep serving meanwhile, so no client meets its 503s.

    In multi-model mode (``app.registry``, no ``model_path``) there is nothing to load at first; a
    replacement reloads the models its predecessor held before it accepts a connection.
    """
    import uvloop

    from sklearn_server.http_server import HttpServer

    # Until the server installs its own handlers, SIGTERM simply ends a worker that has nothing in flight.
    signal.signal(signal.SIGTERM, _exit_now)
    signal.signal(signal.SIGINT, _exit_now)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())

    outcome = {"code": EXIT_OK}
    preloaded = None
    if app.registry is not None or model_path is None:
        if app.registry is not None and load_first:
            app.registry.restore()
        on_loaded()
    elif load_first:
        try:
            preloaded = _load_and_log(config, model_path)
        except Exception as error:
            logger.error("cannot serve: %s", _load_failure(error, model_path))
            return EXIT_MODEL_LOAD_FAILED
        on_loaded()

    async def serve() -> None:
        server = HttpServer(app, config.limits, listener, max_payload_bytes=config.max_payload_bytes)
        if preloaded is not None:
            app.model_loaded(preloaded)
        elif model_path is not None:
            loader = threading.Thread(
                target=_load_model,
                args=(asyncio.get_running_loop(), app, server, outcome, config, model_path, on_loaded),
                name="model-loader",
                daemon=True,
            )
            loader.start()
        await server.serve()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve())
    app.close()
    return outcome["code"]


def _load_model(
    loop: asyncio.AbstractEventLoop,
    app: InferenceApp,
    server: HttpServer,
    outcome: dict[str, int],
    config: ServerConfig,
    model_path: Path,
    on_loaded: Callable[[], None],
) -> None:
    try:
        model = _load_and_log(config, model_path)
    except Exception as error:
        reason = _load_failure(error, model_path)
        logger.error("cannot serve: %s", reason, exc_info=not isinstance(error, ModelLoadError))

        def fail() -> None:
            app.model_failed()
            outcome["code"] = EXIT_MODEL_LOAD_FAILED
            server.stop()

        with contextlib.suppress(RuntimeError):  # the loop already closed: we are shutting down anyway
            loop.call_soon_threadsafe(fail)
        return
    # Everything imported and loaded so far stays put: keep the garbage collector from walking it again.
    gc.collect()
    gc.freeze()
    on_loaded()
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(app.model_loaded, model)


def _load_and_log(config: ServerConfig, model_path: Path) -> LoadedModel:
    from sklearn_server.model import load_model

    started = time.monotonic()
    model = load_model(model_path, config)
    logger.info(
        "loaded %s in %.2f s: %s, %s, %s features",
        model_path,
        time.monotonic() - started,
        model.kind,
        model.method,
        model.n_features if model.n_features is not None else "any number of",
    )
    return model


def _load_failure(error: Exception, model_path: Path) -> str:
    return str(error) if isinstance(error, ModelLoadError) else f"{model_path}: {error!r}"


def _exit_now(signum: int, frame: FrameType | None) -> None:
    os._exit(EXIT_OK)
