"""Analyses on hand-made attention, a hand-built one-tile model and the tiny ViT."""

import math

import pytest
import torch
import torch.nn as nn

from vit import ViT
from vit.analysis import (attention_rollout, confusion_matrix, cosine_similarity_matrix, cls_attention_maps,
                          explain, log_odds, median_attention_by_label, occlusion, positional_similarity, rollout_map,
                          saliency, tile_maps, worst_losses, attention_distance)
from vit.tiling import tiles

GRID = 4  # the tiny config: 28 / 7
TOKENS = GRID * GRID + 1


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> None:
    """Same shape, equal within atol (torch.testing.assert_close would first import torch.distributed: ~4 s)."""
    assert actual.shape == expected.shape, f"shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert torch.allclose(actual.float(), expected.float(), rtol=0, atol=atol), \
        f"largest difference {(actual.float() - expected.float()).abs().max():.3g}"


class OneTileModel(nn.Module):
    """Looks only at tile `seen`: class 1's logit is the tile's mean brightness times 10, class 0's is 0."""

    def __init__(self, seen: int, tile_size: int = 7, image_size: int = 28):
        super().__init__()
        self.seen, self.tile_size, self.image_size = seen, tile_size, image_size
        self.piece, self.grid = (tile_size, tile_size), (image_size // tile_size,) * 2  # what occlusion reads
        self.scale = nn.Parameter(torch.tensor(10.0))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        brightness = tiles(images, self.tile_size)[:, self.seen].flatten(1).mean(dim=1)  # (B,)
        return torch.stack([torch.zeros_like(brightness), self.scale * brightness], dim=1)  # (B, 2)


def test_rollout_of_self_attention_gives_cls_nothing_on_any_tile():
    attention = torch.eye(TOKENS).expand(3, 2, TOKENS, TOKENS)
    assert attention_rollout(attention)[0, 1:].abs().max() == 0
    assert torch.equal(rollout_map(attention, GRID), torch.zeros(GRID, GRID))  # no 0/0 NaN


def test_rollout_of_uniform_attention_shares_tiles_equally():
    attention = torch.full((3, 2, TOKENS, TOKENS), 1 / TOKENS)
    assert_close(rollout_map(attention, GRID), torch.full((GRID, GRID), 1 / GRID ** 2))


def test_rollout_follows_attention_through_the_layers():
    # layer 1: tile 1 looks at tile 2; layer 2: CLS looks at tile 1. Half of each layer is the residual.
    first, second = torch.eye(3), torch.eye(3)
    first[1] = torch.tensor([0.0, 0.0, 1.0])
    second[0] = torch.tensor([0.0, 1.0, 0.0])
    joint = attention_rollout(torch.stack([first, second])[:, None])  # (L=2, H=1, 3, 3)
    assert_close(joint[0], torch.tensor([0.5, 0.25, 0.25]))

def test_attention_rows_of_a_real_model_sum_to_one(tiny_model):
    _, attention = tiny_model(torch.rand(2, 1, 28, 28), return_attention=True)
    assert_close(attention.sum(dim=-1), torch.ones(attention.shape[:-1]))


def test_cls_attention_map_puts_tile_k_at_row_k_div_g_col_k_mod_g():
    k = 6  # row 1, column 2: a transposed layout would light (2, 1)
    attention = torch.zeros(1, 1, TOKENS, TOKENS)
    attention[0, 0, 0, 1 + k] = 1.0
    lit = cls_attention_maps(attention, GRID)[0, 0].nonzero().tolist()
    assert lit == [[k // GRID, k % GRID]]


def test_occlusion_flags_only_the_tile_the_model_reads():
    seen = 6
    images = torch.rand(1, 1, 28, 28) + 0.1
    drops = occlusion(OneTileModel(seen), images, target=1)
    assert drops.shape == (GRID, GRID)
    # two classes with logits (0, 10 * brightness): the log-odds are 10 * brightness, and blanking makes them 0
    assert drops[seen // GRID, seen % GRID] == pytest.approx(10 * tiles(images, 7)[0, seen].mean().item(), rel=1e-5)
    drops[seen // GRID, seen % GRID] = 0
    assert drops.abs().max() == 0


def test_log_odds_match_the_probabilities_and_stay_finite_for_sure_answers():
    logits = torch.randn(5, 10, generator=torch.Generator().manual_seed(0))
    p = logits.softmax(dim=1)[:, 3]
    assert torch.allclose(log_odds(logits, 3), torch.log(p / (1 - p)), atol=1e-5)
    sure = torch.tensor([[0.0, 40.0, 0.0]])  # p(1) rounds to 1 in float32; its log-odds do not
    assert log_odds(sure, 1).item() == pytest.approx(40 - math.log(2), rel=1e-6)
    with pytest.raises(ValueError, match="not a class index"):
        log_odds(sure, -1)


def test_saliency_is_zero_outside_the_tile_the_model_reads():
    seen = 6
    heat = saliency(OneTileModel(seen), torch.rand(1, 1, 28, 28), target=1)
    inside = torch.zeros(28, 28, dtype=torch.bool)
    inside[7 * (seen // GRID):7 * (seen // GRID + 1), 7 * (seen % GRID):7 * (seen % GRID + 1)] = True
    assert heat[inside].min() > 0 and heat[~inside].abs().max() == 0 and heat.max() == 1


def test_identical_embeddings_have_similarity_one():
    vector = torch.randn(1, 8)
    assert_close(cosine_similarity_matrix(torch.cat([vector, 3 * vector])), torch.ones(2, 2))


def test_orthogonal_embeddings_have_similarity_zero():
    assert_close(cosine_similarity_matrix(torch.eye(3)), torch.eye(3))


def test_positional_similarity_of_a_learned_model_is_n_by_n_with_unit_diagonal(tiny_model):
    similarity = positional_similarity(tiny_model)
    assert similarity.shape == (GRID ** 2, GRID ** 2)
    assert_close(similarity.diagonal(), torch.ones(GRID ** 2))


def test_positional_similarity_without_position_embedding_has_no_nan():
    similarity = positional_similarity(ViT(tile_size=7, embed_size=16, num_layers=1, num_heads=2, mlp_size=32,
                                           pos_embedding="none"))
    assert torch.equal(similarity, torch.zeros(GRID ** 2, GRID ** 2))


def test_confusion_matrix_counts_true_rows_and_predicted_columns():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predictions = torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(confusion_matrix(labels, predictions, 3), expected)


def test_worst_losses_are_highest_first():
    assert worst_losses(torch.tensor([0.1, 2.0, 0.5, 3.0]), 3).tolist() == [3, 1, 2]


def test_explain_gives_the_documented_shapes_and_ranges(tiny_model):
    explanation = explain(tiny_model, torch.rand(28, 28))
    layers, heads = tiny_model.num_layers, tiny_model.num_heads
    assert explanation.probabilities.shape == (10,)
    assert_close(explanation.probabilities.sum(), torch.tensor(1.0))
    assert explanation.predicted == int(explanation.probabilities.argmax())
    assert explanation.attention.shape == (layers, heads, TOKENS, TOKENS)
    assert explanation.cls_attention.shape == (layers, heads, GRID, GRID)
    assert explanation.rollout.shape == (GRID, GRID)
    assert_close(explanation.rollout.sum(), torch.tensor(1.0))
    assert explanation.saliency.shape == (28, 28)
    assert 0 <= explanation.saliency.min() and explanation.saliency.max() == 1
    assert explanation.occlusion.shape == (GRID, GRID)


def test_explain_leaves_the_model_unchanged(tiny_model):
    images = torch.rand(1, 1, 28, 28)
    with torch.no_grad():
        before = tiny_model(images)
    explain(tiny_model, images[0])
    with torch.no_grad():
        assert torch.equal(tiny_model(images), before)
    assert all(parameter.grad is None for parameter in tiny_model.parameters())


def test_explain_accepts_uint8_like_the_float_image(tiny_model):
    image = torch.randint(0, 256, (28, 28), dtype=torch.uint8)
    assert_close(explain(tiny_model, image).probabilities,
                               explain(tiny_model, image.float() / 255).probabilities)


def test_median_attention_over_one_image_is_that_images_attention(tiny_model):
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    medians = median_attention_by_label(tiny_model, images, torch.tensor([4, 7, 7]), [4, 7, 9])
    assert sorted(medians) == [4, 7]  # 9 has no image: left out
    with torch.no_grad():
        _, attention = tiny_model(images[:1, None].float() / 255, return_attention=True)
    assert_close(medians[4], attention[0])
    assert medians[7].shape == attention[0].shape



def test_attention_distance_has_known_answers():
    from vit.analysis import attention_distance, tile_distances
    grid, tile_size, tiles = 4, 7, 16
    tokens = tiles + 1
    itself = torch.eye(tokens)  # every token attends only to itself: it gathers from 0 px away
    assert float(attention_distance(itself, grid, tile_size)) == 0
    neighbour = torch.zeros(tokens, tokens)  # every tile attends to the tile on its right (the last column: left)
    for tile in range(tiles):
        right = tile + 1 if tile % grid < grid - 1 else tile - 1
        neighbour[tile + 1, right + 1] = 0.5
        neighbour[tile + 1, 0] = 0.5  # and half to CLS, which is left out and renormalised away
    assert torch.isclose(attention_distance(neighbour, grid, tile_size), torch.tensor(7.0))
    uniform = torch.full((2, 3, tokens, tokens), 1 / tokens)  # leading layer and head axes are kept
    expected = tile_distances(grid, tile_size).mean()
    assert attention_distance(uniform, grid, tile_size).shape == (2, 3)
    assert torch.allclose(attention_distance(uniform, grid, tile_size), expected)
    assert torch.isclose(tile_distances(2, 10)[0, 3], torch.tensor(200.0).sqrt())  # diagonal neighbours


def test_mean_attention_distance_per_layer_and_head(tiny_model):
    from vit.analysis import mean_attention_distance
    images = torch.rand(5, 28, 28)
    distances = mean_attention_distance(tiny_model, images, batch_size=2)
    assert distances.shape == (tiny_model.num_layers, tiny_model.num_heads)
    assert ((distances > 0) & (distances < 28 * 2 ** 0.5)).all()
    one_by_one = torch.stack([mean_attention_distance(tiny_model, image[None]) for image in images]).mean(dim=0)
    assert torch.allclose(distances, one_by_one, atol=1e-5)


def test_filter_components_are_orthonormal_and_ordered(tiny_model):
    from vit.analysis import filter_components
    components, share = filter_components(tiny_model)
    flat = components.flatten(1)
    assert components.shape[1:] == (1, tiny_model.tile_size, tiny_model.tile_size)
    assert torch.allclose(flat @ flat.T, torch.eye(len(flat)), atol=1e-5)
    assert (share[:-1] >= share[1:]).all() and float(share.sum()) <= 1 + 1e-6
    weight = tiny_model.tile_embedding.weight.detach()
    centred = weight - weight.mean(dim=0)
    # the first component is the direction of largest variance: no other unit vector beats it
    best = float((centred @ flat[0]).pow(2).sum())
    for _ in range(20):
        other = torch.nn.functional.normalize(torch.randn(flat.shape[1]), dim=0)
        assert float((centred @ other).pow(2).sum()) <= best + 1e-6


@pytest.mark.parametrize("cut, grid", [("horizontal-strips", (14, 1)), ("vertical-strips", (1, 14))])
def test_every_explanation_of_a_strip_model_is_laid_out_on_its_strips(cut, grid):
    model = ViT(cut=cut, tile_size=2, embed_size=16, num_layers=2, num_heads=2, mlp_size=16).eval()
    image = torch.zeros(28, 28)
    image[6:20, 10:16] = 1.0
    result = explain(model, image)
    assert result.cls_attention.shape == (2, 2, *grid)
    assert result.rollout.shape == grid and result.occlusion.shape == grid and result.occlusion_blocks.shape == grid
    assert all(values.shape == grid for values in tile_maps(model, image, 3).values())
    # occlusion of strip 5 is the log-odds drop with exactly that strip's pixels blanked
    blanked = image.clone()
    if cut == "horizontal-strips":
        blanked[10:12] = 0
    else:
        blanked[:, 10:12] = 0
    with torch.no_grad():
        logits = model(torch.stack([image, blanked])[:, None])
    drop = log_odds(logits, result.predicted)
    assert_close(occlusion(model, image[None, None], result.predicted).flatten()[5], drop[0] - drop[1], atol=1e-4)


def test_attention_distance_between_strips_counts_only_across_them():
    # attention from every strip to strip 1 only: strip k's query is 2·(k − 1) pixels from it
    attention = torch.zeros(15, 15)
    attention[:, 1] = 1.0
    expected = torch.arange(14.0).mul(2).mean()
    assert_close(attention_distance(attention, (14, 1), (2, 28)), expected)
    assert_close(attention_distance(attention, (1, 14), (28, 2)), expected)
