"""Worst losses: the test images the model was most wrong about, highest loss first."""

import gradio as gr

from vit.bundle import ModelBundle
from vit.card import counted
from vit.registry import bundle

from . import images
from .glossary import term
from .picture import Display, Picture
from .shared import Context, TabWiring, captioned

START = 32  # images shown when the tab opens


# --- Views --------------------------------------------------------------------------------------------------

def worst_items(model: ModelBundle, count: int) -> list[tuple]:
    """The `count` worst mistakes, captioned under each picture: read as, true label and loss, a line each; the
    gallery's caption (shown only as the picture's alt text) says the same in a sentence."""
    names = model.class_names
    return [(captioned(image.pixels, f"read {names[image.prediction]}\ntrue {names[image.label]}\nloss {image.loss:.1f}"),
             f"a {names[image.label]} read as {names[image.prediction]}, loss {image.loss:.1f}")
            for image in model.worst(min(count, model.mistakes))]


def none_words(model: ModelBundle) -> str:
    """The sentence in place of the gallery when the model misread nothing ("" when it did): a taught model may read
    every one of its few held-out drawings right."""
    if model.mistakes:
        return ""
    held_out = ", each read by a head fitted without it" if model.evaluation.taught else ""
    return (f"**{model.name}** misread none of its {model.evaluation.n:,} {counted(model.evaluation)}{held_out}: "
            f"there is no mistake to show.")


def most(model: ModelBundle) -> int:
    """How many the slider offers: the stored mistakes, so nothing read right appears among the "most wrong" (at
    least 2: gradio's slider needs a range; worst_items never shows more than the mistakes)."""
    return max(2, model.mistakes)


# --- Handlers -----------------------------------------------------------------------------------------------

def show_worst(model_name: str, count: int):
    return worst_items(bundle(model_name), int(count))


def open_image(model_name: str, event: gr.SelectData):
    """A gallery image clicked: it becomes the Predict tab's picture, and that tab opens."""
    model = bundle(model_name)
    image = model.worst(event.index + 1)[event.index]
    source = f"worst-loss image #{event.index + 1} (true label {model.class_names[image.label]})"
    return Picture(image.input, source, dataset=model.dataset), gr.Tabs(selected="predict")


def refresh(model_name: str, count: int):
    """The slider up to this model's mistakes, the gallery (both hidden without any), and the sentence when it has
    none."""
    model = bundle(model_name)
    total = most(model)
    shown = bool(model.mistakes)
    return (gr.Slider(maximum=total, value=min(int(count), total), visible=shown),
            gr.Gallery(worst_items(model, int(count)), visible=shown), none_words(model))


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle, display: Display) -> TabWiring:
    total = most(first)
    with gr.Tab("6 · Worst losses", id="worst") as tab:
        gr.Markdown(f"The test images the model was most wrong about (highest {term('loss')} first). Some are the "
                    "model's "
                    "fault; some are odd or mislabelled digits a person would hesitate over too. Click one to "
                    "explain it in the Predict tab.")
        count = gr.Slider(1, total, value=min(START, total), step=1, label="how many of the test set's mistakes",
                          elem_id="worst-count")
        none = gr.Markdown(none_words(first), elem_id="worst-none")
        gallery = images.Gallery(label="read as · true label · loss", show_label=False, columns=8, height="auto",
                             allow_preview=False,
                             object_fit="contain", elem_id="worst")
    private = dict(api_visibility="private")
    # opening: the slider too, as a model chosen while the tab was closed has its own number of mistakes
    tab.select(refresh, [context.model_choice, count], [count, gallery, none], trigger_mode="always_last", **private)
    # release: the slider let go; input: also a number typed in its box (Enter or leaving the box)
    gr.on([count.release, count.input], show_worst, [context.model_choice, count], gallery,
          trigger_mode="always_last", **private)
    gallery.select(open_image, context.model_choice, [context.current, context.layout], **private) \
           .then(display.show, [context.current, context.model_choice], display.outputs, **private)
    return TabWiring("worst", tab, refresh, [count], [count, gallery, none], lazy=True)
