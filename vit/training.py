"""The training recipe and loop, checkpoints, and the model folder the app reads.

Speed on a small CPU comes from choices each measured (README, "Speed"; `python -m bench` times each
against what it replaced): batches indexed from one in-memory uint8 tensor, augmentation of a whole batch
at once with the sampling grid built by one einsum, fused AdamW and EMA updates, and one thread per run.
"""

import contextlib
import copy
import functools
import json
import math
import os
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F
from huggingface_hub import EvalResult, ModelCard, ModelCardData
from safetensors.torch import load_file, safe_open, save_file
from tqdm.auto import tqdm

from . import distributed, faithfulness, rendered, validation
from .analysis import predict_split
from .bundle import NOUNS, SETTING_NAMES, Answers, load_folder, rewrite_choices, summarise, write_folder
from .data import Split
from .distributed import ALONE, Team
from .model import ViT
from .preprocess import FRAMINGS
from .tiling import cut_words, grid_shape


@dataclass
class Recipe:
    """How to train: optimiser, schedule, regularisation and augmentation."""
    epochs: int = 80
    batch_size: int = 128
    lr: float = 1e-3              # peak learning rate of AdamW
    weight_decay: float = 0.05    # on the Linear weights only
    warmup_epochs: float = 2.0    # linear warm-up, then cosine decay to zero
    label_smoothing: float = 0.1
    rotate: float = 15.0          # degrees, random in [-rotate, rotate]
    shift: float = 2.5            # pixels, random in [-shift, shift] on each axis
    scale: float = 0.15           # random zoom in [1 - scale, 1 + scale]
    thickness: float = 0.0        # strokes thickened or thinned: up to this share of one pixel's dilation/erosion
    elastic: float = 0.0          # pixels: a smooth random displacement field (elastic distortion) up to this size
    flip: float = 0.0             # chance of a left-right mirror image: for garments, never for digits (a mirrored 7)
    flag_ones: float = 0.0        # chance a training 1 gets a flag, as writers outside the US draw it: digits only
    ema_decay: float = 0.999      # the weights kept and evaluated are an exponential moving average
    seed: int = 0


DIGITS_ONLY = {"flag_ones"}  # recipe settings with no meaning for garments: a Fashion-MNIST card leaves them out


# Each preset: the architecture (ViT keyword arguments) and the recipe. README "Models" lists the results.
PRESETS: dict[str, tuple[dict, Recipe]] = {
    # Thickness, elastic distortion and a flag on half the 1s (issue 11: writers outside MNIST; without the flag
    # every out-of-MNIST miss was a flagged 1); no dropout (with it, 26 epochs trained below validation accuracy:
    # the augmentation regularises enough); 91 epochs: what `--budget 105m` fitted on 2 idle threads here.
    "default": (dict(tile_size=4, embed_size=64, num_layers=6, num_heads=4, mlp_size=128, dropout=0.0),
                Recipe(epochs=91, thickness=0.7, elastic=1.5, flag_ones=0.5)),
    # Chosen on the validation split among eight 3-minute runs (README "The fast preset"); 14-15 epochs is
    # what `--budget 3m` fits on two idle threads here.
    "fast": (dict(tile_size=7, embed_size=64, num_layers=4, num_heads=4, mlp_size=128),
             Recipe(epochs=15, batch_size=256, lr=3e-3, warmup_epochs=1, label_smoothing=0.05, rotate=10, shift=2.0,
                    scale=0.1, ema_decay=0.998)),
    "tiny": (dict(tile_size=7, embed_size=16, num_layers=2, num_heads=1, mlp_size=32),
             Recipe(epochs=300, batch_size=128, lr=3e-3, weight_decay=0.01, warmup_epochs=5, label_smoothing=0.0,
                    rotate=5, shift=1.0, scale=0.05, thickness=0.3, elastic=0.5, ema_decay=0.999)),  # 5.7k weights: milder
}


