"""Built draws kept on disk, so a second measurement skips the building (the photos take most of a minute).

A draw is stored under the data cache (vit.data.CACHE_DIR / "proxies") in an .npz of plain arrays (no pickles),
named for its set, draw, size and a key: the SHA-256 of the code that builds the sets and the versions of numpy,
Pillow and scikit-learn. Any change to that code or to those libraries builds the draw afresh; the draw's fingerprint
is stored with it and checked again on loading.
"""

import hashlib
import os
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Callable

import numpy as np

from vit.data import CACHE_DIR

from .draw import Draw, Picture

STORE = CACHE_DIR / "proxies"
MAKERS = ("draw.py", "strokes.py", "shapes.py", "nondigits.py", "photos.py", "writers.py")  # what makes a picture


def key() -> str:
    """What the stored pictures depend on: the code that makes them and the libraries that draw and encode them."""
    digest = hashlib.sha256()
    for name in MAKERS:
        digest.update((Path(__file__).parent / name).read_bytes())
    for library in ("numpy", "pillow", "scikit-learn"):
        try:
            digest.update(f"{library} {metadata.version(library)}".encode())
        except metadata.PackageNotFoundError:
            digest.update(f"{library} none".encode())
    return digest.hexdigest()[:16]


def cached(set_name: str, draw: str, size: int | None, build: Callable[[], Draw], store: Path = STORE) -> Draw:
    """The stored draw when there is one for this code, else `build()`, stored for next time."""
    path = Path(store) / f"{set_name}-{draw}-{size or 'all'}-{key()}.npz"
    if path.is_file():
        try:
            return load(path, set_name, draw)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            pass  # unreadable or not what it says: built again below and written over
    built = build()
    save(path, built)
    return built


def save(path: Path, draw: Draw) -> None:
    """Write a draw as plain arrays, atomically (a crash leaves no half-written file under the final name)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures = draw.pictures
    arrays = {"data": np.frombuffer(b"".join(p.data for p in pictures), dtype=np.uint8),
              "ends": np.cumsum([len(p.data) for p in pictures], dtype=np.int64),
              "kinds": np.array([p.kind for p in pictures]), "groups": np.array([p.group for p in pictures]),
              "labels": np.array([-1 if p.label is None else p.label for p in pictures], dtype=np.int64),
              "fingerprint": np.array(draw.fingerprint)}
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".part")
    os.close(handle)
    try:
        with open(temporary, "wb") as file:
            np.savez(file, **arrays)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load(path: Path, set_name: str, draw: str) -> Draw:
    """Read a stored draw; ValueError when its pictures do not give the fingerprint stored with them."""
    with np.load(path) as stored:  # plain arrays: np.load unpickles nothing unless asked to
        data, ends = stored["data"].tobytes(), stored["ends"]
        starts = np.concatenate([[0], ends[:-1]])
        pictures = tuple(Picture(data[start:end], str(kind), str(group), None if label < 0 else int(label))
                         for start, end, kind, group, label in zip(starts, ends, stored["kinds"], stored["groups"],
                                                                   stored["labels"]))
        expected = str(stored["fingerprint"])
    loaded = Draw(set_name, draw, pictures)
    if loaded.fingerprint != expected:
        raise ValueError(f"{path}: its pictures do not match the fingerprint stored with them")
    return loaded
