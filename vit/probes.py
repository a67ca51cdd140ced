"""Pictures a visitor might send, made on demand: digits drawn on a big white canvas, and things that are not
digits at all (noise, a photo-like picture, a nearly blank page). The "not a digit" check is fitted and
measured on them; every one is reproducible from its seed.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CANVAS = (600, 500)  # width, height: a large page, the digit somewhere on it


def on_canvas(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An MNIST digit (28, 28) uint8 as dark ink on a large white page, ten times its size, placed at random:
    what the drawing pad or a scan sends, rather than the dataset's own framing."""
    big = Image.fromarray(255 - pixels).resize((280, 280), Image.Resampling.BILINEAR)
    page = Image.new("L", CANVAS, 255)
    page.paste(big, (int(rng.integers(0, CANVAS[0] - 280)), int(rng.integers(0, CANVAS[1] - 280))))
    return page


def noise(rng: np.random.Generator, size: int = 300) -> Image.Image:
    """Uniform random RGB pixels."""
    return Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8))


def photo_like(rng: np.random.Generator, size: int = 320) -> Image.Image:
    """Smooth colour gradients under a few blurred coloured ellipses: continuous tones, edges, no strokes."""
    ramp = np.linspace(0, 1, size)
    base = np.outer(ramp, ramp[::-1]) * 200 + 30
    image = Image.fromarray(np.stack([base, base[::-1], base.T], -1).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        a, b = rng.integers(0, size, 2), rng.integers(0, size, 2)
        draw.ellipse([*np.minimum(a, b), *np.maximum(a, b)], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return image.filter(ImageFilter.GaussianBlur(3))


def nearly_blank(rng: np.random.Generator, size: int = 300) -> Image.Image:
    """A light page with faint sensor noise and nothing written on it."""
    return Image.fromarray(np.clip(235 + rng.normal(0, 6, (size, size)), 0, 255).astype(np.uint8))


NOT_DIGITS = {"noise": noise, "photo-like": photo_like, "nearly blank": nearly_blank}
