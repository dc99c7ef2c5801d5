"""Micro-batching: the requests one worker holds at the same moment share one predict call.

A scikit-learn predict costs about the same for 1 row as for 32 (input validation and Python overhead
dominate), so under load coalescing is most of the server's throughput. There is no timer by default:
requests that arrive while a batch is being predicted simply form the next batch ("natural coalescing"),
so a lone request never waits. ``max_wait_ms`` > 0 adds a deliberate wait for company.

Where a batch runs is adaptive. A fast model (an exponentially weighted mean of batch wall time under
``INLINE_THRESHOLD_S``, 2 ms) is called inline on the event loop, because handing each batch to a thread
costs throughput (measured with wrk on 2 cores with the ~100 us iris model: inline served 10-25% more
requests per second). A slow or not-yet-measured model runs on a single worker thread, so the loop keeps
answering /ping and reading requests meanwhile. A request bigger than ``max_rows`` (a batch transform's
thousands of rows) runs inline only when the model's measured time per row on such requests says it takes
under the same 2 ms (1,000 iris rows: ~150 us of predict, where the hand-over to the thread and back cost
~100 us more, measured); the first one, and any predicted to take longer, go to the thread. Either way
one batch runs at a time: the model is never called from two threads at once.

A batch whose predict raises is re-run one request at a time, so one request's bad input cannot fail
the requests it happened to share a batch with.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Final

import numpy as np

from sklearn_server.errors import InferenceError, ModelFailedError, PredictionTimeoutError
from sklearn_server.model import rows_of, width_of

INLINE_THRESHOLD_S: Final = 0.002
"""Batches whose mean wall time is under this run on the event loop; slower ones on a thread."""

EWMA_WEIGHT: Final = 0.2
"""Weight of the newest batch in the running mean: one slow batch of a fast model moves the mean by 20%."""

Outcome = Any  # the model's output for one request, or the InferenceError it ended in


@dataclass(slots=True, eq=False)
class _Request:
    rows: Any
    future: asyncio.Future[Any]
    deadline: float
    count: int
    """Rows in ``rows``."""
    width: int | None
    """Columns per row; only requests of the same width are joined."""


class Batcher:
    """Coalesces one worker's concurrent predictions into as few predict calls as possible.

    Args:
        predict: called with a 2-D array (or whatever the model's inputs are), returns one output per row;
            raises InferenceError (400/500).
        join: stacks several requests' inputs into one, in order. None: inputs cannot be joined (user
            code not declared batch-safe), so each request is predicted alone. Default: numpy's concatenate.
        max_rows: most rows in one call. A single request over it is predicted alone, never split.
        max_wait_ms: how long the first request of a batch waits for company. Default: 0.
        timeout_s: how long a request waits for its prediction before a 504. Default: no limit.
        inline_threshold_s: see INLINE_THRESHOLD_S.
    """

    def __init__(
        self,
        predict: Callable[[Any], Any],
        *,
        join: Callable[[list[Any]], Any] | None = np.concatenate,
        max_rows: int = 256,
        max_wait_ms: float = 0.0,
        timeout_s: float | None = None,
        inline_threshold_s: float = INLINE_THRESHOLD_S,
    ) -> None:
        self._predict = predict
        self._join = join
        self._max_rows = max_rows
        self._max_wait_s = max_wait_ms / 1000
        self._timeout_s = timeout_s
        self._inline_threshold_s = inline_threshold_s
        self._pending: list[_Request] = []
        self._pending_rows = 0
        self._flush_handle: asyncio.Handle | None = None
        self._flush_waits = False
        self._thread_busy = False
        self._mean_batch_s: float | None = None
        self._mean_row_s: float | None = None
        """Running mean of seconds per row over batches of more than max_rows rows."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="predict")
        # Timeouts: one timer for all waiting requests, armed at the earliest deadline (a timer per request
        # costs ~2% of throughput, and a fast model answers long before any deadline).
        self._waiting: set[_Request] = set()
        self._expiry_handle: asyncio.TimerHandle | None = None
        self.predict_calls = 0
        """Batches predicted so far (a failed batch re-run request by request counts once)."""

    @property
    def runs_inline(self) -> bool:
        """Whether the next batch (of at most max_rows) would run on the event loop."""
        return self._mean_batch_s is not None and self._mean_batch_s < self._inline_threshold_s

    def _inline(self, rows: int) -> bool:
        """Whether a batch of ``rows`` rows runs on the event loop: see the module docstring."""
        if rows <= self._max_rows:
            return self.runs_inline
        return self._mean_row_s is not None and rows * self._mean_row_s < self._inline_threshold_s

    async def predict(self, rows: Any) -> Any:
        """The model's output for ``rows``, predicted together with whatever else is waiting.

        Raises:
            InferenceError: the model refused this request's input (400) or failed (500).
            PredictionTimeoutError: no answer within ``timeout_s`` (504). The predict call itself
                cannot be interrupted; its result is dropped.
        """
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        timeout = self._timeout_s
        deadline = loop.time() + timeout if timeout is not None else math.inf
        request = _Request(rows, future, deadline, rows_of(rows), width_of(rows))
        self._pending.append(request)
        self._pending_rows += request.count
        if self._flush_handle is None and not self._thread_busy:
            self._schedule_flush(loop)
        elif self._flush_waits and self._flush_handle is not None and self._pending_rows >= self._max_rows:
            self._flush_handle.cancel()
            self._schedule_flush(loop)
        if timeout is None:
            return await future
        self._waiting.add(request)
        if self._expiry_handle is None:
            self._expiry_handle = loop.call_at(deadline, self._expire)
        try:
            return await future
        finally:
            self._waiting.discard(request)

    def close(self) -> None:
        """Stop the predict thread; a batch running on it finishes in the background."""
        self._executor.shutdown(wait=False, cancel_futures=True)

    # --- on the event loop -----------------------------------------------------------------------------

    def _expire(self) -> None:
        """Fail the requests past their deadline with a 504; re-arm for the earliest one left."""
        self._expiry_handle = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        earliest = math.inf
        for request in list(self._waiting):
            if request.future.done():
                self._waiting.discard(request)
            elif request.deadline <= now:
                self._waiting.discard(request)
                request.future.set_exception(
                    PredictionTimeoutError(f"the prediction took longer than {self._timeout_s:g} s")
                )
            else:
                earliest = min(earliest, request.deadline)
        if earliest < math.inf:
            self._expiry_handle = loop.call_at(earliest, self._expire)

    def _schedule_flush(self, loop: asyncio.AbstractEventLoop) -> None:
        self._flush_waits = self._max_wait_s > 0 and self._pending_rows < self._max_rows
        if self._flush_waits:
            self._flush_handle = loop.call_later(self._max_wait_s, self._flush)
        else:
            # call_soon, not a direct call: every request the loop read in this round is queued first.
            self._flush_handle = loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._flush_waits = False
        batch = self._take_batch()
        if not batch:
            return
        inputs = [request.rows for request in batch]
        rows = sum(request.count for request in batch)
        if self._inline(rows):
            self._deliver(batch, *self._run(inputs))
            if self._pending:
                self._schedule_flush(asyncio.get_running_loop())
            return
        self._thread_busy = True
        loop = asyncio.get_running_loop()
        running = loop.run_in_executor(self._executor, self._run, inputs)
        running.add_done_callback(partial(self._thread_done, batch))

    def _thread_done(
        self, batch: list[_Request], running: asyncio.Future[tuple[list[Outcome], float]]
    ) -> None:
        self._thread_busy = False
        outcomes: list[Outcome]
        elapsed: float | None
        try:
            outcomes, elapsed = running.result()
        except BaseException as error:  # the executor was shut down under us
            failure = ModelFailedError()
            failure.__cause__ = error
            outcomes, elapsed = [failure for _ in batch], None
        self._deliver(batch, outcomes, elapsed)
        if self._pending and self._flush_handle is None:
            self._schedule_flush(asyncio.get_running_loop())

    def _take_batch(self) -> list[_Request]:
        """The oldest waiting request plus as many more of the same width as fit under max_rows."""
        pending = [request for request in self._pending if not request.future.done()]
        if not pending:
            self._pending, self._pending_rows = [], 0
            return []
        if len(pending) == 1:
            self._pending, self._pending_rows = [], 0
            return pending
        if self._join is None:
            self._pending = pending[1:]
            self._pending_rows = sum(request.count for request in self._pending)
            return pending[:1]
        width = pending[0].width
        batch: list[_Request] = []
        rest: list[_Request] = []
        taken = 0
        for request in pending:
            n = request.count
            if request.width == width and (not batch or taken + n <= self._max_rows):
                batch.append(request)
                taken += n
            else:
                rest.append(request)
        self._pending = rest
        self._pending_rows = sum(request.count for request in rest)
        return batch

    def _deliver(self, batch: list[_Request], outcomes: list[Outcome], elapsed: float | None) -> None:
        self.predict_calls += 1
        if elapsed is not None:
            mean = self._mean_batch_s
            self._mean_batch_s = elapsed if mean is None else mean + EWMA_WEIGHT * (elapsed - mean)
            rows = batch[0].count  # a request over max_rows is always predicted alone
            if rows > self._max_rows:
                per_row, mean = elapsed / rows, self._mean_row_s
                self._mean_row_s = per_row if mean is None else mean + EWMA_WEIGHT * (per_row - mean)
        for request, outcome in zip(batch, outcomes, strict=True):
            if request.future.done():  # timed out or cancelled meanwhile
                continue
            if isinstance(outcome, InferenceError):
                request.future.set_exception(outcome)
            else:
                request.future.set_result(outcome)

    # --- on the event loop (inline) or on the predict thread -------------------------------------------

    def _run(self, inputs: list[Any]) -> tuple[list[Outcome], float]:
        started = time.perf_counter()
        if len(inputs) == 1 or self._join is None:
            outcomes = [self._predict_one(x) for x in inputs]
        else:
            try:
                output = self._predict(self._join(inputs))
            except Exception:
                outcomes = [self._predict_one(x) for x in inputs]
            else:
                outcomes = []
                start = 0
                for x in inputs:
                    end = start + rows_of(x)
                    outcomes.append(output[start:end])
                    start = end
        return outcomes, time.perf_counter() - started

    def _predict_one(self, rows: Any) -> Outcome:
        try:
            return self._predict(rows)
        except InferenceError as error:
            return error
        except Exception as error:
            failure = ModelFailedError()
            failure.__cause__ = error
            return failure
