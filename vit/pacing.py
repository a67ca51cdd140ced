"""Pacing a training run to the machine it runs on: threads chosen by measurement, epochs sized to a budget.

Both measure the real optimiser step (augmentation, forward, backward, AdamW, EMA) on a throwaway copy of
the model, so the run itself starts from the same weights and random state as without them.
"""

import copy
import math
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from . import probes
from .analysis import predict_split
from .data import Split
from .model import ViT
from .preprocess import to_model_input
from . import distributed
from .optimiser import make_optimizer, save_checkpoint
from .recipe import Recipe
from .training import train_step

PROBE_STEPS = 8     # timed steps per measurement, after WARMUP_STEPS untimed ones
WARMUP_STEPS = 2
PICTURES = 3_010    # pictures the evaluation after training draws and preprocesses (evaluation_reserve)
UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_budget(text: str) -> float:
    """A duration such as "90s", "3m", "1.5h" or "200" (seconds) in seconds; ValueError for anything else."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text.lower())
    if not found or float(found.group(1)) <= 0:
        raise ValueError(f"{text!r} is not a duration: write e.g. 90s, 3m or 1.5h")
    return float(found.group(1)) * UNITS[found.group(2) or "s"]


class Probe:
    """A throwaway copy of the model with its EMA and optimizer, stepped as train() steps the real one, so the
    run itself starts from the same weights and random state as without the measurement."""

    def __init__(self, model: ViT, recipe: Recipe, split: Split, device: torch.device):
        self.model = copy.deepcopy(model).to(device).train()
        self.ema = copy.deepcopy(self.model)
        self.optimizer = make_optimizer(self.model, recipe)
        self.recipe, self.split, self.generator = recipe, split, torch.Generator().manual_seed(0)

    def step(self) -> None:
        """As train() does it: a batch indexed out of the split, one step, the right answers read back."""
        size = min(self.recipe.batch_size, len(self.split))
        index = torch.randint(len(self.split), (size,), generator=self.generator)
        images, labels = self.split.batch(index)
        train_step(self.model, self.ema, self.optimizer, self.recipe, images, labels, lr=self.recipe.lr,
                   ema_decay=0.99, generator=self.generator)[1].item()


def seconds_per_step(model: ViT, recipe: Recipe, split: Split, device: torch.device, steps: int = PROBE_STEPS,
                     give_up: float = math.inf) -> float:
    """The mean time of one training step at the recipe's batch size, on a copy of the model; once the timed
    steps have taken `give_up` seconds the mean so far is returned (a slow candidate need not finish)."""
    run = Probe(model, recipe, split, device).step
    for _ in range(WARMUP_STEPS):
        run()
    started = time.perf_counter()
    for done in range(1, steps + 1):
        run()
        if time.perf_counter() - started > give_up:
            break
    return (time.perf_counter() - started) / done


def choose_threads(model: ViT, recipe: Recipe, split: Split, device: torch.device,
                   candidates: tuple[int, ...] = (1, 2)) -> tuple[int, dict[int, float]]:
    """Time a few steps on each thread count this machine has and keep the fastest (left set); returns it and
    the seconds per step of each. On shared cores two threads can be many times slower than one: measured, not
    assumed, and a candidate is cut short once it has taken twice the best one's time."""
    timings = {}
    for threads in (t for t in candidates if t <= (os.cpu_count() or 1)):
        torch.set_num_threads(threads)
        best = min(timings.values(), default=math.inf) * PROBE_STEPS
        timings[threads] = seconds_per_step(model, recipe, split, device, give_up=2 * best)
    best = min(timings, key=timings.get)
    torch.set_num_threads(best)
    return best, timings


def validation_seconds(model: ViT, split: Split) -> float:
    """The time of one pass over the validation split, as train() makes after every epoch."""
    started = time.perf_counter()
    predict_split(model, split)
    return time.perf_counter() - started


def checkpoint_seconds(model: ViT, recipe: Recipe, split: Split, device: torch.device) -> float:
    """The time of one checkpoint as train() writes after every epoch (model, EMA and the optimizer's state,
    which exists once it has stepped): with short epochs, hundreds of them add up."""
    probe = Probe(model, recipe, split, device)
    probe.step()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "probe.safetensors"
        write = lambda: save_checkpoint(path, probe.model, probe.ema, probe.optimizer, {"epoch": 1})  # noqa: E731
        write()  # untimed: the first write opens the library
        started = time.perf_counter()
        write()
        return time.perf_counter() - started


