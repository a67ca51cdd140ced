"""A photo or scan of paper -> the ink on it, bright on black, whatever the light, the shadow and the paper's tone.

The page is the bright envelope of the picture: strokes are thin and dark, while light, shadow and paper tone vary
over a larger scale. A morphological closing (a maximum, then a minimum, over a window wider than any stroke) of
a small copy of the picture removes the strokes and keeps a shadow's edge where it is (a closing leaves a step
unchanged, where a blur or a plain maximum would move it). Dividing the picture by that page (a flat field)
leaves the page at 1 everywhere and the ink as its darkness relative to the page under it: a pencil stroke in a
shadow is as dark, relative to its page, as the same stroke in the light.

Then the ink is found with a threshold set by the page's own grain (a robust spread of the flattened page) and
by the strongest ink (a shadow band narrower than the closing's window is left in the flat field, but lighter
than a pen), long straight ruled or squared lines that cross the picture are taken out where no stroke crosses
them, and specks (dust, JPEG artefacts, what is left at a shadow's edge) far smaller than the digit are dropped.

Colour: the picture is read in grey (ITU-R 601 luma) before any of this. Pale ruled lines are faint in grey and
go with the line removal; dark blue ballpoint on dark blue lines stays hard (the colours are alike, so the lines
are only found by their shape).

Only numpy and Pillow: the closing runs on a copy at most PAGE_GRID pixels a side, so separable numpy maxima cost
well under a millisecond there; scipy.ndimage or OpenCV would run the same filters, so they are not added to the
Space's dependencies.
"""

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from PIL import Image

PHOTO_SIZE = 512       # longer side at most this for page removal: a digit fills 20 pixels in the end, and a
                       # photo's digit still spans a hundred or more here
PAGE_GRID = 128        # longer side of the small copy on which the page's light is estimated
PAGE_WINDOW = 1 / 8    # the closing's window, as a share of that copy's longer side: wider than a photo's stroke,
                       # narrower than its light's changes. Chosen on validation pictures only (the proxies' choose
                       # draw and tests/paper_photos.py): 1/3, 1/6, 1/8 and 1/12 were tried; 1/8 read the most of both
EVEN_BORDER = 0.08     # the border's tones spread over less than this (5th to 95th percentile): one page tone.
                       # On the proxies' choose draw other writers' scans spread 0.067 at most, photos 0.043 and up
                       # (0.10 sent a tenth of the pencil photos down the one-tone road, their vignette taken for ink)
CANVAS_SHARE = 0.9     # this share of the border at one exact tone: a canvas (strokes may reach the edge)
EVEN_PAGE = 0.03       # a page whose middle tone departs from its border's by this share of the ink's contrast is
                       # lit unevenly, even when its border is even: a pencil photo's light falling off toward the
                       # middle, or a tint. On the proxies' choose draw: other writers' scans depart 0.022 at most,
                       # the photos whose border is even 0.005 to 0.21; 0.02, 0.03, 0.05 and 0.1 were tried, and 0.03
                       # read the most photos without costing a writer (any departure at all: writers 91 -> 59 %)
EVEN_PAGE_FLOOR = 0.01 # ... and by at least this share of full white: less is grain (a nearly blank page's faint
                       # mark makes the ink's contrast so small that any grain would count)
EDGE_WINDOW = 3        # the page's light is taken as the least within this many cells of its small copy before it
                       # is enlarged: beside a shadow's sharp edge the enlarged light blends both sides, and paper on
                       # the dark side, divided by light brighter than its own, came out as a line of ink; taken too
                       # dark, the lit side only comes out whiter than white (clipped)
PHOTO_FLOOR = 0.5      # share of the strongest ink below which a photo's pixel is page: a shadow narrower than the
                       # window leaves less darkness than a pen does (chosen as PAGE_WINDOW was, against 0.35 and none)
INK_EXTREME = 0.1      # percentile at each end of a picture's tones taken as its ink's (or lit page's) extreme: a
                       # thin 1 covers well under 1 % of a photo (at 1 %, a shadow over half the page was the darkest
                       # tone, and the page was read as light ink)
