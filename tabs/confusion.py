"""Confusion: every test image counted by true label and answer; click a cell to see those images.

The matrix is a matplotlib figure, drawn the first time the tab opens and cached per model and selected cell.
"""

import math

import gradio as gr
import numpy as np

from vit.bundle import ModelBundle
from vit.card import counted
from vit.registry import bundle, cached

from . import images
from .glossary import term
from .picture import Display, Picture
from .shared import ClassDropdown, Context, TabWiring, captioned


# --- Views --------------------------------------------------------------------------------------------------

@cached(maxsize=64)
def matrix_picture(model_name: str, selected: tuple[int, int] | None) -> tuple[np.ndarray, tuple]:
    """The confusion matrix picture and the pixel box of its cells (left, top, right, bottom), for clicks."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    model = bundle(model_name)
    words = dict(measure="held-out accuracy", counted="drawings") if model.evaluation.taught else {}
    figure = plots.confusion_figure(model.confusion, model.accuracy, model.class_names, selected, **words)
    image, boxes = plots.render(figure, boxes=True)
    return image, tuple(boxes[0])


def most_common_mistake(model: ModelBundle) -> tuple[int, int]:
    """(true, predicted) of the largest off-diagonal count: where the tab opens."""
    matrix = model.confusion
    off = matrix - np.diag(np.diag(matrix))
    true, predicted = np.unravel_index(off.argmax(), off.shape)
    return int(true), int(predicted)


def pair_view(model: ModelBundle, true: int, predicted: int) -> tuple[list, str]:
    """Gallery items and a sentence for the test images with this true label and this answer."""
    names, pictures = model.class_names, counted(model.evaluation)
    count = int(model.confusion[true, predicted])
    stored = model.confused(true, predicted)
    held_out = (" Each drawing was read by a head fitted without it: a taught model has no test set."
                if model.evaluation.taught else "")
    if true == predicted:  # the words under each picture are drawn in; the caption is its alt text
        items = [(captioned(image.pixels, f"true {names[true]}"), f"a {names[true]}, read right") for image in stored]
        return items, (f"**{count:,}** {pictures} of **{names[true]}** were read correctly; "
                       f"the {len(items)} stored examples are shown.{held_out}")
    items = [(captioned(image.pixels, f"loss {image.loss:.2f}"),
              f"a {names[true]} read as {names[predicted]}, loss {image.loss:.2f}") for image in stored]
    text = (f"**{count:,}** {pictures} of **{names[true]}** were read as **{names[predicted]}**"
            + (f"; {len(items)} of them are stored." if len(items) < count else ".")
            + (" Click one to explain it in the Predict tab." if items else "") + held_out)
    return items, text


def matrix_alt(model: ModelBundle, selected: tuple[int, int]) -> str:
    """The confusion matrix in words: how many were read right, the most common mistake and the chosen cell."""
    matrix, names = model.confusion, model.class_names
    total, right = int(matrix.sum()), int(np.trace(matrix))
    common, (true, predicted) = most_common_mistake(model), selected
    mistake = (f"The most common mistake: {names[common[0]]} read as {names[common[1]]}, {int(matrix[common]):,} "
               f"times." if right < total else "No mistake.")
    return (f"Confusion matrix of {total:,} {counted(model.evaluation)} by true label (rows) and answer (columns): "
            f"{right:,} read right ({right / total * 100:.2f} %). {mistake} Chosen cell: {names[true]} read as "
            f"{names[predicted]}, {int(matrix[true, predicted]):,} times.")


def cell_at(model: ModelBundle, x: float, y: float) -> tuple[int, int] | None:
    """The (true, predicted) cell under a click on the matrix picture, or None beside it."""
    _, (left, top, right, bottom) = matrix_picture(model.name, None)
    classes = len(model.class_names)
    # floor, not int(): a click just left of or above the matrix is column or row -1, not 0
    col, row = math.floor((x - left) / (right - left) * classes), math.floor((y - top) / (bottom - top) * classes)
    return (row, col) if 0 <= row < classes and 0 <= col < classes else None


# --- Handlers -----------------------------------------------------------------------------------------------

def pair_indices(model: ModelBundle, true: str, predicted: str) -> tuple[int, int]:
    """The pair the menus name; labels from before a model switch (see ClassDropdown) give its most common
    mistake, the pair a model opens at."""
    if true in model.class_names and predicted in model.class_names:
        return model.class_names.index(true), model.class_names.index(predicted)
    return most_common_mistake(model)


def show_pair(model_name: str, true: str, predicted: str):
    model = bundle(model_name)
    t, p = pair_indices(model, true, predicted)
    return (images.described(matrix_picture(model.name, (t, p))[0], matrix_alt(model, (t, p))), *pair_view(model, t, p))


def click_cell(model_name: str, event: gr.SelectData):
    model = bundle(model_name)
    cell = cell_at(model, *event.index)
    if cell is None:
        return gr.Dropdown(), gr.Dropdown()  # a click beside the matrix: keep the current pair
    return model.class_names[cell[0]], model.class_names[cell[1]]


def open_image(model_name: str, true: str, predicted: str, event: gr.SelectData):
    """A gallery image clicked: it becomes the Predict tab's picture, and that tab opens."""
    model = bundle(model_name)
    t, p = pair_indices(model, true, predicted)
    image = model.confused(t, p)[event.index]
    true, predicted = model.class_names[t], model.class_names[p]
    source = f"a {model.data.stored} {true}" if t == p else f"a {true} read as {predicted}"
    return Picture(image.input, source, dataset=model.dataset), gr.Tabs(selected="predict")