def epochs_for_budget(budget: float, step_seconds: float, steps_per_epoch: int, validation: float,
                      reserve: float, checkpoint: float = 0.0) -> int:
    """Whole epochs that fit: each costs its steps, a validation pass and a checkpoint, and `reserve` seconds
    are kept for the evaluation after training. At least one."""
    per_epoch = step_seconds * steps_per_epoch + validation + checkpoint
    return max(1, math.floor((budget - reserve) / per_epoch))


def picture_seconds(split: Split, count: int = 10) -> float:
    """The time to draw one digit on a page and preprocess it, as the evaluation does some 3,000 times."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for index in range(count):
        to_model_input(probes.on_canvas(split.images[index, 0].numpy(), rng))
    return (time.perf_counter() - started) / count


def evaluation_reserve(validation: float, picture: float) -> float:
    """Seconds to keep for writing the model folder: the test split (twice the validation split), fitting the
    temperature and the limits (the validation split again), about six validation passes in all; the pictures
    it draws and preprocesses (vit.validation and vit.rendered: 1,000 validation and 1,000 test digits on a
    page, 300 that are not digits, 710 typed and drawn ones); a few seconds of writing."""
    return 6 * validation + PICTURES * picture + 3


@dataclass(frozen=True)
class Plan:
    recipe: Recipe   # the recipe to train with: with a budget, the epochs that fit
    pacing: dict     # what was chosen and measured, as evaluation.json's "pacing" records it


def plan(model: ViT, recipe: Recipe, train_split: Split, val_split: Split, device: torch.device, *,
         threads: int | None, budget: float | None, resumed_epochs: int | None, started: float,
         team: distributed.Team = distributed.ALONE) -> Plan:
    """Threads by measurement unless given (under torchrun: the machine's cores shared out), and with a budget
    (seconds since `started`, a time.perf_counter() value) the epochs that fit; a resumed run keeps the epochs
    its checkpoint planned (`resumed_epochs`)."""
    paced = {"threads": threads or 1}
    if team.shared:
        paced["threads"] = threads or max(1, (os.cpu_count() or 1) // team.local_size)
        torch.set_num_threads(paced["threads"])
    elif device.type == "cpu" and threads is None:
        paced["threads"], timings = choose_threads(model, recipe, train_split, device)
        paced["seconds_per_step_by_threads"] = {str(t): round(v, 5) for t, v in timings.items()}
        print(f"threads: {', '.join(f'{t}: {v * 1000:.0f} ms/step' for t, v in timings.items())} -> "
              f"{paced['threads']}", file=sys.stderr)
    if not budget:
        return Plan(recipe, paced)
    epochs = resumed_epochs
    if epochs is None:
        measured = _measure_epoch(model, recipe, train_split, val_split, device)
        epochs = epochs_for_budget(budget - (time.perf_counter() - started), **measured)  # loading counts too
        paced |= {"seconds_per_step": round(measured["step_seconds"], 5),
                  "validation_seconds": round(measured["validation"], 2),
                  "checkpoint_seconds": round(measured["checkpoint"], 3), "reserve_seconds": round(measured["reserve"], 1)}
        print(f"budget {budget:.0f} s: {measured['step_seconds'] * 1000:.1f} ms/step × {measured['steps_per_epoch']} "
              f"steps + {measured['validation']:.1f} s validation + {measured['checkpoint']:.2f} s checkpoint per epoch, "
              f"{measured['reserve']:.0f} s kept for the evaluation -> {epochs} epochs", file=sys.stderr)
    paced |= {"budget_seconds": budget, "planned_epochs": epochs}
    return Plan(replace(recipe, epochs=epochs), paced)


def _measure_epoch(model: ViT, recipe: Recipe, train_split: Split, val_split: Split, device: torch.device) -> dict:
    """What one epoch costs and what the evaluation after training needs: epochs_for_budget's arguments."""
    step = seconds_per_step(model, recipe, train_split, device)
    validation = validation_seconds(model, val_split)
    checkpoint = checkpoint_seconds(model, recipe, train_split, device)
    return {"step_seconds": step, "steps_per_epoch": math.ceil(len(train_split) / recipe.batch_size),
            "validation": validation, "checkpoint": checkpoint,
            "reserve": evaluation_reserve(validation, picture_seconds(val_split))}
