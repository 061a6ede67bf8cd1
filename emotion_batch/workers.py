"""Worker processes of the local engine that never hang a run, and never outlive it.

``WorkerPool`` runs a function over items in a few worker processes, several items per round trip.
Each worker has its own task queue and its own result pipe, and sends every result as soon as it has
it, so the parent always knows which item a worker was holding. The parent waits on the result pipes
*and* on the processes themselves (their sentinels), so a worker that dies (``kill -9``, the kernel's
out-of-memory killer, a crash inside a native decoder) is noticed at once:

- the item it was working on is retried once, alone, in a fresh worker; if that one dies on it too, the
  item's result is what ``died(item, how)`` makes of it (the batch job records the image as failed);
- the items it had not reached yet go to the other workers again; results it had sent are kept.

``close`` ends every worker (politely, then ``SIGTERM``, then ``SIGKILL``) and waits for it; a worker
whose parent died (``kill -9`` of the run) notices within a second and exits on its own.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import queue
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from .exceptions import EngineError

log = logging.getLogger(__name__)

#: Seconds a worker waits for its next call before it checks that its parent is still alive.
_PARENT_CHECK_S = 1.0
#: Seconds ``close`` gives a worker to finish, and then to obey ``SIGTERM``, before ``SIGKILL``.
_CLOSE_GRACE_S = 5.0


def _worker_main(build: Callable[..., Callable[[Any], Any]], args: tuple, tasks: mp.Queue, results, parent: int) -> None:
    """A worker process: build the function once, then run it over each call's items, sending each result."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends its workers
    try:
        function = build(*args)
    except BaseException as exc:  # noqa: BLE001  the parent raises it; a worker must not die silently
        _send_error(results, exc)
        return
    results.send(("ready",))
    while True:
        try:
            call = tasks.get(timeout=_PARENT_CHECK_S)
        except queue.Empty:
            if os.getppid() != parent:  # the run was killed: do not outlive it
                return
            continue
        if call is None:
            return
        call_id, items = call
        for index, item in enumerate(items):
            try:
                result = function(item)
            except BaseException as exc:  # noqa: BLE001
                _send_error(results, exc)
                return
            try:
                results.send(("result", call_id, index, result))
            except (BrokenPipeError, EOFError, OSError):  # the parent is gone
                return


def _send_error(results, exc: BaseException) -> None:
    try:
        results.send(("error", exc))
    except Exception:  # noqa: BLE001  an exception that does not pickle: its text
        try:
            results.send(("error", EngineError(f"worker process failed: {type(exc).__name__}: {exc}")))
        except (BrokenPipeError, OSError):
            pass


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to change
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def describe_exit(exitcode: int | None) -> str:
    """How a process ended, in words: ``killed by SIGKILL``, ``exit code 3``."""
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


@dataclass
class _Call:
    """Items sent to one worker in one message: ``(serial, item)`` pairs; ``received`` results are back."""

    id: int
    items: list[tuple[int, Any]]
    received: int = 0


@dataclass
class _Slot:
    process: Any
    tasks: Any
    results: Any
    ready: bool = False
    calls: deque = field(default_factory=deque)


