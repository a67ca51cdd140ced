"""About the model: how it was built and trained, epoch by epoch."""

import gradio as gr
import numpy as np

from vit.bundle import ModelBundle

from .shared import Context, TabWiring, bundle, cached, model_summary, plural

SHOWN = ("tile_size", "embed_size", "num_layers", "num_heads", "mlp_size", "pos_embedding", "dropout")


# --- Views --------------------------------------------------------------------------------------------------

def about_view(model: ModelBundle) -> tuple[np.ndarray, str]:
    """The training curves and a description of the model and its training."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    curve = plots.render(plots.training_figure(model.history))
    config = {key: value for key, value in model.model.config.items() if key in SHOWN}
    table = ("| " + " | ".join(f"`{key}`" for key in config) + " |\n|" + " --- |" * len(config) + "\n| "
             + " | ".join(str(value) for value in config.values()) + " |")
    evaluation, trained = model.evaluation, ""
    if "training_seconds" in evaluation:
        trained = (f"Trained for {plural(len(model.history), 'epoch')} in "
                   f"{evaluation['training_seconds'] / 60:.1f} minutes on {evaluation.get('device', '?')}"
                   + (f" with `{evaluation['command']}`" if evaluation.get("command") else "") + ".")
    return curve, f"{model_summary(model)}\n\n{trained}\n\n{table}\n"


@cached(maxsize=None)
def show_about(model_name: str):
    return about_view(bundle(model_name))


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    with gr.Tab("About the model", id="about") as tab:
        gr.Markdown("How this model was built and trained, epoch by epoch. Training is measured on randomly "
                    "rotated, shifted and zoomed digits (and its loss includes label smoothing), which is why it "
                    "can look worse than the test.")
        curve = gr.Image(label="training history", show_label=False, interactive=False, format="png",
                         elem_id="training")
        text = gr.Markdown()
        gr.Markdown("**From a program**: `/predict` takes one picture file and returns the confidence of every "
                    "class.\n```python\nfrom gradio_client import Client, handle_file\n"
                    "Client(\"http://127.0.0.1:7860/\").predict(handle_file(\"digit.png\"), api_name=\"/predict\")"
                    "\n```\nAn optional second argument names the model. The app is an MCP server too: "
                    "`http://127.0.0.1:7860/gradio_api/mcp/`.")
    tab.select(show_about, context.model_choice, [curve, text], api_visibility="private")
    return TabWiring("about", tab, show_about, [], [curve, text], lazy=True)
