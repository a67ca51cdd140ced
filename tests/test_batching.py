"""Micro-batching (vit.batching): concurrent callers share passes, and a batched answer is the single one."""

import os
import sys
import threading
import time

import numpy as np
import pytest
import torch

from vit.analysis import explain, explain_many
from vit.batching import MAX_BATCH, MAX_BATCH_VARIABLE, Batcher, max_batch


def wait_for(condition, seconds: float = 10) -> None:
    """Poll until condition() holds (the worker thread gets there in its own time)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def test_callers_waiting_during_a_pass_share_the_next_one():
    gate, batches = threading.Event(), []

    def run(items):
        batches.append(list(items))
        if len(batches) == 1:
            gate.wait()  # the first pass is still running while the others call
        return [item * 10 for item in items]

    batcher = Batcher(run, limit=8, workers=1)
    results = {}
    callers = [threading.Thread(target=lambda i=i: results.__setitem__(i, batcher(i))) for i in range(6)]
    callers[0].start()
    wait_for(lambda: len(batches) == 1)
    for caller in callers[1:]:
        caller.start()
    wait_for(lambda: batcher._waiting.qsize() == 5)
    gate.set()
    for caller in callers:
        caller.join(10)
    assert results == {i: i * 10 for i in range(6)}  # each caller gets its own row
    assert batches == [[0], sorted(batches[1])] and sorted(batches[1]) == [1, 2, 3, 4, 5]
    assert (batcher.counts.passes, batcher.counts.inputs, batcher.counts.largest) == (2, 6, 5)


def test_a_batch_never_exceeds_its_limit_and_an_error_reaches_its_callers():
    gate = threading.Event()

    def run(items):
        gate.wait()
        if -1 in items:
            raise ValueError("bad input")
        return items

    batcher = Batcher(run, limit=2, workers=1)
    outcomes = {}

    def call(item):
        try:
            outcomes[item] = batcher(item)
        except ValueError as error:
            outcomes[item] = str(error)

    callers = [threading.Thread(target=call, args=(item,)) for item in (1, 2, 3, -1)]
    for caller in callers:
        caller.start()
    wait_for(lambda: batcher._waiting.qsize() + batcher.counts.inputs == 4)
    gate.set()
    for caller in callers:
        caller.join(10)
    assert batcher.counts.largest <= 2 and batcher.counts.inputs == 4
    assert outcomes[-1] == "bad input" and outcomes[1] in (1, "bad input")  # the worker carried on after the error


def test_batching_off_runs_on_the_callers_thread(monkeypatch):
    monkeypatch.setenv(MAX_BATCH_VARIABLE, "1")
    threads = []
    batcher = Batcher(lambda items: threads.append(threading.current_thread()) or items)
    assert batcher(5) == 5 and threads == [threading.current_thread()] and batcher.counts.passes == 1
    monkeypatch.setenv(MAX_BATCH_VARIABLE, "no")  # not a whole number: the default
    assert max_batch() == MAX_BATCH


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a thread's own nice value is Linux's")
def test_a_batchers_workers_run_below_the_callers_priority_and_the_caller_keeps_its_own():
    """The maps' batcher runs niced (vit.bundle.MAPS_NICE) so that labels come first on busy cores."""
    def priority() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    mine = priority()
    batcher = Batcher(lambda items: [priority() for _ in items], nice=3)
    assert batcher(None) == min(mine + 3, 19) and priority() == mine
    assert Batcher(lambda items: [priority() for _ in items])(None) == mine  # nice 0: the server's own priority


def test_idle_workers_end_and_a_later_call_starts_them_again():
    batcher = Batcher(lambda items: [item + 1 for item in items], workers=2, idle=0.05)
    assert batcher.alive == 0 and batcher(1) == 2 and batcher.alive == 2
    wait_for(lambda: batcher.alive == 0)  # no thread is kept for a model nobody reads
    assert batcher(2) == 3 and batcher.counts.passes == 2


def test_batched_reads_equal_single_reads(models):
    bundle = models["mnist-tiny"]
    images = [bundle.example(label).input for label in range(10)] + [np.zeros((28, 28), np.float32)]
    together = bundle.read_many(images)
    for image, batched in zip(images, together):
        alone = bundle.read_many([image])[0]
        torch.testing.assert_close(batched.probabilities, alone.probabilities, atol=1e-5, rtol=0)
        assert (batched.verdict is None) == (alone.verdict is None)
        if alone.verdict is not None:
            assert batched.verdict.refused == alone.verdict.refused
            for name, value in alone.verdict.scores.items():
                assert batched.verdict.scores[name] == pytest.approx(value, abs=1e-3)


def test_batched_explanations_equal_single_ones(tiny_model):
    torch.manual_seed(1)
    images = [torch.rand(28, 28), torch.zeros(28, 28), torch.rand(28, 28) * (torch.rand(28, 28) > 0.7)]
    for batched, image in zip(explain_many(tiny_model, images), images):
        alone = explain(tiny_model, image)
        assert batched.predicted == alone.predicted
        for name in ("probabilities", "attention", "cls_attention", "rollout", "saliency", "occlusion",
                     "occlusion_blocks"):
            torch.testing.assert_close(getattr(batched, name), getattr(alone, name), atol=1e-5, rtol=0, msg=name)


def test_concurrent_reads_of_a_model_share_passes_and_answer_each_caller(models, monkeypatch):
    bundle = models["mnist-tiny"]
    images = [bundle.example(label).input for label in range(10)] * 3
    expected = [bundle.read_many([image])[0].probabilities for image in images]
    gate = threading.Event()

    def gated(batch):  # the first pass waits until every other reader is queued: the sharing is certain
        gate.wait()
        return bundle.read_many(batch)

    batcher = Batcher(gated, limit=32, workers=1)
    monkeypatch.setattr(bundle, "_reads", batcher)
    answers = {}
    callers = [threading.Thread(target=lambda i=i: answers.__setitem__(i, bundle.read(images[i]).probabilities))
               for i in range(len(images))]
    for caller in callers:
        caller.start()
    wait_for(lambda: batcher._waiting.qsize() + batcher.counts.inputs == len(images))
    gate.set()
    for caller in callers:
        caller.join(30)
    for index, probabilities in enumerate(expected):  # each caller got its own picture's answer
        torch.testing.assert_close(answers[index], probabilities, atol=1e-5, rtol=0)
    assert (batcher.counts.passes, batcher.counts.inputs) == (2, len(images))  # 30 reads in 2 passes
