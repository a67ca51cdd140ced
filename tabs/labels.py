"""Attention by label: the median attention maps of every layer and head over the stored test images of a label."""

import gradio as gr
import numpy as np

from vit.analysis import median_attention_by_label
from vit.bundle import ModelBundle
from vit.registry import bundle, cached
from vit.tiling import piece_noun

from . import images
from .shared import ClassBoxes, Context, TabWiring, plural

VIEWS = {"full attention matrices": "matrix", "CLS → tiles, in the tile layout": "cls"}
START = ("3", "7", "8")  # the labels the notebook compared


# --- Views --------------------------------------------------------------------------------------------------

def label_view(model: ModelBundle, labels: tuple[int, ...], view: str, difference: bool) -> tuple[np.ndarray, str]:
    """The picture and its alt text."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    images, stored_labels = model.examples()
    maps = median_attention_by_label(model.model, images, stored_labels, list(labels))
    picture = plots.render(plots.attention_by_label_figure(maps, model.class_names, view, difference, model.model.grid))
    return picture, label_alt(model, maps, view, difference)


def label_alt(model: ModelBundle, maps: dict, view: str, difference: bool) -> str:
    """The picture in words: what it shows, and where CLS looks in the last block for each label."""
    if not maps:
        return "No label chosen: tick at least one."
    names, vit = model.class_names, model.model
    shown = ("CLS's attention to the tiles in the tile layout" if view == "cls" else
             f"full {vit.num_tiles + 1}×{vit.num_tiles + 1} attention matrices (row = query, CLS first)")
    piece = piece_noun(vit.cut)
    last = {label: values[-1, :, 0, 1:].mean(dim=0) for label, values in maps.items()}  # CLS row, heads averaged
    where = [f"{piece} {int(cls.argmax()) + 1} for {names[label]} ({float(cls.max()) * 100:.0f} %)"
             for label, cls in last.items()]
    return (f"Median attention of {plural(vit.num_layers, 'block')} × {plural(vit.num_heads, 'head')} for labels "
            f"{', '.join(names[label] for label in maps)}, as {shown}{', minus their average' if difference else ''}. "
            f"In the last block, averaged over the heads, CLS looks most at {', '.join(where)}.")


@cached(maxsize=64)
def label_picture(model_name: str, labels: tuple[int, ...], view: str, difference: bool) -> tuple[np.ndarray, str]:
    return label_view(bundle(model_name), labels, view, difference)


def start_labels(model: ModelBundle) -> list[str]:
    return [name for name in START if name in model.class_names] or model.class_names[:3]


# --- Handlers -----------------------------------------------------------------------------------------------

def show_labels(model_name: str, labels: list[str], view: str, difference: bool):
    model = bundle(model_name)
    if any(label not in model.class_names for label in labels):  # from before a model switch (ClassBoxes)
        labels = start_labels(model)
    chosen = tuple(sorted(model.class_names.index(label) for label in labels))
    return images.described(*label_picture(model.name, chosen, VIEWS[view], bool(difference)))


def label_choices(model_name: str) -> tuple:
    """The label boxes for a model: its own class names, its start labels ticked."""
    model = bundle(model_name)
    return (gr.CheckboxGroup(model.class_names, value=start_labels(model)),)


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    with gr.Tab("8 · Attention by label", id="labels") as tab:
        gr.Markdown("The median attention of every block and head over the test images of each label stored with "
                    "the model (20 correctly read ones per label); in a full matrix, row = the token that looks and "
                    "column = the token it looks at, CLS first. The notebook's author saw few differences between "
                    "labels: tick *difference* to subtract their average and keep only what is specific to each "
                    "label.")
        with gr.Row():
            labels = ClassBoxes(first.class_names, value=start_labels(first), label="labels", scale=3, min_width=200,
                                elem_id="label-attention-labels")
            # each wide enough for its words: on a phone the row wraps rather than squeezing the checkbox's label
            view = gr.Radio(list(VIEWS), value=list(VIEWS)[0], label="show", scale=2, min_width=200)
            difference = gr.Checkbox(False, label="difference from the average of these labels", scale=1,
                                     min_width=200)
        picture = images.output_image("median attention", "label-attention", wide=True)
    inputs = [labels, view, difference]
    # always_last: ticking labels quickly must end on the picture of the last choice, not of the first
    gr.on([tab.select, labels.input, view.input, difference.input], show_labels, [context.model_choice, *inputs],
          picture, trigger_mode="always_last", api_visibility="private")
    return TabWiring("labels", tab, show_labels, inputs, [picture], lazy=True, controls=label_choices,
                     control_outputs=[labels])
