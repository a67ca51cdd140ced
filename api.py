"""The app's public API: `/predict`, for programs (gradio_client, plain HTTP) and MCP clients alike.

One contract: a picture that can be read gets every class's confidence; anything else (no file, not a
picture, damaged, too large, blank) raises gr.Error with a sentence saying what to send instead, which
gradio_client raises as AppError and an MCP client receives as an error result. Nothing in between: no
partial answer, no guess for an empty picture.
"""

import gradio as gr
import torch

from tabs.shared import bundle, model_names
from vit.preprocess import ImageError, open_image, to_model_input


def predict(image: str | None, model: str | None = None) -> dict:
    """Read one handwritten digit from a picture with a Vision Transformer and give every class's confidence.

    Any picture works: dark ink on light paper or the reverse, any size, with or without transparency; it is
    cropped, scaled into 20×20 and centred like an MNIST digit. A blank picture or a file that is not a
    picture is refused with an error that says why.

    Args:
        image: the picture of one digit (PNG or JPEG), as a file or an http(s) URL.
        model: which model answers, e.g. "mnist" or "mnist-tiny"; the app's default model when left out.
    Returns:
        {"label": the most likely class, "confidences": [{"label": class, "confidence": probability}, ...]},
        every class, most likely first.
    """
    if not image:
        raise gr.Error("Send a picture file (PNG or JPEG) of a digit.")
    chosen = bundle(model)
    if model and model not in model_names():
        raise gr.Error(f"There is no model {model!r}; choose one of {', '.join(model_names())}.")
    try:
        model_input = to_model_input(open_image(image))
    except ImageError as error:
        raise gr.Error(str(error)) from None
    with torch.inference_mode():
        probabilities = chosen.model(model_input[None, None]).softmax(dim=-1)[0]
    ranked = sorted(zip(chosen.class_names, probabilities.tolist()), key=lambda pair: -pair[1])
    return {"label": ranked[0][0], "confidences": [{"label": name, "confidence": p} for name, p in ranked]}


def build(default_model: str) -> None:
    """The endpoints, inside the app's Blocks: hidden components and a button no visitor sees, so the endpoint
    runs only when a program calls it (gradio checks and stores the uploaded file as for any File input)."""
    with gr.Group(visible=False):
        image = gr.File(file_types=["image"], type="filepath", label="image")
        model = gr.Dropdown(model_names(), value=default_model, label="model")
        result = gr.JSON(label="confidences")
        call = gr.Button("predict")
    call.click(predict, [image, model], result, api_name="predict", api_visibility="public", show_progress="hidden")
