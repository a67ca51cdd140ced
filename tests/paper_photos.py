"""Digits as a phone or a scanner sees them on paper, made here to check the preprocessing's page removal: an MNIST
digit written on a page under uneven light, across a shadow's edge, in pencil on tinted paper, in ballpoint on
ruled paper. Reproducible from a seed; built with none of the code that makes training pictures."""

import io

import numpy as np
from PIL import Image, ImageFilter

SIDE, DIGIT = 400, 280  # the page and the digit on it, pixels


def _cover(digit: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """How much ink covers each pixel of the page (SIDE, SIDE) in [0, 1]: the digit ten times its size, placed
    at random."""
    big = np.asarray(Image.fromarray(digit).resize((DIGIT, DIGIT), Image.Resampling.BILINEAR), np.float32) / 255
    cover = np.zeros((SIDE, SIDE), np.float32)
    top, left = rng.integers(10, SIDE - DIGIT - 10, size=2)
    cover[top:top + DIGIT, left:left + DIGIT] = big
    return cover


def _ramp(rng: np.random.Generator, low: float, high: float) -> np.ndarray:
    """Light falling off linearly across the page in a random direction, from high to low."""
    angle = rng.uniform(0, 2 * np.pi)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE] / SIDE - 0.5
    along = rows * np.sin(angle) + cols * np.cos(angle)
    along = (along - along.min()) / (along.max() - along.min())
    return low + (high - low) * along


def _shadow(rng: np.random.Generator, depth: float) -> np.ndarray:
    """A straight band of shadow, a third of the page wide, across the page near its middle, soft-edged."""
    angle = rng.uniform(0, np.pi)
    rows, cols = np.mgrid[0:SIDE, 0:SIDE] / SIDE - 0.5
    distance = rows * np.sin(angle) + cols * np.cos(angle) - rng.uniform(-0.15, 0.15)
    band = Image.fromarray(((np.abs(distance) < 1 / 6) * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(6))
    return 1 - (1 - depth) * np.asarray(band, np.float32) / 255


def _dim_middle(depth: float) -> np.ndarray:
    """Light as a lamp beside the camera leaves it: the page's middle in the phone's shadow, its border lit alike."""
    rows, cols = np.mgrid[0:SIDE, 0:SIDE] / SIDE - 0.5
    return 1 - depth * np.exp(-(rows ** 2 + cols ** 2) / 0.3 ** 2)


def _shadowed_side(rng: np.random.Generator, depth: float) -> np.ndarray:
    """A sharp-edged shadow over three fifths to two thirds of the page, from one side."""
    cols = np.mgrid[0:SIDE, 0:SIDE][1] / SIDE
    shade = cols < rng.uniform(0.6, 0.67)
    return np.where(shade if rng.random() < 0.5 else shade[:, ::-1], depth, 1.0)


def _ruled(rng: np.random.Generator) -> np.ndarray:
    """Where ruled paper has its lines (SIDE, SIDE) in [0, 1]: one every 32 pixels, 2 pixels thick."""
    lines = np.zeros((SIDE, SIDE), np.float32)
    for row in range(int(rng.integers(8, 32)), SIDE, 32):
        lines[row:row + 2] = 1
    return lines


def _turned(amount: np.ndarray, degrees: float) -> np.ndarray:
    """A map of ink or lines (SIDE, SIDE) in [0, 1], turned about the page's centre."""
    image = Image.fromarray((amount * 255).astype(np.uint8)).rotate(degrees, Image.Resampling.BILINEAR)
    return np.asarray(image, np.float32) / 255


KINDS = ("uneven light", "shadow band", "pencil on tinted paper", "ruled paper", "pencil, middle in shadow",
         "chalk on a blackboard", "marker, most of the page in shadow", "ruled paper, even light")
CLEAN = "clean paper"  # black ink on white under even light: what each kind is compared with


def photographed(digit: np.ndarray, kind: str, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit (28, 28) uint8 photographed on paper as `kind` says: RGB, the page slightly turned,
    JPEG-compressed."""
    turn = rng.uniform(-3, 3)  # degrees: the page lies a little askew under the camera
    cover = _turned(_cover(digit, rng), turn)[..., None]  # (SIDE, SIDE, 1)
    white = np.array([0.95, 0.95, 0.93])
    if kind == "uneven light":
        paper, ink, light = white, np.array([0.08, 0.08, 0.1]), _ramp(rng, 0.35, 1.0)
    elif kind == "shadow band":
        paper, ink, light = white, np.array([0.15, 0.15, 0.35]), _shadow(rng, 0.45)
    elif kind == "pencil on tinted paper":
        paper = np.array([0.92, 0.85, 0.68])
        ink, light = paper * 0.55, _ramp(rng, 0.75, 1.0)
        cover = cover * rng.uniform(0.6, 1.0, cover.shape)  # graphite leaves grain
    elif kind == "pencil, middle in shadow":  # the border stays one tone, so only the page's middle tells
        paper = np.array([0.92, 0.85, 0.68])
        ink, light = paper * 0.55, _dim_middle(0.25)
        cover = cover * rng.uniform(0.6, 1.0, cover.shape)
    elif kind in ("ruled paper", "ruled paper, even light"):  # even light: the page takes the one-tone road
        lines = _turned(_ruled(rng), turn)[..., None]  # (SIDE, SIDE, 1)
        paper = white * (1 - lines) + np.array([0.55, 0.7, 0.9]) * lines
        ink = np.array([0.1, 0.15, 0.45])
        light = _ramp(rng, 0.85, 1.0) if kind == "ruled paper" else np.ones((SIDE, SIDE))
    elif kind == "chalk on a blackboard":  # light strokes on a dark page: the ink is the lighter tone
        paper, ink, light = np.array([0.16, 0.22, 0.2]), np.array([0.88, 0.88, 0.85]), _ramp(rng, 0.6, 1.0)
    elif kind == "marker, most of the page in shadow":  # the page's median tone is the shadow's
        paper, ink, light = white, np.array([0.1, 0.1, 0.12]), _shadowed_side(rng, 0.45)
    elif kind == CLEAN:
        paper, ink, light = white, np.array([0.08, 0.08, 0.1]), np.ones((SIDE, SIDE))
    else:
        raise ValueError(f"unknown kind {kind!r}; one of {KINDS + (CLEAN,)}")
    rgb = (paper * (1 - cover) + ink * cover) * light[..., None]
    rgb = rgb + rng.normal(0, 0.015, rgb.shape)  # the camera's grain
    image = Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return Image.open(io.BytesIO(buffer.getvalue()))
