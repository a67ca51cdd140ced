"""Training someone watches: a small ViT trained for a time budget in its own process on one thread, reporting what
it learns every few seconds, ended early on request. The app's Train tab and its /train endpoint run it.

    python -m vit.live --output DIR [--dataset mnist] [--cut tiles] [--tile-size 7] [--positions learned]
                       [--blocks 2] [--heads 4] [--width 64] [--seconds 30] [--data-dir DIR]

prints one JSON object per line ("started", "progress" every few seconds, then "done", or "failed" with a sentence)
and writes a model folder (vit.bundle) that `python app.py --weights-dir` and `python train.py --push-only` read.
SIGTERM or SIGINT ends the training early: the model learned so far is still measured and written.

The schedule follows the clock, not a count of epochs: the learning rate warms up over the first 5 % of the budget
and decays on a cosine to zero at its end, so a run of any length ends annealed, and so does one stopped early
only in that it keeps the weight average (EMA) it has.
"""

import argparse
import json
import math
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch

from .datasets import DATASETS, dataset as describe
from .model import POS_EMBEDDINGS, ViT
from .recipe import Recipe
from .tiling import CUTS, divisors

if TYPE_CHECKING:
    from .bundle import ModelBundle

IMAGE = 28
RUNS_AT_ONCE = 1           # on a Space's two cores, a second run would take the core the visitors' strokes are read on
SECONDS = (10, 120)        # the budgets offered: from a first look to a model worth explaining
BLOCKS, HEADS, WIDTHS = (1, 6), (1, 8), (16, 128)
MIN_PICTURES = 10_000      # a budget that shows the model fewer pictures than this teaches it nothing worth showing
PROBE_STEPS = 3            # steps timed before a run is judged too slow for its budget
VALIDATION_PEEK = 1_000    # validation pictures read at each report (all 5,000 at the end)
SETUP_SECONDS = 90         # starting the process, reading the data and writing the folder may take this long
SCHEDULE_STEPS = 1_000     # the clock's schedule in thousandths of the budget
WARMUP = 0.05              # share of the budget spent warming the learning rate up


