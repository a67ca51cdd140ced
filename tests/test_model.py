"""The model: shapes, attention, fused == manual path, save -> load, strict loading."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from vit import ViT


@pytest.mark.parametrize("config, tokens", [
    (dict(tile_size=7, embed_size=16, num_layers=2, num_heads=1, mlp_size=32), 17),
    (dict(tile_size=4, embed_size=24, num_layers=3, num_heads=3, mlp_size=48, pos_embedding="sinusoidal"), 50),
    (dict(tile_size=14, embed_size=8, num_layers=1, num_heads=2, mlp_size=8, pos_embedding="none"), 5),
    (dict(image_size=32, channels=3, num_classes=5, tile_size=8, embed_size=16, num_layers=2, num_heads=4, mlp_size=16), 17),
])
def test_shapes(config, tokens):
    model = ViT(**config).eval()
    images = torch.rand(3, config.get("channels", 1), config.get("image_size", 28), config.get("image_size", 28))
    logits, attention = model(images, return_attention=True)
    assert logits.shape == (3, config.get("num_classes", 10))
    assert attention.shape == (3, config["num_layers"], config["num_heads"], tokens, tokens)


def test_attention_rows_sum_to_one(tiny_model):
    _, attention = tiny_model(torch.rand(4, 1, 28, 28), return_attention=True)
    assert torch.allclose(attention.sum(-1), torch.ones(attention.shape[:-1]), atol=1e-5)
    assert (attention >= 0).all()


def test_asking_for_attention_leaves_logits_unchanged(tiny_model):
    """The fused attention path and the manual one that returns probabilities agree."""
    images = torch.rand(4, 1, 28, 28)
    logits_fused = tiny_model(images)
    logits_manual, _ = tiny_model(images, return_attention=True)
    assert torch.allclose(logits_fused, logits_manual, atol=1e-5)


def module_state(model) -> dict:
    """Every attribute of every submodule, tensors by identity and shape (parameters and buffers included)."""
    def describe(value):
        if isinstance(value, torch.Tensor):
            return ("tensor", id(value), tuple(value.shape))
        if isinstance(value, dict):
            return {key: describe(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [describe(item) for item in value]
        return repr(type(value))
    return {name: describe({k: v for k, v in vars(module).items() if not k.startswith("_modules")})
            for name, module in model.named_modules()}


def test_no_state_kept_between_calls(tiny_model):
    """Asking for attention leaves no attribute behind on the model or any of its blocks (nothing stashed)."""
    before = module_state(tiny_model)
    tiny_model(torch.rand(1, 1, 28, 28), return_attention=True)
    tiny_model(torch.rand(2, 1, 28, 28))
    assert module_state(tiny_model) == before


def test_wrong_input_shape_is_a_clear_error(tiny_model):
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 28, 28\)"):
        tiny_model(torch.rand(2, 28, 28))


def test_save_then_load_gives_identical_outputs(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    loaded = ViT.from_pretrained(tmp_path)
    images = torch.rand(5, 1, 28, 28)
    assert torch.equal(loaded(images), tiny_model(images))
    assert json.loads((tmp_path / "config.json").read_text())["num_heads"] == 2


def test_strict_load_fails_on_a_missing_tensor(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["head.bias"]
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="head.bias"):
        ViT.from_pretrained(tmp_path)


def test_strict_load_fails_on_an_unexpected_tensor(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors") | {"extra.weight": torch.zeros(2)}
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="extra.weight"):
        ViT.from_pretrained(tmp_path)


def test_config_that_does_not_match_the_tensors(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text()) | {"embed_size": 32}
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="model.safetensors"):
        ViT.from_pretrained(tmp_path)


def test_corrupt_weights_file_is_a_clear_error(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 40)
    with pytest.raises(ValueError, match="model.safetensors"):
        ViT.from_pretrained(tmp_path)


def test_wrong_dtype_is_a_clear_error(tiny_model, tmp_path):
    tiny_model.save_pretrained(tmp_path)
    tensors = {k: v.half() for k, v in load_file(tmp_path / "model.safetensors").items()}
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(ValueError, match="is torch.float16, expected torch.float32"):
        ViT.from_pretrained(tmp_path)


def test_sinusoidal_positions_are_not_saved(tmp_path):
    model = ViT(tile_size=7, embed_size=8, num_layers=1, num_heads=1, mlp_size=8, pos_embedding="sinusoidal")
    assert "pos_embedding" not in model.state_dict()
    model.save_pretrained(tmp_path)
    assert ViT.from_pretrained(tmp_path).pos_embedding_kind == "sinusoidal"


def test_the_mlps_named_layers_are_the_ones_its_forward_uses_and_keep_their_saved_names(tiny_model):
    mlp, x = tiny_model.blocks[0].mlp, torch.randn(3, 16)
    assert torch.equal(mlp(x), mlp.down(mlp.activation(mlp.up(x))))
    names = {id(parameter): name for name, parameter in tiny_model.named_parameters()}
    assert [names[id(mlp.up.weight)], names[id(mlp.down.weight)]] == ["blocks.0.mlp.0.weight", "blocks.0.mlp.3.weight"]


def test_the_parameter_count_counts_learned_positions_but_not_fixed_ones():
    config = dict(tile_size=7, embed_size=16, num_layers=2, num_heads=2, mlp_size=32)
    learned, fixed = ViT(**config), ViT(**config, pos_embedding="sinusoidal")
    assert learned.parameter_count - fixed.parameter_count == 17 * 16  # 16 tiles + CLS, 16 numbers each


# --- Experiments: heads and blocks switched off, positions left out -------------------------------------------

WIDE = dict(tile_size=7, embed_size=24, num_layers=3, num_heads=3, mlp_size=32)


def randomised(**config) -> ViT:
    """A model whose biases are not zero, so that a test cannot pass on an all-zero slice by accident."""
    torch.manual_seed(0)
    model = ViT(**config).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


@pytest.mark.parametrize("return_attention", [False, True], ids=["fused", "manual"])
@pytest.mark.parametrize("block, head", [(0, 0), (1, 2), (2, 1)])
def test_a_head_off_is_that_heads_slice_zeroed_before_the_projection(block, head, return_attention):
    model, images = randomised(**WIDE), torch.rand(4, 1, 28, 28)
    edited = randomised(**WIDE)
    width = WIDE["embed_size"] // WIDE["num_heads"]
    with torch.no_grad():  # the projection's input columns that carry this head's output
        edited.blocks[block].attention.proj.weight[:, head * width:(head + 1) * width] = 0
    switched = model(images, return_attention, heads_off=frozenset({(block, head)}))
    expected = edited(images, return_attention)
    if return_attention:
        torch.testing.assert_close(switched[1], expected[1])  # the maps are the ones the block computes
        switched, expected = switched[0], expected[0]
    torch.testing.assert_close(switched, expected, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(switched, model(images), atol=1e-3)  # and the head mattered


def test_a_block_off_is_a_block_that_adds_nothing():
    model, images = randomised(**WIDE), torch.rand(4, 1, 28, 28)
    edited = randomised(**WIDE)
    with torch.no_grad():  # both residual branches of block 1 return zero
        for layer in (edited.blocks[1].attention.proj, edited.blocks[1].mlp.down):
            layer.weight.zero_(), layer.bias.zero_()
    logits, attention = model(images, return_attention=True, layers_off=frozenset({1}))
    torch.testing.assert_close(logits, edited(images), atol=1e-5, rtol=1e-5)
    assert not attention[:, 1].any() and attention[:, 0].sum(-1).allclose(torch.ones(4, 3, 17))


def shuffled_tiles(images: torch.Tensor, order: torch.Tensor, tile_size: int) -> torch.Tensor:
    from vit.tiling import tiles, untile
    return untile(tiles(images, tile_size)[:, order], images.shape[2], images.shape[3])


@pytest.mark.parametrize("positions", ["none", "learned", "sinusoidal"])
def test_only_a_model_without_positions_reads_shuffled_tiles_as_the_same_picture(positions):
    model, images = randomised(**WIDE, pos_embedding=positions), torch.rand(4, 1, 28, 28)
    order = torch.randperm(16, generator=torch.Generator().manual_seed(1))
    same = torch.allclose(model(shuffled_tiles(images, order, 7)), model(images), atol=1e-5)
    assert same is (positions == "none")
