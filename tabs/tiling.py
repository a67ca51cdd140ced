"""Tiling: a digit cut into horizontal strips, vertical strips or square tiles, and the code that cuts it.

The cut is made by vit.tiling, the same functions the model embeds through, by hand and with einops, and
the tab checks that both give the same tensor.
"""

import gradio as gr
import numpy as np
import torch

from vit import tiling
from vit.bundle import ModelBundle
from vit.registry import bundle, cached

from . import images
from .picture import Picture, default_label
from .glossary import term
from .shared import ClassRadio, Context, TabWiring, plural

YOURS = "the Predict tab's picture"
CUTS = {"tiles": "tiles", "horizontal strips": "horizontal", "vertical strips": "vertical"}
OPENING_CUT = "tiles"  # the cut the tab opens on, in the model's own tile size
# Every cut is sized by its pieces' side in pixels, as the models (and the zoo's names) size them: a tile's side, a
# strip's height (horizontal) or width (vertical). vertical-strips-2 is strips 2 pixels wide: 14 of them.
MODEL_CUTS = {"tiles": "tiles", "horizontal": "horizontal-strips", "vertical": "vertical-strips"}
CUT_FUNCTIONS = {"tiles": (tiling.tiles, tiling.tiles_einops),
                 "horizontal": (tiling.horizontal_strips, tiling.horizontal_strips_einops),
                 "vertical": (tiling.vertical_strips, tiling.vertical_strips_einops)}
CUT_CODE = {
    "tiles": ("b, c, h, w = images.shape\n"
              "tiles = images.view(b, c, h // {n}, {n}, w // {n}, {n})"
              ".permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c, {n}, {n})",
              "tiles = einops.rearrange(images, 'b c (h t1) (w t2) -> b (h w) c t1 t2', t1={n}, t2={n})"),
    "horizontal": ("b, c, h, w = images.shape\n"
                   "horizontal = images.view(b, c, {n}, h // {n}, w).permute(0, 2, 1, 3, 4)",
                   "horizontal = einops.rearrange(images, 'b c (k h) w -> b k c h w', k={n})"),
    "vertical": ("b, c, h, w = images.shape\n"
                 "vertical = images.view(b, c, h, {n}, w // {n}).permute(0, 3, 1, 2, 4)",
                 "vertical = einops.rearrange(images, 'b c h (k w) -> b k c h w', k={n})"),
}


# --- Views --------------------------------------------------------------------------------------------------

def digit(model: ModelBundle, source: str, current: Picture | None) -> tuple[np.ndarray, str, str]:
    """The (28, 28) image to cut, what it is, and a note when the Predict tab's picture was asked for but absent."""
    if source == YOURS and current is not None:
        return current.input, f"the Predict tab's picture ({current.source}, as the model sees it)", ""
    names = model.class_names
    label = names.index(source) if source in names else default_label(model)
    note = " (the Predict tab has no picture yet)" if source == YOURS else ""
    return model.example(label).input, f"a {model.data.stored} {names[label]}", note


def cut(image: np.ndarray, kind: str, size: int) -> tuple[torch.Tensor, bool]:
    """The pieces (1, N, 1, h, w) of `size` pixels by hand, and whether einops gives the same tensor."""
    images = torch.from_numpy(image)[None, None]  # (1, 1, 28, 28)
    by_hand, with_einops = CUT_FUNCTIONS[kind]
    argument = function_argument(kind, size, image.shape[0])
    pieces = by_hand(images, argument)
    return pieces, torch.equal(pieces, with_einops(images, argument))


def function_argument(kind: str, size: int, image_size: int) -> int:
    """What vit.tiling's functions take: a tile's side, or how many strips (the image's side ÷ a strip's)."""
    return size if kind == "tiles" else image_size // size


