"""Heat maps and pictures drawn straight from arrays, for the paths that run on every stroke.

No matplotlib here: a map is a colour lookup (the tables in colormaps.json are matplotlib's own inferno,
viridis and RdBu_r, sampled at 256 steps), nearest-neighbour upscaling, and the digit's outline laid on top;
labels and colour bars are drawn with Pillow. A whole Predict update draws in a few milliseconds, where the
same pictures as matplotlib Figures cost most of a stroke's time. Everything returns (H, W, 3) uint8.
"""

import functools
import importlib.util
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

INK = (94, 242, 255)          # the digit's outline over heat maps
DARK_INK = (34, 34, 34)       # the outline over the diverging map, whose middle is white
GRID = (255, 90, 54)          # tile borders
PAPER, TEXT = (255, 255, 255), (40, 40, 40)
SCALE = 8                     # screen pixels per input pixel: a 28×28 map becomes 224×224


@functools.cache
def colormap(name: str) -> np.ndarray:
    """A (256, 3) uint8 lookup table: inferno, viridis or RdBu_r."""
    tables = json.loads((Path(__file__).with_name("colormaps.json")).read_text())
    return np.asarray(tables[name], dtype=np.uint8)


@functools.cache
def font(size: int = 12) -> ImageFont.ImageFont:
    """DejaVu Sans, which matplotlib ships (found without importing it): it has ×, ÷ and |, which Pillow's
    own default font lacks; Pillow's font if it is not there."""
    spec = importlib.util.find_spec("matplotlib")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "mpl-data" / "fonts" / "ttf" / "DejaVuSans.ttf"
        if path.is_file():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=4096)
def _stamp(text: str, size: int, anchor: str, rim: int) -> tuple[tuple[int, int], Image.Image, Image.Image | None]:
    """A line of text rendered once as masks: (offset from the anchor point, the letters, the rim around them)."""
    face = font(size)
    left, top, right, bottom = face.getbbox(text, anchor=anchor, stroke_width=rim)
    shape = (max(right - left, 1), max(bottom - top, 1))

    def mask(width: int) -> Image.Image:
        out = Image.new("L", shape, 0)
        ImageDraw.Draw(out).text((-left, -top), text, fill=255, font=face, anchor=anchor, stroke_width=width)
        return out
    return (left, top), mask(0), mask(rim) if rim else None


def write(canvas: Image.Image, xy: tuple[float, float], text: str, size: int, anchor: str = "la",
          fill: tuple = TEXT, rim: int = 0) -> None:
    """draw.text, from masks rendered once per text: the Predict tab writes the same few dozen labels on every
    stroke, and rendering them cost about a sixth of a stroke's pictures. A rim is drawn in paper colour."""
    (left, top), letters, outline = _stamp(text, size, anchor, rim)
    at = (round(xy[0]) + left, round(xy[1]) + top)
    if outline is not None:
        canvas.paste(PAPER, at, outline)
    canvas.paste(fill, at, letters)


def colour(values: np.ndarray, name: str, low: float, high: float) -> np.ndarray:
    """Values (...) mapped through a colour table on the scale [low, high], clipped: (..., 3) uint8."""
    span = high - low if high > low else 1.0
    # matplotlib's own indexing: 256 equal bins over the scale, the top value in the last
    index = np.clip(np.floor((np.asarray(values, dtype=np.float64) - low) / span * 256), 0, 255).astype(np.intp)
    return colormap(name)[index]


def upscale(array: np.ndarray, factor: int) -> np.ndarray:
    """Each cell repeated factor × factor times (nearest neighbour), for (H, W) or (H, W, 3) arrays."""
    return array.repeat(factor, axis=0).repeat(factor, axis=1)


