"""The micro-batcher: concurrent requests share model calls, each gets its own rows back, errors reach everyone."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from emotion_batch.exceptions import ConfigError
from emotion_batch.serve.batcher import MicroBatcher


class _Model:
    """Returns each input row's id in column 0 and records the batch sizes it was called with."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.threads: set[int] = set()
        self.fail = fail

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        self.calls.append(len(batch))
        self.threads.add(threading.get_ident())
        if self.fail:
            raise ValueError("model broke")
        return np.repeat(batch[:, :1].astype(np.float32), 7, axis=1)


def _faces(start: int, n: int) -> np.ndarray:
    return np.arange(start, start + n, dtype=np.float32)[:, None]


def test_concurrent_requests_go_in_one_call_and_get_their_own_rows():
    model = _Model()
    batcher = MicroBatcher(model, wait_ms=50)

    async def main():
        sizes = [1, 3, 2, 1, 5]
        starts = np.cumsum([0] + sizes[:-1]) * 10
        outs = await asyncio.gather(*(batcher.predict(_faces(int(s), n)) for s, n in zip(starts, sizes)))
        await batcher.stop()
        return sizes, starts, outs

    sizes, starts, outs = asyncio.run(main())
    assert model.calls == [sum(sizes)]
    for s, n, out in zip(starts, sizes, outs):
        assert out.shape == (n, 7)
        np.testing.assert_array_equal(out[:, 0], np.arange(s, s + n))
    assert model.threads and threading.get_ident() not in model.threads  # the model runs off the event loop
    assert batcher.stats.as_dict()["mean_requests_per_call"] == 5.0


def test_max_batch_splits_calls_and_keeps_order():
    model = _Model()
    batcher = MicroBatcher(model, max_batch=4, wait_ms=50)

    async def main():
        outs = await asyncio.gather(*(batcher.predict(_faces(10 * i, 3)) for i in range(4)))
        big = await batcher.predict(_faces(100, 9))  # one request larger than max_batch still goes whole
        await batcher.stop()
        return outs, big

    outs, big = asyncio.run(main())
    assert model.calls == [3, 3, 3, 3, 9]
    for i, out in enumerate(outs):
        np.testing.assert_array_equal(out[:, 0], [10 * i, 10 * i + 1, 10 * i + 2])
    assert big.shape == (9, 7)


def test_a_lone_request_waits_at_most_the_window():
    model = _Model()
    batcher = MicroBatcher(model, wait_ms=20)

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await batcher.predict(_faces(0, 1))
        elapsed = loop.time() - t0
        await batcher.stop()
        return elapsed

    assert asyncio.run(main()) < 1.0
    assert model.calls == [1]


def test_model_errors_reach_every_waiting_request_and_the_batcher_goes_on():
    model = _Model(fail=True)
    batcher = MicroBatcher(model, wait_ms=30)

    async def main():
        results = await asyncio.gather(batcher.predict(_faces(0, 1)), batcher.predict(_faces(1, 2)),
                                       return_exceptions=True)
        model.fail = False
        after = await batcher.predict(_faces(5, 1))
        await batcher.stop()
        return results, after

    results, after = asyncio.run(main())
    assert all(isinstance(r, ValueError) for r in results)
    assert after[0, 0] == 5


def test_a_new_event_loop_gets_a_working_batcher():
    model = _Model()
    batcher = MicroBatcher(model, wait_ms=0)
    for i in range(2):  # e.g. one test client after another
        out = asyncio.run(batcher.predict(_faces(i, 1)))
        assert out[0, 0] == i


def test_bad_settings_name_the_argument():
    with pytest.raises(ConfigError, match="max_batch"):
        MicroBatcher(_Model(), max_batch=0)
    with pytest.raises(ConfigError, match="wait_ms"):
        MicroBatcher(_Model(), wait_ms=-1)


def test_no_waiting_when_nothing_else_is_on_its_way():
    model = _Model()
    batcher = MicroBatcher(model, wait_ms=2000, more_coming=lambda: False)

    async def main():
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        await batcher.predict(_faces(0, 1))
        elapsed = loop.time() - t0
        await batcher.stop()
        return elapsed

    assert asyncio.run(main()) < 1.0  # not the 2 s window
