"""What the three proxy sets share: one picture as a file the app would receive, a draw of them, its fingerprint
and the seeds that make each draw reproducible."""

import hashlib
import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image

DRAWS = ("choose", "report")  # choose: validation, for thresholds and recipes; report: what cards quote


@dataclass(frozen=True)
class Picture:
    """One picture as the app receives it: an encoded file (PNG or JPEG), what it shows, and its label."""
    data: bytes          # the file's bytes
    kind: str            # what it is: "capital A", "pencil on tinted paper", "optdigits, crisp edges"
    group: str           # a coarser kind: "letter", "sign", "doodle", "scribble"; for digits the set's name
    label: int | None    # the digit shown, None for a non-digit

    def image(self) -> Image.Image:
        """The picture decoded, as a PIL image."""
        return Image.open(io.BytesIO(self.data))


@dataclass(frozen=True)
class Draw:
    """One draw of one proxy set: its pictures and the SHA-256 of their decoded pixels, kinds and labels."""
    set_name: str        # "nondigits", "photos" or "writers"
    draw: str            # "choose" or "report"
    pictures: tuple[Picture, ...]

    @cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.pictures)

    def kinds(self) -> list[str]:
        """The kinds in the order they first appear."""
        return list(dict.fromkeys(picture.kind for picture in self.pictures))


def fingerprint(pictures: tuple[Picture, ...] | list[Picture]) -> str:
    """SHA-256 over every picture's decoded pixels, size, kind and label, in order: the same digest means the same
    set, whatever encoder version wrote the files."""
    digest = hashlib.sha256()
    for picture in pictures:
        image = picture.image()
        digest.update(f"{picture.kind}|{picture.label}|{image.mode}|{image.size}".encode())
        digest.update(np.asarray(image).tobytes())
    return digest.hexdigest()


def check_draw(draw: str) -> None:
    if draw not in DRAWS:
        raise ValueError(f"unknown draw {draw!r}; choose one of {DRAWS}")


def item_rng(seed: int, index: int) -> np.random.Generator:
    """The random source of one picture: its own stream, so a slice of a draw equals the start of the whole draw."""
    return np.random.default_rng([seed, index])


def png(pixels: np.ndarray) -> bytes:
    """(H, W) or (H, W, 3) uint8 -> PNG file bytes."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(pixels: np.ndarray, quality: int) -> bytes:
    """(H, W, 3) uint8 -> JPEG file bytes, as a phone camera or a messenger app compresses a photo."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    return buffer.getvalue()


def to_uint8(picture: np.ndarray) -> np.ndarray:
    """Float pixels in [0, 1] -> uint8."""
    return np.clip(picture * 255 + 0.5, 0, 255).astype(np.uint8)
