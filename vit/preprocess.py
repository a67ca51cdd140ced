"""Any picture of a digit -> a 28x28 input that looks like MNIST (LeCun et al., the MNIST database notes).

MNIST's digits are light ink on black, scaled with anti-aliasing to fit a 20x20 box (aspect ratio kept)
and placed in a 28x28 frame with their centre of mass at the centre. A sketch or a photo takes the same
road: first frame, EXIF orientation, shrink early (memory stays bounded), flatten transparency, grey, find
the ink on the page (read_page), crop to the ink, fit into 20x20, centre by mass.

Finding the ink: a page of one tone at the border (a drawing, a scan, MNIST-like pixels) gives polarity and
background from its border, and the ink is what departs from it. A photo of paper, whose border is not of one
tone (light falling off, a shadow across it), first has its page's light divided out (vit.page), so the light
is not taken for ink. Ink that cannot be a whole digit yet on a page-sized canvas (the pad sends every stroke)
asks to keep drawing rather than being blown up to the 20-pixel box.

Fashion-MNIST frames its pictures otherwise (measured on 20,000 of its training images: the ink's bounding
box has a longer side of 28 pixels in the median, 27 or 28 in 99.6 % of them, and its centre sits at 13.5
with a spread of 0.25 px, while the centre of mass spreads 1.4 px): the item fills the frame and is centred
by its box. Each dataset's framing is a Framing in its description (vit.datasets).
"""

import base64
import binascii
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import ExifTags, Image, UnidentifiedImageError

from vit import page
from vit.page import Page

FRAME, BOX = 28, 20        # MNIST: a 20x20 digit inside a 28x28 frame
CENTRE = 14.0              # where MNIST's test digits have their centre of mass (row and column), measured
WORKING_SIZE = 1024        # longer side at most this before any array is made: bounds memory and time
MIN_SIDE = 8               # pixels; anything smaller cannot hold a legible digit
MAX_ASPECT = 20            # longer side / shorter side; a thinner strip cannot hold a digit
MIN_CONTRAST = 0.1         # ink must differ from the background by this share of full white, else blank
INK_THRESHOLD = 0.2        # share of the strongest ink a pixel needs to count for the crop: faint noise does not
MIN_SPAN = 0.1  # the ink must reach across a tenth of the picture; one brush dot on the pad spans 8 %
KEEP_SPAN = 0.25  # on a canvas the ink must reach across this share of its shorter side, else "keep drawing": 5,000
                  # validation digits drawn on a page (vit.probes.on_canvas) reach 0.30 at least, on the pad 0.35
KEEP_FLAT = 3.0   # ink this many times wider than tall is a lone bar, not yet a digit: those digits are 2.3 at most
NOISE_FLOOR = 0.05         # share of the strongest ink below which a pixel is set to background, as in MNIST
PEN_WIDTH = (1.2, 1.8)     # in 20x20-box pixels: thinner strokes than the first are thickened to the second
                           # (MNIST's 5th percentile and median of 2 * area / perimeter, measured on the test set)
THICK_PEN = (3.6, 2.0)     # wider strokes than the first are narrowed to the second (a marker, a coarse scan, a digit
                           # drawn small on the pad): the 99th percentile and the median on the 60,000 training digits



@dataclass(frozen=True)
class Framing:
    """How a dataset places its pictures in the frame."""
    box: int        # the longer side of the ink's bounding box, pixels
    by_mass: bool   # centre of mass at CENTRE (MNIST) or the bounding box in the middle (Fashion-MNIST)
    pen: bool       # thin strokes thickened to MNIST's pen width (digits are pen strokes; garments are not)
    crop_at: float = INK_THRESHOLD  # share of the strongest ink a pixel needs to count for the crop


DIGITS = Framing(box=BOX, by_mass=True, pen=True)  # MNIST's; other datasets' framings: vit.datasets

