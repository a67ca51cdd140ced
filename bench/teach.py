"""`python -m bench.teach [MODEL ...]`: does fine-tuning the last block too help a taught model (vit.teach)?

For each committed model (default: all in the menu), three sets of symbols (3, 4 and 5 symbols, among them an arrow
up and an arrow down, a triangle and an arrow's head) and three seeds: five drawings of each symbol are taught, then
forty new drawings of each are read, by the head alone (what the Teach tab does) and after the last block, its norm
and the head are fine-tuned on the same augmented pictures (8 epochs of AdamW). The drawings are the tests' (tests/
picture_files.py: the pad's pen, one hand's variation) with each stroke placed, stretched and shaken a little more,
as a hurried hand draws. Prints one line a run and the means; a few minutes on one thread.
"""

import argparse
import copy
import math
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from vit import teach
from vit.bundle import bundled_folders, load_folder
from vit.preprocess import to_model_input
from vit.tiling import patchify

from . import ROOT

sys.path.insert(0, str(ROOT / "tests"))  # the drawings the tests teach: one definition of each symbol
from picture_files import SYMBOL_SHAPES, drawn_on_pad, symbol_strokes  # noqa: E402

MORE_SHAPES = {
    "circle": lambda: [[(0.5 + 0.35 * math.cos(math.pi * i / 12), 0.5 + 0.35 * math.sin(math.pi * i / 12))
                        for i in range(25)]],
    "triangle": lambda: [[(0.5, 0.15), (0.85, 0.8), (0.15, 0.8), (0.5, 0.15)]],
    "cross": lambda: [[(0.2, 0.2), (0.8, 0.8)], [(0.8, 0.2), (0.2, 0.8)]],
    "down": lambda: [[(0.5, 0.15), (0.5, 0.85)], [(0.28, 0.62), (0.5, 0.85)], [(0.72, 0.62), (0.5, 0.85)]],
    "check": lambda: [[(0.2, 0.55), (0.4, 0.78), (0.82, 0.2)]],
}
SETS = (("star", "heart", "arrow"), ("circle", "heart", "triangle", "star", "cross"),
        ("arrow", "down", "check", "triangle"))
TAUGHT, READ, SEEDS = 5, 40, 3


def hurried(name: str, rng: np.random.Generator) -> list:
    """A drawing of the symbol, each stroke placed, stretched and shaken a little more than the tests' hand."""
    strokes = []
    for stroke in symbol_strokes(name, rng):
        shift, stretch = rng.uniform(-0.05, 0.05, 2), rng.uniform(0.8, 1.2)
        strokes.append([(float(np.clip(0.5 + (x - 0.5) * stretch + shift[0] + rng.normal(0, 0.02), 0.02, 0.98)),
                         float(np.clip(y + shift[1] + rng.normal(0, 0.02), 0.02, 0.98))) for x, y in stroke])
    return strokes


def drawings(names, count: int, rng, framing) -> tuple[list[np.ndarray], list[int]]:
    pairs = [(to_model_input(drawn_on_pad(hurried(name, rng)), framing).numpy(), label)
             for label, name in enumerate(names) for _ in range(count)]
    return [picture for picture, _ in pairs], [label for _, label in pairs]


def last_block_tuned(learned: teach.Learned, lesson: teach.Lesson, epochs: int = 8, lr: float = 1e-3):
    """The taught model with its last block, final norm and head fine-tuned on augmented pictures of the drawings
    (the blocks before it frozen: their tokens are computed once)."""
    model = copy.deepcopy(learned.model)
    generator = torch.Generator().manual_seed(1)
    pictures = lesson.drawings[:, None].repeat_interleave(teach.COPIES, 0)
    varied = teach.augment(pictures, teach.AUGMENTATION, generator).clamp(0, 1)
    labels = lesson.labels.repeat_interleave(teach.COPIES)
    with torch.no_grad():
        pixels = (varied - model.pixel_mean) / model.pixel_std
        tokens = model.tile_embedding(patchify(pixels, model.tile_size, model.cut))                 # (M, N, D)
        tokens = torch.cat([model.cls_token.expand(len(tokens), -1, -1), tokens], 1) + model.pos_embedding
        for block in model.blocks[:-1]:
            tokens, _ = block(tokens)
    trained = [*model.blocks[-1].parameters(), *model.norm.parameters(), *model.head.parameters()]
    for parameter in trained:
        parameter.requires_grad_(True)
    optimiser = torch.optim.AdamW(trained, lr=lr, weight_decay=0.01)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(tokens), generator=generator).split(64):
            out, _ = model.blocks[-1](tokens[batch])
            loss = F.cross_entropy(model.head(model.norm(out)[:, 0]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return model.eval().requires_grad_(False)


def accuracy(model, pictures, labels) -> float:
    with torch.no_grad():
        answers = model(torch.from_numpy(np.stack(pictures))[:, None]).argmax(-1)
    return float((answers == torch.tensor(labels)).float().mean())


def run(base, names, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    lesson = teach.lesson(list(names), *drawings(names, TAUGHT, rng, base.framing))
    new = drawings(names, READ, rng, base.framing)
    started = time.perf_counter()
    learned = teach.teach(base, lesson)
    head_seconds = time.perf_counter() - started
    started = time.perf_counter()
    tuned = last_block_tuned(learned, lesson)
    return {"held_out": learned.evaluation.accuracy, "head": accuracy(learned.model, *new), "head_s": head_seconds,
            "tuned": accuracy(tuned, *new), "tuned_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> None:
    folders = bundled_folders()
    parser = argparse.ArgumentParser(prog="python -m bench.teach", description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=list(folders), help="committed models (default: the menu's)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    SYMBOL_SHAPES.update(MORE_SHAPES)
    print("| model | held-out estimate | new drawings, head only | + last block fine-tuned "
          "| seconds: head, + fine-tuning |")
    print("| --- | --- | --- | --- | --- |")
    for name in args.models:
        base = load_folder(folders[name])
        base.model.eval().requires_grad_(False)
        runs = [run(base, names, seed) for names in SETS for seed in range(SEEDS)]
        mean = {key: statistics.fmean(result[key] for result in runs) for key in runs[0]}
        print(f"| {name} | {mean['held_out']:.1%} | {mean['head']:.1%} (worst {min(r['head'] for r in runs):.1%}) | "
              f"{mean['tuned']:.1%} (worst {min(r['tuned'] for r in runs):.1%}) | {mean['head_s']:.1f}, "
              f"+{mean['tuned_s']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
