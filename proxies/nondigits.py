"""Drawn non-digits: the shapes of proxies.shapes drawn by the hand of proxies.strokes, as the app's drawing pad
sends them (a 336x336 white canvas, a round pen 26 px wide) or as a sheet drawn with a felt pen and scanned.

A proxy built here for what people draw when they try the "not a digit" answer: it predicts, it does not measure,
what the app does with their drawings.
"""

import numpy as np

from .draw import Draw, Picture, check_draw, item_rng, png, to_uint8
from .shapes import KINDS, Shape
from .strokes import Hand, Pen, ink_strokes, place

SIZE = 600                                     # pictures per draw: about 14 of each of the 44 kinds
SEEDS = {"choose": 7_310_421, "report": 7_310_422}
PAD_SIDE, PAD_PEN = 336, 26                   # tabs/pad.py: the canvas and its pen (radius 13)
PAD_SHARE = 0.6                                # the rest are felt-pen sheets, scanned


def build(draw: str, size: int = SIZE) -> Draw:
    """One draw of the non-digit set: `size` pictures, the kinds in turn."""
    check_draw(draw)
    kinds = list(KINDS)
    return Draw("nondigits", draw, tuple(picture(kinds[i % len(kinds)], item_rng(SEEDS[draw], i))
                                         for i in range(size)))


def picture(kind: str, rng: np.random.Generator) -> Picture:
    """One drawing of `kind`, on the pad or on a scanned sheet."""
    group, make = KINDS[kind]
    shape = warp(make(rng), rng)
    pixels = on_pad(shape, group, kind, rng) if rng.random() < PAD_SHARE else on_sheet(shape, group, kind, rng)
    return Picture(png(pixels), kind, group, None)


def warp(shape: Shape, rng: np.random.Generator, amount: float = 0.06) -> Shape:
    """Proportions as a hand gets them: a smooth bend of the whole shape and strokes that do not quite meet."""
    a, b, c, d = rng.normal(0, amount, 4)

    def bend(points: np.ndarray) -> np.ndarray:
        x, y = points[:, 0] - 0.5, points[:, 1] - 0.5
        return points + np.stack([a * y + b * x * y, c * x + d * x * x], axis=1)
    return [bend(stroke) + rng.normal(0, amount / 3, 2) for stroke in shape]


def hand(group: str, kind: str, rng: np.random.Generator, size: float, centre: tuple[float, float]) -> Hand:
    """A hand for one drawing: letters and signs near upright, an arrow in any of eight directions, doodles turned
    more freely."""
    if kind == "arrow":
        turn = float(rng.choice(np.arange(0, 360, 45)) + rng.normal(0, 5))
    else:
        turn = float(rng.normal(0, 8 if group in ("letter", "sign") else 20))
    return Hand(turn=turn, slant=rng.uniform(-0.25, 0.25), stretch=rng.uniform(0.75, 1.3),
                wobble=rng.uniform(0.004, 0.018), size=size, centre=centre)


def on_pad(shape: Shape, group: str, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Black strokes 26 px wide on the pad's white 336x336 canvas, (336, 336) uint8."""
    size = rng.uniform(130, 290)
    margin = size / 2 + PAD_PEN / 2 + 2
    centre = tuple(rng.uniform(margin, PAD_SIDE - margin, 2))
    strokes = place(shape, hand(group, kind, rng, size, centre), rng)
    ink = ink_strokes(strokes, (PAD_SIDE, PAD_SIDE), Pen(PAD_PEN), rng)
    return to_uint8(1 - ink)


def on_sheet(shape: Shape, group: str, kind: str, rng: np.random.Generator) -> np.ndarray:
    """A felt pen of varying pressure on off-white paper, scanned with a little noise, (H, W) uint8."""
    width, height = (int(v) for v in rng.integers(300, 700, 2))
    size = rng.uniform(0.35, 0.7) * min(width, height)
    pen = Pen(width=size * rng.uniform(0.03, 0.08), pressure=rng.uniform(0.1, 0.35), ink=rng.uniform(0, 0.3))
    margin = size / 2 + pen.width
    centre = (rng.uniform(margin, width - margin), rng.uniform(margin, height - margin))
    ink = ink_strokes(place(shape, hand(group, kind, rng, size, centre), rng), (width, height), pen, rng)
    paper = rng.uniform(0.85, 1.0)
    page = paper * (1 - ink) + pen.ink * ink + rng.normal(0, rng.uniform(0.005, 0.025), ink.shape)
    return to_uint8(page)
