"""A model folder as the app uses it: the model, its evaluation results, and where it came from.

A folder written by train.py holds model.safetensors + config.json (the model), evaluation.json (accuracy,
confusion matrix, history) and evaluation.safetensors (worst-loss and example test images), so the app
needs no dataset. Only safetensors and JSON are ever read.
"""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file

from .model import ViT

EVALUATION_JSON, EVALUATION_TENSORS = "evaluation.json", "evaluation.safetensors"


@dataclass
class ModelBundle:
    """One model ready for the app."""
    name: str
    model: ViT
    evaluation: dict                    # evaluation.json
    tensors: dict[str, torch.Tensor]    # evaluation.safetensors
    source: str                         # "repo@revision" or the bundled folder
    notice: str | None = None           # shown to the user, e.g. why the Hub copy was not used


def load_folder(folder: str | Path, name: str | None = None, source: str | None = None) -> ModelBundle:
    """Load a model folder; a missing or broken file raises ValueError naming the file and the reason."""
    folder = Path(folder)
    for required in ("config.json", "model.safetensors", EVALUATION_JSON, EVALUATION_TENSORS):
        if not (folder / required).is_file():
            raise ValueError(f"{folder / required} is missing")
    try:
        config = json.loads((folder / "config.json").read_text())
        if not isinstance(config, dict):
            raise ValueError("it is not a JSON object")
    except ValueError as error:
        raise ValueError(f"{folder / 'config.json'} is not a valid config ({error})") from error
    try:
        model = ViT.from_pretrained(folder)
    except (ValueError, TypeError) as error:  # TypeError: a config key the model does not take a value of
        raise ValueError(f"{folder}: cannot rebuild the model ({error})") from error
    try:
        evaluation = json.loads((folder / EVALUATION_JSON).read_text())
    except ValueError as error:
        raise ValueError(f"{folder / EVALUATION_JSON} is not valid JSON ({error})") from error
    try:
        tensors = load_file(str(folder / EVALUATION_TENSORS))
    except Exception as error:  # safetensors raises several types for a bad file
        raise ValueError(f"{folder / EVALUATION_TENSORS} is not a readable safetensors file ({error})") from error
    return ModelBundle(name or folder.name, model, evaluation, tensors, source or str(folder))


def bundled_folders(root: str | Path = Path(__file__).resolve().parent.parent / "weights") -> dict[str, Path]:
    """Model folders shipped in weights/, by name."""
    root = Path(root)
    return {p.name: p for p in sorted(root.iterdir()) if (p / "config.json").is_file()} if root.is_dir() else {}