def augment(images: torch.Tensor, recipe: Recipe, generator: torch.Generator,
            labels: torch.Tensor | None = None) -> torch.Tensor:
    """A flag on a share of the 1s (needs `labels`), random stroke thickness, then rotation, zoom, shift and
    elastic distortion of a whole batch (B, C, H, W) in one resampling, and a left-right mirror for a share of
    the images. The flag, thickness and elastic distortion stand in for writers MNIST does not have."""
    b, _, h, _ = images.shape
    uniform = lambda *shape: torch.rand(*shape, generator=generator) * 2 - 1  # noqa: E731
    if recipe.flag_ones and labels is not None:
        chosen = ((labels == 1) & (torch.rand(b, generator=generator) < recipe.flag_ones)).nonzero().squeeze(1)
        images = images.clone()
        images[chosen] = add_flag(images[chosen], generator)
    if recipe.thickness:
        images = vary_thickness(images, uniform(b) * recipe.thickness)
    if recipe.flip:
        mirrored = torch.rand(b, generator=generator) < recipe.flip
        images = torch.where(mirrored.view(-1, 1, 1, 1), images.flip(-1), images)
    angle = uniform(b) * math.radians(recipe.rotate)
    zoom = 1 + uniform(b) * recipe.scale
    shift = uniform(b, 2) * recipe.shift * 2 / h  # affine_grid works in [-1, 1] coordinates
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)  # (B, 2, 3)
    warp = elastic_field(b, h, recipe.elastic, generator) if recipe.elastic else None
    return resample(images, theta, warp)


