"""model.onnx (vit.export): every shipped folder's file gives PyTorch's logits under onnxruntime, every folder written
gets one, and a model the exporter cannot take still leaves a complete folder."""

import json
import logging

import numpy as np
import onnxruntime
import pytest
import torch

from conftest import ROOT, TINY

from vit import ViT
from vit.bundle import CALIBRATION, FILES, ONNX, Answers, load_folder, summarise, write_folder
from vit.export import INPUT, OUTPUT, onnx_logits, parity

SHIPPED = sorted(path.parent for path in (ROOT / "weights").rglob("model.safetensors"))
TOLERANCE = 1e-4  # largest absolute logit difference; float32 reorderings land near 1e-5


def test_every_shipped_folder_is_found():
    assert {"mnist", "mnist-tiny", "fashion-mnist", "tiles-7"} <= {folder.name for folder in SHIPPED}


@pytest.mark.parametrize("folder", SHIPPED, ids=lambda folder: str(folder.relative_to(ROOT / "weights")))
def test_shipped_onnx_gives_pytorchs_logits(folder):
    bundle = load_folder(folder)
    images, _ = bundle.examples()
    measured = parity(bundle.model, folder / ONNX, images[:: len(images) // 6][:6])  # several classes, one batch
    assert measured.inputs == 6 and measured.max_difference < TOLERANCE
    session = onnxruntime.InferenceSession(str(folder / ONNX), providers=["CPUExecutionProvider"])
    assert json.loads(session.get_modelmeta().custom_metadata_map["class_names"]) == bundle.class_names
    assert [i.name for i in session.get_inputs()] == [INPUT] and [o.name for o in session.get_outputs()] == [OUTPUT]


def tiny_answers(model: ViT, count: int = 40) -> Answers:
    """The model's answers on random pictures: enough for write_folder, no dataset needed."""
    torch.manual_seed(1)
    images = torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8)
    with torch.no_grad():
        logits = model(images.float() / 255)
    labels = torch.arange(count) % 10
    losses = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    return Answers(images, labels, logits.softmax(-1), losses)


def write_tiny(folder, model: ViT) -> None:
    answers = tiny_answers(model)
    write_folder(folder, model, answers, summarise(answers, "mnist"))


def test_a_written_folder_gets_a_matching_onnx_file(tmp_path, tiny_model):
    write_tiny(tmp_path / "model", tiny_model)
    assert sorted(path.name for path in (tmp_path / "model").iterdir()) == sorted(set(FILES) - {CALIBRATION})
    torch.manual_seed(2)
    for batch in (1, 5):  # the batch axis is free
        images = torch.rand(batch, 1, 28, 28)
        assert parity(tiny_model, tmp_path / "model" / ONNX, images).max_difference < TOLERANCE
    assert onnx_logits(tmp_path / "model" / ONNX, np.zeros((3, 1, 28, 28))).shape == (3, 10)


class ErfcxHead(ViT):
    """A ViT whose head reads the CLS token through erfcx, which ONNX has no operator for at opset 17."""

    def forward_head(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(torch.special.erfcx(tokens[:, 0]))


def test_a_failed_export_leaves_a_complete_folder_and_no_stale_onnx(tmp_path, tiny_model, caplog):
    folder = tmp_path / "model"
    write_tiny(folder, tiny_model)  # an earlier model's model.onnx is there
    torch.manual_seed(0)
    unexportable = ErfcxHead(**TINY).eval()
    with caplog.at_level(logging.WARNING, logger="vit.bundle"):
        write_tiny(folder, unexportable)
    assert not (folder / ONNX).exists() and not list(folder.glob("*.partial"))  # not the earlier weights' file
    warning, = [record.getMessage() for record in caplog.records if record.levelno == logging.WARNING]
    assert "model.onnx was not written" in warning and "erfcx" in warning and "\n" not in warning
    reloaded = load_folder(folder)  # the rest is written: it rebuilds the model (as a plain ViT)
    assert torch.equal(reloaded.model.head.weight, unexportable.head.weight)
