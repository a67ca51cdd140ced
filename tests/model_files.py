"""Model folders broken in the ways a bad disk, a bad download or a bad edit breaks them: shared by the tests of the
loader (test_bundle), the app's start-up (test_app) and the Hub's fallback (test_hub)."""

import json
import shutil
from pathlib import Path
from typing import Callable

from safetensors.torch import load as load_tensors, save as save_tensors


def folder_files(folder: Path) -> dict[str, bytes]:
    """Every file of a model folder, by name."""
    return {path.name: path.read_bytes() for path in folder.iterdir() if path.is_file()}


def config_with(folder: Path, **changes) -> bytes:
    """The folder's config.json with some values changed."""
    return json.dumps(json.loads((folder / "config.json").read_text()) | changes).encode()


def weights_with(folder: Path, change: Callable[[dict], dict]) -> bytes:
    """The folder's model.safetensors with its tensors changed by `change` (name -> tensor in, the same out)."""
    return save_tensors(change(load_tensors((folder / "model.safetensors").read_bytes())))


def truncated(folder: Path, name: str, size: int) -> bytes:
    """The first `size` bytes of one of the folder's files."""
    return (folder / name).read_bytes()[:size]


def broken_copy(source: Path, folder: Path, changes: dict[str, bytes | None]) -> Path:
    """A copy of the model folder `source` at `folder` with some files replaced (None: deleted)."""
    shutil.copytree(source, folder)
    for name, content in changes.items():
        (folder / name).unlink() if content is None else (folder / name).write_bytes(content)
    return folder