def add_flag(ones: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each 1 (N, C, H, W) with a straight stroke from the top of its ink down to the left, as wide as the 1's
    own stroke, 25-50 % of its height long. MNIST's writers seldom drew it; many others always do, and without
    it a flagged 1 reads as a 7. The flag leaves the stem at 20-45 degrees: a 7's bar leaves its stem at 55 or
    more, and a flag that wide would teach the model that 7s are 1s."""
    n, _, h, w = ones.shape
    if not n:
        return ones
    ink = ones[:, 0] > 0.5
    rows = ink.any(2)                                                       # (N, H): rows with ink
    top = rows.float().argmax(1)
    bottom = h - 1 - rows.flip(1).float().argmax(1)
    height = (bottom - top + 1).float()
    start, foot = _ink_centre(ink, top), _ink_centre(ink, bottom)          # (N, 2) as (x, y)
    stem = torch.atan2(foot[:, 1] - start[:, 1], foot[:, 0] - start[:, 0])   # 90 degrees: upright; y points down
    angle = stem + torch.deg2rad(20 + 25 * torch.rand(n, generator=generator))  # turned toward the left
    length = height * (0.25 + 0.25 * torch.rand(n, generator=generator))
    end = start + length[:, None] * torch.stack([torch.cos(angle), torch.sin(angle)], 1)
    width = (ink.sum((1, 2)) / height).clamp(1.5, 4.0)                     # ink per row: the stroke's width
    return torch.maximum(ones, _segment(start, end, width, h, w).to(ones))


def _ink_centre(ink: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """(N, 2): the middle of each image's ink in the given row, as (x, y)."""
    line = ink[torch.arange(len(ink)), row].float()                        # (N, W)
    x = (line * torch.arange(ink.shape[2])).sum(1) / line.sum(1).clamp(min=1)
    return torch.stack([x, row.float()], 1)


def _segment(start: torch.Tensor, end: torch.Tensor, width: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(N, 1, H, W): a straight stroke from start to end (N, 2), `width` pixels wide, edges anti-aliased."""
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    pixels = torch.stack([xs, ys], -1).view(1, h * w, 2)
    along = (end - start)[:, None]                                         # (N, 1, 2)
    t = (((pixels - start[:, None]) * along).sum(-1) / (along * along).sum(-1).clamp(min=1e-6)).clamp(0, 1)
    distance = (pixels - start[:, None] - t[..., None] * along).norm(dim=-1)
    return (width[:, None] / 2 + 0.5 - distance).clamp(0, 1).view(-1, 1, h, w)


def vary_thickness(images: torch.Tensor, amount: torch.Tensor) -> torch.Tensor:
    """Blend each image toward its 3×3 dilation (amount > 0: thicker strokes) or erosion (amount < 0: thinner)."""
    thicker = F.max_pool2d(images, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(-images, 3, stride=1, padding=1)
    amount = amount.view(-1, 1, 1, 1)
    return images + amount.clamp(min=0) * (thicker - images) + (-amount).clamp(min=0) * (thinner - images)


def elastic_field(b: int, size: int, pixels: float, generator: torch.Generator) -> torch.Tensor:
    """(B, H, W, 2) smooth random displacements of about `pixels` at most (bicubic interpolation overshoots the
    lattice by up to a quarter), in grid_sample's [-1, 1] units: random offsets on a 4×4 lattice, interpolated
    bicubically, so strokes bend rather than jitter."""
    coarse = (torch.rand(b, 2, 4, 4, generator=generator) * 2 - 1) * pixels * 2 / size
    return F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True).permute(0, 2, 3, 1)


def resample(images: torch.Tensor, theta: torch.Tensor, warp: torch.Tensor | None = None) -> torch.Tensor:
    """grid_sample(images, affine_grid(theta) + warp), with the grid built by one einsum: on a CPU the whole
    resampling is several times faster than through affine_grid (`python -m bench`, "before / now")."""
    b, _, h, w = images.shape
    grid = torch.einsum("bij,pj->bpi", theta, _pixel_centres(h, w).to(theta)).reshape(b, h, w, 2)  # (B, H, W, 2)
    if warp is not None:
        grid = grid + warp
    return F.grid_sample(images, grid.to(images.device), align_corners=False)


@functools.cache
def _pixel_centres(h: int, w: int) -> torch.Tensor:
    """(H*W, 3): each output pixel's centre as (x, y, 1) in affine_grid's [-1, 1] coordinates."""
    identity = F.affine_grid(torch.eye(2, 3)[None], [1, 1, h, w], align_corners=False).reshape(h * w, 2)
    return torch.cat([identity, torch.ones(h * w, 1)], dim=1)


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    """Linear warm-up to `peak`, then cosine decay to zero."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: ViT, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases, CLS or positions).

    The fused kernel updates every parameter in one call, faster on a CPU than torch's default per-parameter
    loop (`python -m bench`, "before / now").
    """
    decay = [p for p in model.parameters() if p.ndim == 2]
    no_decay = [p for p in model.parameters() if p.ndim != 2]
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, fused=fused)


@torch.no_grad()
def update_ema(ema: ViT, model: ViT, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, all parameters in one fused call."""
    # torch._foreach_lerp_ is what torch's own swa_utils and timm's ModelEmaV3 use; no public spelling yet
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)


def train_step(model: ViT, ema: ViT, optimizer: torch.optim.Optimizer, recipe: Recipe, images: torch.Tensor,
               labels: torch.Tensor, *, lr: float, ema_decay: float, generator: torch.Generator,
               autocast: contextlib.AbstractContextManager = contextlib.nullcontext()) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on an augmented batch, then the EMA update; returns (loss, number right)."""
    device = next(model.parameters()).device
    images = augment(images, recipe, generator, labels).to(device, non_blocking=True)
    labels = labels.to(device, non_blocking=True)
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast:
        logits = model(images)
        loss = F.cross_entropy(logits.float(), labels, label_smoothing=recipe.label_smoothing)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    update_ema(ema, model, ema_decay)
    return loss.detach(), (logits.argmax(-1) == labels).sum()


def ema_decay_at(recipe: Recipe, step: int) -> float:
    """The recipe's decay, lower in the first steps so the average does not hold on to the initial weights."""
    return min(recipe.ema_decay, (1 + step) / (10 + step))


def save_checkpoint(path: Path, model: ViT, ema: ViT, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Write everything needed to resume, atomically: a crash leaves the previous checkpoint intact."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in ema.state_dict().items()}
    for index, param_state in optimizer.state_dict()["state"].items():
        tensors |= {f"optimizer.{index}.{key}": torch.as_tensor(value) for key, value in param_state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, temporary, metadata={"state": json.dumps(state)})
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def read_checkpoint_state(path: Path) -> dict:
    """The JSON part of a checkpoint (epoch, history, config, recipe), without loading tensors."""
    try:
        with safe_open(str(path), framework="pt") as file:
            return json.loads(file.metadata()["state"])
    except Exception as error:  # safetensors raises several types for a bad file
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from error


def load_checkpoint(path: Path, model: ViT, ema: ViT, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, EMA and optimizer from a checkpoint written by save_checkpoint; return its state."""
    state = read_checkpoint_state(path)
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}, strict=True)
    optimizer_state = optimizer.state_dict()
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state["state"].setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(optimizer_state)
    return state


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; the last complete checkpoint is on disk."""


def _raise_interrupted(signum, frame):
    raise Interrupted(signal.Signals(signum).name)


def train(model: ViT, train_split: Split, val_split: Split, recipe: Recipe, *, device: torch.device,
          checkpoint: Path, resume: bool = False, progress: bool = True,
          on_epoch: Callable[[dict], None] | None = None, team: Team = ALONE) -> tuple[ViT, list[dict], float]:
    """Train with the recipe; returns the EMA model, the per-epoch history and the training seconds.

    The history follows the validation split (carved out of the training images): the test split is not
    looked at during training.

    In a team of processes (vit.distributed) each takes its share of every batch and the leader alone
    validates, writes the checkpoint and keeps the history; the others return an empty one.
    `on_epoch(record)` runs after each epoch's checkpoint is on disk; raising Interrupted there stops cleanly.
    """
    model.to(device)
    ema = ViT(**model.config).to(device)
    ema.load_state_dict(model.state_dict())
    optimizer = make_optimizer(model, recipe)
    history, start_epoch, seconds = [], 0, 0.0
    if resume:  # every process reads the leader's checkpoint
        state = load_checkpoint(checkpoint, model, ema, optimizer)
        history, start_epoch, seconds = state["history"], state["epoch"], state["seconds"]
    net = distributed.wrap(model, team)
    steps_per_epoch = distributed.steps_per_epoch(len(train_split), recipe.batch_size, team)
    total_steps, warmup_steps = recipe.epochs * steps_per_epoch, int(recipe.warmup_epochs * steps_per_epoch)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
    previous = {sig: signal.signal(sig, _raise_interrupted) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for epoch in range(start_epoch, recipe.epochs):
            started = time.perf_counter()
            generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch)  # resumable shuffles
            order = torch.randperm(len(train_split), generator=generator)  # the same on every process
            if team.rank:  # each process augments its own images with its own random numbers
                generator = torch.Generator().manual_seed(recipe.seed * 100_003 + epoch + 7_919 * team.rank)
            model.train()
            correct = seen = 0
            bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{recipe.epochs}",
                       disable=not progress or not team.leads, leave=False, file=sys.stderr)
            for step_in_epoch in bar:
                step = epoch * steps_per_epoch + step_in_epoch
                index = order[step_in_epoch * recipe.batch_size:(step_in_epoch + 1) * recipe.batch_size]
                images, labels = train_split.batch(distributed.share(index, team))
                loss, right = train_step(net, ema, optimizer, recipe, images, labels, generator=generator,
                                         lr=learning_rate(step, total_steps, warmup_steps, recipe.lr),
                                         ema_decay=ema_decay_at(recipe, step), autocast=autocast)
                correct += right.item()
                seen += len(labels)
                if step_in_epoch % 20 == 0:
                    bar.set_postfix(loss=f"{loss.item():.3f}", acc=f"{correct / seen:.3f}")
            correct, seen = distributed.total([correct, seen], team)
            if not team.leads:
                continue
            probabilities, losses = predict_split(ema, val_split)
            seconds += time.perf_counter() - started
            record = {"epoch": epoch + 1, "train_loss": round(loss.item(), 4), "train_accuracy": round(correct / seen, 5),
                      "val_loss": round(losses.mean().item(), 5),
                      "val_accuracy": round((probabilities.argmax(-1) == val_split.labels).float().mean().item(), 5),
                      "seconds": round(seconds, 1)}
            history.append(record)
            tqdm.write(f"epoch {epoch + 1:3d}/{recipe.epochs}  train loss {record['train_loss']:.4f}  "
                       f"train acc {record['train_accuracy']:.4f}  validation acc {record['val_accuracy']:.4f}  "
                       f"[{seconds:.0f}s]", file=sys.stderr)
            save_checkpoint(checkpoint, model, ema, optimizer,
                            {"epoch": epoch + 1, "history": history, "seconds": seconds,
                             "config": model.config, "recipe": asdict(recipe)})
            if on_epoch:
                on_epoch(record)
        distributed.wait_for_all(team)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return ema.eval(), history if team.leads else [], seconds


def model_card(config: dict, recipe: Recipe, summary: dict, dataset: str, seconds: float, command: str,
               parameters: int, device: str) -> ModelCard:
    """The model folder's README.md: metadata the Hub indexes, then architecture, recipe and results."""
    pretty = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}[dataset]
    hub_dataset = {"mnist": "ylecun/mnist", "fashion-mnist": "zalando-datasets/fashion_mnist"}[dataset]
    data = ModelCardData(
        license="mit", library_name="vit-explainer", pipeline_tag="image-classification", datasets=[hub_dataset],
        tags=["vision-transformer", "image-classification", dataset, "pytorch_model_hub_mixin"],
        model_name=f"vit-{dataset}",
        eval_results=[EvalResult(task_type="image-classification", dataset_type=hub_dataset, dataset_name=pretty,
                                 dataset_split="test", metric_type="accuracy",
                                 metric_value=round(summary["accuracy"], 4))])
    architecture = "\n".join(f"| {SETTING_NAMES.get(key, key)} (`{key}`) | {value} |" for key, value in config.items())
    training = "\n".join(f"| {SETTING_NAMES.get(key, key)} (`{key}`) | {value} |" for key, value in asdict(recipe).items()
                         if dataset == "mnist" or key not in DIGITS_ONLY)
    rows, columns = grid_shape(config.get("cut", "tiles"), config["tile_size"], config["image_size"])
    tokens = rows * columns
    content = f"""---
{data.to_yaml()}
---

# A Vision Transformer for {pretty}

A pure Vision Transformer ({parameters:,} parameters) that cuts each 28×28 image into
{cut_words(config.get('cut', 'tiles'), config['tile_size'])}, reads them as a sequence of {tokens} "words"
plus a CLS token, and predicts the class from the CLS token.

**Test accuracy: {summary['accuracy'] * 100:.2f} %** on the {summary['n']:,} {pretty} test images
(trained in {seconds / 60:.1f} minutes on {device}).{budget_sentence(summary.get("pacing"))} Measure it again with
`python -m vit.evaluate <this folder> --data-dir DIR`.

Reproduce:

```bash
{command}
```

Load it (raw pixels in [0, 1], shape `(B, 1, 28, 28)`):

```python
from vit import ViT
model = ViT.from_pretrained("<this folder or repo id>")
```
{honesty_section(summary)}
## Architecture

| setting | value |
| --- | --- |
{architecture}

## Recipe

AdamW, linear warm-up then cosine decay, label smoothing, random stroke thickness, rotation, zoom, shift and
elastic distortion of each batch, and an exponential moving average of the weights (the weights stored here).
5,000 of the 60,000 training images are kept back as the validation split (seed 0): the per-epoch history
follows it, and the temperature and the "not a digit" limits are fitted on it. The test split is only
reported.

| setting | value |
| --- | --- |
{training}

## Files

`model.safetensors` and `config.json` rebuild the model; `calibration.json` holds the temperature and the
"not a digit" limits; `evaluation.json` (accuracy, confusion matrix, calibration error and reliability bins,
refusals, the out-of-MNIST results, per-epoch history) and `evaluation.safetensors` (worst-loss and example
test images) feed the app.
"""
    return ModelCard(content)


def budget_sentence(pacing: dict | None) -> str:
    """What a --budget run planned and what it took, for the card ("" without a budget)."""
    if not pacing or "budget_seconds" not in pacing:
        return ""
    took = f", and the whole run took {pacing['run_seconds']:.0f} s" if "run_seconds" in pacing else ""
    return (f" It was given a budget of {pacing['budget_seconds']:.0f} s (`--budget`), evaluation included: "
            f"{pacing['planned_epochs']} epochs fitted{took}.")


def honesty_section(summary: dict) -> str:
    """Calibration, refusals and the out-of-MNIST figures, as the card's Markdown (empty if not measured)."""
    if "calibration" not in summary:
        return ""
    calibration, refusals, others = summary["calibration"], summary["not_a_digit"], summary.get("other_writers")
    kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in refusals["others_refused"].items())
    noun = NOUNS[summary.get("dataset", "mnist")]
    text = f"""
## How far to trust it

- **Calibration** (temperature scaling, fitted on the validation split): logits are divided by
  T = {calibration['temperature']:.3f}. Expected calibration error on the test set (15 bins):
  **{calibration['ece_before'] * 100:.2f} % before, {calibration['ece_after'] * 100:.2f} % after**.
- **"Not a {noun}"**: limits on four scores (evidence, ink cover, grey share, stroke width), set on validation
  {noun}s, refuse {refusals['test_refused'] * 100:.2f} % of the test {noun}s and {refusals['drawn_test_refused'] * 100:.2f} %
  of {refusals['drawn_test_count']:,} test {noun}s drawn on a large white page; of {refusals['others_count']} pictures of
  each kind that are not {noun}s they refuse {kinds}.
"""
    if others:
        text += (f"- **Digits from outside MNIST** (vit.rendered): {others['typed'] * 100:.1f} % of "
                 f"{others['typed_count']} digits typed in {len(others['fonts'])} fonts, {others['drawn'] * 100:.1f} % of "
                 f"{others['drawn_count']} drawn in {sum(len(s) for s in rendered.STYLES.values())} pen styles, "
                 f"thin to thick.\n")
    return text