GRAIN = 4.0            # a pixel is ink when it is this many robust spreads darker than its page
SPECK = 0.05           # a patch of ink with under this share of all the ink, apart from the rest, is a speck
MIN_PATCH = 0.0005     # ... or less ink than would fill this share of the picture
SPECK_GRID = 48        # specks are found on a grid of at most this many cells a side
LINE_SHARE = 0.8       # a row crossed by ink over this share of its length, at a small tilt, is a ruled line
EVEN_LINE_SHARE = 0.9  # ... on a page of one tone (a scan, a flat photo), whose digit may fill it to narrow margins:
                       # at 0.8 the bars of 11 of the proxies' choose draw's 899 scans by other writers went as lines
LINE_THICK = 8         # rows of the small copy a ruled line covers at most (2, and 1 more each side when found)
MIN_LINES = 3          # ruled paper has at least this many parallel lines; a digit's own stroke (a "1") is one
LINE_TILTS = np.tan(np.radians(np.arange(-8.0, 8.5, 1.0)))  # the tilts looked at, in rows per column
LINE_GRID = 160        # ruled lines are looked for on a copy at most this many pixels a side


@dataclass(frozen=True)
class Page:
    """What the preprocessing found on a picture before framing the digit; both arrays (H, W) float32 in [0, 1]."""
    flat: np.ndarray   # the picture in grey with the page's light divided out: a white page, dark ink
    ink: np.ndarray    # the ink found on it, bright on black, strongest 1; specks and ruled lines taken out
    flattened: bool    # uneven light was divided out; False: the page's one tone was taken from its border
    canvas: bool       # the border is one exact tone, as a drawing canvas's (the pad's) is and a photo's never is


def even_border(grey: np.ndarray) -> bool:
    """Whether the picture's border has one tone: a clean drawing or scan, or a crop of MNIST-like pixels."""
    low, high = np.percentile(_border(grey), [5, 95])
    return high - low < EVEN_BORDER


def even_page(grey: np.ndarray) -> bool:
    """Whether the page has one tone, the border's: its border is even (even_border), and, unless it is a canvas,
    the picture's median tone (its page's: most of a picture is page) stays within EVEN_PAGE of the ink's contrast
    (or EVEN_PAGE_FLOOR) of the border's tone. A canvas (the pad) is one tone by construction, however much of it
    the strokes cover."""
    if not even_border(grey):
        return False
    if canvas_border(grey):
        return True
    page = float(np.median(_border(grey)))
    contrast = max(page - float(grey.min()), float(grey.max()) - page, 1e-6)
    return abs(float(np.median(grey)) - page) < max(EVEN_PAGE * contrast, EVEN_PAGE_FLOOR)


def canvas_border(grey: np.ndarray) -> bool:
    """Whether nearly all the border has one exact tone: drawn on a canvas, not photographed (a camera's grain)."""
    border = _border(grey)
    return np.count_nonzero(border == np.median(border)) >= CANVAS_SHARE * border.size


def _border(grey: np.ndarray) -> np.ndarray:
    return np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])


def flat_field(grey: np.ndarray) -> np.ndarray:
    """A picture (H, W) in [0, 1] -> at most PHOTO_SIZE a side, with its page's light divided out: white page,
    dark ink, whichever polarity the picture had (light chalk on a dark board comes back dark on white too)."""
    grey = _resize(grey, _grid_size(grey.shape, PHOTO_SIZE))
    small = _resize(grey, _grid_size(grey.shape, PAGE_GRID))
    window = 2 * round(PAGE_WINDOW * max(small.shape) / 2) + 1
    bright, dark = _closing(small, window), -_closing(-small, window)  # envelopes above and below the strokes
    if _light_ink(small):
        grey, bright = 1 - grey, 1 - dark
    page = _resize(-square_max(-bright, EDGE_WINDOW), grey.shape)  # at a shadow's edge: the darker side's light
    return np.clip(grey / np.maximum(page, 1e-3), 0, 1).astype(np.float32)