@dataclass(frozen=True)
class Choices:
    """What a learner chooses in the Train tab (and a caller of /train): the data, the cut, the model, the time."""
    dataset: str = "mnist"
    cut: str = "tiles"            # tiles | horizontal-strips | vertical-strips
    tile_size: int = 7            # a tile's side, or a strip's height or width, in pixels
    positions: str = "learned"    # learned | sinusoidal | none
    blocks: int = 2
    heads: int = 4
    width: int = 64               # each token's size; the MLP is twice as wide
    seconds: float = 60.0         # the tab's defaults reach 97 % in this time (docs/models.md)

    def problem(self) -> str | None:
        """A sentence saying why these choices cannot train, or None."""
        if self.dataset not in DATASETS:
            return f"Choose the data among {', '.join(DATASETS)}."
        if self.cut not in CUTS:
            return f"Choose the cut among {', '.join(CUTS)}."
        sizes = ", ".join(str(d) for d in divisors(IMAGE) if 1 < d < IMAGE)
        if self.tile_size not in divisors(IMAGE):
            return f"A piece of {self.tile_size} pixels does not divide the 28-pixel picture: choose {sizes}."
        if self.tile_size == 1:  # it divides, but a word per pixel is a sequence of 784: far too slow to watch
            return f"Pieces of 1 pixel make {IMAGE * IMAGE} words, too long a sequence to train here: choose {sizes}."
        if self.positions not in POS_EMBEDDINGS:
            return f"Choose positions among {', '.join(POS_EMBEDDINGS)}."
        checks = (("blocks", self.blocks, BLOCKS), ("heads", self.heads, HEADS), ("width", self.width, WIDTHS),
                  ("seconds", self.seconds, SECONDS))
        for name, value, (low, high) in checks:
            if not low <= value <= high:
                return f"Choose between {low} and {high} {name}, not {value:g}."
        if self.width % self.heads:
            nearest = self.heads * max(1, self.width // self.heads)
            return (f"A width of {self.width} does not split into {self.heads} heads: each head takes an equal share, "
                    f"so choose a width that {self.heads} divides (such as {nearest}).")
        return None

    def architecture(self) -> dict:
        """The ViT's keyword arguments."""
        return dict(cut=self.cut, tile_size=self.tile_size, embed_size=self.width, num_layers=self.blocks,
                    num_heads=self.heads, mlp_size=2 * self.width, pos_embedding=self.positions,
                    class_names=list(describe(self.dataset).class_names))

    def slug(self) -> str:
        """The model's name without its random part: "tiles-7-2-blocks"."""
        return f"{self.cut.removesuffix('s')}-{self.tile_size}-{self.blocks}-block{'s' * (self.blocks != 1)}"

    def label(self) -> str:
        """How the menu names the model: "yours: tiles of 7, 2 blocks", with the data and the positions when they are
        not the defaults ("yours: garments, tiles of 7, 2 blocks, no positions")."""
        parts = [f"{self.cut.replace('-', ' ')} of {self.tile_size}", f"{self.blocks} block{'s' * (self.blocks != 1)}"]
        if self.dataset != "mnist":
            parts.insert(0, "garments")
        if self.positions != "learned":
            parts.append("no positions" if self.positions == "none" else f"{self.positions} positions")
        return "yours: " + ", ".join(parts)

    def arguments(self) -> list[str]:
        """The command-line arguments of `python -m vit.live` that ask for these choices."""
        return [part for f in fields(self) for part in (f"--{f.name.replace('_', '-')}", str(getattr(self, f.name)))]


def recipe(choices: Choices) -> Recipe:
    """How a watched run trains: a high learning rate and mild augmentation, for minutes rather than hours."""
    garments = choices.dataset != "mnist"
    return Recipe(epochs=1, batch_size=128, lr=3e-3, weight_decay=0.05, label_smoothing=0.0,
                  rotate=0.0 if garments else 8.0, shift=1.0, scale=0.05, flip=0.5 if garments else 0.0,
                  ema_decay=0.995)


def start(choices: Choices) -> "Run":
    """A run whose model will be kept for the one who started it (vit.registry.own_folder)."""
    from .registry import own_folder
    folder = own_folder(choices.slug())
    return Run(choices, folder, folder.parent)


def keep(run: "Run") -> "ModelBundle":
    """A finished run's model, kept for its visitor (vit.registry) under its folder's name; ValueError says, in a
    sentence for the visitor, why a folder cannot be read (it is deleted then)."""
    from .bundle import load_folder
    from .registry import keep_own_model
    try:
        model = load_folder(run.folder, source=f"trained here ({run.choices.label().removeprefix('yours: ')})")
    except ValueError as error:
        run.discard()
        raise ValueError(f"The model could not be read back ({error}).") from error
    keep_own_model(model, run.scratch)
    return model


def command(choices: Choices, output: str = "DIR") -> str:
    """What reproduces a watched run, for its model card."""
    return " ".join(["python -m vit.live", *choices.arguments(), "--output", output, "--data-dir", "DIR"])


# -- the parent: start a run and read what it reports -----------------------------------------------------------------

@dataclass
class Reports:
    """What a run has reported so far (the one reader of the reports' JSON): what it said when it started (its
    parameters, grid, watched picture and that picture's label), its progress reports in order, and the newest."""
    started: dict = field(default_factory=dict)
    progress: list[dict] = field(default_factory=list)
    last: dict = field(default_factory=dict)

    def add(self, batch: list[dict]) -> None:
        for report in batch:
            if report["kind"] == "started":
                self.started = report
            elif report["kind"] == "progress":
                self.progress.append(report)
        self.last = batch[-1]

    def curve(self) -> list[dict]:
        """The points of the training curve: each progress report, then the end (its validation accuracy on the
        whole validation split) once the run is done."""
        return self.progress + ([self.last] if self.done else [])

    @property
    def failed(self) -> bool:
        return self.last.get("kind") == "failed"

    @property
    def done(self) -> bool:
        return self.last.get("kind") == "done"


class Run:
    """A watched run in its own process; iterate `batches()` for its reports, `stop()` to end it early."""

    def __init__(self, choices: Choices, folder: Path, scratch: Path | None = None):
        """`scratch`: a folder made for this run alone, holding `folder`, deleted with it (default: the folder)."""
        self.choices, self.folder = choices, Path(folder)
        self.scratch = Path(scratch or folder)
        arguments = [sys.executable, "-m", "vit.live", *choices.arguments(), "--output", str(folder)]
        environment = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        self.process = subprocess.Popen(arguments, stdout=subprocess.PIPE, text=True,
                                        env=environment, cwd=Path(__file__).resolve().parent.parent)
        self._reports: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        # whatever happens to the reader, the process ends: the budget and the set-up, then it is killed
        self._deadline = threading.Timer(choices.seconds + SETUP_SECONDS, self.kill)
        self._deadline.daemon = True
        self._deadline.start()

    def follow(self) -> Iterator[Reports]:
        """What the run has reported so far, after each batch of reports (batches()); the last has ended it."""
        reports = Reports()
        for batch in self.batches():
            reports.add(batch)
            yield reports

    def ended(self) -> Reports:
        """Everything the run reported, once it has ended (its last report "done" or "failed")."""
        reports = Reports()
        for reports in self.follow():
            continue
        return reports

    def batches(self) -> Iterator[list[dict]]:
        """The reports as they come, in batches: each time at least one has come, every one that has, so that a
        reader slower than the reports (drawing them takes time) draws only the newest. The last report is "done"
        or "failed"; the process is ended when this stops."""
        try:
            while True:
                batch = [self._reports.get()]
                while not self._reports.empty():
                    batch.append(self._reports.get())
                ended = next((i for i, event in enumerate(batch) if event["kind"] in ("done", "failed")), None)
                if ended is not None and batch[ended]["kind"] == "failed":
                    self.discard()  # whatever it wrote before failing
                yield batch if ended is None else batch[:ended + 1]
                if ended is not None:
                    return
        finally:
            self.kill()

    def _read(self) -> None:
        """The reader thread: each line of the process's output as a report, and a "failed" one if it ends without
        saying "done"."""
        for line in self.process.stdout:
            try:
                self._reports.put(json.loads(line))
            except ValueError:
                continue
        self._reports.put({"kind": "failed", "message": "The training stopped before it finished (it ran out of "
                                                        "time or memory). Try a smaller model or fewer seconds."})

    def stop(self) -> None:
        """End the training now; the model learned so far is still measured and written."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def discard(self) -> None:
        """Delete what the run wrote (a failed run's, or a folder that could not be read)."""
        shutil.rmtree(self.scratch, ignore_errors=True)

    def kill(self) -> None:
        self._deadline.cancel()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


# -- the child: train, report, write ---------------------------------------------------------------------------------

class _Stop:
    """Set by SIGTERM or SIGINT: the training loop ends at its next step."""
    requested = False

    @classmethod
    def request(cls, signum, frame) -> None:
        cls.requested = True


def _emit(kind: str, **fields) -> None:
    print(json.dumps({"kind": kind, **fields}), flush=True)


def _rounded(values: torch.Tensor, digits: int = 3) -> list:
    return torch.round(values.double(), decimals=digits).tolist()


@torch.no_grad()
def _report(ema: ViT, peek, watched: torch.Tensor) -> dict:
    """What the tab draws at a report: validation accuracy on a peek, and the maps (_maps)."""
    return {"val_accuracy": _accuracy(ema, peek), **_maps(ema, watched)}  # _accuracy: in eval mode


@torch.no_grad()
def _maps(ema: ViT, watched: torch.Tensor) -> dict:
    """The position similarity and the watched picture's CLS attention in the last block (mean over heads), in the
    pieces' layout."""
    from .analysis import positional_similarity
    _, attention = ema.eval()(watched[None, None], return_attention=True)
    cls = attention[0, -1, :, 0, 1:].mean(0).reshape(ema.grid)
    similarity = positional_similarity(ema) if ema.pos_embedding_kind != "none" else None
    return {"similarity": _rounded(similarity) if similarity is not None else None,
            "attention": _rounded(cls / cls.max())}


@dataclass
class _Training:
    """What the child's loop carries: the model and its weight average, the optimiser, and how far it has gone."""
    model: ViT
    ema: ViT
    optimizer: torch.optim.Optimizer
    recipe: Recipe
    generator: torch.Generator
    step: int = 0
    seen: int = 0             # pictures shown
    loss: float | None = None  # the training loss, smoothed over the last steps


def train_watched(choices: Choices, output: Path, data_dir: str | None) -> None:
    """The child's work: train for the budget, reporting every few seconds, then write the folder."""
    from .data import DataError, carve_validation, load_split
    from .optimiser import make_optimizer
    torch.set_num_threads(1)
    torch.manual_seed(0)
    try:
        train_split, val_split = carve_validation(load_split(choices.dataset, "train", data_dir))
        test_split = load_split(choices.dataset, "test", data_dir)
    except (DataError, OSError) as error:
        _emit("failed", message=f"The {describe(choices.dataset).title} pictures could not be read ({error}).")
        return
    model, ema = ViT(**choices.architecture()), ViT(**choices.architecture())
    ema.load_state_dict(model.state_dict())
    how = recipe(choices)
    run = _Training(model, ema, make_optimizer(model, how), how, torch.Generator().manual_seed(0))
    watched = test_split.images[0, 0].float() / 255
    _emit("started", parameters=model.parameter_count, grid=list(model.grid), picture=_rounded(watched, 2),
          label=describe(choices.dataset).class_names[int(test_split.labels[0])])
    history, seconds = _train(run, choices, train_split, val_split.subset(torch.arange(VALIDATION_PEEK)), watched)
    if history is not None:
        _write(run, choices, history, seconds, output, (len(train_split), val_split, test_split), watched)


def _train(run: _Training, choices: Choices, train_split, peek, watched: torch.Tensor) -> tuple[list | None, float]:
    """Train until the budget is spent or a stop is asked for, reporting every few seconds: (the reports' history,
    the seconds trained); no history when the model is too slow for its budget (a "failed" report says so)."""
    from .optimiser import ema_decay_at, learning_rate
    from .training import train_step
    history, every, how = [], max(2.0, choices.seconds / 15), run.recipe
    started = last = time.perf_counter()
    order, at = torch.randperm(len(train_split), generator=run.generator), 0
    while (elapsed := time.perf_counter() - started) < choices.seconds and not _Stop.requested:
        if run.step == PROBE_STEPS and _too_slow(elapsed / run.step, how.batch_size, choices):
            return None, elapsed
        if at + how.batch_size > len(order):  # a new epoch, a new order
            order, at = torch.randperm(len(train_split), generator=run.generator), 0
        images, labels = train_split.batch(order[at:at + how.batch_size])
        at += how.batch_size
        clock = int(SCHEDULE_STEPS * elapsed / choices.seconds)
        loss, _ = train_step(run.model, run.ema, run.optimizer, how, images, labels, generator=run.generator,
                             lr=learning_rate(clock, SCHEDULE_STEPS, int(WARMUP * SCHEDULE_STEPS), how.lr),
                             ema_decay=ema_decay_at(how, run.step))
        run.loss = loss.item() if run.loss is None else 0.9 * run.loss + 0.1 * loss.item()
        run.step, run.seen = run.step + 1, run.seen + len(labels)
        if time.perf_counter() - last >= every:
            history.append(_progress(run, peek, watched, time.perf_counter() - started, len(train_split)))
            last = time.perf_counter()
    seconds = time.perf_counter() - started
    if run.step < PROBE_STEPS and not _Stop.requested and _too_slow(seconds / max(run.step, 1), how.batch_size,
                                                                     choices):
        return None, seconds
    return history, seconds


def _write(run: _Training, choices: Choices, history: list, seconds: float, output: Path, splits: tuple,
           watched: torch.Tensor) -> None:
    """Measure the weight average on the whole validation and test splits, write the folder, report "done" with the
    curve's last point and the maps of the model as kept."""
    from .evaluate import TrainingFacts, write_model_folder
    train_size, val_split, test_split = splits
    epochs = run.seen / train_size
    final = {"epoch": round(epochs, 3), "train_loss": round(run.loss or 0.0, 4),
             "val_accuracy": _accuracy(run.ema, val_split), "seconds": round(seconds, 1)}
    history.append(final)
    done = replace(run.recipe, epochs=max(1, math.ceil(epochs)), warmup_epochs=round(WARMUP * epochs, 3))  # as run
    facts = TrainingFacts(choices.dataset, history, seconds, command(choices), "cpu", asdict(done))
    evaluation = write_model_folder(output, run.ema.eval(), test_split, facts, val_split=val_split, quick=True)
    _emit("done", folder=str(output), test_accuracy=round(evaluation.accuracy, 4), stopped=_Stop.requested,
          seconds=round(seconds, 1), steps=run.step, pictures=run.seen,
          **{k: final[k] for k in ("val_accuracy", "epoch", "train_loss")}, **_maps(run.ema, watched))


def _progress(run: _Training, peek, watched: torch.Tensor, seconds: float, train_size: int) -> dict:
    """Report where the run is; return the history record (without the pictures' numbers)."""
    record = {"epoch": round(run.seen / train_size, 3), "train_loss": round(run.loss, 4), "seconds": round(seconds, 1)}
    shown = _report(run.ema, peek, watched)
    record["val_accuracy"] = shown["val_accuracy"]
    _emit("progress", step=run.step, pictures=run.seen, **record, **{k: shown[k] for k in ("similarity", "attention")})
    return record


def _accuracy(model: ViT, split) -> float:
    from .analysis import predict_split
    probabilities, _ = predict_split(model.eval(), split)
    return round((probabilities.argmax(-1) == split.labels).float().mean().item(), 4)


def _too_slow(step_seconds: float, batch: int, choices: Choices) -> bool:
    """Whether the budget would show the model too few pictures to learn from; if so, say so (a "failed" report)."""
    pictures = choices.seconds / step_seconds * batch
    if pictures >= MIN_PICTURES:
        return False
    _emit("failed", message=f"This model takes {step_seconds:.2f} s for each batch of {batch} pictures, so "
                            f"{choices.seconds:g} s would show it only {pictures:,.0f} pictures: too few to learn from "
                            f"(at least {MIN_PICTURES:,}). Choose {_lighter(choices)}.")
    return True


def _lighter(choices: Choices) -> str:
    """The changes that would make a run too slow for its budget lighter, among those these choices leave open:
    "larger pieces, fewer blocks, a smaller width or more seconds"."""
    changes = {"larger pieces": choices.tile_size < IMAGE // 2, "fewer blocks": choices.blocks > BLOCKS[0],
               "a smaller width": choices.width > WIDTHS[0], "more seconds": choices.seconds < SECONDS[1]}
    left = [words for words, possible in changes.items() if possible] or ["other choices"]
    return ", ".join(left[:-1]) + " or " + left[-1] if len(left) > 1 else left[0]


def parse_args(argv: list[str] | None = None) -> tuple[Choices, Path, str | None]:
    parser = argparse.ArgumentParser(prog="python -m vit.live", description=__doc__.split("\n\n")[0])
    defaults = Choices()
    for f in fields(Choices):
        parser.add_argument(f"--{f.name.replace('_', '-')}", type=type(getattr(defaults, f.name)),
                            default=getattr(defaults, f.name), help=f"default: {getattr(defaults, f.name)}")
    parser.add_argument("--output", type=Path, required=True, help="the model folder to write")
    parser.add_argument("--data-dir", help="folder of the IDX .gz files (default: $VIT_DATA_DIR, else the cache)")
    args = parser.parse_args(argv)
    choices = Choices(**{f.name: getattr(args, f.name) for f in fields(Choices)})
    if problem := choices.problem():
        parser.error(problem)
    return choices, args.output, args.data_dir


def main(argv: list[str] | None = None) -> None:
    choices, output, data_dir = parse_args(argv)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _Stop.request)
    try:
        train_watched(choices, output, data_dir)
    except Exception as error:  # the parent shows a sentence, never a traceback; the trace goes to stderr
        import traceback
        traceback.print_exc()
        _emit("failed", message=f"The training failed ({type(error).__name__}: {error}).")


if __name__ == "__main__":
    main()