def choose_and_report(model: ViT, val_split: Split, test_split: Split, dataset: str) -> tuple[dict, dict]:
    """The temperature and the "not a digit" limits fitted on the validation split, pictures framed as the app
    frames this dataset's, and their test-split report (vit.validation)."""
    framing = FRAMINGS[dataset]
    chosen = validation.choose(model, val_split, framing)
    return chosen, validation.report(model, test_split, chosen, NOUNS[dataset], framing)


def refit_folder(folder: Path, val_split: Split, test_split: Split) -> dict:
    """Fit the temperature and the limits of a written folder again (after the preprocessing changed) and
    rewrite calibration.json, evaluation.json's reports and the model card; evaluation.json's new content."""
    bundle = load_folder(folder)
    chosen, reported = choose_and_report(bundle.model, val_split, test_split, bundle.dataset)
    evaluation = bundle.evaluation | reported
    recipe = Recipe(**evaluation["recipe"])
    parameters = sum(p.numel() for p in bundle.model.parameters())
    card = model_card(bundle.model.config, recipe, evaluation, bundle.dataset, evaluation["training_seconds"],
                      evaluation["command"], parameters, evaluation["device"])
    rewrite_choices(folder, chosen, evaluation, card.content)
    return evaluation


def write_model_folder(folder: Path, model: ViT, recipe: Recipe, test_split: Split, *, dataset: str,
                       history: list[dict], seconds: float, command: str, device: str,
                       val_split: Split | None = None, faithfulness_count: int = 0, pacing: dict | None = None,
                       started: float | None = None) -> dict:
    """Evaluate on the test split and write the model folder (vit.bundle); return evaluation.json's content.

    With a validation split, the temperature and the "not a digit" limits are fitted on it (vit.validation)
    and reported on the test split, with the out-of-MNIST digits (vit.rendered) for MNIST models. With a
    faithfulness count, the explanations' scoreboard over that many test images (vit.faithfulness). `pacing`
    (threads, a budget: train.py) is stored as measured, with the whole run's seconds when `started` (a
    time.perf_counter() value) says when it began.
    """
    probabilities, losses = predict_split(model, test_split)
    answers = Answers(test_split.images, test_split.labels, probabilities, losses)
    facts = {"dataset": dataset, "history": history, "training_seconds": round(seconds, 1), "command": command,
             "device": device, "recipe": asdict(recipe)}
    chosen = None
    if val_split is not None:
        chosen, reported = choose_and_report(model, val_split, test_split, dataset)
        facts |= reported
        if dataset == "mnist":
            facts["other_writers"] = rendered.evaluate(model)
    if faithfulness_count:
        temperature = chosen["temperature"] if chosen else 1.0
        facts["faithfulness"] = faithfulness.evaluate(copy.deepcopy(model).requires_grad_(False), test_split,
                                                      temperature, faithfulness_count)
    if pacing is not None:
        run_seconds = {"run_seconds": round(time.perf_counter() - started, 1)} if started is not None else {}
        facts["pacing"] = pacing | run_seconds  # everything but writing the files, a second or less
    parameters = sum(p.numel() for p in model.parameters())
    card = model_card(model.config, recipe, summarise(answers) | facts, dataset, seconds, command, parameters, device)
    return write_folder(folder, model, answers, facts=facts, card=card.content, chosen=chosen)
