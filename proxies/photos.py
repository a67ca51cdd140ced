"""Digits photographed on paper: MNIST digits as the shape of the ink, laid on paper in six kinds of light and ink
and photographed as a phone does it (a small turn and tilt, light falling off to the corners, blur, sensor noise,
JPEG).

A proxy built here for the photos people upload. The "choose" draw takes its digits from the validation split
carved from MNIST's training images (vit.data.carve_validation), the "report" draw from MNIST's test split.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from vit.data import Split, carve_validation, load_split

from .draw import Draw, Picture, check_draw, item_rng, jpeg, to_uint8

KINDS = ("pen on white paper, sharp", "pen, uneven light, soft focus", "pencil on tinted paper",
         "marker, shadow across the page", "ballpoint on ruled paper", "on squared paper")
PER_KIND = 100
SEEDS = {"choose": 5_260_113, "report": 5_260_114}
TINTS = np.array([[0.96, 0.90, 0.74], [0.96, 0.93, 0.62], [0.80, 0.88, 0.96], [0.96, 0.83, 0.86],
                  [0.84, 0.84, 0.81], [0.86, 0.94, 0.83]])  # cream, yellow, blue, pink, grey, green notepaper


def digits(draw: str) -> Split:
    """Where a draw's ink comes from: validation digits to choose with, test digits to report."""
    check_draw(draw)
    if draw == "report":
        return load_split("mnist", "test")
    return carve_validation(load_split("mnist", "train"))[1]


def build(draw: str, per_kind: int = PER_KIND, source: Split | None = None) -> Draw:
    """One draw: `per_kind` photos of each kind, the kinds in turn, of digits picked at random from `source`."""
    check_draw(draw)
    source = digits(draw) if source is None else source
    count = per_kind * len(KINDS)
    chosen = np.random.default_rng(SEEDS[draw]).choice(len(source), count, replace=False)
    pictures = []
    for i, index in enumerate(chosen):
        kind, label = KINDS[i % len(KINDS)], int(source.labels[index])
        data = photo(source.images[index, 0].numpy(), kind, item_rng(SEEDS[draw], i))
        pictures.append(Picture(data, kind, "photos", label))
    return Draw("photos", draw, tuple(pictures))


@dataclass(frozen=True)
class Ink:
    """How the ink lies on the page: where its edge is drawn in the smoothed digit, its colour, its grain."""
    level: float          # smoothed MNIST intensity where the stroke's edge is: lower = a thicker stroke
    colour: np.ndarray    # (3,) RGB
    grain: float = 0.0    # share of the ink that graphite's grain leaves out


def ink_for(kind: str, paper: np.ndarray, rng: np.random.Generator) -> Ink:
    """The pen of each kind."""
    if kind.startswith("pencil"):
        return Ink(rng.uniform(0.35, 0.5), paper * rng.uniform(0.45, 0.68), grain=rng.uniform(0.25, 0.55))
    if kind.startswith("marker"):
        return Ink(rng.uniform(0.12, 0.25), np.full(3, rng.uniform(0.04, 0.12)))
    if kind.startswith("ballpoint"):
        return Ink(rng.uniform(0.45, 0.6), np.array([0.12, 0.17, 0.55]) + rng.normal(0, 0.03, 3))
    return Ink(rng.uniform(0.3, 0.5), np.array([0.1, 0.1, 0.14]) + rng.normal(0, 0.02, 3))


def paper_for(kind: str, rng: np.random.Generator) -> np.ndarray:
    """The paper's colour, (3,) RGB: tinted notepaper for pencil, white (a little warm or cool) otherwise."""
    if kind.startswith("pencil"):
        return TINTS[rng.integers(len(TINTS))] * rng.uniform(0.9, 1.0)
    return np.clip(rng.uniform(0.9, 0.98) + rng.normal(0, 0.015, 3), 0, 1)