def _light_ink(small: np.ndarray) -> bool:
    """Whether the ink is lighter than its page (chalk on a board), on two counts that must agree:
    - most of the picture is page, so its median is a page tone, and the ink departs from it furthest (a lit
      corner departs too, but less: light scales ink and page alike);
    - the page reaches the picture's border and the ink mostly does not, so the border's tones lie toward the
      page's end of the picture's range.
    A shadow over most of a page moves its median into the shadow, where lit paper departs from it further than
    the ink; the border, lit and shadowed alike, still shows the paper as the lighter end (the proxies' choose
    draw: 16 of its 100 marker photos with a shadow were read as light ink by the first count alone, one right)."""
    darkest, middle, lightest = np.percentile(small, [INK_EXTREME, 50, 100 - INK_EXTREME])
    edge_low, edge_high = np.percentile(_border(small), [5, 95])
    return lightest - middle > middle - darkest and lightest - edge_high > edge_low - darkest


def ink_on(flat: np.ndarray, min_contrast: float) -> np.ndarray | None:
    """Ink bright on black (H, W), strongest 1, from a flattened page; None when nothing departs from the page by
    min_contrast."""
    darkness = 1 - flat
    sample = darkness[::4, ::4]  # every 16th pixel tells the grain as well as all of them
    spread = 1.4826 * float(np.median(np.abs(sample - np.median(sample))))  # the page's grain, robust to ink
    peak = float(darkness.max())
    if peak < max(min_contrast, GRAIN * spread):
        return None
    ink = np.clip(darkness / peak, 0, 1)
    ink[(darkness < GRAIN * spread) | (ink < PHOTO_FLOOR)] = 0
    return ink


def drop_specks(ink: np.ndarray, threshold: float) -> np.ndarray:
    """Ink (H, W) without the patches, apart from the rest, that hold under SPECK of its mass or under MIN_PATCH of
    the picture's area in full ink (on a page with nothing else on it, every speck is a large share of the ink)."""
    cells = _grid_size(ink.shape, SPECK_GRID)
    mass = _resize(np.where(ink >= threshold, ink, 0), cells)  # (h, w) ink per cell, averaged
    labels = _components(mass > 0)
    if labels.max() <= 1:
        return ink
    totals = np.bincount(labels.ravel(), weights=mass.ravel())
    keep = (totals >= SPECK * totals[1:].sum()) & (totals >= MIN_PATCH * labels.size)
    keep[0] = False
    kept = _resize(keep[labels].astype(np.float32), ink.shape) > 0  # bilinear: a kept cell's edge keeps its ink
    return np.where(kept, ink, 0).astype(np.float32)


def remove_ruled_lines(ink: np.ndarray, share: float = LINE_SHARE) -> np.ndarray:
    """Ink (H, W) without long straight lines that run across at least `share` of the picture (ruled or squared
    paper), at a small tilt; where a stroke meets a line (ink just above or below it), the line's pixels stay, so
    strokes are not cut."""
    size = _grid_size(ink.shape, LINE_GRID)
    mask = _resize((ink > 0).astype(np.float32), size) > 0.1  # (h, w) a small copy: thin lines survive the shrinking
    found = {}
    for transposed in (False, True):  # lines along the rows, then along the columns
        found[transposed] = _lines_along_rows(_grow_rows(mask.T if transposed else mask, 1), MIN_LINES, share)
    for transposed in (False, True):  # on ruled paper, a single line across the others is its margin
        if found[not transposed].any() and not found[transposed].any():
            found[transposed] = _lines_along_rows(_grow_rows(mask.T if transposed else mask, 1), 1, share)
    for transposed, lines in found.items():
        if lines.any():
            ink = _remove_rows(ink.T if transposed else ink, lines)
            ink = ink.T if transposed else ink
    return np.ascontiguousarray(ink)


def _lines_along_rows(mask: np.ndarray, at_least: int, share: float) -> np.ndarray:
    """Where, on a small ink mask (h, w), thin straight lines run along the rows at one of LINE_TILTS over `share` of
    the picture, if the mask has at least `at_least` of them, parallel: (h, w) boolean."""
    height, width = mask.shape
    columns = np.arange(width)
    lines = np.zeros_like(mask)
    for tilt in LINE_TILTS:
        shift = np.round((columns - width / 2) * tilt).astype(int)  # (w,) row offset of a tilted line per column
        rows = np.arange(height)[:, None] + shift[None, :]  # (h, w): row r of the sheared picture
        inside = (rows >= 0) & (rows < height)
        sheared = np.where(inside, mask[np.clip(rows, 0, height - 1), columns], False)
        along = _thin_runs(sheared.sum(axis=1) >= share * inside.sum(axis=1).clip(min=1))  # (h,) line rows
        if np.count_nonzero(np.diff(along.astype(int)) == 1) + int(along[0]) < at_least:
            continue
        lines[np.clip(rows[along], 0, height - 1), np.broadcast_to(columns, rows[along].shape)] |= inside[along]
    return lines