def tiling_view(model: ModelBundle, source: str, cut_name: str, size: int, current: Picture | None):
    """The tiling picture, the sentence under it and the code that makes the cut."""
    kind = CUTS[cut_name]
    image, what, note = digit(model, source, current)
    pieces, agree = cut(image, kind, size)
    if source == YOURS and current is not None:
        picture = tiling_picture(image, pieces, kind)
    else:
        picture = example_figure(model.name, source, kind, size)
    count, vit = pieces.shape[1], model.model
    picture = images.described(picture, tiling_alt(what, kind, pieces))
    own_name, own_size = own_cut(model)
    if (kind, size) == (CUTS[own_name], own_size):
        model_line = (f"These {plural(count, 'piece')} are exactly the words **{model.name}** embeds: the model cuts "
                      f"the same pieces with `vit.tiling` (through `patchify`).")
    else:
        model_line = (f"**{model.name}** itself cuts {tiling.cut_words(vit.cut, vit.tile_size)} ({vit.num_tiles} "
                      f"words); choose {own_name} of {own_size} to see exactly its words.")
    text = (f"**{plural(count, 'word')} + 1 CLS token = {count + 1} tokens**: {tiling.cut_words(MODEL_CUTS[kind], size)}, "
            f"cut from {what}{note}. {model_line}  \n"
            f"By hand and with einops: {'the same tensor, element for element ✓' if agree else 'they differ ✗'} "
            f"— shape `{tuple(pieces.shape)}` = (batch, words, channels, height, width).")
    by_hand_code, einops_code = CUT_CODE[kind]
    n = function_argument(kind, size, image.shape[0])
    # a Markdown code block, not gr.Code: its highlighting colours can be set to legible ones (app.CSS)
    code = (f"**The same cut in code**\n```python\n# images: (1, 1, 28, 28)\n# by hand\n"
            f"{by_hand_code.format(n=n)}\n\n# with einops\n{einops_code.format(n=n)}\n"
            f"# -> {tuple(pieces.shape)}: {count} words (+ CLS = {count + 1} tokens)\n```")
    return picture, text, code


def tiling_alt(what: str, kind: str, pieces: torch.Tensor) -> str:
    """The tiling picture in words: what was cut, into how many pieces of what size, and how they are shown."""
    count, (height, width) = pieces.shape[1], pieces.shape[-2:]
    piece = {"tiles": "tile", "horizontal": "horizontal strip", "vertical": "vertical strip"}[kind]
    return images.sentence(f"{what} cut into {plural(count, piece)} of {height}×{width} pixels; beside it "
                           f"the {count} words in reading order after a CLS token, and each flattened into a "
                           f"column of {height * width} numbers.")


@cached(maxsize=128)
def example_figure(model_name: str, source: str, kind: str, size: int) -> np.ndarray:
    """The tiling picture of a stored example, drawn once and shared."""
    image, _, _ = digit(bundle(model_name), source, None)
    pieces, _ = cut(image, kind, size)
    return tiling_picture(image, pieces, kind)


def opening_source(model: ModelBundle) -> str:
    """The example the tab shows a model with before anyone picks one: its default class's."""
    return model.class_names[default_label(model)]


def warm(model: ModelBundle) -> None:
    """Draw the view a page opens on (this tab, the model's default example, its own tiles) before anyone asks.
    Its first drawing also loads matplotlib: about a second the first visitor after a start would otherwise wait,
    with the answer landing while they draw."""
    example_figure(model.name, opening_source(model), CUTS[OPENING_CUT], model.model.tile_size)


def tiling_picture(image: np.ndarray, pieces: torch.Tensor, kind: str) -> np.ndarray:
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    return plots.render(plots.tiling_figure(image, pieces[0], kind))


# --- Handlers -----------------------------------------------------------------------------------------------

