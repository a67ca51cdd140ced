"""The explanation methods and their faithfulness tests: shapes, determinism, known answers, the methods'
own definitions, and the stored scoreboards recomputed by the evaluate command."""

import json
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

from conftest import ROOT
from vit import ViT, faithfulness
from vit.analysis import METHODS, integrated_gradients, relevance, tile_maps
from vit.walk import walk
from vit.bundle import read_evaluation

GRID, SEEN = 4, 6  # the tiny config's 4 × 4 tiles; the one tile the hand-built model reads (row 1, column 2)


def one_tile_vit(seen: int = SEEN) -> ViT:
    """A one-block ViT whose answer depends on one tile only: CLS's query meets only that tile's key (its
    position carries the key), the value carries the tile's ink, and class 1's logit reads it off CLS.

    Token dimensions: 0 ink, 1 "I am the tile", 2 "I am CLS", 3 unused. The MLP is switched off."""
    model = ViT(tile_size=7, embed_size=4, num_layers=1, num_heads=1, mlp_size=4, num_classes=2).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.zero_()
        model.tile_embedding.weight[0] = 1 / 49  # dimension 0: the tile's mean normalised pixel…
        model.tile_embedding.bias[0] = 0.1307 / 0.3081  # …shifted so a blank tile embeds to exactly 0
        model.pos_embedding[0, 1 + seen, 1] = 10.0
        model.cls_token[0, 0, 2] = 10.0
        block = model.blocks[0]
        for norm in (block.norm1, block.norm2, model.norm):
            norm.weight.fill_(1.0)
        qkv = block.attention.qkv.weight  # (3D, D): rows 0–3 queries, 4–7 keys, 8–11 values
        qkv[0, 2], qkv[4, 1], qkv[8, 0] = 8.0, 8.0, 1.0  # q from "CLS", k from "the tile", v from ink
        block.attention.qkv.bias[8] = 5.0  # every value positive: the tile adds to the answer, as ink should
        block.attention.proj.weight[3, 0] = 1.0  # what CLS gathers lands in its unused dimension 3
        model.head.weight[1, 3] = 10.0
    return model.requires_grad_(False)


def test_the_hand_built_model_reads_one_tile_only():
    model, image = one_tile_vit(), torch.rand(28, 28) * 0.8 + 0.1
    other = image.clone()
    other[:7, :7] = 0  # tile 0 changed
    blank_seen = image.clone()
    blank_seen[7:14, 14:21] = 0  # the tile it reads, blanked
    logits = [model(x.reshape(1, 1, 28, 28))[0] for x in (image, other, blank_seen)]
    assert torch.allclose(logits[0], logits[1], atol=1e-4) and not torch.allclose(logits[0], logits[2], atol=0.1)


@pytest.mark.parametrize("method", METHODS)
def test_every_method_ranks_the_one_tile_the_model_reads_first(method):
    maps = tile_maps(one_tile_vit(), torch.rand(28, 28) * 0.8 + 0.1, target=1)
    assert maps[method].shape == (GRID, GRID)
    assert int(faithfulness.ranking(maps[method])[0]) == SEEN, maps[method]


def test_methods_are_deterministic_and_shaped_on_a_tiny_config(tiny_model):
    image = torch.rand(28, 28)
    first, second = tile_maps(tiny_model, image, 3), tile_maps(tiny_model, image, 3)
    assert list(first) == list(METHODS)
    for name in METHODS:
        assert first[name].shape == (GRID, GRID) and torch.equal(first[name], second[name])
    assert not torch.allclose(tile_maps(tiny_model, image, 4)["relevance"], first["relevance"])  # class-specific
    assert torch.equal(tile_maps(tiny_model, image, 4)["rollout"], first["rollout"])  # rollout is not


def test_integrated_gradients_is_complete(tiny_model):
    """Its attributions add up to logit(x) − logit(blank), to within the integration error."""
    with torch.no_grad():
        for parameter in tiny_model.parameters():
            parameter.normal_(0, 0.3)  # weights large enough for an answer, smooth enough to integrate
    torch.manual_seed(5)
    image, target = torch.rand(28, 28), 2
    with torch.no_grad():
        difference = float(tiny_model(image.reshape(1, 1, 28, 28))[0, target] - tiny_model(torch.zeros(1, 1, 28, 28))[0, target])
    attributions = integrated_gradients(tiny_model, image, target, steps=128)
    assert attributions.shape == (GRID, GRID) and abs(difference) > 0.1
    assert float(attributions.sum()) == pytest.approx(difference, rel=1e-3)
    assert float(integrated_gradients(tiny_model, image, target, steps=2).sum()) != pytest.approx(difference, rel=1e-3)
    pixels = integrated_gradients(tiny_model, image, target, steps=128, per_tile=False)
    assert pixels.shape == (28, 28) and torch.isclose(pixels.sum(), attributions.sum(), atol=1e-4)


