"""model.onnx: a model folder's ViT as one self-contained ONNX file, to run it without this project or PyTorch.

Input `images`: (batch, 1, 28, 28) float32 in [0, 1], light ink on black, as the model reads it (it normalises
inside); output `logits`: (batch, classes), before any temperature or softmax. The batch axis is dynamic and the
class names travel in the file's metadata (`class_names`, a JSON list). Written by torch's TorchScript exporter at
opset 17: it needs only the `onnx` package, where the newer dynamo exporter needs `onnxscript` as well.
vit.bundle writes it with every folder; the command line writes it for folders written before:

    python -m vit.export weights/mnist weights/zoo/tiles-7   # model.onnx and the card, checked if onnxruntime is there
"""

import argparse
import copy
import json
import os
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from .model import ViT

ONNX_NAME = "model.onnx"
OPSET = 17  # LayerNormalization is one ONNX operator from 17 on; onnxruntime has run it since 1.14
INPUT, OUTPUT = "images", "logits"
# The exporter keeps its settings in module globals, and the app writes taught models' folders from its threads.
_EXPORTING = threading.Lock()  # one export at a time


class _Logits(nn.Module):
    """The model's plain forward pass, images to logits: the tracer cannot take ViT's set-valued experiment options."""

    def __init__(self, model: ViT):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)  # (B, classes)


def export_onnx(model: ViT, path: str | Path) -> None:
    """Write `model` as ONNX to `path` (one file, weights inside); whatever the exporter raises is raised, and a
    failed export leaves no file behind."""
    path = Path(path)
    model = copy.deepcopy(model).cpu().float().eval()  # the caller's model keeps its device, dtype and mode
    example = torch.zeros(2, model.channels, model.image_size, model.image_size)  # (B, C, H, W); B is dynamic
    partial = path.with_name(path.name + ".partial")  # renamed when complete: never a half-written model.onnx
    if hasattr(torch._C, "_jit_set_onnx_log_output_stream"):  # a failing export prints its graph: not on stdout,
        torch._C._jit_set_onnx_log_output_stream("stderr")      # which carries reports (vit.live, this command line)
    try:
        with _EXPORTING, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notice, the tracer's notes on shape checks
            torch.onnx.export(_Logits(model), (example,), str(partial), dynamo=False, opset_version=OPSET,
                              input_names=[INPUT], output_names=[OUTPUT],
                              dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
        _add_class_names(partial, model.class_names)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _add_class_names(path: Path, names: list[str]) -> None:
    """Store the class names in the file's metadata, so a reader needs no config.json to name the answer."""
    import onnx  # the exporter needs it too
    exported = onnx.load(str(path))
    onnx.helper.set_model_props(exported, {"class_names": json.dumps(names)})
    onnx.save(exported, str(path))


def onnx_logits(path: str | Path, images: np.ndarray) -> np.ndarray:
    """Logits (B, classes) of the ONNX file at `path` for `images` (B, 1, H, W) in [0, 1], run by onnxruntime
    (requirements-test.txt)."""
    import onnxruntime
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: np.asarray(images, dtype=np.float32)})[0]


@dataclass(frozen=True)
class Parity:
    """How far model.onnx's logits are from PyTorch's on the same inputs."""
    inputs: int
    max_difference: float  # largest absolute difference over every logit


def parity(model: ViT, path: str | Path, images: torch.Tensor) -> Parity:
    """Compare the ONNX file with the model on `images` (B, H, W) uint8 or (B, 1, H, W) in [0, 1]."""
    if images.dtype == torch.uint8:
        images = images.float() / 255
    images = images.reshape(len(images), model.channels, model.image_size, model.image_size)  # (B, C, H, W)
    with torch.inference_mode():
        expected = model.cpu().float().eval()(images).numpy()
    return Parity(len(images), float(np.abs(onnx_logits(path, images.numpy()) - expected).max()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vit.export", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", metavar="FOLDER", help="written model folders")
    parser.add_argument("--inputs", type=int, default=16, help="stored test images to check it on (default: 16)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from .bundle import add_onnx, load_folder  # the folder's owner, which writes through this module
    try:
        import onnxruntime  # noqa: F401  (only to say whether the check can run)
        checking = True
    except ImportError:
        checking = False
        print("onnxruntime is not installed: writing without checking", file=sys.stderr)
    failed = 0
    for folder in args.folders:
        try:
            bundle = load_folder(folder)
        except ValueError as error:
            print(f"{folder}: {error}", file=sys.stderr)
            failed += 1
            continue
        if not add_onnx(folder):
            failed += 1
            continue
        line = f"{folder / ONNX_NAME}: {(folder / ONNX_NAME).stat().st_size:,} bytes"
        if checking:
            images = bundle.examples()[0]  # 20 a class, in class order: every k-th one covers the classes
            chosen = images[::max(1, len(images) // args.inputs)][:args.inputs]
            measured = parity(bundle.model, folder / ONNX_NAME, chosen)
            line += f", largest logit difference from PyTorch {measured.max_difference:.2e} on {measured.inputs} inputs"
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