def show_tiling(model_name: str, source: str, cut_name: str, tile_size: str, strips: str, current: Picture | None,
                sized_for: str | None = None):
    """(tile size, the model it is set for, picture, text, code). Tiles use the tile-size control, strips the
    strip-size control: each keeps its own number of pixels. A tile size set for another model (the menu changed
    since) becomes this model's own: the choice and the model are read in the same call, so a redraw that
    was waiting while the model changed cannot bring back the old model's tiles."""
    model = bundle(model_name)
    if sized_for not in (None, model.name):
        tile_size = str(model.model.tile_size)
    size = tile_size if CUTS[cut_name] == "tiles" else strips
    return (gr.Radio(value=tile_size), model.name, *tiling_view(model, source, cut_name, int(size), current))


def own_cut(model: ModelBundle) -> tuple[str, int]:
    """The model's own cut as this tab's controls name it: a cut and its pieces' size in pixels."""
    vit = model.model
    return vit.cut.replace("-", " "), vit.tile_size


def size_controls(cut_name: str):
    """Show the control that sizes this cut: a tile's side, or a strip's height or width."""
    tiles = CUTS[cut_name] == "tiles"
    return gr.Radio(visible=tiles), gr.Radio(visible=not tiles)


def refresh(model_name: str, source: str, current: Picture | None):
    """A new model: back to its own cut."""
    model = bundle(model_name)
    name, size = own_cut(model)
    tiles = name == "tiles"
    return (name, gr.Radio(value=str(model.model.tile_size), visible=tiles),
            gr.Radio(value=str(size), visible=not tiles) if not tiles else gr.Radio(visible=False), model.name,
            *tiling_view(model, source, name, size, current))


def source_choices(model_name: str) -> tuple:
    """What the tab can cut for a model: one test example of each of its classes, or the Predict tab's picture."""
    model = bundle(model_name)
    names = model.class_names
    return (gr.Radio(names + [YOURS], value=opening_source(model)),)


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    names = first.class_names
    with gr.Tab("1 · Tiling", id="tiling") as tab:
        gr.Markdown("A transformer reads a sequence of words. A Vision Transformer makes its words by cutting the "
                    f"image into pieces and reading them left to right, top to bottom, after a learned "
                    f"**{term('CLS token', 'CLS')}** token from which the answer is read. Try the cuts: "
                    f"{term('strip', 'strips')} keep only one direction, small tiles "
                    "make long sequences, big tiles make a few rich words.")
        with gr.Row():
            source = ClassRadio(names + [YOURS], value=opening_source(first), scale=3, elem_id="tiling-source",
                              label="picture to cut: a test example, or the one in the Predict tab")
            cut_choice = gr.Radio(list(CUTS), value=OPENING_CUT, label="cut into", scale=2, elem_id="tiling-cut")
            sizes = [str(d) for d in tiling.divisors(first.model.image_size)]
            size = gr.Radio(sizes, value=str(first.model.tile_size), label="tile size (pixels)", scale=2,
                            elem_id="tiling-size")
            strips = gr.Radio(sizes, value="4", label="strip height or width (pixels)", scale=2, visible=False,
                              elem_id="tiling-strips")
        picture = images.output_image("the cut", "tiling-picture", wide=True)
        text = gr.Markdown(elem_id="tiling-text")
        code = gr.Markdown(elem_id="tiling-code")
        sized_for = gr.State(first.name)  # the model the tile size was last set for
    private = dict(api_visibility="private")
    cut_choice.input(size_controls, cut_choice, [size, strips], **private)
    # One listener for the controls, the tab (whose digit may have changed on the Predict tab) and the page load
    # (this tab opens first): always_last runs it once more with the final choices, so two quick clicks cannot
    # leave picture, text and code from different calls.
    gr.on([source.input, cut_choice.input, size.input, strips.input, tab.select, context.demo.load], show_tiling,
          [context.model_choice, source, cut_choice, size, strips, context.current, sized_for],
          [size, sized_for, picture, text, code], trigger_mode="always_last", **private)
    return TabWiring("tiling", tab, refresh, [source, context.current],
                     [cut_choice, size, strips, sized_for, picture, text, code], lazy=True,
                     controls=source_choices, control_outputs=[source])
