"""Worst losses: the test images the model was most wrong about, highest loss first."""

import gradio as gr

from vit.bundle import ModelBundle

from .shared import Context, Picture, TabWiring, bundle, enlarged

START = 32  # images shown when the tab opens


# --- Views --------------------------------------------------------------------------------------------------

def worst_items(model: ModelBundle, count: int) -> list[tuple]:
    names = model.class_names
    return [(enlarged(image.pixels), f"pred {names[image.prediction]} / true {names[image.label]} / "
                                     f"loss {image.loss:.1f}")
            for image in model.worst(count)]


# --- Handlers -----------------------------------------------------------------------------------------------

def show_worst(model_name: str, count: int):
    return worst_items(bundle(model_name), int(count))


def open_image(model_name: str, event: gr.SelectData):
    """A gallery image clicked: it becomes the Predict tab's picture, and that tab opens."""
    model = bundle(model_name)
    image = model.worst(event.index + 1)[event.index]
    source = f"worst-loss image #{event.index + 1} (true label {model.class_names[image.label]})"
    return Picture(image.input, source), gr.Tabs(selected="predict")


def refresh(model_name: str, count: int):
    model = bundle(model_name)
    total = len(model.worst())
    return gr.Slider(maximum=total, value=min(int(count), total)), worst_items(model, int(count))


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    total = len(first.worst())
    with gr.Tab("4 · Worst losses", id="worst") as tab:
        gr.Markdown("The test images the model was most wrong about (highest loss first). Some are the model's "
                    "fault; some are odd or mislabelled digits a person would hesitate over too. Click one to "
                    "explain it in the Predict tab.")
        count = gr.Slider(1, total, value=min(START, total), step=1, label="how many")
        gallery = gr.Gallery(label="predicted / true / loss", columns=8, height="auto", allow_preview=False,
                             object_fit="contain", elem_id="worst")
    private = dict(api_visibility="private")
    gr.on([tab.select, count.release], show_worst, [context.model_choice, count], gallery, **private)
    gallery.select(open_image, context.model_choice, [context.current, context.layout], **private) \
           .then(context.show_picture, [context.current, context.model_choice], context.predict_outputs, **private)
    return TabWiring("worst", tab, refresh, [count], [count, gallery], lazy=True)
