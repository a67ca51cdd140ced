"""Pictures that are not digits, made to train a model to say so: outlier exposure (Hendrycks, Mazeika &
Dietterich, ICLR 2019) pushes the model's answer on them toward uniform, so a drawn letter or doodle no longer
gets a near-certain digit.

Four kinds, each drawn black on a white pad-sized page and then framed by the app's own preprocessing, as a
visitor's drawing is: glyphs typed in the machine's fonts (letters and signs no reader takes for a digit),
scribbles, geometric doodles and pairs of training digits. Fragments of digits were tried and left out: cut
anywhere, a 9 leaves a 7 and a 0 leaves a 1, and teaching those to be no digit costs real digits. The digits
come from the training split only. A model of garments (Fashion-MNIST) takes single MNIST training digits in
place of the pairs, framed as it frames a drawing: a drawn digit is no garment. The pictures the app is
*measured* on are made by other code (proxies/, vit.probes), so this generator is not graded on its own output.
"""

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .preprocess import DIGITS, Framing, ImageError, to_model_input
from .rendered import PAGE, fonts

# Glyphs that look like no digit: O, I, l, S, Z, B, G, b, g, q, T, J and their kin are left out on purpose
GLYPHS = "ACEFHKMNRUVWXYacefhkmnrtuvwx#+=?@%*<>~&→↑↗★♥☺✓✗∞"
PEN = (10, 34)  # stroke width on the page, pixels: a fine pen to a marker; the pad draws 26


def glyph(rng: np.random.Generator, faces: list) -> Image.Image:
    """A letter or sign in a random font, size and slant."""
    page = Image.new("L", (PAGE, PAGE), 255)
    face = faces[int(rng.integers(len(faces)))]
    text = GLYPHS[int(rng.integers(len(GLYPHS)))]
    ImageDraw.Draw(page).text((PAGE / 2, PAGE / 2), text, fill=0, font=face, anchor="mm")
    return page.rotate(float(rng.uniform(-20, 20)), fillcolor=255)


def scribble(rng: np.random.Generator) -> Image.Image:
    """A few random strokes, straight or curved."""
    page = Image.new("L", (PAGE, PAGE), 255)
    draw = ImageDraw.Draw(page)
    for _ in range(int(rng.integers(2, 4))):  # one short stroke would be a 1
        points = [tuple(rng.uniform(30, PAGE - 30, 2)) for _ in range(int(rng.integers(4, 9)))]
        draw.line(points, fill=0, width=int(rng.integers(*PEN)), joint="curve")
    return page


def _curve(rng: np.random.Generator, kind: str) -> list[tuple[float, float]]:
    """One doodle as points on the page."""
    t = np.linspace(0, 1, 120)
    c, r = PAGE / 2 + rng.uniform(-30, 30, 2), rng.uniform(60, 130)
    if kind == "spiral":
        a = t * rng.uniform(3, 6) * math.pi
        x, y = c[0] + r * t * np.cos(a), c[1] + r * t * np.sin(a)
    elif kind == "wave":
        x, y = c[0] + r * (2 * t - 1), c[1] + r / 3 * np.sin(t * rng.uniform(3, 8) * math.pi)
    elif kind == "zigzag":
        x, y = c[0] + r * (2 * t - 1), c[1] + r / 3 * (2 * np.abs((t * rng.integers(3, 7)) % 2 - 1) - 1)
    else:  # a star or a polygon
        corners = int(rng.integers(3, 7))
        step = 2 if kind == "star" and corners >= 5 else 1
        a = np.linspace(0, 2 * math.pi * step, corners + 1) + rng.uniform(0, math.pi)
        x, y = c[0] + r * np.cos(a), c[1] + r * np.sin(a)
    return list(zip(x.tolist(), y.tolist()))


def doodle(rng: np.random.Generator) -> Image.Image:
    """A spiral, wave, zigzag, star, polygon, or a face: a ring with marks inside."""
    page = Image.new("L", (PAGE, PAGE), 255)
    draw, width = ImageDraw.Draw(page), int(rng.integers(*PEN))
    kind = ("spiral", "wave", "zigzag", "star", "polygon", "face")[int(rng.integers(6))]
    if kind == "face":
        r = rng.uniform(90, 140)
        draw.ellipse([PAGE / 2 - r, PAGE / 2 - r, PAGE / 2 + r, PAGE / 2 + r], outline=0, width=width)
        for dx in (-r / 2.5, r / 2.5):
            draw.ellipse([PAGE / 2 + dx - 10, PAGE / 2 - r / 3 - 10, PAGE / 2 + dx + 10, PAGE / 2 - r / 3 + 10], fill=0)
        start = 20 if rng.random() < 0.5 else 200
        draw.arc([PAGE / 2 - r / 2, PAGE / 2 - r / 4, PAGE / 2 + r / 2, PAGE / 2 + r / 2], start, start + 140,
                 fill=0, width=width)
    else:
        draw.line(_curve(rng, kind), fill=0, width=width, joint="curve")
    return page


def pair(rng: np.random.Generator, digits: np.ndarray) -> Image.Image:
    """Two training digits side by side: a number, not a digit."""
    page = Image.new("L", (PAGE, PAGE), 255)
    for left in (8, 168):
        pixels = digits[int(rng.integers(len(digits)))]
        page.paste(Image.fromarray(255 - pixels).resize((160, 160), Image.Resampling.BILINEAR), (left, 88))
    return page


def digit(rng: np.random.Generator, digits: np.ndarray) -> Image.Image:
    """One training digit drawn alone: to a model of garments, a drawn digit is no garment."""
    page = Image.new("L", (PAGE, PAGE), 255)
    pixels = digits[int(rng.integers(len(digits)))]
    side = int(rng.integers(160, 280))
    page.paste(Image.fromarray(255 - pixels).resize((side, side), Image.Resampling.BILINEAR),
               tuple(int(v) for v in rng.integers(0, PAGE - side + 1, 2)))
    return page


KINDS = ("glyph", "scribble", "doodle", "pair")  # for a digit model; a garment model's own: DATASETS' `outliers`


@dataclass(frozen=True)
class Source:
    """What a run's outliers are made from: their kinds, the framing of the model's drawings, and MNIST training
    digits for the kinds drawn from them (pairs, single digits); None: the run's own training split (digits)."""
    kinds: tuple[str, ...] = KINDS
    framing: Framing = DIGITS
    digits: torch.Tensor | None = None  # (N, 28, 28) uint8


def pool(count: int, digits: torch.Tensor, seed: int = 0, framing: Framing = DIGITS,
         kinds: tuple[str, ...] = KINDS) -> torch.Tensor:
    """`count` outliers (N, 28, 28) in [0, 1], the `kinds` in turn, framed as the app frames a drawing for a model
    of that `framing`; `digits` are MNIST training images (N, 28, 28) uint8 for the pairs and single digits. A draw
    the preprocessing refuses is replaced."""
    rng = np.random.default_rng(seed)
    faces = [ImageFont.truetype(str(path), int(size)) for path in fonts()[:40] for size in (150, 230)]
    pixels = digits.numpy()
    makers = {"glyph": lambda: glyph(rng, faces), "scribble": lambda: scribble(rng), "doodle": lambda: doodle(rng),
              "pair": lambda: pair(rng, pixels), "digit": lambda: digit(rng, pixels)}
    made = []
    while len(made) < count:
        try:
            made.append(to_model_input(makers[kinds[len(made) % len(kinds)]](), framing))
        except ImageError:
            continue
    return torch.stack(made)