# EXIF orientation tag -> the transpose that shows the picture upright (EXIF 2.3, tag 0x0112)
UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_90}

LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R 601 weights of R, G, B, as Pillow's "L"

BLANK = "Draw a digit first: the picture looks empty."
NO_STROKES = "Draw a digit first: this picture holds no strokes, only grain, specks or lines."
KEEP_DRAWING = "Keep drawing: what is there so far is too small to be a digit."
DAMAGED = "This picture is damaged or incomplete. Please try another file."
DATA_URL = "data:image/png;base64,"  # how the drawing pad sends its canvas
MAX_DRAWING = 4_000_000   # characters of a drawing's data URL; the pad's 336×336 canvas sends about 10,000
UNREADABLE_DRAWING = "The drawing did not arrive as a picture. Please clear the pad and draw again."


class ImageError(ValueError):
    """The picture cannot become a digit; the message is shown to the user as-is."""


def open_image(source: str | Path | bytes) -> Image.Image:
    """Open and decode a picture file (path or bytes); unreadable, empty or huge files raise ImageError."""
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    if not data:
        raise ImageError("The file is empty. Please choose a picture file (PNG or JPEG).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refuse, rather than decode, a bomb
            image = Image.open(io.BytesIO(data))
            image.draft(None, (WORKING_SIZE, WORKING_SIZE))  # JPEG only: decode big photos at reduced scale
            image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"This picture is too large. Please use one under "
                         f"{Image.MAX_IMAGE_PIXELS // 1_000_000} megapixels.") from None
    except UnidentifiedImageError:
        raise ImageError("This file is not a picture. Please choose a PNG or JPEG.") from None
    except (OSError, SyntaxError, ValueError, EOFError):  # what Pillow raises for a damaged or cut-off file
        raise ImageError(DAMAGED) from None
    return image


def open_data_url(url: object) -> Image.Image:
    """A drawing sent as a PNG data URL, decoded as open_image decodes a file; anything else raises ImageError."""
    if not isinstance(url, str) or not url.startswith(DATA_URL) or len(url) > MAX_DRAWING:
        raise ImageError(UNREADABLE_DRAWING)
    try:
        data = base64.b64decode(url[len(DATA_URL):], validate=True)
    except (binascii.Error, ValueError):
        raise ImageError(UNREADABLE_DRAWING) from None
    if not data:
        raise ImageError(UNREADABLE_DRAWING)
    return open_image(data)


def data_url(picture: Image.Image | np.ndarray) -> str:
    """A picture as the drawing pad sends its canvas: a PNG data URL (what open_data_url reads back)."""
    image = picture if isinstance(picture, Image.Image) else Image.fromarray(picture)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return DATA_URL + base64.b64encode(buffer.getvalue()).decode("ascii")


def read_page(image: Image.Image | np.ndarray, framing: Framing = DIGITS) -> Page:
    """A PIL image or an (H, W), (H, W, 3) or (H, W, 4) array -> the page as read: the picture with its light
    divided out and the ink found on it (vit.page), before the digit is framed. Pen strokes (framing.pen) on an
    unevenly lit page go through page removal; a page of one tone, and other pictures (garments), keep the
    border's tone as the background, as MNIST-like pictures always did. A photo or a scan of pen strokes (no
    canvas), evenly lit or not, loses its ruled lines and its specks."""
    if isinstance(image, np.ndarray):
        image = _from_array(image)
    elif not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image or a numpy array, got {type(image).__name__}")
    try:
        working = _working_copy(image)
    except (OSError, EOFError):  # an image opened by the caller is decoded only now
        raise ImageError(DAMAGED) from None
    grey, alpha = _grey_and_alpha(working)
    grey = _flatten(grey, alpha)
    ink = None
    if framing.pen and not page.even_page(grey):  # light and shade vary over the page: divide them out first
        flat = page.flat_field(grey)
        ink = page.ink_on(flat, MIN_CONTRAST)
    flattened, canvas = ink is not None, page.canvas_border(grey)
    if not flattened:  # one page tone, or nothing stands out of an uneven page's grain (noise): the border's tone
        ink = _ink(grey)
        flat = 1 - ink
    marked = (ink >= INK_THRESHOLD).any()  # before a photo's ruled lines and specks go
    if framing.pen and not canvas:  # a photo or a scan: its ruled lines go, and specks (a shadow's edge, JPEG blocks)
        share = page.LINE_SHARE if flattened else page.EVEN_LINE_SHARE
        ink = page.drop_specks(page.remove_ruled_lines(ink, share), INK_THRESHOLD)
    if not (ink >= INK_THRESHOLD).any():  # nothing at all, or only ruled lines and specks: not empty, but no strokes
        raise ImageError(NO_STROKES if marked else BLANK)
    return Page(flat=flat, ink=ink, flattened=flattened, canvas=canvas)


