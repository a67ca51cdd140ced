"""Tiling by hand == einops == what the model embeds; the inverse; bad sizes."""

import json

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


@pytest.mark.parametrize("width", [1, 2, 4, 7, 14, 28])
def test_the_models_strips_by_hand_match_einops_the_strip_cuts_and_invert(images, width):
    for cut, shape, strips in (("horizontal-strips", (width, 28), tiling.horizontal_strips),
                               ("vertical-strips", (28, width), tiling.vertical_strips)):
        assert tiling.piece_shape(cut, width, 28) == shape
        pieces = tiling.cut_pieces(images, cut, width)
        assert pieces.shape == (3, 28 // width, 2, *shape)
        assert torch.equal(pieces, tiling.pieces_einops(images, *shape))
        assert torch.equal(pieces, strips(images, 28 // width))  # a strip `width` wide is one of 28 / width strips
        assert torch.equal(tiling.unpieces(pieces, 28, 28), images)


@pytest.mark.parametrize("cut, size, grid", [("tiles", 4, (7, 7)), ("horizontal-strips", 2, (14, 1)),
                                             ("vertical-strips", 4, (1, 7))])
def test_the_model_embeds_exactly_its_pieces_and_round_trips_its_cut(cut, size, grid, tmp_path):
    model = ViT(tile_size=size, cut=cut, embed_size=8, num_layers=1, num_heads=1, mlp_size=8, pixel_mean=0.0,
                pixel_std=1.0).eval()
    assert model.grid == grid and model.num_tiles == grid[0] * grid[1]
    images = torch.rand(2, 1, 28, 28)
    seen = {}
    model.tile_embedding.register_forward_hook(lambda module, inputs, output: seen.update(x=inputs[0]))
    model(images)
    assert torch.equal(seen["x"], tiling.pieces_einops(images, *tiling.piece_shape(cut, size, 28)).flatten(2))
    model.save_pretrained(tmp_path)
    loaded = ViT.from_pretrained(tmp_path)
    assert loaded.cut == cut and loaded.config == model.config
    assert torch.equal(loaded(images), model(images))


def test_a_config_written_before_strips_reads_as_tiles(tmp_path):
    model = ViT(tile_size=7, embed_size=8, num_layers=1, num_heads=1, mlp_size=8)
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["cut"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert ViT.from_pretrained(tmp_path).cut == "tiles"


@pytest.mark.parametrize("cut, size, message", [("horizontal-strips", 5, "strip width 5 does not divide"),
                                                ("vertical-strips", 0, "strip width 0 does not divide"),
                                                ("diagonal", 4, "cut must be one of")])
def test_a_bad_cut_or_strip_width_raises(cut, size, message):
    with pytest.raises(ValueError, match=message):
        ViT(cut=cut, tile_size=size)
