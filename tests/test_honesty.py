"""Calibration, the "not a digit" check, the validation split, and the pictures they are fitted and measured on."""

import json
import math

import numpy as np
import pytest
import torch

from vit import calibration, novelty, probes, rendered
from vit.analysis import log_odds, occlusion
from vit.bundle import CALIBRATION, load_folder
from vit.data import Split, carve_validation
from vit.model import ViT
from vit.preprocess import to_model_input
from vit.augment import add_flag, augment, elastic_field, vary_thickness
from vit.recipe import Recipe


def sampled(logits: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Labels drawn from softmax(logits): a model whose confidences are exactly right."""
    return torch.multinomial(logits.softmax(-1), 1, generator=torch.Generator().manual_seed(seed)).squeeze(1)


def test_temperature_scaling_finds_the_temperature_that_made_the_labels():
    logits = torch.randn(20_000, 10, generator=torch.Generator().manual_seed(0)) * 3
    labels = sampled(logits)
    assert calibration.fit_temperature(logits * 2.5, labels) == pytest.approx(2.5, rel=0.05)  # over-confident
    assert calibration.fit_temperature(logits * 0.5, labels) == pytest.approx(0.5, rel=0.05)  # under-confident


def test_ece_is_near_zero_when_calibrated_and_large_when_not():
    logits = torch.randn(20_000, 10, generator=torch.Generator().manual_seed(1)) * 3
    labels = sampled(logits)
    assert calibration.expected_calibration_error(logits.softmax(-1), labels) < 0.015
    assert calibration.expected_calibration_error((logits * 4).softmax(-1), labels) > 0.1
    bins = calibration.reliability(logits.softmax(-1), labels)
    assert sum(bins["counts"]) == 20_000 and len(bins["accuracy"]) == calibration.ECE_BINS


def test_ece_by_hand():
    # two answers at 0.95 (one right), two at 0.55 (both right): |0.95 - 0.5| * 2/4 + |0.55 - 1| * 2/4
    probabilities = torch.tensor([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.45, 0.55]])
    labels = torch.tensor([0, 1, 0, 1])
    assert calibration.expected_calibration_error(probabilities, labels) == pytest.approx(0.45)


def test_limits_refuse_a_set_share_of_digits_and_say_why():
    inputs = torch.zeros(1000, 28, 28)
    inputs[:, 8:20, 12:16] = 1.0  # a solid stroke
    logits = torch.randn(1000, 10, generator=torch.Generator().manual_seed(0)) + torch.eye(10)[torch.arange(1000) % 10] * 8
    limits = novelty.fit([(inputs, logits)], share=0.01)
    verdicts = novelty.judge(limits, inputs, logits)
    assert sum(v.refused for v in verdicts) <= 0.01 * 1000 + 1
    grey = torch.rand(1, 28, 28, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.2  # noise: grey all over
    verdict = novelty.judge(limits, grey, torch.zeros(1, 10))[0]
    assert verdict.refused and "no class fires strongly" in verdict.message and "too much of it is ink" in verdict.message
    assert verdict.message.startswith("This does not look like a digit")


def test_the_validation_split_is_fixed_disjoint_and_five_thousand():
    images = torch.arange(60_000).view(-1, 1, 1, 1).expand(-1, 1, 28, 28).to(torch.int32)
    split = Split(images, torch.arange(60_000) % 10)
    train, val = carve_validation(split)
    train_again, val_again = carve_validation(split)
    ids = lambda s: set(s.images[:, 0, 0, 0].tolist())  # noqa: E731
    assert len(val) == 5_000 and len(train) == 55_000 and not ids(train) & ids(val)
    assert torch.equal(val.images, val_again.images) and torch.equal(train.labels, train_again.labels)


def test_thickness_and_elastic_distortion():
    images = torch.zeros(2, 1, 28, 28)
    images[:, :, 6:22, 13:15] = 1.0
    thicker = vary_thickness(images, torch.tensor([1.0, -1.0]))
    assert thicker[0].sum() > images[0].sum() > thicker[1].sum()
    field = elastic_field(3, 28, 2.0, torch.Generator().manual_seed(0))
    assert field.shape == (3, 28, 28, 2) and field.abs().max() <= 1.25 * 2.0 * 2 / 28
    out = augment(images, Recipe(thickness=0.5, elastic=1.5), torch.Generator().manual_seed(0))
    assert out.shape == images.shape and out.min() >= 0 and out.max() <= 1 + 1e-5


def test_a_flag_goes_down_and_left_from_the_top_of_a_one_and_only_on_ones():
    images = torch.zeros(2, 1, 28, 28)
    images[:, :, 4:24, 14:16] = 1.0  # an upright stick, 20 rows tall, 2 pixels wide
    flagged = add_flag(images[:1], torch.Generator().manual_seed(0))
    new_ink = (flagged - images[:1])[0, 0] > 0.5
    rows, columns = new_ink.nonzero().unbind(1)
    assert new_ink.sum() >= 4 and columns.max() < 14 and rows.max() < 4 + 20 // 2  # left of the stem, upper half
    assert rows.min() >= 4 and columns.min() >= 14 - 20 * 0.5  # from its top, at most half its height long
    flat = Recipe(rotate=0, shift=0, scale=0, flag_ones=1.0)  # no resampling blur: only the flag changes ink
    out = augment(images, flat, torch.Generator().manual_seed(0), labels=torch.tensor([1, 7]))
    assert out[0].sum() > images[0].sum() + 3 and torch.allclose(out[1], images[1], atol=1e-5)
    assert torch.allclose(augment(images, flat, torch.Generator().manual_seed(0)), images, atol=1e-5)  # no labels


def test_blanking_two_by_two_blocks_is_what_blanking_those_tiles_by_hand_gives():
    torch.manual_seed(0)
    model = ViT(tile_size=7, embed_size=16, num_layers=1, num_heads=2, mlp_size=16).eval()
    image = torch.rand(1, 1, 28, 28)
    single, blocks = occlusion(model, image, 3), occlusion(model, image, 3, group=2)
    assert single.shape == blocks.shape == (4, 4)
    assert torch.equal(blocks[:2, :2], blocks[0, 0].expand(2, 2))  # one block, one value
    blanked = image.clone()
    blanked[..., 14:28, 0:14] = 0  # block (1, 0): tiles (2, 0), (2, 1), (3, 0), (3, 1)
    with torch.no_grad():
        by_hand = log_odds(model(image), 3) - log_odds(model(blanked), 3)
    assert blocks[3, 1].item() == pytest.approx(by_hand.item(), abs=1e-5)
    assert torch.allclose(occlusion(model, image, 3, group=1), single)


def test_a_folder_without_calibration_reads_raw_and_a_broken_one_is_refused(tmp_path, models):
    import shutil
    folder = tmp_path / "model"
    shutil.copytree(models["mnist-tiny"].source, folder)
    (folder / CALIBRATION).unlink(missing_ok=True)
    plain = load_folder(folder)
    assert plain.temperature == 1.0 and plain.limits is None and plain.read(np.zeros((28, 28))).verdict is None
    (folder / CALIBRATION).write_text(json.dumps({"temperature": -1, "not_a_digit": {}}))
    with pytest.raises(ValueError, match="calibration.json needs a temperature above 0"):
        load_folder(folder)


def test_every_shipped_model_is_calibrated_and_refuses_what_is_not_a_digit(models):
    for bundle in models.values():
        evaluation = bundle.evaluation
        assert evaluation.calibration.ece_after <= 0.015, bundle.name
        assert evaluation.not_a_digit.test_refused <= 0.01, bundle.name
        assert evaluation.not_a_digit.drawn_test_refused <= 0.01, bundle.name
        assert bundle.temperature != 1.0 and bundle.limits is not None
        assert bundle.read(to_model_input(probes.noise(np.random.default_rng(0)), bundle.framing)).refused, bundle.name


def test_probes_and_rendered_digits_are_reproducible_pictures():
    a, b = probes.noise(np.random.default_rng(5)), probes.noise(np.random.default_rng(5))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    page = probes.on_canvas(np.eye(28, dtype=np.uint8) * 255, np.random.default_rng(0))
    assert page.size == probes.CANVAS and np.asarray(page).min() == 0
    made = rendered.pictures(repeats=1)
    drawn = [kind for _, _, kind in made if kind.startswith("drawn")]
    assert len(drawn) == sum(len(styles) for styles in rendered.STYLES.values()) * len(rendered.PENS)
    assert {digit for _, digit, _ in made} == set(range(10))
    seven = [picture for picture, digit, kind in made if kind.startswith("drawn barred 7")][0]
    assert to_model_input(seven).sum() > 10 and math.isclose(float(to_model_input(seven).max()), 1.0, abs_tol=1e-6)


def test_drawings_from_other_writers_come_out_framed_like_mnist():
    """The preprocessing check on drawings: MNIST's 20-pixel box, centre of mass at (14, 14), MNIST's pen.

    Measured on 2,000 MNIST test digits: pen width (2 × area / perimeter) 1.01 to 3.39 pixels (1st to 99th
    percentile), centre of mass (13.99, 14.00).
    """
    from vit.preprocess import pen_width
    for picture, digit, kind in rendered.pictures(repeats=1):
        x = to_model_input(picture).numpy()
        rows, cols = np.nonzero(x >= 0.2)
        assert max(rows.max() - rows.min(), cols.max() - cols.min()) + 1 == 20, kind
        mass = x.sum()
        centre = (x.sum(1) @ np.arange(28) / mass, x.sum(0) @ np.arange(28) / mass)
        assert max(abs(c - 14) for c in centre) <= 0.5, kind
        assert 1.0 <= pen_width(x >= 0.5) <= 4.0, kind