def to_model_input(image: Image.Image | np.ndarray, framing: Framing = DIGITS) -> torch.Tensor:
    """A PIL image or an (H, W), (H, W, 3) or (H, W, 4) array -> (28, 28) float in [0, 1], light ink on black,
    framed as the model's dataset frames its pictures."""
    return frame(read_page(image, framing), framing)


def frame(found: Page, framing: Framing = DIGITS) -> torch.Tensor:
    """The ink of a page as read (read_page) -> (28, 28) float in [0, 1], framed as the model's dataset frames
    its pictures; ImageError when it is no digit yet (too small on a canvas, or a lone flat bar)."""
    ink = found.ink
    if framing.pen:
        _check_extent(ink, found.canvas)
    _check_span(ink)
    cropped = _crop_to_ink(ink, framing.crop_at)
    digit = _fit(_to_mnist_pen(cropped, framing.box) if framing.pen else cropped, framing.box)
    return torch.from_numpy(_centre_by_mass(digit, FRAME) if framing.by_mass else _centre_by_box(digit, FRAME))


def _from_array(array: np.ndarray) -> Image.Image:
    """A numpy picture, uint8 0-255 or float 0-1 (or 0-255), as a PIL image in L, RGB or RGBA."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))) or array.size == 0:
        raise ImageError("This picture's format is not supported. Please use a PNG or JPEG.")
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    elif array.dtype.kind == "f":
        array = np.nan_to_num(array.astype(np.float32))
        array = np.clip(array * (255 if array.max() <= 1 else 1), 0, 255).round().astype(np.uint8)
    elif array.dtype != np.uint8:  # other integers: 16-bit when they go past 255
        scale = 255 / 65535 if array.max() > 255 else 1
        array = np.clip(array.astype(np.float32) * scale, 0, 255).round().astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(array))


def _working_copy(image: Image.Image) -> Image.Image:
    """First frame, upright, in L, LA, RGB, RGBA, I or F, longer side at most WORKING_SIZE."""
    width, height = image.size
    if min(width, height) < MIN_SIDE:
        raise ImageError("This picture is too small to hold a digit. Please use a bigger one.")
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError("This picture is too long and thin to hold a digit.")
    if getattr(image, "n_frames", 1) > 1:
        image.seek(0)  # an animation: its first frame
    orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    image.draft(None, (WORKING_SIZE, WORKING_SIZE))  # a not yet decoded JPEG decodes at reduced scale
    if image.mode in ("P", "PA", "La", "RGBa") or "transparency" in image.info:
        image = image.convert("RGBA")  # palette and transparency colours become a real alpha band
    elif image.mode == "1":
        image = image.convert("L")
    elif image.mode not in ("L", "LA", "RGB", "RGBA", "F") and not image.mode.startswith("I"):
        image = image.convert("RGB")  # CMYK, YCbCr, LAB, HSV
    scale = WORKING_SIZE / max(width, height)
    if scale < 1:  # area averaging; alpha is premultiplied by Pillow, so transparent colours do not bleed
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = image.resize(size, Image.Resampling.BOX, reducing_gap=2.0)
    return image.transpose(UPRIGHT[orientation]) if orientation in UPRIGHT else image


def _grey_and_alpha(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey level (H, W) in [0, 1] and opacity (H, W) in [0, 1], or None when the image has no alpha band."""
    array = np.asarray(image, dtype=np.float32)
    if image.mode == "F" or image.mode.startswith("I"):  # 16-bit, 32-bit or float grey: range read from the values
        peak = float(array.max())
        return array / (65535 if peak > 255 else 255 if peak > 1 else 1), None
    array = array / 255
    alpha = array[..., -1] if image.mode in ("LA", "RGBA") else None
    colour = array[..., :-1] if alpha is not None else array  # (H, W) or (H, W, 1) or (H, W, 3)
    if colour.ndim == 3:
        colour = colour[..., 0] if colour.shape[2] == 1 else colour @ LUMA  # (H, W)
    return colour, alpha