def refresh(model_name: str):
    """A new model: open at its most common mistake (pair_choices sets the two menus to it)."""
    model = bundle(model_name)
    true, predicted = most_common_mistake(model)
    return (images.described(matrix_picture(model.name, (true, predicted))[0], matrix_alt(model, (true, predicted))),
            *pair_view(model, true, predicted))


def pair_choices(model_name: str) -> tuple:
    """The two label menus for a model: its own class names, at its most common mistake."""
    model = bundle(model_name)
    true, predicted = most_common_mistake(model)
    names = model.class_names
    return gr.Dropdown(names, value=names[true]), gr.Dropdown(names, value=names[predicted])


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle, display: Display) -> TabWiring:
    names = first.class_names
    true, predicted = most_common_mistake(first)
    with gr.Tab("5 · Confusion", id="confusion") as tab:
        gr.Markdown(f"The {term('confusion matrix')}: every test image counted by its true label (row) and the "
                    "model's answer (column); the diagonal "
                    "is right. The colour scale is logarithmic so that rare mistakes stay visible. Click a cell, or "
                    "choose a pair, to see those images.")
        with gr.Row():
            with gr.Column(scale=3):
                picture = images.output_image("confusion matrix", "confusion", wide=True)
            with gr.Column(scale=2):
                with gr.Row():
                    true_choice = ClassDropdown(names, value=names[true], label="true label")
                    predicted_choice = ClassDropdown(names, value=names[predicted], label="predicted")
                text = gr.Markdown(elem_id="pair-text")
                gallery = images.Gallery(label="these test images", columns=4, height=420, allow_preview=False,
                                     object_fit="contain", elem_id="pair-gallery")
    private = dict(api_visibility="private")
    pair = [context.model_choice, true_choice, predicted_choice]
    shown = [picture, gallery, text]
    gr.on([tab.select, true_choice.input, predicted_choice.input], show_pair, pair, shown, trigger_mode="always_last",
          **private)
    picture.select(click_cell, context.model_choice, [true_choice, predicted_choice], **private) \
           .then(show_pair, pair, shown, **private)
    gallery.select(open_image, pair, [context.current, context.layout], **private) \
           .then(display.show, [context.current, context.model_choice], display.outputs, **private)
    return TabWiring("confusion", tab, refresh, [], [picture, gallery, text],
                     lazy=True, controls=pair_choices, control_outputs=[true_choice, predicted_choice])
