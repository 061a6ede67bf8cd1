"""An async micro-batcher: concurrent requests' faces go to the model in one call.

Requests put their face tensors on a queue; one consumer task takes the first waiting request, waits up to
``wait_ms`` for more (or until ``max_batch`` faces), and runs the model once on all of them in a worker
thread, so the event loop keeps accepting requests while the model runs. Under load the queue fills while
the model is busy, and the next call takes everything that arrived in the meantime.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..exceptions import ConfigError

log = logging.getLogger(__name__)


@dataclass
class BatchStats:
    """Counts since start: model calls, requests and faces they served, and the largest call."""

    calls: int = 0
    requests: int = 0
    faces: int = 0
    largest: int = 0

    def as_dict(self) -> dict:
        return {"calls": self.calls, "requests": self.requests, "faces": self.faces, "largest_batch": self.largest,
                "mean_requests_per_call": round(self.requests / self.calls, 2) if self.calls else 0.0}


class MicroBatcher:
    """Batches ``predict`` calls of concurrent coroutines.

    Args:
        predict: ``(n, ...) array -> (n, k) array``, called in a worker thread, one call at a time.
        max_batch: most faces in one call (a single larger request still goes whole, in one call).
        wait_ms: how long the first request of a batch waits for others; 0 takes only what is queued.
        more_coming: tells whether other requests are on their way (still decoding, say); when it says no,
            the batch goes at once instead of waiting out the window. ``None``: always wait.
    """

    def __init__(self, predict: Callable[[np.ndarray], np.ndarray], *, max_batch: int = 256,
                 wait_ms: float = 5.0, more_coming: Callable[[], bool] | None = None) -> None:
        if max_batch < 1:
            raise ConfigError(f"max_batch must be positive. Received: max_batch={max_batch!r}")
        if wait_ms < 0:
            raise ConfigError(f"wait_ms must be 0 or more. Received: wait_ms={wait_ms!r}")
        self._predict = predict
        self.max_batch = max_batch
        self.wait = wait_ms / 1000.0
        self._more_coming = more_coming or (lambda: True)
        self.stats = BatchStats()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: asyncio.Queue | None = None
        self._task: asyncio.Task | None = None

    def _ensure_started(self) -> asyncio.Queue:
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._task is None or self._task.done():
            # a new event loop (a test client per test) gets its own queue and consumer
            self._loop = loop
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._consume(self._queue), name="emotion-batch-micro-batcher")
        return self._queue

    async def start(self) -> None:
        self._ensure_started()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done() and task.get_loop() is asyncio.get_running_loop():
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    async def predict(self, faces: np.ndarray) -> np.ndarray:
        """The model's output for ``faces``, computed together with other requests waiting now."""
        if len(faces) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        queue = self._ensure_started()
        future = asyncio.get_running_loop().create_future()
        queue.put_nowait((faces, future))
        return await future

    async def _consume(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        carry = None  # a request that did not fit into the last call goes first into the next
        while True:
            items = [carry if carry is not None else await queue.get()]
            carry = None
            count = len(items[0][0])
            deadline = loop.time() + self.wait
            while count < self.max_batch:
                if not queue.empty():
                    item = queue.get_nowait()
                else:
                    remaining = deadline - loop.time()
                    if remaining <= 0 or not self._more_coming():
                        break
                    try:
                        item = await asyncio.wait_for(queue.get(), remaining)
                    except asyncio.TimeoutError:
                        break
                if count + len(item[0]) > self.max_batch:
                    carry = item
                    break
                items.append(item)
                count += len(item[0])
            items = [(faces, future) for faces, future in items if not future.done()]  # drop cancelled requests
            if not items:
                continue
            await self._run(items)

    async def _run(self, items: list) -> None:
        batch = items[0][0] if len(items) == 1 else np.concatenate([faces for faces, _ in items])
        try:
            out = await asyncio.to_thread(self._predict, batch)
        except Exception as exc:  # every waiting request gets the error; the consumer goes on
            log.exception("model call on %d faces failed", len(batch))
            for _, future in items:
                if not future.done():
                    future.set_exception(exc)
            return
        self.stats.calls += 1
        self.stats.requests += len(items)
        self.stats.faces += len(batch)
        self.stats.largest = max(self.stats.largest, len(batch))
        start = 0
        for faces, future in items:
            if not future.done():
                future.set_result(out[start : start + len(faces)])
            start += len(faces)