def _flatten(grey: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """Composite onto a background the opaque part stands out from, (H, W) -> (H, W)."""
    if alpha is None or alpha.min() >= 1:
        return grey
    opaque = alpha > 0.5
    if not opaque.any():
        raise ImageError(BLANK)
    tone = float(np.median(grey[opaque]))
    if opaque.mean() >= 0.5:  # an opaque page with transparent margins: the margins take the page's tone
        background = tone
    else:  # strokes on a transparent sheet (a sketchpad): a background of the opposite tone
        background = 1.0 if tone < 0.5 else 0.0
    return alpha * grey + (1 - alpha) * background


def _ink(grey: np.ndarray) -> np.ndarray:
    """Ink as bright on black, background 0, strongest ink 1; whichever polarity the picture had."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    background = float(np.median(border))
    darker, lighter = background - grey.min(), grey.max() - background
    ink = background - grey if darker > lighter else grey - background  # ink is what departs most from the border
    peak = float(ink.max())
    if peak < MIN_CONTRAST:
        raise ImageError(BLANK)
    ink = np.clip(ink / peak, 0, 1)
    ink[ink < NOISE_FLOOR] = 0
    return ink


def _check_span(ink: np.ndarray) -> None:
    """Refuse ink that spans under MIN_SPAN of the picture: a click or a speck, which scaling would blow up."""
    top, bottom, left, right = _ink_box(ink, INK_THRESHOLD)
    span = max(bottom - top, right - left) + 1
    if span < MIN_SPAN * min(ink.shape):
        raise ImageError("That is too small to be a digit. Please draw it bigger, filling most of the box.")


def _check_extent(ink: np.ndarray, canvas: bool) -> None:
    """Ask for more when the strokes so far cannot be a whole digit: a lone flat stroke (the bar of a 7 or a 5),
    or, on a drawing canvas (the pad sends every stroke), a dot or a dash, which framing would blow up to the whole
    box. A "1" is tall and passes; a photo's digit may be small in its picture and is not asked for more."""
    top, bottom, left, right = _ink_box(ink, INK_THRESHOLD)
    height, width = bottom - top + 1, right - left + 1
    if (canvas and max(height, width) < KEEP_SPAN * min(ink.shape)) or width > KEEP_FLAT * height:
        raise ImageError(KEEP_DRAWING)


def _crop_to_ink(ink: np.ndarray, threshold: float = INK_THRESHOLD) -> np.ndarray:
    """The bounding box of the pixels that count as ink, (H, W) -> (h, w)."""
    top, bottom, left, right = _ink_box(ink, threshold)
    return ink[top:bottom + 1, left:right + 1]


def _ink_box(ink: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """First and last row, first and last column holding a pixel of at least `threshold` (there is one).

    From the mask's row and column projections: np.nonzero of the whole mask lists every ink pixel, and on a
    large picture that took most of the framing's time."""
    mask = ink >= threshold
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def pen_width(mask: np.ndarray) -> float:
    """Average stroke width of a boolean ink mask in pixels: 2 * area / perimeter."""
    padded = np.pad(mask, 1)
    perimeter = np.count_nonzero(padded[1:] != padded[:-1]) + np.count_nonzero(padded[:, 1:] != padded[:, :-1])
    return 2 * np.count_nonzero(mask) / max(perimeter, 1)


def _to_mnist_pen(digit: np.ndarray, box: int) -> np.ndarray:
    """Strokes of a pen much thinner or thicker than MNIST's, brought to MNIST's pen at `box` scale; MNIST-like
    strokes come back unchanged.

    A sketch drawn with a fine brush shrinks to hairlines in the 20x20 box; a marker, a coarse scan or a digit
    drawn small on the pad swells to strokes a quarter of the box wide. The model saw neither.
    """
    width = pen_width(digit >= 0.5) * box / max(digit.shape)  # in box pixels
    detail = 4  # widen or narrow at 4x the box resolution: fine enough for small steps, small enough to be quick
    if width < PEN_WIDTH[0]:
        return _dilate(_fit(digit, detail * box), radius=max(1, round((PEN_WIDTH[1] - width) * detail / 2)))
    if width > THICK_PEN[0]:
        narrowed = _erode(_fit(digit, detail * box), radius=max(1, round((width - THICK_PEN[1]) * detail / 2)))
        if narrowed.max() >= INK_THRESHOLD:  # a stroke survives (a blot of one width throughout would not)
            return _crop_to_ink(narrowed)
    return digit


def _dilate(image: np.ndarray, radius: int) -> np.ndarray:
    """Each pixel takes the brightest value within a (2r+1)-pixel square; the image grows by r on every side."""
    return page.square_max(np.pad(image, radius), 2 * radius + 1)  # the padding: room for the strokes to grow into


def _erode(image: np.ndarray, radius: int) -> np.ndarray:
    """Each pixel takes the darkest value within a (2r+1)-pixel square: every stroke loses r on each side."""
    return -page.square_max(-np.pad(image, radius), 2 * radius + 1)


def _fit(digit: np.ndarray, box: int) -> np.ndarray:
    """Scale with anti-aliasing so the longer side is `box` pixels, aspect ratio kept, (h, w) -> (<=box, <=box)."""
    height, width = digit.shape
    scale = box / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resized = np.asarray(Image.fromarray(digit.astype(np.float32)).resize(size, Image.Resampling.LANCZOS))
    return np.clip(resized / max(float(resized.max()), 1e-6), 0, 1).astype(np.float32)


def _centre_by_box(item: np.ndarray, frame: int) -> np.ndarray:
    """Place in a frame x frame black image with the bounding box in the middle."""
    height, width = item.shape
    placed = np.zeros((frame, frame), dtype=np.float32)
    top, left = (frame - height) // 2, (frame - width) // 2
    placed[top:top + height, left:left + width] = item
    return placed


def _centre_by_mass(digit: np.ndarray, frame: int) -> np.ndarray:
    """Place in a frame x frame black image with the centre of mass at CENTRE, never cutting ink off."""
    height, width = digit.shape
    mass = digit.sum()
    rows, cols = np.arange(height), np.arange(width)
    centre_row = float(digit.sum(axis=1) @ rows / mass) if mass > 0 else (height - 1) / 2
    centre_col = float(digit.sum(axis=0) @ cols / mass) if mass > 0 else (width - 1) / 2
    top = int(np.clip(round(CENTRE - centre_row), 0, frame - height))
    left = int(np.clip(round(CENTRE - centre_col), 0, frame - width))
    placed = np.zeros((frame, frame), dtype=np.float32)
    placed[top:top + height, left:left + width] = digit
    return placed
