"""A hand with a pen, for the drawn non-digits: shapes as strokes in a unit box, the wobble of a hand, a slant,
a turn and a size, and ink laid along each stroke by a round pen whose width may vary with pressure.

Shapes are lists of strokes; a stroke is an (N, 2) array of (x, y) points, y downwards, a shape's box about
[0, 1] x [0, 1]. Curves are Catmull-Rom splines through the points given, or arcs of ellipses.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SUPERSAMPLE = 3  # the pen draws at 3x and the page is shrunk back: anti-aliased edges like a canvas or a scanner


def line(*points: tuple[float, float]) -> np.ndarray:
    """A polyline through the points, (N, 2)."""
    return np.asarray(points, dtype=np.float64)


def curve(*points: tuple[float, float], steps: int = 12) -> np.ndarray:
    """A Catmull-Rom spline through the points (the ends repeated), (steps * (N - 1) + 1, 2)."""
    knots = np.asarray(points, dtype=np.float64)
    padded = np.vstack([knots[:1], knots, knots[-1:]])  # (N + 2, 2)
    t = np.linspace(0, 1, steps, endpoint=False)[:, None]  # (steps, 1)
    pieces = []
    for p0, p1, p2, p3 in zip(padded, padded[1:], padded[2:], padded[3:]):
        pieces.append(0.5 * (2 * p1 + (p2 - p0) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                             + (3 * p1 - p0 - 3 * p2 + p3) * t ** 3))
    return np.vstack(pieces + [knots[-1:]])


def arc(centre: tuple[float, float], radii: tuple[float, float], start: float, end: float,
        steps: int = 32) -> np.ndarray:
    """Points on an ellipse from angle `start` to `end` in degrees (0 = right, 90 = down), (steps, 2)."""
    angles = np.radians(np.linspace(start, end, steps))
    return np.stack([centre[0] + radii[0] * np.cos(angles), centre[1] + radii[1] * np.sin(angles)], axis=1)


def join(*parts: np.ndarray) -> np.ndarray:
    """Pieces drawn without lifting the pen, one stroke."""
    return np.vstack(parts)


def resample(stroke: np.ndarray, spacing: float, least: int = 2) -> np.ndarray:
    """Evenly spaced points along a stroke, `spacing` apart (at least `least` points), (M, 2)."""
    steps = np.linalg.norm(np.diff(stroke, axis=0), axis=1)
    along = np.concatenate([[0.0], np.cumsum(steps)])
    count = max(least, int(np.ceil(along[-1] / spacing)) + 1)
    targets = np.linspace(0, along[-1], count)
    return np.stack([np.interp(targets, along, stroke[:, axis]) for axis in (0, 1)], axis=1)


def wobble(stroke: np.ndarray, rng: np.random.Generator, amount: float) -> np.ndarray:
    """A hand's unsteadiness: a slow drift (a few sine waves along the stroke) plus a little tremor, in box units."""
    points = resample(stroke, 0.01, least=8)  # a dot too gets a few points to wobble
    u = np.linspace(0, 1, len(points))[:, None]  # (M, 1): position along the stroke
    drift = np.zeros_like(points)
    for harmonic in (1, 2, 3):
        phase, size = rng.uniform(0, 2 * np.pi, 2), rng.normal(0, amount / harmonic, 2)
        drift += size * np.sin(2 * np.pi * harmonic * u / 2 + phase)
    tremor = rng.normal(0, amount * 0.15, points.shape)
    kernel = np.ones(5) / 5  # smooths the tremor over about five hundredths of the box
    tremor = np.stack([np.convolve(tremor[:, a], kernel, mode="same") for a in (0, 1)], axis=1)
    return points + drift + tremor


@dataclass(frozen=True)
class Hand:
    """How one drawing is drawn: turn, slant, stretch, wobble and where it lands on the page, in page pixels."""
    turn: float        # degrees
    slant: float       # shear: x += slant * (centre_y - y)
    stretch: float     # width / height factor
    wobble: float      # box units
    size: float        # the longer side of the drawing on the page
    centre: tuple[float, float]


def place(shape: list[np.ndarray], hand: Hand, rng: np.random.Generator) -> list[np.ndarray]:
    """A shape as a hand draws it on the page: wobbled, slanted, stretched, turned, scaled and placed."""
    strokes = [wobble(stroke, rng, hand.wobble) for stroke in shape]
    points = np.vstack(strokes)
    middle = (points.min(0) + points.max(0)) / 2
    angle = np.radians(hand.turn)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    shear = np.array([[hand.stretch, -hand.slant], [0.0, 1.0]])
    strokes = [(stroke - middle) @ (rotation @ shear).T for stroke in strokes]
    points = np.vstack(strokes)
    extent = float((points.max(0) - points.min(0)).max())
    middle = (points.min(0) + points.max(0)) / 2
    return [(stroke - middle) * (hand.size / extent) + np.asarray(hand.centre) for stroke in strokes]


@dataclass(frozen=True)
class Pen:
    """The pen: its width in page pixels, how much the width follows pressure, and the ink's grey (0 = black)."""
    width: float
    pressure: float = 0.0  # 0: a drawing pad's fixed width; 0.3: a felt pen pressed harder and lighter
    ink: float = 0.0


def ink_strokes(strokes: list[np.ndarray], size: tuple[int, int], pen: Pen, rng: np.random.Generator) -> np.ndarray:
    """Ink coverage (H, W) in [0, 1] of the strokes on a page of `size` (width, height), anti-aliased."""
    width, height = size
    canvas = Image.new("L", (width * SUPERSAMPLE, height * SUPERSAMPLE), 0)
    draw = ImageDraw.Draw(canvas)
    for stroke in strokes:
        points = resample(stroke, max(1.0, pen.width / 4)) * SUPERSAMPLE
        phase = rng.uniform(0, 2 * np.pi)
        u = np.linspace(0, np.pi * rng.uniform(1, 3), len(points))
        widths = pen.width * SUPERSAMPLE * (1 + pen.pressure * np.sin(u + phase))
        for (x, y), w in zip(points, widths):  # discs a quarter of the width apart: a smooth round-ended stroke
            r = w / 2
            draw.ellipse([x - r, y - r, x + r, y + r], fill=255)
    small = canvas.resize((width, height), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255
