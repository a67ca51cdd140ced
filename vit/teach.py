"""Teaching a trained ViT symbols of a visitor's own: pretrain, then adapt (the ViT paper, section 3.2 "Fine-tuning
and higher resolution": the pre-trained prediction head is removed and a zero-initialised one attached).

The encoder of a trained model is kept as it is; a new head, one linear layer from the CLS token to the symbols, is
fitted on the CLS features of the visitor's drawings, each augmented into COPIES pictures (turned, zoomed, shifted,
thickened, bent: vit.augment) so that five drawings of a symbol are enough. The head is fitted in one go (L-BFGS on
the features, computed once), so teaching takes seconds on one thread.

How well it reads the symbols is measured on the visitor's drawings, never on a test set it was not taught for:
each drawing is read by a head fitted without it (ROUNDS rounds, each leaving one drawing of every symbol out).
Five drawings are too few to fit a temperature or "not a symbol" limits, so the folder has no calibration.json:
the confidences are the raw softmax and nothing is refused.
"""

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .analysis import confusion_matrix
from .augment import augment
from .bundle import Answers, ModelBundle, load_folder, write_folder
from .model import ViT
from .recipe import Recipe
from .record import Evaluation, Taught
from .registry import keep_own_model, own_folder

MIN_SYMBOLS, MAX_SYMBOLS = 2, 5
MIN_DRAWINGS, MAX_DRAWINGS = 5, 12   # per symbol: enough to learn from; a bound on what a session keeps
MAX_NAME = 24                        # characters of a symbol's name
COPIES = 32                          # augmented pictures per drawing, the drawing itself among them
ROUNDS = MIN_DRAWINGS                # held-out rounds of the measurement: each drawing is left out once
# Milder than training on MNIST: a visitor's symbol may be told from another by its orientation (an arrow up or
# down), so turns stay small.
AUGMENTATION = Recipe(rotate=10.0, shift=2.0, scale=0.12, thickness=0.6, elastic=1.0)
WEIGHT_DECAY = 1e-3                  # L2 on the head's weights: a few drawings, many features


class TeachError(ValueError):
    """Why these drawings cannot be taught, as a sentence for the visitor."""


@dataclass(frozen=True)
class Lesson:
    """What a visitor teaches: the symbols' names and their drawings, each already the model's input."""
    names: tuple[str, ...]
    drawings: torch.Tensor   # (N, 28, 28) float in [0, 1], framed as the base model's dataset frames its own
    labels: torch.Tensor     # (N,) index into names


@dataclass
class Learned:
    """A taught model, how it read each drawing when that drawing was left out, and the record of both."""
    model: ViT
    held_out: Answers        # each drawing as read by a head fitted without it
    evaluation: Evaluation


def problem(names: list[str], counts: list[int]) -> str | None:
    """A sentence saying why symbols with these names and these numbers of drawings cannot be taught, or None."""
    cleaned = [name.strip() for name in names]
    if len(cleaned) < MIN_SYMBOLS:
        return f"Name at least {MIN_SYMBOLS} symbols: a model learns to tell symbols apart."
    if len(cleaned) > MAX_SYMBOLS:
        return f"Teach at most {MAX_SYMBOLS} symbols at a time."
    if any(not name for name in cleaned):
        return "Every symbol needs a name: one of them is empty."
    if long := next((name for name in cleaned if len(name) > MAX_NAME), None):
        return f"“{long[:MAX_NAME]}…” is too long for a name: keep it under {MAX_NAME + 1} characters."
    folded = [name.casefold() for name in cleaned]
    if again := next((index for index, key in enumerate(folded) if key in folded[:index]), None):
        first, second = cleaned[folded.index(folded[again])], cleaned[again]
        said = f"“{first}” is named twice" if first == second else f"“{first}” and “{second}” are one name"
        return f"{said}: give each symbol its own name."
    few = [f"{name} ({count})" for name, count in zip(cleaned, counts) if count < MIN_DRAWINGS]
    if few:
        return f"Draw each symbol at least {MIN_DRAWINGS} times; so far: {', '.join(few)}."
    if many := next((name for name, count in zip(cleaned, counts) if count > MAX_DRAWINGS), None):
        return f"Keep at most {MAX_DRAWINGS} drawings of a symbol; {many} has more."
    return None


def lesson(names: list[str], drawings: list[np.ndarray], labels: list[int]) -> Lesson:
    """The lesson of these drawings (each (28, 28) in [0, 1]) of the named symbols; TeachError says what is wrong."""
    counts = [sum(label == index for label in labels) for index in range(len(names))]
    if said := problem(names, counts):
        raise TeachError(said)
    if any(np.asarray(drawing).max() <= 0 for drawing in drawings):
        raise TeachError("One of the drawings is empty: forget it and draw it again.")
    return Lesson(tuple(name.strip() for name in names), torch.as_tensor(np.stack(drawings), dtype=torch.float32),
                  torch.as_tensor(labels, dtype=torch.long))


@torch.no_grad()  # not inference_mode: the head is fitted on these features with autograd
def features(model: ViT, images: torch.Tensor, copies: int, seed: int = 0) -> torch.Tensor:
    """The CLS token after the encoder (what a head reads) of `copies` pictures of each image (N, H, W): the image
    itself, then augmented ones; (N, copies, D)."""
    generator = torch.Generator().manual_seed(seed)
    pictures = images[:, None].repeat_interleave(copies, 0)                        # (N * copies, 1, H, W)
    varied = augment(pictures, AUGMENTATION, generator).clamp(0, 1)
    varied[::copies] = pictures[::copies]                                          # each drawing itself, unchanged
    tokens = torch.cat([model.forward_features(batch)[0][:, 0] for batch in varied.split(256)])  # (N * copies, D)
    return tokens.view(len(images), copies, -1)