def to_pixels(values: np.ndarray, size: int) -> np.ndarray:
    """A (rows, columns) per-piece grid (square for tiles, one column or row for strips) or an (H, W) per-pixel
    map, upscaled to (size, size)."""
    return values.repeat(size // values.shape[0], axis=0).repeat(size // values.shape[1], axis=1)


def outline_mask(image: np.ndarray, factor: int) -> np.ndarray:
    """(H*f, W*f) bool: the border between ink (≥ 0.5) and background of an (H, W) image, upscaled."""
    ink = upscale(np.asarray(image) >= 0.5, factor)
    edge = np.zeros_like(ink)
    edge[1:, :] |= ink[1:, :] != ink[:-1, :]
    edge[:, 1:] |= ink[:, 1:] != ink[:, :-1]
    return edge


def heatmap(values: np.ndarray, image: np.ndarray, name: str, low: float, high: float,
            factor: int = SCALE, outline: tuple[int, int, int] = INK) -> np.ndarray:
    """A map (g, g) or (H, W) coloured on [low, high] at the image's size × factor, with the digit outlined."""
    size = image.shape[0] * factor
    rgb = to_pixels(colour(values, name, low, high), size)  # looked up per cell, then enlarged as bytes
    rgb[outline_mask(image, factor)] = outline
    return rgb


def heatmaps(values: np.ndarray, image: np.ndarray, name: str, factor: int = 4, shared: bool = True) -> np.ndarray:
    """Many (g, g) maps (..., g, g) at once on one scale [0, the largest value] (shared) or each on its own
    [0, its maximum], the digit outlined on each: (..., H*f, W*f, 3). One lookup for all of them: a 6 × 4 grid
    of maps draws in a fraction of 24 heatmap calls."""
    values = np.asarray(values, dtype=np.float64)
    peaks = np.maximum(values.max() if shared else values.max(axis=(-2, -1), keepdims=True), 1e-9)
    size = image.shape[0] * factor
    rgb = colour(values / peaks, name, 0, 1)  # (..., g, g, 3): looked up per tile, then enlarged as bytes
    rgb = rgb.repeat(size // values.shape[-2], axis=-3).repeat(size // values.shape[-1], axis=-2)
    rgb[..., outline_mask(image, factor), :] = INK
    return rgb


def grey(image: np.ndarray, factor: int = SCALE, piece: int | tuple[int, int] | None = None) -> np.ndarray:
    """An (H, W) image in [0, 1] as grey pixels, upscaled, with the borders of the model's pieces drawn when
    `piece` is given: a tile side, or (height, width) of a tile or strip."""
    rgb = upscale(np.repeat((np.clip(image, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2), factor)
    if piece:
        height, width = (piece, piece) if isinstance(piece, int) else piece
        rgb[height * factor - 1:-1:height * factor, :] = GRID
        rgb[:, width * factor - 1:-1:width * factor] = GRID
    return rgb


def colour_bar(name: str, low: float, high: float, width: int, label: str, height: int = 12) -> np.ndarray:
    """A horizontal colour bar `width` wide with its two ends and the middle written under it, and its label:
    (height + 30, width, 3), wider (the bar centred on paper) when the label is longer than the bar."""
    strip = colour(np.linspace(low, high, width)[None].repeat(height, axis=0), name, low, high)
    canvas = Image.new("RGB", (max(width, text_width(label, 11) + 6), height + 30), PAPER)
    left = (canvas.width - width) // 2
    canvas.paste(Image.fromarray(strip), (left, 0))
    ticks = [(left, "la", low), (left + width // 2, "ma", (low + high) / 2), (left + width - 1, "ra", high)]
    for x, anchor, value in ticks:
        write(canvas, (x, height + 2), number(value), 11, anchor)
    write(canvas, (canvas.width // 2, height + 16), label, 11, "ma")
    return np.asarray(canvas)


def plural(count: int, word: str) -> str:
    """"1 tile", "49 tiles": for titles and sentences."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def number(value: float) -> str:
    """A tick label: short, and exactly 0 as 0."""
    if value == 0:
        return "0"
    return f"{value:.2g}" if abs(value) < 0.01 or abs(value) >= 1000 else f"{value:.3g}"


@functools.lru_cache(maxsize=4096)
def text_width(text: str, size: int) -> int:
    """How many pixels wide a line of text is written (from its anchor to its last letter's right edge); measured
    once per text, like `_stamp`'s masks (the same titles are measured on every stroke)."""
    return font(size).getbbox(text)[2]


def titled(picture: np.ndarray, title: str, size: int = 13) -> np.ndarray:
    """The picture with a line of text above it, centred; the canvas widens (on paper) rather than cut off a
    title longer than the picture ("occlusion (class T-shirt/top)" over two small maps)."""
    width = max(picture.shape[1], text_width(title, size) + 6)
    canvas = Image.new("RGB", (width, picture.shape[0] + size + 8), PAPER)
    canvas.paste(Image.fromarray(picture), ((width - picture.shape[1]) // 2, size + 8))
    write(canvas, (width // 2, 3), title, size, "ma")
    return np.asarray(canvas)


def captioned(picture: np.ndarray, caption: str, size: int = 12) -> np.ndarray:
    """The picture with its caption under it, a line for each line of the caption, centred; the canvas widens
    (on paper) rather than cut off a line longer than the picture."""
    lines = caption.split("\n")
    width, line_height = max(picture.shape[1], max(text_width(line, size) for line in lines) + 6), size + 4
    canvas = Image.new("RGB", (width, picture.shape[0] + line_height * len(lines) + 4), PAPER)
    canvas.paste(Image.fromarray(picture), ((width - picture.shape[1]) // 2, 0))
    for index, line in enumerate(lines):
        write(canvas, (width // 2, picture.shape[0] + 3 + index * line_height), line, size, "ma")
    return np.asarray(canvas)


def stack(pictures: list[np.ndarray], gap: int = 6) -> np.ndarray:
    """Pictures one above the other, centred, on white."""
    width = max(p.shape[1] for p in pictures)
    height = sum(p.shape[0] for p in pictures) + gap * (len(pictures) - 1)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    top = 0
    for picture in pictures:
        left = (width - picture.shape[1]) // 2
        out[top:top + picture.shape[0], left:left + picture.shape[1]] = picture
        top += picture.shape[0] + gap
    return out


def side_by_side(pictures: list[np.ndarray], gap: int = 10) -> np.ndarray:
    """Pictures in a row, top-aligned, on white."""
    height = max(p.shape[0] for p in pictures)
    width = sum(p.shape[1] for p in pictures) + gap * (len(pictures) - 1)
    out = np.full((height, width, 3), 255, dtype=np.uint8)
    left = 0
    for picture in pictures:
        out[:picture.shape[0], left:left + picture.shape[1]] = picture
        left += picture.shape[1] + gap
    return out


def labelled_grid(cells: np.ndarray, column_name: str, row_name: str, gap: int = 4) -> np.ndarray:
    """Cells (R, C, h, w, 3) laid out as a grid with "column_name 1…C" above and "row_name 1…R" at the left. The
    left margin holds the longest row name, and columns narrower than their name are spaced to fit it."""
    rows, cols, height, width = cells.shape[:4]
    margin_left = text_width(f"{row_name} {rows}", 12) + 10
    pitch, margin_top = max(width, text_width(f"{column_name} {cols}", 12) + 4) + gap, 20  # column to column
    inset = (pitch - gap - width) // 2  # a cell centred under its name
    out = np.full((margin_top + rows * (height + gap), margin_left + cols * pitch, 3), 255, np.uint8)
    for r in range(rows):
        for c in range(cols):
            top, left = margin_top + r * (height + gap), margin_left + c * pitch + inset
            out[top:top + height, left:left + width] = cells[r, c]
    canvas = Image.fromarray(out)
    for r in range(rows):
        write(canvas, (margin_left - 6, margin_top + r * (height + gap) + height // 2), f"{row_name} {r + 1}", 12, "rm")
    for c in range(cols):
        write(canvas, (margin_left + c * pitch + (pitch - gap) // 2, 3), f"{column_name} {c + 1}", 12, "ma")
    return np.asarray(canvas)


def cells(values: np.ndarray, name: str, low: float, high: float, height: int, width: int | None = None) -> np.ndarray:
    """A matrix (R, C) as coloured cells of height × width screen pixels each: (R·height, C·width, 3)."""
    rgb = colour(values, name, low, high)
    return rgb.repeat(height, axis=0).repeat(width or height, axis=1)


def written(picture: np.ndarray, texts: np.ndarray, size: int = 11) -> np.ndarray:
    """Text centred in each cell of a picture divided into texts.shape (rows, cols) equal cells: dark letters
    with a white rim, legible on ink, on paper and on any colour of a map."""
    rows, cols = texts.shape
    height, width = picture.shape[0] // rows, picture.shape[1] // cols
    canvas = Image.fromarray(np.ascontiguousarray(picture))
    for r in range(rows):
        for c in range(cols):
            write(canvas, (c * width + width // 2, r * height + height // 2), str(texts[r, c]), size, "mm",
                  fill=(15, 15, 15), rim=2)
    return np.asarray(canvas)


def boxed(picture: np.ndarray, top: int, left: int, height: int, width: int, colour: tuple = (0, 200, 120),
          line: int = 3) -> np.ndarray:
    """A copy with a rectangle drawn around the box (top, left, height, width)."""
    out = picture.copy()
    bottom, right = min(top + height, out.shape[0]), min(left + width, out.shape[1])
    out[top:top + line, left:right] = colour
    out[bottom - line:bottom, left:right] = colour
    out[top:bottom, left:left + line] = colour
    out[top:bottom, right - line:right] = colour
    return out


def vector_rows(rows: list[tuple[str, np.ndarray]], cell: int | None = None, label_width: int = 150) -> np.ndarray:
    """Vectors as labelled strips of cells, one per row, each on its own symmetric scale (RdBu_r: red
    positive, blue negative) with that scale written at the right: for reading a vector's pattern. Cells are
    as wide as lets the longest vector fill about 640 px (4 to 24 px), unless `cell` says."""
    longest = max(len(values) for _, values in rows)
    cell = cell or max(4, min(24, 640 // longest))
    label_width = max(label_width, max(text_width(label, 11) for label, _ in rows) + 12)  # a long label is not cut
    height, right = cell * 2, 70
    canvas = Image.new("RGB", (label_width + longest * cell + right, len(rows) * (height + 6)), PAPER)
    for index, (label, values) in enumerate(rows):
        values = np.asarray(values, dtype=np.float64)
        limit = max(float(np.abs(values).max()), 1e-9)
        top = index * (height + 6)
        strip = cells(values[None], "RdBu_r", -limit, limit, height, cell)
        canvas.paste(Image.fromarray(strip), (label_width, top))
        write(canvas, (label_width - 6, top + height // 2), label, 11, "rm")
        write(canvas, (label_width + len(values) * cell + 6, top + height // 2), f"±{number(limit)}", 11, "lm")
    return np.asarray(canvas)
