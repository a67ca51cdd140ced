"""Pictures handed to the browser as PNG files written once, so the same picture sent twice always arrives whole,
each with words that say what it shows (its alt text, read out by screen readers).

Why: gradio 6.31 saves a returned array or PIL image into its cache under the hash of its bytes and writes
that file again on every send (processing_utils.save_pil_to_cache has no "already there" check). When the
same picture is sent twice in quick succession (an always_last re-run, a model switch, the tab opening
while the page loads), the second write truncates the file while the browser is still fetching the first:
"Too little data for declared Content-Length" in the server log and a picture that never shows (seen on the
Tiling tab on page load). A file path, by contrast, is copied into the cache only when it is not there
yet, under a temporary name and renamed (processing_utils.save_file_to_cache). So these components write each
picture once, atomically, into a folder of their own, and hand gradio the path.
"""

import atexit
import functools
import hashlib
import io
import os
import shutil
import tempfile
import threading
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image as PILImage


# zlib's fastest level: a map's PNG is about a quarter larger than at Pillow's default (6), and encodes in about
# two thirds of the time, on a server where every stroke's five maps are encoded while other visitors wait.
PNG_LEVEL = 1


@functools.cache
def _folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="vit-pictures-"))  # under the temp dir gradio serves from
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def png_file(picture: np.ndarray | PILImage.Image) -> str:
    """The picture as a PNG file named by its content, written once (to a temporary name, then renamed)."""
    image = picture if isinstance(picture, PILImage.Image) else PILImage.fromarray(np.asarray(picture))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=PNG_LEVEL)
    data = buffer.getvalue()
    path = _folder() / f"{hashlib.sha256(data).hexdigest()[:40]}.png"
    if not path.exists():
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    return str(path)


def _as_file(value):
    return png_file(value) if isinstance(value, (np.ndarray, PILImage.Image)) else value


class Image(gr.Image):
    """gr.Image whose pictures reach gradio as files written once (its block name stays "image")."""

    def postprocess(self, value):
        return super().postprocess(_as_file(value))


class Gallery(gr.Gallery):
    """gr.Gallery whose pictures, with or without captions, reach gradio as files written once."""

    def postprocess(self, value):
        if value is not None:
            value = [(_as_file(item[0]), *item[1:]) if isinstance(item, (tuple, list)) else _as_file(item)
                     for item in value]
        return super().postprocess(value)


FIGURE_MIN_WIDTH = 300  # px: four wide pictures still share a row at 1280 px, two do not on a 390 px phone


def output_image(label: str, elem_id: str | None = None, value=None, *, wide: bool = False,
                 caption: str | None = None, chart: bool = False) -> Image:
    """A read-only picture with fullscreen and download buttons. Its label only names it (for downloads): a shown
    label would float over the picture's top row, so a `caption` is written above it instead. `value`: None, or a
    `described` picture. Hidden while it has no picture: an empty image is an unnamed box to a screen reader.
    `wide`: a picture that keeps a legible size on a phone (CSS .figure: it scrolls sideways instead of shrinking)
    and takes a row of its own there (`FIGURE_MIN_WIDTH`), rather than a sliver of a row of several.
    `chart`: lines, dots or bars on white, whose colours only tell series apart: in dark mode its lightness is
    turned over (CSS .chart), white ground to dark. A map's colours are a scale and are never turned."""
    if caption:
        gr.Markdown(caption)
    shown = value if isinstance(value, dict) else described(value, None)
    return Image(shown["value"], label=label, show_label=False, interactive=False, format="png",
                 buttons=["fullscreen", "download"], elem_id=elem_id, alt_text=shown["alt_text"],
                 visible=shown["visible"], min_width=FIGURE_MIN_WIDTH if wide else 160,
                 elem_classes=["picture", *(["figure"] if wide else []), *(["chart"] if chart else [])])


def described(picture: np.ndarray | PILImage.Image | None, alt: str | None) -> dict:
    """What a handler hands an output_image: the picture and its alt text, the words a screen reader says in
    its place (what it shows, with its numbers). No picture hides the image. A new update every call, never
    cached or shared: gradio takes the value out of an update it is handed. The picture becomes its PNG file
    here, on the handler's thread: gradio runs postprocess on its event loop, where an encoding would hold up
    every visitor's messages."""
    shown = picture is not None
    return gr.update(value=_as_file(picture), alt_text=alt if shown else None, visible=shown)


def sentence(text: str) -> str:
    """Alt text that starts with a name ("your drawing …") as a sentence: its first letter a capital, the rest as it
    is (str.capitalize would lower "CLS")."""
    return text[:1].upper() + text[1:]


def ranked(values, noun: str = "tile", count: int = 2, digits: int = 2, percent: bool = False) -> str:
    """The `count` largest entries of a map in words, numbered as the app numbers pieces (1… in reading order):
    "tile 6 (0.21) and tile 10 (0.15)"; `percent`: values as shares, "tile 6 (21 %)"."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    named = [f"{noun} {i + 1} ({flat[i] * 100:.0f} %)" if percent else f"{noun} {i + 1} ({flat[i]:.{digits}f})"
             for i in np.argsort(-flat, kind="stable")[:count]]
    return named[0] if len(named) == 1 else ", ".join(named[:-1]) + " and " + named[-1]
