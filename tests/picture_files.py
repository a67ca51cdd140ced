"""Pictures as visitors send them (a drawing saved in every format a program may write, a click, a file that is not a
picture) and what the app must answer for each: shared by the tests of the Predict tab, api.py and the server."""

import io
import math
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 336  # the Predict tab's drawing pad (tabs/pad.py: SIDE 336, pen radius 13)
EXCEPTION_NAME = re.compile(r"Traceback|\w*(Error|Exception)\b")  # e.g. "ValueError", "Error" in a visitor's message


def ink_on_paper(digit: np.ndarray, size: int = 280) -> Image.Image:
    """An MNIST digit (light ink on black, 28x28) as a visitor draws it: black ink on white, 280x280."""
    return Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR)


def pixels(shown) -> np.ndarray | None:
    """The pixels of a picture handed to a gradio image: tabs.images.described writes it as a PNG file and hands
    on the path."""
    return np.asarray(Image.open(shown)) if isinstance(shown, (str, Path)) else shown


def encode(image: Image.Image, format: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format, **options)
    return buffer.getvalue()


def transparent(drawing: Image.Image) -> bytes:
    """Black strokes on a fully transparent sheet, as drawing programs save them."""
    rgba = np.zeros((*drawing.size[::-1], 4), np.uint8)
    rgba[..., 3] = 255 - np.asarray(drawing)  # opaque where the ink is
    return encode(Image.fromarray(rgba, "RGBA"))


def sixteen_bit(drawing: Image.Image) -> bytes:
    return encode(Image.fromarray(np.asarray(drawing).astype(np.uint16) * 257))  # mode I;16, 0..65535


def palette(drawing: Image.Image) -> bytes:
    return encode(drawing.convert("RGB").convert("P", palette=Image.Palette.ADAPTIVE, colors=16))


def animated(first: Image.Image, second: Image.Image) -> bytes:
    """A two-frame GIF: the app reads the first frame."""
    return encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)


def exif_rotated(drawing: Image.Image) -> bytes:
    """A JPEG stored sideways with EXIF orientation 6 ("rotate 90 degrees clockwise to view"), as phones do."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(drawing.transpose(Image.Transpose.ROTATE_90), "JPEG", exif=exif, quality=95)


def huge(drawing: Image.Image) -> bytes:
    """An 8000x8000 greyscale PNG (64 megapixels) with the digit in the middle: under 1 MB on disk."""
    page = Image.new("L", (8000, 8000), 255)
    page.paste(drawing.resize((5000, 5000), Image.Resampling.BILINEAR), (1500, 1500))
    return encode(page, compress_level=1)


def dot_on(size: int, radius: int = 13) -> Image.Image:
    """One brush dot in the middle of a white canvas: a click, not a digit. Its 2 * radius + 1 pixels must span
    under vit.preprocess.MIN_SPAN (a tenth) of the canvas, so that it is refused as too small."""
    canvas = Image.new("L", (size, size), 255)
    centre = size // 2
    ImageDraw.Draw(canvas).ellipse([centre - radius, centre - radius, centre + radius, centre + radius], fill=0)
    return canvas


# name -> (the file's bytes from the digits fixture, what must come back): ("digit", index into digits) is that
# digit's label; ("refused", words) no answer but a message with these words (docs/api.md, "The error contract": one contract).
PICTURES = {
    "blank": (lambda d: encode(Image.new("L", (280, 280), 255)), ("refused", "Draw a digit")),
    "1x1": (lambda d: encode(Image.new("L", (1, 1), 0)), ("refused", "too small")),
    "10000x10": (lambda d: encode(Image.new("L", (10000, 10), 255)), ("refused", "too long and thin")),
    "8000x8000": (lambda d: huge(d[0][0]), ("digit", 0)),
    "rgba-transparent": (lambda d: transparent(d[1][0]), ("digit", 1)),
    "16-bit": (lambda d: sixteen_bit(d[2][0]), ("digit", 2)),
    "palette": (lambda d: palette(d[3][0]), ("digit", 3)),
    "animated-gif": (lambda d: animated(d[4][0], d[5][0]), ("digit", 4)),
    "exif-jpeg": (lambda d: exif_rotated(d[7][0]), ("digit", 7)),  # a 7 on its side reads as something else
    "one-dot": (lambda d: encode(dot_on(280, radius=5)), ("refused", "too small to be a digit")),
    "not-an-image": (lambda d: b"%PDF-1.4 not a picture at all\n", ("refused", "not a picture")),
    "empty": (lambda d: b"", ("refused", "empty")),
}
SUFFIX = {"animated-gif": ".gif", "exif-jpeg": ".jpg"}


def write_picture(name: str, digits, folder: Path) -> Path:
    """The file PICTURES[name] describes, made from the digits fixture, in `folder`."""
    path = folder / f"{name}{SUFFIX.get(name, '.png')}"
    path.write_bytes(PICTURES[name][0](digits))
    return path


def assert_friendly(message: str) -> None:
    """A message a visitor can act on: words, no traceback, no exception class name."""
    assert message and message.strip(), "no message at all"
    assert not EXCEPTION_NAME.search(message), f"not a message for a visitor: {message!r}"


# Symbols a visitor might teach the app (the Teach tab), as a hand draws them: strokes of points in fractions of the
# pad's square canvas. `symbol_strokes` varies them as one person's drawings of a symbol vary; the browser test draws
# the same strokes with the mouse.

def _star() -> list[list[tuple[float, float]]]:
    """A five-pointed star in one stroke, point to point (a pentagram)."""
    corners = [(0.5 + 0.36 * math.cos(math.radians(-90 + 144 * k)), 0.53 + 0.36 * math.sin(math.radians(-90 + 144 * k)))
               for k in range(6)]
    return [corners]


def _heart() -> list[list[tuple[float, float]]]:
    """A heart in one stroke: the classic parametric curve, from the dip round both lobes."""
    points = []
    for step in range(25):
        t = 2 * math.pi * step / 24
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        points.append((0.5 + x / 45, 0.47 - y / 45))
    return [points]


def _arrow() -> list[list[tuple[float, float]]]:
    """An arrow pointing up: the shaft, then the head's two strokes."""
    return [[(0.5, 0.85), (0.5, 0.15)], [(0.28, 0.38), (0.5, 0.15)], [(0.72, 0.38), (0.5, 0.15)]]


