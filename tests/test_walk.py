"""The "How it decides" walk: the forward pass written out by hand lands on the model's own numbers, and the
tab's views show them (called directly; the browser test steps through it in Chromium)."""

import numpy as np
import pytest
import torch

from vit.model import ViT
from vit.walk import walk
from tabs import picture as current
from picture_files import pixels


def several_heads() -> ViT:
    """A test config with several heads and layers, weights large enough that every step matters."""
    torch.manual_seed(0)
    model = ViT(tile_size=7, embed_size=24, num_heads=3, num_layers=3, mlp_size=40).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.3)
    return model


def shipped(models) -> list[ViT]:
    return [bundle.model for bundle in models.values()]


def test_the_walk_reproduces_the_logits_of_every_shipped_model_and_of_several_heads(models):
    for model in [*shipped(models), several_heads()]:
        images = [torch.rand(28, 28), torch.zeros(28, 28), models["mnist"].example(7).input]
        for image in images:
            image = torch.as_tensor(image)
            logits = model(image.reshape(1, 1, 28, 28).float())[0]
            steps = walk(model, image)
            assert torch.allclose(steps.logits, logits, atol=1e-5), (steps.logits - logits).abs().max()
            assert steps.logits.abs().max() > 0.1  # a real answer, not two zeros agreeing


def test_the_logit_lens_ends_on_the_logits_and_starts_the_same_for_every_picture(models):
    model = several_heads()
    first, second = walk(model, torch.rand(28, 28)), walk(model, torch.rand(28, 28))
    assert first.lens.shape == (model.num_layers + 1, 10)
    assert torch.equal(first.lens[-1], first.logits)
    assert torch.allclose(first.lens[0], second.lens[0])  # before block 1, CLS knows nothing of the picture
    assert not torch.allclose(first.lens[-1], second.lens[-1])


def test_softmax_rows_sum_to_one_and_q_k_v_are_slices_of_the_models_own_projection(models):
    for model in [*shipped(models), several_heads()]:
        steps = walk(model, torch.rand(28, 28))
        for block, module in zip(steps.blocks, model.blocks):
            assert torch.allclose(block.attention.sum(dim=-1), torch.ones(block.attention.shape[:-1]), atol=1e-6)
            qkv = module.attention.qkv(module.norm1(block.input))  # (T, 3D): the model's own modules
            width, heads = block.input.shape[1], model.num_heads
            for part, shown in enumerate((block.q, block.k, block.v)):
                mine = qkv[:, part * width:(part + 1) * width].reshape(-1, heads, width // heads).transpose(0, 1)
                assert torch.allclose(shown, mine, atol=1e-6)
            _, attention = module(block.input[None], return_attention=True)
            assert torch.allclose(block.attention, attention[0], atol=1e-6)  # the probabilities the model uses


def test_the_temperature_divides_the_logits():
    model = several_heads()
    steps = walk(model, torch.rand(28, 28), temperature=2.0)
    assert torch.allclose(steps.probabilities, (steps.logits / 2).softmax(dim=0))


@pytest.mark.parametrize("name", ["mnist", "mnist-tiny"])
def test_the_tab_shows_every_step_for_a_chosen_tile(models, name):
    from tabs import walk as tab
    model = models[name]
    grid = model.model.image_size // model.model.tile_size
    out = tab.show_walk(name, current.start_picture(model), 1, 0, 5, None)
    layer, query, key = out.layer.value, out.query.value, out.key.value
    assert "a test 7" in out.heading and query == 5 and layer == min(1, model.model.num_layers - 1)
    assert pixels(out.tiles["value"]).shape[:2] == (28 * tab.FACTOR, 28 * tab.FACTOR) and "**Tile 5**" in out.tiles_text
    assert "tile 5 is boxed" in out.tiles["alt_text"]  # each picture says what it shows (images.described)
    described = [value for value in tab.values(out) if isinstance(value, dict)]
    shown = [pixels(p["value"]) for p in described]
    assert len(described) == 11 and all(picture.ndim == 3 and picture.dtype == np.uint8 for picture in shown)
    assert all(p["alt_text"] for p in described)
    steps = walk(model.model, torch.from_numpy(current.start_picture(model).input), model.temperature)
    score = float(steps.blocks[layer].scores[0, 5, key])
    assert f"score **{score:.3f}**" in out.dot_text  # the q·k the tab writes out is the model's
    assert key == int(steps.blocks[layer].attention[0, 5].argmax())  # the key it attends to most
    assert "The answer: 7" in out.answer_text and f"{float(steps.probabilities[7]) * 100:.1f} %" in out.answer_text
    assert grid * grid + 1 == out.query.maximum + 1


def test_clicking_a_tile_chooses_it_and_choices_are_kept_within_the_model(models):
    import gradio as gr
    from tabs import walk as tab
    side = models["mnist"].model.tile_size * tab.FACTOR
    event = gr.SelectData(None, {"index": [2 * side + 1, 3 * side + 1], "value": None})
    assert tab.clicked_tile("mnist", event) == 3 * 7 + 2 + 1  # row 3, column 2 (from 0): tile 24
    out = tab.click_query("mnist", None, 0, 0, event)
    assert out.query.value == 24 and "**Tile 24**" in out.tiles_text
    out = tab.show_walk("mnist-tiny", None, 5, 3, 40, 40)  # choices made on the big model
    steps = walk(models["mnist-tiny"].model, torch.from_numpy(models["mnist-tiny"].example(7).input))
    assert (out.layer.value, out.head.value) == (1, 0)  # the last block and head there are
    query = out.query.value
    assert query == tab.inkiest_tile(steps) and out.key.value == int(steps.blocks[1].attention[0, query].argmax())
    # the first draw (no block chosen yet) starts from the inkiest tile whatever the token boxes hold; later, CLS is
    # a choice like any token
    assert tab.show_walk("mnist-tiny", None, None, None, 0, 0).query.value == tab.inkiest_tile(steps)
    assert tab.show_walk("mnist-tiny", None, 0, 0, 0, 0).query.value == 0


def test_the_tab_sends_each_view_to_a_component_of_its_kind(models):
    import gradio as gr
    from tabs import shared, walk as tab
    with gr.Blocks() as demo:
        context = shared.Context(demo, gr.Dropdown(list(models), value="mnist"), gr.State(), None)
        wiring = tab.build(context, models["mnist"])
    kinds = {dict: gr.Image, str: gr.Markdown, gr.Radio: gr.Radio, gr.Number: gr.Number}  # dict: images.described
    sent = wiring.refresh("mnist", None)
    assert len(sent) == len(wiring.outputs) == 24
    for value, component in zip(sent, wiring.outputs):
        assert isinstance(component, kinds[type(value)]), (type(value), component.elem_id)
    shown = dict(zip((component.elem_id for component in wiring.outputs), sent))
    assert "**Tile" in shown["walk-tiles-text"] and "The answer:" in shown["walk-head-text"]