class WorkerPool:
    """``workers`` processes, each running ``build(*args)`` once and the function it returns over items.

    Args:
        workers: number of worker processes (at least 1).
        build: makes the function in each worker (picklable: a module-level class or function).
        args: the arguments of ``build`` (picklable).
        died: the result of an item that killed its worker ``retries + 1`` times: ``died(item, how)``,
            ``how`` saying how the last worker ended (``killed by SIGKILL``).
        weight: an item's share of ``call_bytes`` (a file's size).
        call_items, call_bytes: a call takes items until it holds this many, or this much weight.
        depth: calls in flight per worker (back-pressure: items are pulled from the input only as needed).
        retries: how many times an item that killed its worker is tried again, each time alone in a fresh worker.

    Attributes:
        deaths: worker processes that died during ``map``.
        given_up: items whose result came from ``died``.
    """

    def __init__(self, workers: int, build: Callable[..., Callable[[Any], Any]], args: tuple, *,
                 died: Callable[[Any, str], Any], weight: Callable[[Any], int] = lambda item: 0,
                 call_items: int = 32, call_bytes: int = 1 << 20, depth: int = 3, retries: int = 1) -> None:
        if workers < 1:
            raise EngineError(f"workers must be 1 or more. Received: workers={workers!r}")
        self.build, self.args, self.died, self.weight = build, args, died, weight
        self.call_items, self.call_bytes, self.depth, self.retries = call_items, call_bytes, depth, retries
        self.context = mp.get_context("spawn")  # never fork a process that may hold TensorFlow threads
        self.deaths = 0
        self.given_up: list[Any] = []
        self._killed: dict[int, int] = {}  # serial -> workers that died holding it
        self._next_call = 0
        self._slots: list[_Slot] = []
        try:
            for _ in range(workers):
                self._slots.append(self._start())
        except BaseException:
            self.close(terminate=True)
            raise

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers."""
        return [s.process.pid for s in self._slots]

    def _start(self) -> _Slot:
        tasks = self.context.Queue()
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(target=_worker_main, args=(self.build, self.args, tasks, send, os.getpid()),
                                       name="emotion-batch-worker", daemon=True)
        with _sigint_ignored():  # inherited through exec: a Ctrl-C meant for the run never hits a starting worker
            process.start()
        send.close()  # only the worker writes: the parent sees end-of-file when it dies
        return _Slot(process, tasks, receive)

    def _send(self, slot: _Slot, items: list[tuple[int, Any]]) -> None:
        call = _Call(self._next_call, items)
        self._next_call += 1
        slot.calls.append(call)
        slot.tasks.put((call.id, [item for _, item in items]))

    def map(self, items: Iterable[Any]) -> Iterator[Any]:
        """Results of ``items``, in the order they finish (not the input's)."""
        source = iter(items)
        waiting: deque[list[tuple[int, Any]]] = deque()  # calls not yet sent (retried items first)
        serial = 0
        exhausted = False
        while True:
            # send waiting calls, and pull new ones from the input, while some worker has room
            while True:
                slot = min(self._slots, key=lambda s: len(s.calls))
                if len(slot.calls) >= self.depth:
                    break
                if not waiting:
                    if exhausted:
                        break
                    call, size = [], 0
                    for item in source:
                        call.append((serial, item))
                        serial += 1
                        size += self.weight(item)
                        if len(call) >= self.call_items or size >= self.call_bytes:
                            break
                    else:
                        exhausted = True
                    if not call:
                        break
                    waiting.append(call)
                self._send(slot, waiting.popleft())
            if exhausted and not waiting and not any(s.calls for s in self._slots):
                return
            by_object = {}
            for slot in self._slots:
                by_object[slot.results] = slot
                by_object[slot.process.sentinel] = slot
            for ready in wait(list(by_object), timeout=1.0):
                slot = by_object[ready]
                if slot not in self._slots:  # replaced earlier in this round
                    continue
                if ready is slot.results:
                    yield from self._receive(slot)
                else:
                    yield from self._bury(slot, waiting)

    def _receive(self, slot: _Slot, *, drain: bool = False) -> Iterator[Any]:
        """The results waiting on a worker's pipe (one message, or all of them with ``drain``)."""
        while True:
            if drain and not slot.results.poll(0):
                return
            try:
                message = slot.results.recv()
            except (EOFError, OSError):  # the worker died, possibly half-way through a message
                return
            kind = message[0]
            if kind == "ready":
                slot.ready = True
            elif kind == "result":
                _, call_id, index, result = message
                call = slot.calls[0]
                if call.id != call_id or call.received != index:  # a broken protocol, not a bad image
                    raise EngineError(f"worker sent result {call_id}/{index}, expected {call.id}/{call.received}")
                call.received += 1
                if call.received == len(call.items):
                    slot.calls.popleft()
                yield result
            elif kind == "error":
                raise message[1]
            else:
                raise EngineError(f"worker sent an unknown message. Received: kind={kind!r}")
            if not drain:
                return

    def _bury(self, slot: _Slot, waiting: deque) -> Iterator[Any]:
        """A worker died: keep what it had sent, retry what it held, start a fresh one in its place."""
        yield from self._receive(slot, drain=True)
        slot.process.join()
        how = describe_exit(slot.process.exitcode)
        self._discard(slot)
        self.deaths += 1
        if not slot.ready:
            raise EngineError(f"a worker process died while starting ({how}); the run stops here")
        fresh = self._start()
        self._slots[self._slots.index(slot)] = fresh
        if not slot.calls:
            log.warning("a worker process died while idle (%s); started a fresh one", how)
            return
        head = slot.calls[0]
        suspect_serial, suspect = head.items[head.received]
        rest = [head.items[head.received + 1:]] + [c.items for c in list(slot.calls)[1:]]
        for items in reversed([r for r in rest if r]):
            waiting.appendleft(items)
        killed = self._killed[suspect_serial] = self._killed.get(suspect_serial, 0) + 1
        if killed > self.retries:
            log.error("a worker process died again (%s) on the same item; giving up on it", how)
            self.given_up.append(suspect)
            yield self.died(suspect, how)
        else:
            log.warning("a worker process died (%s); retrying its item in a fresh worker", how)
            self._send(fresh, [(suspect_serial, suspect)])

    @staticmethod
    def _discard(slot: _Slot) -> None:
        slot.results.close()
        slot.tasks.close()
        slot.tasks.cancel_join_thread()  # a dead reader: never wait for its queue's feeder thread

    def close(self, *, terminate: bool = False) -> None:
        """End every worker and wait for it: let them finish (``terminate=False``) or stop them at once."""
        slots, self._slots = self._slots, []
        if not terminate:
            for slot in slots:
                try:
                    slot.tasks.put(None)
                except (OSError, ValueError):
                    pass
            for slot in slots:
                slot.process.join(_CLOSE_GRACE_S)
        for slot in slots:
            if slot.process.is_alive():
                slot.process.terminate()
        for slot in slots:
            slot.process.join(_CLOSE_GRACE_S)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()
            self._discard(slot)