def photo(digit: np.ndarray, kind: str, rng: np.random.Generator) -> bytes:
    """One (28, 28) uint8 MNIST digit written on paper and photographed: JPEG file bytes, RGB, 400-900 px sides."""
    width, height = (int(v) for v in rng.integers(400, 901, 2))
    size = int(rng.uniform(0.3, 0.6) * min(width, height))  # the digit's side on the page
    paper = paper_for(kind, rng)
    ink = ink_for(kind, paper, rng)
    texture = 1 + smooth_noise((height, width), rng, 0.012)
    page = (texture[..., None] * paper).astype(np.float32)  # (H, W, 3)
    rule_lines(page, kind, size, rng)
    coverage = np.zeros((height, width), dtype=np.float32)
    top = int(np.clip(rng.normal((height - size) / 2, height * 0.06), 0, height - size))
    left = int(np.clip(rng.normal((width - size) / 2, width * 0.06), 0, width - size))
    coverage[top:top + size, left:left + size] = ink_shape(digit, size, ink, rng)
    page += (ink.colour.astype(np.float32) - page) * coverage[..., None]
    picture = tilt(Image.fromarray(to_uint8(page)), rng)
    picture = np.asarray(picture, dtype=np.float32) * (light(kind, (height, width), rng)[..., None] / 255)
    blur = rng.uniform(1.5, 3.5) if "soft focus" in kind else rng.uniform(0.3, 1.0)
    picture = np.asarray(Image.fromarray(to_uint8(picture)).filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255
    noise = rng.standard_normal(picture.shape, dtype=np.float32) * np.float32(rng.uniform(0.006, 0.025))
    picture += noise  # sensor noise, per colour
    return jpeg(to_uint8(picture), rng.integers(70, 93))


def ink_shape(digit: np.ndarray, size: int, ink: Ink, rng: np.random.Generator) -> np.ndarray:
    """The digit's ink coverage at `size` x `size`: smoothly scaled up, edged at the ink's level, grainy for
    pencil, (size, size) in [0, 1]."""
    big = Image.fromarray(digit).resize((size, size), Image.Resampling.BICUBIC)
    big = np.asarray(big.filter(ImageFilter.GaussianBlur(size / 70)), dtype=np.float32) / 255
    coverage = np.clip((big - ink.level) / 0.12 + 0.5, 0, 1).astype(np.float32)  # a pixel of soft edge, before the
    # camera's blur
    if ink.grain:
        coverage *= 1 - np.float32(ink.grain) * rng.random(coverage.shape, dtype=np.float32) ** 0.7
    return coverage


def rule_lines(page: np.ndarray, kind: str, size: int, rng: np.random.Generator) -> None:
    """Ruled paper's blue lines (and a red margin) or squared paper's grid, drawn into the page in place."""
    height, width, _ = page.shape
    if kind.startswith("ballpoint"):
        spacing, colour = size * rng.uniform(0.55, 1.0), np.array([0.55, 0.7, 0.95])
        for y in np.arange(rng.uniform(0, spacing), height, spacing).astype(int):
            page[y:y + rng.integers(1, 4)] = colour * page[y:y + 1].mean()
        margin = int(width * rng.uniform(0.05, 0.12))
        page[:, margin:margin + 2] = np.array([0.9, 0.45, 0.45])
    elif kind.startswith("on squared"):
        spacing, colour = size * rng.uniform(0.18, 0.35), np.array([0.68, 0.76, 0.88]) + rng.normal(0, 0.03, 3)
        line = int(rng.integers(1, 3))
        for y in np.arange(rng.uniform(0, spacing), height, spacing).astype(int):
            page[y:y + line] = colour
        for x in np.arange(rng.uniform(0, spacing), width, spacing).astype(int):
            page[:, x:x + line] = colour


def smooth_noise(shape: tuple[int, int], rng: np.random.Generator, amount: float) -> np.ndarray:
    """Slowly varying noise of about +-amount (paper's texture, an uneven light's blotches), (H, W)."""
    coarse = Image.fromarray(rng.normal(0, 1, (8, 8)).astype(np.float32))
    return np.asarray(coarse.resize(shape[::-1], Image.Resampling.BICUBIC), dtype=np.float64) * amount


def light(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """How much light reaches each pixel, (H, W) in (0, 1]: vignetting always; a strong fall-off across the page
    for uneven light; a shadow band across the page for the marker's kind."""
    height, width = shape
    y, x = np.ogrid[0:height, 0:width]
    y, x = (y / max(shape)).astype(np.float32), (x / max(shape)).astype(np.float32)  # (H, 1), (1, W)
    centre = np.array([height, width]) / max(shape) / 2
    radius = np.hypot(y - centre[0], x - centre[1]) / np.hypot(*centre)
    field = 1 - rng.uniform(0.05, 0.3) * radius ** 2
    angle = rng.uniform(0, 2 * np.pi)
    across = (x - centre[1]) * np.cos(angle) + (y - centre[0]) * np.sin(angle)  # signed distance along a direction
    uneven = "uneven" in kind
    depth = rng.uniform(0.35, 0.6) if uneven else rng.uniform(0, 0.12)
    field *= 1 - depth * (across - across.min()) / np.ptp(across)
    if uneven:
        field *= 1 + smooth_noise(shape, rng, 0.06)
    if kind.startswith("marker"):
        field *= shadow(x - centre[1], y - centre[0], rng)
    return np.clip(field, 0.05, 1).astype(np.float32)


def shadow(x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A band of shadow across the page (a hand's or a phone's), darker than the paper, lighter than the ink; its
    edges hard or soft, (H, W) factors."""
    angle = rng.uniform(0, np.pi)
    across = x * np.cos(angle) + y * np.sin(angle) - rng.normal(0, 0.08)
    band = rng.uniform(0.12, 0.5)
    softness = rng.choice([rng.uniform(0.002, 0.008), rng.uniform(0.02, 0.07)])  # hard or soft edge, page units
    inside = (np.clip(across / softness + 0.5, 0, 1) * np.clip((band - across) / softness + 0.5, 0, 1))
    if rng.random() < 0.4:  # or all of one side of the page
        inside = np.clip(across / softness + 0.5, 0, 1)
    return 1 - rng.uniform(0.35, 0.55) * inside


def tilt(page: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A small turn and a perspective (the phone not quite square to the page), the uncovered corners page-coloured."""
    width, height = page.size
    corners = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float64)
    angle = np.radians(rng.normal(0, 3))
    middle = corners.mean(0)
    turned = (corners - middle) @ np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]).T
    moved = turned + middle + rng.normal(0, 0.02, (4, 2)) * [width, height]
    rows = []
    for (x, y), (u, v) in zip(moved, corners):  # output corner (x, y) shows input point (u, v)
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
    coefficients = np.linalg.solve(np.array(rows), corners.reshape(-1))
    fill = tuple(int(c) for c in np.asarray(page)[:4, :4].reshape(-1, 3).mean(0))
    return page.transform(page.size, Image.Transform.PERSPECTIVE, tuple(coefficients), Image.Resampling.BILINEAR,
                          fillcolor=fill)
