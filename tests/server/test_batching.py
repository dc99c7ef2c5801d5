"""The micro-batcher alone: coalescing, splitting, isolating failures, where predict runs, timeouts."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import numpy as np
import pytest
from sklearn_server.batching import Batcher
from sklearn_server.errors import BadRequestError, ModelFailedError, PredictionTimeoutError
from sklearn_server.loaders.calling import checked_method

T = TypeVar("T")


class RecordingModel:
    """Sums each row; remembers the shape of every call, and on which thread it ran."""

    def __init__(self, seconds: float = 0.0) -> None:
        self.seconds = seconds
        self.calls: list[tuple[int, int]] = []
        self.threads: list[str] = []

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        self.calls.append(rows.shape)
        self.threads.append(threading.current_thread().name)
        if self.seconds:
            time.sleep(self.seconds)
        if np.isnan(rows).any():
            raise BadRequestError("the model rejected the input: NaN")
        if (rows < 0).any():
            raise RuntimeError("a bug in the model")
        summed: np.ndarray = rows.sum(axis=1)
        return summed


def run(coroutine_factory: Callable[[], Awaitable[T]]) -> T:
    async def main() -> T:
        return await coroutine_factory()

    return asyncio.run(main())


def rows(n: int, width: int = 4, value: float = 1.0) -> np.ndarray:
    return np.full((n, width), value)


def test_concurrent_requests_share_predict_calls() -> None:
    model = RecordingModel()
    batcher = Batcher(model)
    inputs = [rows(n) for n in range(1, 21)]

    results = run(lambda: asyncio.gather(*(batcher.predict(x) for x in inputs)))

    assert len(model.calls) < len(inputs)
    assert [r.tolist() for r in results] == [x.sum(axis=1).tolist() for x in inputs]
    batcher.close()


def test_a_batch_never_holds_more_than_max_rows() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_rows=10)

    run(lambda: asyncio.gather(*(batcher.predict(rows(3)) for _ in range(12))))

    assert all(n <= 10 for n, _ in model.calls)
    assert sum(n for n, _ in model.calls) == 36
    batcher.close()


def test_a_request_larger_than_max_rows_is_predicted_alone_and_whole() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_rows=10)

    big, small = run(lambda: asyncio.gather(batcher.predict(rows(25, value=2.0)), batcher.predict(rows(2))))

    assert (25, 4) in model.calls
    assert big.tolist() == [8.0] * 25
    assert small.tolist() == [4.0] * 2
    batcher.close()


def test_requests_of_different_widths_are_never_concatenated() -> None:
    model = RecordingModel()
    batcher = Batcher(model)
    inputs = [rows(2, width=3), rows(2, width=5), rows(1, width=3), rows(3, width=5)]

    results = run(lambda: asyncio.gather(*(batcher.predict(x) for x in inputs)))

    assert sorted(model.calls) == [(3, 3), (5, 5)]
    assert [r.tolist() for r in results] == [[3.0] * 2, [5.0] * 2, [3.0], [5.0] * 3]
    batcher.close()


def test_one_bad_request_does_not_fail_the_requests_batched_with_it() -> None:
    batcher = Batcher(RecordingModel())
    inputs = [rows(2), rows(1, value=np.nan), rows(3), rows(1, value=-1.0)]

    outcomes = run(lambda: asyncio.gather(*(batcher.predict(x) for x in inputs), return_exceptions=True))

    first, bad, third, failing = outcomes
    assert isinstance(first, np.ndarray)
    assert first.tolist() == [4.0, 4.0]
    assert isinstance(bad, BadRequestError)
    assert isinstance(third, np.ndarray)
    assert third.tolist() == [4.0] * 3
    assert isinstance(failing, ModelFailedError)
    assert isinstance(failing.__cause__, RuntimeError)
    batcher.close()


def test_a_model_returning_the_wrong_number_of_rows_cannot_misalign_answers() -> None:
    class DropsARow:
        def predict(self, x: np.ndarray) -> np.ndarray:
            return np.zeros(len(x) - 1)

    batcher = Batcher(checked_method(DropsARow(), "predict"))

    outcomes = run(
        lambda: asyncio.gather(batcher.predict(rows(2)), batcher.predict(rows(3)), return_exceptions=True)
    )

    assert all(isinstance(outcome, ModelFailedError) for outcome in outcomes)
    batcher.close()


def test_an_unmeasured_model_runs_on_the_predict_thread() -> None:
    model = RecordingModel()
    batcher = Batcher(model)

    run(lambda: batcher.predict(rows(1)))

    assert model.threads[0].startswith("predict")
    batcher.close()


def test_a_fast_model_moves_onto_the_event_loop() -> None:
    model = RecordingModel()
    batcher = Batcher(model)

    async def sequentially() -> None:
        for _ in range(5):
            await batcher.predict(rows(1))

    run(sequentially)

    assert batcher.runs_inline
    assert model.threads[-1] == threading.main_thread().name
    batcher.close()


def test_a_slow_model_stays_off_the_event_loop() -> None:
    model = RecordingModel(seconds=0.6)
    batcher = Batcher(model)
    ticks: list[float] = []

    async def tick_while_predicting() -> None:
        async def ticker() -> None:
            for _ in range(10):
                ticks.append(time.monotonic())
                await asyncio.sleep(0.05)

        await asyncio.gather(batcher.predict(rows(1)), batcher.predict(rows(1)), ticker())
        await batcher.predict(rows(1))

    run(tick_while_predicting)

    assert not batcher.runs_inline
    assert all(name.startswith("predict") for name in model.threads)
    # Ticks are 0.05 s apart; a predict on the loop would hold one back 0.6 s. The bound is generous.
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5
    batcher.close()


def test_a_large_request_to_a_model_measured_fast_per_row_moves_onto_the_event_loop() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_rows=10)

    async def sequentially() -> None:
        for _ in range(3):
            await batcher.predict(rows(100))

    run(sequentially)

    assert model.threads[0].startswith("predict")  # not measured yet
    assert model.threads[-1] == threading.main_thread().name
    batcher.close()


def test_a_large_request_predicted_to_take_over_the_threshold_stays_on_the_thread() -> None:
    model = RecordingModel(seconds=0.01)  # 100 rows in 10 ms: predicted at 10 ms the next time too
    batcher = Batcher(model, max_rows=10)

    async def sequentially() -> None:
        for _ in range(3):
            await batcher.predict(rows(100))

    run(sequentially)

    assert [name.startswith("predict") for name in model.threads] == [True, True, True]
    batcher.close()


def test_a_prediction_over_the_timeout_fails_with_504_and_the_next_one_is_served() -> None:
    model = RecordingModel(seconds=0.3)
    batcher = Batcher(model, timeout_s=0.1)

    async def slow_then_next() -> tuple[BaseException | np.ndarray, np.ndarray]:
        first = await asyncio.gather(batcher.predict(rows(1)), return_exceptions=True)
        model.seconds = 0.0
        await asyncio.sleep(0.3)  # the timed-out predict still runs to its end on the thread
        return first[0], await batcher.predict(rows(1))

    first, second = run(slow_then_next)

    assert isinstance(first, PredictionTimeoutError)
    assert first.status == 504
    assert second.tolist() == [4.0]
    batcher.close()


def test_a_batch_wait_gathers_requests_that_arrive_one_after_another() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_wait_ms=50)

    async def staggered() -> list[np.ndarray]:
        async def later(delay: float) -> np.ndarray:
            await asyncio.sleep(delay)
            return await batcher.predict(rows(1))

        return await asyncio.gather(*(later(i * 0.005) for i in range(5)))

    results = run(staggered)

    assert len(model.calls) == 1
    assert [r.tolist() for r in results] == [[4.0]] * 5
    batcher.close()


def test_a_full_batch_does_not_wait_for_the_batch_wait() -> None:
    model = RecordingModel()
    batcher = Batcher(model, max_wait_ms=10_000, max_rows=4)

    started = time.monotonic()
    run(lambda: asyncio.gather(*(batcher.predict(rows(1)) for _ in range(4))))

    assert time.monotonic() - started < 5.0  # half the batch wait: generous for a busy machine
    batcher.close()


@pytest.mark.parametrize("size", [1, 7, 50])
def test_each_request_gets_its_own_rows_back(size: int) -> None:
    batcher = Batcher(lambda x: x[:, 0] * 10)
    inputs = [np.arange(i, i + size * 4, dtype=float).reshape(size, 4) for i in range(0, 400, 40)]

    results = run(lambda: asyncio.gather(*(batcher.predict(x) for x in inputs)))

    assert [r.tolist() for r in results] == [(x[:, 0] * 10).tolist() for x in inputs]
    batcher.close()
