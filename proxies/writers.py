"""Digits by other hands: scikit-learn's copy of UCI optdigits (Alpaydin and Kaynak 1998), the 1,797 digits of
its test part, written on forms by 13 people (of the 43 who wrote the whole set), none of them in MNIST; each
rendered as a scan arrives: dark ink on white paper, scaled up smoothly, a little paper noise.

optdigits stores each digit as 8x8 counts of ink in 4x4 blocks of a 32x32 bilevel scan, so the strokes' edges are
lost. Half the pictures are rendered with those soft edges as they come; half with the edges drawn back where the
counts cross half-full ("crisp"), as the bilevel scan had them. The digits come in the order of the forms (0 to 9
over and over); writer ids are not published, so if each writer's forms lie together, the "choose" draw (the
first half) and the "report" draw (the second half) share at most one writer.

A proxy built here for the scans of other writers' digits people bring; its pictures are only as sharp as 8x8
allows.
"""

import numpy as np
from PIL import Image

from .draw import Draw, Picture, check_draw, item_rng, png, to_uint8

SEEDS = {"choose": 3_140_271, "report": 3_140_272}
KINDS = ("optdigits, soft edges", "optdigits, crisp edges")


def optdigits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 digits (N, 8, 8) in [0, 1], ink bright, and their labels (N,); bundled with scikit-learn."""
    from sklearn.datasets import load_digits  # a test and measurement dependency (requirements-test.txt)
    digits = load_digits()
    return digits.images / 16.0, digits.target.astype(int)


def build(draw: str, size: int | None = None) -> Draw:
    """One draw: the first half of optdigits to choose with, the second half to report; `size` keeps the first
    pictures of the draw only (for quick checks)."""
    check_draw(draw)
    images, labels = optdigits()
    index = indices(draw, len(images))[:size]
    pictures = []
    for i, item in enumerate(index):
        rng = item_rng(SEEDS[draw], i)
        kind = KINDS[i % len(KINDS)]
        pictures.append(Picture(png(scan(images[item], kind == KINDS[1], rng)), kind, "writers", int(labels[item])))
    return Draw("writers", draw, tuple(pictures))


def indices(draw: str, total: int) -> list[int]:
    """Which of the `total` optdigits a draw holds: the first half to choose with, the rest to report."""
    half = (total + 1) // 2
    return list(range(half) if draw == "choose" else range(half, total))


def scan(digit: np.ndarray, crisp: bool, rng: np.random.Generator) -> np.ndarray:
    """One (8, 8) digit in [0, 1] as a grey scan: 96-200 px of digit inside a white margin, (H, W) uint8."""
    side = int(rng.integers(96, 201))
    big = Image.fromarray(digit.astype(np.float32)).resize((side, side), Image.Resampling.BICUBIC)
    ink = np.clip(np.asarray(big, dtype=np.float32), 0, 1)
    if crisp:
        ink = np.clip((ink - 0.5) / 0.15 + 0.5, 0, 1)  # edges where the 4x4 blocks were half inked
    margins = (rng.uniform(0.1, 0.35, 4) * side).astype(int)  # top, bottom, left, right
    ink = np.pad(ink, ((margins[0], margins[1]), (margins[2], margins[3])))
    paper, pen = rng.uniform(0.88, 1.0), rng.uniform(0.0, 0.25)
    page = paper - (paper - pen) * ink + rng.normal(0, rng.uniform(0.003, 0.02), ink.shape)
    return to_uint8(page)