SYMBOL_SHAPES = {"star": _star, "heart": _heart, "arrow": _arrow}


def symbol_strokes(name: str, rng: np.random.Generator) -> list[list[tuple[float, float]]]:
    """One drawing of a symbol: its strokes a little bigger or smaller, turned, moved, and every point trembling."""
    scale, angle = rng.uniform(0.8, 1.1), math.radians(rng.uniform(-12, 12))
    shift, cos, sin = rng.uniform(-0.06, 0.06, 2), math.cos(angle), math.sin(angle)
    def moved(x: float, y: float) -> tuple[float, float]:
        dx, dy = (x - 0.5) * scale, (y - 0.5) * scale
        tremor = rng.normal(0, 0.012, 2)
        return tuple(float(np.clip(v, 0.03, 0.97)) for v in (0.5 + cos * dx - sin * dy + shift[0] + tremor[0],
                                                               0.5 + sin * dx + cos * dy + shift[1] + tremor[1]))
    return [[moved(x, y) for x, y in _dense(stroke)] for stroke in SYMBOL_SHAPES[name]()]


def _dense(stroke: list[tuple[float, float]], step: float = 0.05) -> list[tuple[float, float]]:
    """The stroke's corners with points between them every `step` or so, as a mouse reports a drag."""
    points = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke, stroke[1:]):
        parts = max(1, math.ceil(math.hypot(x1 - x0, y1 - y0) / step))
        points += [(x0 + (x1 - x0) * i / parts, y0 + (y1 - y0) * i / parts) for i in range(1, parts + 1)]
    return points


def drawn_on_pad(strokes: list[list[tuple[float, float]]], side: int = CANVAS, radius: int = 13) -> Image.Image:
    """The strokes as the pad paints them: black, round-capped lines 2 × radius wide on a white canvas."""
    canvas = Image.new("L", (side, side), 255)
    pen = ImageDraw.Draw(canvas)
    for stroke in strokes:
        points = [(x * side, y * side) for x, y in stroke]
        pen.line(points, fill=0, width=2 * radius, joint="curve")
        for x, y in points:
            pen.ellipse([x - radius, y - radius, x + radius, y + radius], fill=0)
    return canvas
