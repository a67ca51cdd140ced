"""The training loop: augmented batches, AdamW and the weight average, validation after every epoch, and a
checkpoint after each so a stopped run resumes where it was.

Speed on a small CPU comes from choices each measured (`python -m bench` times each against what it
replaced): batches indexed from one in-memory uint8 tensor, augmentation of a whole batch at once
(vit.augment), fused AdamW and EMA updates (vit.optimiser), and one thread per run.
"""

import contextlib
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from . import distributed
from .analysis import predict_split
from .augment import augment
from .data import Split
from .distributed import ALONE, Team
from .model import ViT
from .optimiser import ema_decay_at, learning_rate, load_checkpoint, make_optimizer, save_checkpoint, update_ema
from .outliers import Source as OutlierSource
from .outliers import pool as non_digits  # by another name: `outliers` is what train_step calls the batch
from .recipe import Recipe


def train_step(model: ViT, ema: ViT, optimizer: torch.optim.Optimizer, recipe: Recipe, images: torch.Tensor,
               labels: torch.Tensor, *, lr: float, ema_decay: float, generator: torch.Generator,
               autocast: contextlib.AbstractContextManager = contextlib.nullcontext(),
               outliers: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on an augmented batch, then the EMA update; returns (loss, number right).

    With `outliers` (non-digits, vit.outliers), augmented alike and read in the same pass, the loss adds
    recipe.outliers × their cross-entropy to the uniform answer: outlier exposure (Hendrycks et al. 2019)."""
    device = next(model.parameters()).device
    images = augment(images, recipe, generator, labels)
    if outliers is not None:
        images = torch.cat([images, augment(outliers, recipe, generator)])
    images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast:
        logits = model(images).float()
        others, logits = logits[len(labels):], logits[:len(labels)]
        loss = F.cross_entropy(logits, labels, label_smoothing=recipe.label_smoothing)
        if outliers is not None:
            loss = loss - recipe.outliers * others.log_softmax(-1).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    update_ema(ema, model, ema_decay)
    return loss.detach(), (logits.argmax(-1) == labels).sum()


OUTLIER_POOL = 12_000  # non-digits made per run (at most a quarter of the digits): seconds to make


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the last complete checkpoint is on disk."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


class Trained(NamedTuple):
    model: ViT            # the weight average (EMA), in eval mode: the weights kept and evaluated
    history: list[dict]   # per epoch: epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds
    seconds: float        # training time, validation included


@dataclass
class _Run:
    """What every step of a run needs: the model and its average, the optimiser and the schedule."""
    model: ViT
    net: torch.nn.Module               # the model, wrapped for a team of processes
    ema: ViT
    optimizer: torch.optim.Optimizer
    recipe: Recipe
    team: Team
    steps_per_epoch: int
    autocast: contextlib.AbstractContextManager
    outliers: torch.Tensor | None      # (N, 1, H, W) uint8 non-digits for outlier exposure, or None

    def outlier_batch(self, generator: torch.Generator) -> torch.Tensor | None:
        """Half a batch of the non-digits, drawn at random, in [0, 1]; None without outlier exposure."""
        if self.outliers is None:
            return None
        index = torch.randint(len(self.outliers), (max(1, self.recipe.batch_size // 2),), generator=generator)
        return self.outliers[index].float().div_(255)

    def learning_rate(self, step: int) -> float:
        total = self.recipe.epochs * self.steps_per_epoch
        return learning_rate(step, total, int(self.recipe.warmup_epochs * self.steps_per_epoch), self.recipe.lr)


def train(model: ViT, train_split: Split, val_split: Split, recipe: Recipe, *, device: torch.device,
          checkpoint: Path, resume: bool = False, progress: bool = True,
          on_epoch: Callable[[dict], None] | None = None, team: Team = ALONE,
          outliers: OutlierSource = OutlierSource()) -> Trained:
    """Train with the recipe; returns the EMA model, the per-epoch history and the training seconds.

    The history follows the validation split (carved out of the training images): the test split is not
    looked at during training.

    In a team of processes (vit.distributed) each takes its share of every batch and the leader alone
    validates, writes the checkpoint and keeps the history; the others return an empty one.
    `on_epoch(record)` runs after each epoch's checkpoint is on disk; raising Interrupted there stops cleanly.
    `outliers` says what recipe.outliers' non-digits (or non-garments) are made from.
    """
    model.to(device)
    ema = ViT(**model.config).to(device)
    ema.load_state_dict(model.state_dict())
    optimizer = make_optimizer(model, recipe)
    history, start_epoch, seconds = [], 0, 0.0
    if resume:  # every process reads the leader's checkpoint
        state = load_checkpoint(checkpoint, model, ema, optimizer)
        history, start_epoch, seconds = state["history"], state["epoch"], state["seconds"]
    run = _Run(model, distributed.wrap(model, team), ema, optimizer, recipe, team,
               distributed.steps_per_epoch(len(train_split), recipe.batch_size, team),
               torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"),
               _outlier_pool(recipe, train_split, outliers))
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for epoch in range(start_epoch, recipe.epochs):
            started = time.perf_counter()
            loss, accuracy = _train_epoch(run, epoch, train_split, progress)
            if not team.leads:
                continue
            seconds += time.perf_counter() - started
            history.append(_validated(ema, val_split, epoch, loss, accuracy, seconds, recipe.epochs))
            save_checkpoint(checkpoint, model, ema, optimizer,
                            {"epoch": epoch + 1, "history": history, "seconds": seconds,
                             "config": model.config, "recipe": asdict(recipe)})
            if on_epoch:
                on_epoch(history[-1])
        distributed.wait_for_all(team)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return Trained(ema.eval(), history if team.leads else [], seconds)


def _outlier_pool(recipe: Recipe, split: Split, source: OutlierSource) -> torch.Tensor | None:
    """The outliers of outlier exposure, made once per run (a digit model's pairs from its training digits), or
    None."""
    if not recipe.outliers:
        return None
    digits = split.images[:, 0] if source.digits is None else source.digits
    made = non_digits(min(OUTLIER_POOL, len(split) // 4), digits, seed=recipe.seed, framing=source.framing,
                      kinds=source.kinds)
    return made.mul(255).round().to(torch.uint8)[:, None]


def _train_epoch(run: _Run, epoch: int, split: Split, progress: bool) -> tuple[float, float]:
    """One pass over the training split in this process's share; (the last batch's loss, the epoch's accuracy)."""
    recipe, team = run.recipe, run.team
    generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)  # resumable shuffles
    order = torch.randperm(len(split), generator=generator)  # the same on every process
    if team.rank:  # each process augments its own images with its own random numbers
        generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch + 7_919 * team.rank)
    run.model.train()
    correct = seen = 0
    bar = tqdm(range(run.steps_per_epoch), desc=f"epoch {epoch + 1}/{recipe.epochs}",
               disable=not progress or not team.leads, leave=False, file=sys.stderr)
    for step_in_epoch in bar:
        step = epoch * run.steps_per_epoch + step_in_epoch
        index = order[step_in_epoch * recipe.batch_size:(step_in_epoch + 1) * recipe.batch_size]
        images, labels = split.batch(distributed.share(index, team))
        loss, right = train_step(run.net, run.ema, run.optimizer, recipe, images, labels, generator=generator,
                                 lr=run.learning_rate(step), ema_decay=ema_decay_at(recipe, step),
                                 autocast=run.autocast, outliers=run.outlier_batch(generator))
        correct += right.item()
        seen += len(labels)
        if step_in_epoch % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / seen:.3f}")
    correct, seen = distributed.total([correct, seen], team)
    return loss.item(), correct / seen


def _validated(ema: ViT, val_split: Split, epoch: int, loss: float, accuracy: float, seconds: float,
               epochs: int) -> dict:
    """The epoch's history record, with the weight average's loss and accuracy on the validation split."""
    probabilities, losses = predict_split(ema, val_split)
    record = {"epoch": epoch + 1, "train_loss": round(loss, 4), "train_accuracy": round(accuracy, 5),
              "val_loss": round(losses.mean().item(), 5),
              "val_accuracy": round((probabilities.argmax(-1) == val_split.labels).float().mean().item(), 5),
              "seconds": round(seconds, 1)}
    tqdm.write(f"epoch {epoch + 1:3d}/{epochs}  train loss {record['train_loss']:.4f}  train acc {accuracy:.4f}  "
               f"validation acc {record['val_accuracy']:.4f}  [{seconds:.0f}s]", file=sys.stderr)
    return record