def fit_head(features: torch.Tensor, labels: torch.Tensor, classes: int) -> nn.Linear:
    """A linear head from features (M, D) to `classes`, fitted by L-BFGS on the cross-entropy plus an L2 penalty."""
    head = nn.Linear(features.shape[1], classes)
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    optimiser = torch.optim.LBFGS(head.parameters(), lr=1, max_iter=200, history_size=20,
                                  line_search_fn="strong_wolfe")

    def loss() -> torch.Tensor:
        optimiser.zero_grad()
        value = F.cross_entropy(head(features), labels) + WEIGHT_DECAY * head.weight.square().sum()
        value.backward()
        return value

    with torch.enable_grad():
        optimiser.step(loss)
    return head.requires_grad_(False)


def held_out(features: torch.Tensor, lesson: Lesson) -> torch.Tensor:
    """Each drawing's probabilities (N, C) from a head fitted without it: ROUNDS rounds, round r leaving out every
    symbol's drawings number r, r + ROUNDS, ..."""
    labels, classes = lesson.labels, len(lesson.names)
    order = torch.zeros_like(labels)  # each drawing's place among its symbol's drawings
    for symbol in range(classes):
        chosen = (labels == symbol).nonzero().squeeze(1)
        order[chosen] = torch.arange(len(chosen))
    copies = features.shape[1]
    probabilities = torch.zeros(len(labels), classes)
    for round_ in range(ROUNDS):
        out = order % ROUNDS == round_
        head = fit_head(features[~out].flatten(0, 1), labels[~out].repeat_interleave(copies), classes)
        probabilities[out] = head(features[out, 0]).softmax(-1)  # the drawing itself, not its copies
    return probabilities


def teach(base: ModelBundle, lesson: Lesson, seed: int = 0) -> Learned:
    """A model that reads the lesson's symbols: `base`'s encoder, unchanged, and a new head fitted on its features."""
    started = time.perf_counter()
    encoder = base.model
    found = features(encoder, lesson.drawings, COPIES, seed)                  # (N, COPIES, D)
    classes = len(lesson.names)
    head = fit_head(found.flatten(0, 1), lesson.labels.repeat_interleave(COPIES), classes)
    model = ViT(**(encoder.config | {"num_classes": classes, "class_names": list(lesson.names)}))
    model.load_state_dict({**encoder.state_dict(), "head.weight": head.weight, "head.bias": head.bias})
    model.eval().requires_grad_(False)
    probabilities = held_out(found, lesson)
    losses = F.nll_loss(probabilities.clamp(min=1e-12).log(), lesson.labels, reduction="none")
    answers = Answers((lesson.drawings * 255).round().to(torch.uint8)[:, None], lesson.labels, probabilities, losses)
    seconds = time.perf_counter() - started
    return Learned(model, answers, record(base, lesson, answers, seconds))


def record(base: ModelBundle, lesson: Lesson, answers: Answers, seconds: float) -> Evaluation:
    """The evaluation of a taught model: its held-out reading of the visitor's drawings, and how it was taught."""
    classes = len(lesson.names)
    matrix = confusion_matrix(answers.labels, answers.predictions, classes)
    counts = [int((lesson.labels == symbol).sum()) for symbol in range(classes)]
    taught = Taught(base=base.name, drawings=counts, copies=COPIES, rounds=ROUNDS, seconds=round(seconds, 2))
    return Evaluation(split="held-out drawings", n=len(answers.labels),
                      accuracy=matrix.trace().item() / len(answers.labels), confusion_matrix=matrix.tolist(),
                      dataset=base.dataset, training_seconds=round(seconds, 2), device="cpu", taught=taught)


def write(learned: Learned, folder) -> None:
    """The taught model's folder, as a trained model's (vit.bundle): `python app.py --weights-dir` reads it."""
    write_folder(folder, learned.model, learned.held_out, learned.evaluation)


def slug(names: tuple[str, ...] | list[str]) -> str:
    """The model's name without its random part, from the symbols' names: "taught-star-heart-arrow"."""
    words = re.sub(r"[^a-z0-9]+", "-", "-".join(names).casefold()).strip("-")
    return f"taught-{words[:40].strip('-')}" if words else "taught"


@dataclass(frozen=True)
class Kept:
    """A taught model as the registry keeps it for its visitor, and its folder (deleted when it is forgotten)."""
    model: ModelBundle
    folder: Path


def taught_model(base: ModelBundle, lesson: Lesson) -> Kept:
    """Teach, write the model folder (vit.registry.own_folder), load it and keep it for the visitor who taught it
    (vit.registry)."""
    learned = teach(base, lesson)
    folder = own_folder(slug(lesson.names))
    kept = folder.parent
    try:
        write(learned, folder)
        loaded = load_folder(folder, source=f"taught here on {base.name}'s features")
    except Exception:
        shutil.rmtree(kept, ignore_errors=True)
        raise
    loaded.model.eval().requires_grad_(False)  # read-only, as the served models are
    keep_own_model(loaded, kept)
    return Kept(loaded, folder)
