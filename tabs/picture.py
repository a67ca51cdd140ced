"""The picture a visitor is looking at (one per visitor, a gr.State), how a sent picture becomes one, and the
picture a tab starts from. Every tab that explains "the current picture" reads it through here.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from vit.bundle import ModelBundle
from vit.datasets import DEFAULT
from vit.preprocess import DIGITS, ImageError, frame, open_data_url, open_image, read_page

ORIGINAL_SIDE = 280  # the "your image" thumbnail: enough to recognise it, cheap to send


@dataclass(frozen=True)
class Picture:
    """The picture the Predict tab explains, per visitor (a gr.State)."""
    input: np.ndarray                 # (28, 28) float32 in [0, 1]: what the model reads
    source: str                       # "your drawing", "a test 7", ...
    original: np.ndarray | None = None  # the visitor's own picture, small, for "your image"
    dataset: str = DEFAULT            # whose framing (and stored examples) it has
    sent: str | None = None           # what the visitor sent (the pad's data URL or an uploaded file's path), so a
                                      # model of another dataset reads the same picture framed as its own (picture_for)
    page: np.ndarray | None = None    # a photo's page with its light divided out (vit.page), small; None for the rest


def thumbnail(picture: Image.Image | np.ndarray) -> np.ndarray:
    """The visitor's picture, upright, at most ORIGINAL_SIDE pixels on a side, as uint8 grey or RGB(A)."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    if getattr(picture, "n_frames", 1) > 1:
        picture.seek(0)  # an animation: its first frame, as the model reads it
    picture = ImageOps.exif_transpose(picture)  # a copy, turned as vit.preprocess turns it
    picture.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE))
    if picture.mode.startswith("I") or picture.mode == "F":  # 16/32-bit grey or float: Pillow's convert clips at 255
        values = np.asarray(picture, dtype=np.float32)
        peak = 1.0 if picture.mode == "F" else 65535.0 if values.max() > 255 else 255.0
        return (np.clip(values / peak, 0, 1) * 255).round().astype(np.uint8)
    if picture.mode not in ("L", "RGB", "RGBA"):
        picture = picture.convert("RGBA")
    return np.asarray(picture)


def picture_from_drawing(drawing: str | None, model: ModelBundle | None = None) -> Picture | str:
    """The pad's canvas (a PNG data URL) as a Picture framed as the model's dataset frames its own (MNIST's
    without a model), or the message to show instead."""
    if drawing is None:
        return f"Draw a {model.noun if model else 'digit'} on the pad."
    return framed_picture(open_data_url, drawing, "your drawing", model)


def picture_from_file(path: str | None, model: ModelBundle | None = None) -> Picture | str:
    """An uploaded file as a Picture, or the message to show instead."""
    noun = model.noun if model else "digit"
    if not path:
        return f"Draw a {noun}, upload a picture, or pick a {model.data.stored if model else 'test'} {noun}."
    return framed_picture(open_image, path, "your picture", model)


def framed_picture(opener, sent, source: str, model: ModelBundle | None) -> Picture | str:
    """What a visitor sent, opened by `opener` and framed for the model (as MNIST frames digits without one), as
    a Picture called `source`; or the message to show when it cannot become one."""
    try:
        image = opener(sent)
        framing = model.framing if model else DIGITS
        found = read_page(image, framing)
        page = thumbnail((found.flat * 255).round().astype(np.uint8)) if found.flattened else None
        return Picture(frame(found, framing).numpy(), source, thumbnail(image), model.dataset if model else DEFAULT,
                       sent, page)
    except ImageError as error:
        return str(error)


def reread(picture: Picture, model: ModelBundle) -> Picture | str:
    """What the visitor sent, read again and framed for `model`; the message instead when it cannot be (nothing
    was sent: a stored example; or the uploaded file is gone)."""
    if picture.sent is None:
        return f"{picture.source} is a stored example of {picture.dataset}, not a picture you sent"
    opener = open_data_url if picture.sent.startswith("data:") else open_image
    try:
        return framed_picture(opener, picture.sent, picture.source, model)
    except OSError as error:  # the upload's temporary file was removed
        return f"{picture.source} can no longer be read ({error.strerror or error})"


def start_picture(model: ModelBundle) -> Picture:
    """What the tab explains before the visitor does anything: a stored test 7."""
    example = model.example(default_label(model))
    return Picture(example.input, f"a {model.data.stored} {model.class_names[example.label]}", dataset=model.dataset)


def picture_for(model: ModelBundle, current: Picture | None) -> Picture:
    """The visitor's picture as `model` reads it: as it is for a model of its dataset; what the visitor sent, framed
    again, for a model of another (a drawing is the same drawing for every model); the start picture when there is
    none, or when it is a stored example of another dataset (a test 7 is not a garment)."""
    if current is None:
        return start_picture(model)
    if current.dataset == model.dataset:
        return current
    again = reread(current, model)
    return again if isinstance(again, Picture) else start_picture(model)


def default_label(model: ModelBundle) -> int:
    """The class the tabs open with: 7, the notebook's example, when the model has it."""
    return model.class_names.index("7") if "7" in model.class_names else 0


@dataclass(frozen=True)
class Display:
    """Where a picture sent from another tab is shown (the Predict tab): its handler and its outputs.

    A tab that opens a stored test image in Predict puts it in the current picture, then runs
    `show(current, model name)` into `outputs`.
    """
    show: Callable
    outputs: list