def test_relevance_of_a_one_layer_one_head_model_by_hand():
    """One block: the logit depends on A only through CLS's row, heads[CLS] = Σ_j A[CLS, j] v_j, so
    ∂logit/∂A[CLS, j] = g · v_j with g the gradient at CLS's head output, and R's CLS row over the tiles is
    max(g · v_j × A[CLS, j], 0) (the identity adds nothing to the tiles)."""
    torch.manual_seed(1)
    model = ViT(tile_size=7, embed_size=8, num_layers=1, num_heads=1, mlp_size=16).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.5)
    image, target = torch.rand(28, 28), 3
    steps = walk(model, image)
    block, module = steps.blocks[0], model.blocks[0]
    cls_out = block.heads[0, 0].clone().requires_grad_(True)  # (d,): CLS's head output
    middle = block.input[0] + module.attention.proj(cls_out)  # the rest of the block and the head, for CLS
    final = middle + module.mlp(module.norm2(middle))
    (g,) = torch.autograd.grad(model.head(model.norm(final))[target], cls_out)
    expected = ((block.v[0, 1:] @ g) * block.attention[0, 0, 1:]).clamp_min(0).reshape(GRID, GRID)
    assert torch.allclose(relevance(model, image, target), expected, atol=1e-5)


def test_curves_start_at_the_picture_and_end_blank():
    model, image = one_tile_vit(), torch.rand(28, 28) * 0.8 + 0.1
    best = torch.tensor([[SEEN] + [t for t in range(16) if t != SEEN]])
    worst = torch.tensor([[t for t in range(16) if t != SEEN] + [SEEN]])
    deletion, insertion, steps = faithfulness.curves(model, image, 1, torch.cat([best, worst]))
    full = float(model(image.reshape(1, 1, 28, 28)).softmax(-1)[0, 1])
    blank = float(model(torch.zeros(1, 1, 28, 28)).softmax(-1)[0, 1])
    assert steps == list(range(17))  # 16 tiles: a point per tile
    assert torch.allclose(deletion[:, 0], torch.tensor(full)) and torch.allclose(deletion[:, -1], torch.tensor(blank))
    assert torch.allclose(insertion[:, 0], torch.tensor(blank)) and torch.allclose(insertion[:, -1], torch.tensor(full))
    assert torch.allclose(deletion[0, 1:], torch.tensor(blank), atol=1e-5)  # the right tile first: gone at once
    assert torch.allclose(deletion[1, :-1], torch.tensor(full), atol=1e-5)  # last: it stays to the end
    areas = faithfulness.area(deletion, steps)
    assert areas[0] < areas[1] and 0 <= float(areas.min()) and float(areas.max()) <= 1


def test_a_picture_test_scores_every_method_against_random_orders():
    result = faithfulness.picture_test(one_tile_vit(), torch.rand(28, 28) * 0.8 + 0.1, 1)
    assert result["names"] == [*METHODS, "random"]
    assert all(result["areas"][name][0] < result["areas"]["random"][0] for name in METHODS)
    assert faithfulness.most_faithful(result["areas"]) in METHODS


def test_rank_correlation():
    a = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert faithfulness.rank_correlation(a, a * 10) == pytest.approx(1)
    assert faithfulness.rank_correlation(a, -a) == pytest.approx(-1)
    assert faithfulness.rank_correlation(a, torch.ones(4)) == 0  # a constant map ranks nothing
    assert faithfulness.rank_correlation(torch.tensor([0.0, 0.0, 1.0, 2.0]), torch.tensor([0.0, 0.0, 2.0, 1.0])) \
        == pytest.approx(7 / 9)  # ties share their mean rank: (0.5, 0.5, 2, 3) against (0.5, 0.5, 3, 2)


def test_randomisation_cascades_from_the_head_down(tiny_model, mnist_test_small):
    measured = faithfulness.randomisation(tiny_model, mnist_test_small, count=4)
    assert measured["stages"] == ["head", "block 2", "block 1", "embedding"]
    for name in METHODS:
        assert len(measured["methods"][name]) == 4
    for name in ("attention", "rollout"):  # the head is not in their maps at all
        assert measured["methods"][name][0] == pytest.approx(1)
    words = faithfulness.verdicts(faithfulness.scoreboard(tiny_model, mnist_test_small, 4), measured)
    assert set(words) == set(METHODS) and "whichever class" in words["rollout"]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist-tiny", "mnist"])
def test_the_stored_scoreboard_is_what_the_evaluate_command_measures(data_dir, name):
    """On 25 of the 1,000 test images, spread evenly over them, each method's mean areas must sit within 4 of
    their own standard errors of the stored 1,000-image means (the randomisation test on 1 image: the slow part)."""
    folder = ROOT / "weights" / name
    stored = asdict(read_evaluation(folder).faithfulness.scoreboard)
    run = subprocess.run([sys.executable, "-m", "vit.evaluate", str(folder), "--data-dir", str(data_dir),
                          "--faithfulness", "--json", "--count", "25", "--randomised", "1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    measured = json.loads(run.stdout)["faithfulness"]["scoreboard"]
    assert measured["count"] == 25 and stored["count"] >= 1000
    for method, areas in stored["methods"].items():
        for curve in ("deletion", "insertion"):
            mine, theirs = measured["methods"][method][curve], areas[curve]
            assert abs(mine["mean"] - theirs["mean"]) <= 4 * mine["se"], (method, curve, mine, theirs)


def test_a_quick_recomputation_samples_the_same_images_evenly():
    assert faithfulness.sample(1000, 10_000) == list(range(1000))
    assert faithfulness.sample(40, 10_000) == list(range(0, 1000, 25))
    assert faithfulness.sample(5000, 10_000) == list(range(5000)) and faithfulness.sample(50, 20) == list(range(20))


@pytest.fixture(scope="module")
def mnist_test_small(data_dir):
    from vit.data import load_split
    return load_split("mnist", "test", data_dir).subset(torch.arange(8))
