"""Position embeddings: how similar each position's learned vector is to every other (ViT paper, figure 7)."""

import gradio as gr
import numpy as np

from vit.analysis import positional_similarity
from vit.bundle import ModelBundle

from .shared import Context, TabWiring, bundle, cached

KINDS = {"learned": "These position vectors were **learned** from data, starting from random noise.",
         "sinusoidal": "This model uses fixed **sinusoidal** position codes: nothing here was learned.",
         "none": "This model has **no** position embedding: it cannot tell where a tile was."}


# --- Views --------------------------------------------------------------------------------------------------

def positional_view(model: ModelBundle) -> tuple[np.ndarray, np.ndarray, str]:
    """The similarity grid, the raw vectors, and a sentence on what kind of positions these are."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    grid = plots.render(plots.positional_similarity_figure(positional_similarity(model.model)))
    raw = plots.render(plots.embedding_matrix_figure(model.model.pos_embedding[0].detach()))
    return grid, raw, KINDS[model.model.pos_embedding_kind]


@cached(maxsize=None)
def show_positions(model_name: str):
    return positional_view(bundle(model_name))


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    with gr.Tab("5 · Position embeddings", id="positions") as tab:
        gr.Markdown("Attention alone does not know where a word came from, so each position gets a vector added to "
                    "its tile. Each small map shows how similar one position's vector is to all the others — a "
                    "bright patch around its own place means the model learned the 2-D layout by itself (ViT paper, "
                    "figure 7); on the right, the raw vectors as the notebook showed them.")
        text = gr.Markdown()
        with gr.Row():
            grid = gr.Image(label="similarity", show_label=False, interactive=False, format="png",
                            buttons=["fullscreen", "download"], elem_id="positions", elem_classes="figure")
            raw = gr.Image(label="raw embeddings", show_label=False, interactive=False, format="png",
                           buttons=["fullscreen", "download"], elem_classes="figure")
    tab.select(show_positions, context.model_choice, [grid, raw, text], api_visibility="private")
    return TabWiring("positions", tab, show_positions, [], [grid, raw, text], lazy=True)