def _thin_runs(rows: np.ndarray) -> np.ndarray:
    """The runs of True in (h,) no longer than LINE_THICK rows: a ruled line, not the bar of a digit filling the
    picture's width."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rows.astype(np.int8), [0]])))  # starts and ends in turn
    thin = np.zeros_like(rows)
    for start, end in zip(edges[::2], edges[1::2]):
        thin[start:end] = end - start <= LINE_THICK
    return thin


def _remove_rows(ink: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Ink (H, W) without the lines found on its small copy (h, w), except where a stroke crosses them."""
    step = ink.shape[0] / lines.shape[0]  # full-size rows per small row
    line = _resize(_grow_rows(lines.astype(np.float32), 2), ink.shape) > 0  # (H, W) the lines' pixels, and a margin
    reach = max(2, round(3 * step))  # a stroke crossing a line has ink this far above or below it
    ink_off_line = np.where(line, 0, ink) > 0
    crossed = _shift_rows(ink_off_line, reach) | _shift_rows(ink_off_line, -reach)
    return np.where(line & ~_grow_rows(crossed, reach), 0, ink).astype(np.float32)


def _grow_rows(mask: np.ndarray, radius: int) -> np.ndarray:
    """Each pixel takes the largest value within `radius` rows above or below it."""
    padded = np.pad(mask, ((radius, radius), (0, 0)))
    return sliding_window_view(padded, 2 * radius + 1, axis=0).max(axis=-1)


def _shift_rows(mask: np.ndarray, offset: int) -> np.ndarray:
    """The mask moved by `offset` rows (down when positive), what moves out dropped."""
    shifted = np.zeros_like(mask)
    if offset > 0:
        shifted[offset:] = mask[:-offset]
    else:
        shifted[:offset] = mask[-offset:]
    return shifted


def _components(mask: np.ndarray) -> np.ndarray:
    """Connected 8-neighbour components of a small boolean mask (h, w) -> labels (h, w), 0 off the mask, 1, 2, …"""
    labels = np.where(mask, np.arange(1, mask.size + 1).reshape(mask.shape), 0)
    while True:  # every pixel takes the largest label around it until nothing changes
        grown = square_max(labels, 3)
        grown = np.where(mask, grown, 0)
        if np.array_equal(grown, labels):
            break
        labels = grown
    _, dense = np.unique(labels, return_inverse=True)
    return dense.reshape(mask.shape)


def _closing(image: np.ndarray, window: int) -> np.ndarray:
    """A maximum then a minimum over a window x window square: dark features narrower than the window go."""
    return -square_max(-square_max(image, window), window)


def square_max(image: np.ndarray, window: int) -> np.ndarray:
    """Each pixel takes the largest value within the window x window square around it (edges repeated): a square's
    maximum is a maximum along rows of maxima along columns."""
    radius = window // 2
    padded = np.pad(image, radius, mode="edge")
    rows = sliding_window_view(padded, window, axis=0).max(axis=-1)  # (h, w + 2r)
    return sliding_window_view(rows, window, axis=1).max(axis=-1)    # (h, w)


def _grid_size(shape: tuple[int, int], longest: int) -> tuple[int, int]:
    """(rows, columns) of a copy whose longer side is at most `longest`, aspect ratio kept."""
    scale = min(1.0, longest / max(shape))
    return max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale))


def _resize(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float -> `shape` (rows, columns): area averaging when shrinking, bilinear when growing."""
    if tuple(shape) == image.shape:
        return image.astype(np.float32)
    shrink = shape[0] < image.shape[0]
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(image.astype(np.float32)).resize((shape[1], shape[0]), method))
