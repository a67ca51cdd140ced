"""Tiling by hand == einops == what the model embeds; the inverse; bad sizes."""

import pytest
import torch

from vit import ViT, tiling


@pytest.fixture
def images():
    return torch.rand(3, 2, 28, 28)


@pytest.mark.parametrize("count", [1, 2, 4, 7, 14, 28])
def test_strips_by_hand_match_einops_and_invert(images, count):
    horizontal, vertical = tiling.horizontal_strips(images, count), tiling.vertical_strips(images, count)
    assert horizontal.shape == (3, count, 2, 28 // count, 28)
    assert vertical.shape == (3, count, 2, 28, 28 // count)
    assert torch.equal(horizontal, tiling.horizontal_strips_einops(images, count))
    assert torch.equal(vertical, tiling.vertical_strips_einops(images, count))
    assert torch.equal(tiling.unstrip_horizontal(horizontal), images)
    assert torch.equal(tiling.unstrip_vertical(vertical), images)


@pytest.mark.parametrize("tile_size", [1, 2, 4, 7, 14, 28])
def test_tiles_by_hand_match_einops_and_invert(images, tile_size):
    pieces = tiling.tiles(images, tile_size)
    assert pieces.shape == (3, (28 // tile_size) ** 2, 2, tile_size, tile_size)
    assert torch.equal(pieces, tiling.tiles_einops(images, tile_size))
    assert torch.equal(tiling.untile(pieces, 28, 28), images)


def test_tiles_come_in_reading_order():
    image = torch.arange(16.0).view(1, 1, 4, 4)
    pieces = tiling.tiles(image, 2)
    assert pieces[0, 1].flatten().tolist() == [2, 3, 6, 7]  # second tile: top row, right half
    assert pieces[0, 2].flatten().tolist() == [8, 9, 12, 13]  # third tile: bottom row, left half


@pytest.mark.parametrize("tile_size", [4, 7])
def test_model_embeds_exactly_the_tiles(tile_size):
    model = ViT(tile_size=tile_size, embed_size=8, num_layers=1, num_heads=1, mlp_size=8, pixel_mean=0.0, pixel_std=1.0)
    images = torch.rand(2, 1, 28, 28)
    seen = {}
    model.tile_embedding.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0]))
    model(images)
    assert torch.equal(seen["x"], tiling.tiles_einops(images, tile_size).flatten(2))


@pytest.mark.parametrize("cut", [tiling.horizontal_strips, tiling.vertical_strips, tiling.tiles,
                                 tiling.horizontal_strips_einops, tiling.tiles_einops])
def test_size_that_does_not_divide_raises_and_names_the_good_ones(images, cut):
    with pytest.raises(ValueError, match=r"\[1, 2, 4, 7, 14, 28\]"):
        cut(images, 5)


def test_model_rejects_a_tile_size_that_does_not_divide():
    with pytest.raises(ValueError, match="does not divide"):
        ViT(tile_size=6)
