"""Micro-batching: callers on many threads each hand in one input and wait; a worker runs them together.

A web server reads one picture per request, but a forward pass over 16 pictures costs far less than 16 passes
of one. A `Batcher` wraps a function of a list (inputs in, one result per input out, in order): each call puts
its input in a queue and waits; a worker (one per core) takes everything waiting (up to `max_batch`), runs the
function once and hands each caller its own row. There is no waiting window: a caller alone is run at once, and
callers who arrive while a batch runs form the next one, so the batch grows with the load and no caller waits for
company.

`VIT_MAX_BATCH` sets the largest batch for every batcher (`MAX_BATCH` by default); 1 turns batching off: each
call then runs its function on the caller's own thread, exactly as an unbatched read would.
"""

import os
import queue
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

MAX_BATCH = 32  # inputs in one pass: past this a pass of 28x28 pictures gains nothing per picture on a CPU
# Passes that may run at once, one per core: a busy server's threads hold the GIL between torch's operations, so a
# single worker would wait for it at every step while the callers queue behind it.
WORKERS = 2
IDLE_SECONDS = 30  # a worker with nothing to do this long ends: a forgotten model's batcher keeps no thread
MAX_BATCH_VARIABLE = "VIT_MAX_BATCH"

Input, Result = TypeVar("Input"), TypeVar("Result")


def max_batch() -> int:
    """The largest batch: $VIT_MAX_BATCH when it is a whole number of at least 1, else MAX_BATCH."""
    value = os.environ.get(MAX_BATCH_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) >= 1 else MAX_BATCH


def lower_priority(steps: int) -> None:
    """Lower the calling thread's scheduling priority by `steps` nice levels, so that the server's other threads
    (the event loop, the labels) come first when the cores are busy. On Linux a thread's nice value is its own
    (setpriority(2) with the thread's id); elsewhere, or where it is refused, the thread keeps its priority."""
    if steps <= 0 or not sys.platform.startswith("linux"):  # elsewhere the id would name a process, not a thread
        return
    try:
        thread = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, thread, min(os.getpriority(os.PRIO_PROCESS, thread) + steps, 19))
    except OSError:
        pass


@dataclass
class _Call(Generic[Input, Result]):
    """One caller's input, and its result or error once the worker has run it."""
    input: Input
    done: threading.Event = field(default_factory=threading.Event)
    result: Result | None = None
    error: BaseException | None = None


@dataclass
class Counts:
    """What a batcher has done: passes run and inputs served (inputs / passes is the mean batch)."""
    passes: int = 0
    inputs: int = 0
    largest: int = 0


class Batcher(Generic[Input, Result]):
    """Calls of `run(list of inputs) -> list of results` gathered across threads; `batcher(x)` is `run([x])[0]`."""

    def __init__(self, run: Callable[[list[Input]], list[Result]], limit: int | None = None, name: str = "batcher",
                 workers: int = WORKERS, idle: float = IDLE_SECONDS, nice: int = 0):
        self._run, self.limit, self._name, self._workers, self._idle = run, limit or max_batch(), name, workers, idle
        self.nice = nice  # how much lower than the server's own threads the workers run (0: the same)
        self._waiting: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        self._lock = threading.Lock()  # guards the counts and the count of workers alive
        self.alive = 0  # workers running now
        self.counts = Counts()

    def __call__(self, item: Input) -> Result:
        if self.limit == 1:  # batching off: the caller's own thread, one input per pass
            self._count(1)
            return self._run([item])[0]
        call = _Call(item)
        self._waiting.put(call)  # before the start: a worker about to end for idling finds it waiting
        self._start()
        call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result

    def _start(self) -> None:
        """Workers up to their number: started on first use (no work at import time) and again after idling."""
        with self._lock:
            while self.alive < self._workers:
                self.alive += 1
                threading.Thread(target=self._serve, name=f"{self._name} {self.alive}", daemon=True).start()

    def _count(self, size: int) -> None:
        with self._lock:
            self.counts.passes += 1
            self.counts.inputs += size
            self.counts.largest = max(self.counts.largest, size)

    def _serve(self) -> None:
        lower_priority(self.nice)
        while True:
            try:
                calls = [self._waiting.get(timeout=self._idle)]  # sleeps until someone calls
            except queue.Empty:
                with self._lock:
                    if self._waiting.empty():
                        self.alive -= 1
                        return
                continue
            while len(calls) < self.limit:
                try:
                    calls.append(self._waiting.get_nowait())
                except queue.Empty:
                    break
            self._count(len(calls))
            try:
                results = self._run([call.input for call in calls])
                for call, result in zip(calls, results, strict=True):
                    call.result = result
            except Exception as error:  # every caller of the batch hears of it; the worker carries on
                for call in calls:
                    call.error = error
            for call in calls:
                call.done.set()
