"""Pictures as visitors send them (a drawing saved in every format a program may write, a click, a file that is not a
picture) and what the app must answer for each: shared by the tests of the Predict tab, api.py and the server."""

import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CANVAS = 336  # the Predict tab's drawing pad (tabs/pad.py: SIDE 336, pen radius 13)
EXCEPTION_NAME = re.compile(r"Traceback|\w*(Error|Exception)\b")  # e.g. "ValueError", "Error" in a visitor's message


def ink_on_paper(digit: np.ndarray, size: int = 280) -> Image.Image:
    """An MNIST digit (light ink on black, 28x28) as a visitor draws it: black ink on white, 280x280."""
    return Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR)


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
