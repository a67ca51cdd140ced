"""What it learned: the ViT paper's figure 7 in full for the selected model — the principal components of the
tile-embedding filters, the similarity of the position embeddings, and how far each head looks."""

import gradio as gr
import numpy as np
import torch

from vit.analysis import attention_distance, mean_attention_distance, positional_similarity
from vit.bundle import ModelBundle
from vit.registry import bundle, cached
from vit.tiling import cut_words

from . import images
from .glossary import term
from .shared import Context, TabWiring, components_alt, components_picture, plural

KINDS = {"learned": "These position vectors were **learned** from data, starting from random noise.",
         "sinusoidal": "This model uses fixed **sinusoidal** position codes: nothing here was learned.",
         "none": "This model has **no** position embedding: it cannot tell where a tile was."}


# --- Views --------------------------------------------------------------------------------------------------

def distances(model: ModelBundle) -> tuple[torch.Tensor, float]:
    """Mean attention distance per layer and head over the stored test examples, and what uniform attention
    (every tile weighed alike) would give on this grid."""
    vit = model.model
    images, _ = model.examples()
    tokens = vit.num_tiles + 1
    uniform = float(attention_distance(torch.full((tokens, tokens), 1 / tokens), vit.grid, vit.piece))
    return mean_attention_distance(vit, images), uniform


def distance_words(measured: torch.Tensor, uniform: float, count: int, noun: str = "digit") -> str:
    """What the distances say, drawn from them: which heads look near, how depth changes it."""
    nearest = divmod(int(measured.argmin()), measured.shape[1])
    first, last = float(measured[0].mean()), float(measured[-1].mean())
    trend = ("grows with depth" if last > first * 1.05 else "shrinks with depth" if last < first * 0.95 else
             "stays about the same from the first block to the last")
    local = int((measured < 0.75 * uniform).sum())
    return (f"**How far each head looks**, averaged over {count} stored test {noun}s: uniform attention over the tiles "
            f"would reach {uniform:.1f} px. The nearest-looking head is block {nearest[0] + 1}, head {nearest[1] + 1} "
            f"({float(measured.min()):.1f} px); the average distance {trend} ({first:.1f} px in block 1, {last:.1f} px "
            f"in the last). {local} of {measured.numel()} {'head looks' if local == 1 else 'heads look'} clearly "
            f"nearer than uniform (under 75 % of it). "
            f"In the ViT paper some heads of the first blocks look locally, like a convolution, and all look far "
            f"by the end.")


def figure_seven(model: ModelBundle) -> tuple:
    """The components, the similarity grid, the distances and the raw vectors, each a (picture, alt text) pair, and
    the sentences under them."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    vit = model.model
    similarity = positional_similarity(vit)
    grid = plots.render(plots.positional_similarity_figure(similarity, vit.grid))
    measured, uniform = distances(model)
    reach = plots.render(plots.attention_distance_figure(measured, uniform, cut_words(vit.cut, vit.tile_size)))
    embedding = vit.pos_embedding[0].detach()
    raw = plots.render(plots.embedding_matrix_figure(embedding))
    return ((components_picture(model.name), components_alt(model.name)), (grid, similarity_alt(similarity, vit.grid)),
            (reach, distance_alt(measured, uniform)), (raw, raw_alt(embedding)),
            KINDS[vit.pos_embedding_kind] + "\n\n" + distance_words(measured, uniform, len(model.examples()[0]),
                                                                    model.noun))


# Alt text: each picture of figure 7 in words, with its numbers (tabs.images.described).

def similarity_alt(similarity: torch.Tensor, grid: tuple[int, int]) -> str:
    rows, columns = grid
    place = np.indices(grid).reshape(2, -1)  # (2, N): each position's row and column
    steps = np.abs(place[:, :, None] - place[:, None, :]).sum(axis=0)  # (N, N) grid steps between positions
    values = similarity.numpy()
    return (f"Cosine similarity of the {len(values)} position vectors, one small map per position in the "
            f"{rows}×{columns} layout: on average {float(values[steps == 1].mean()):.2f} between direct neighbours "
            f"and {float(values[steps > 1].mean()):.2f} between positions farther apart.")


def distance_alt(measured: torch.Tensor, uniform: float) -> str:
    layers, heads = measured.shape
    near, far = (divmod(int(index), heads) for index in (measured.argmin(), measured.argmax()))
    return (f"Mean attention distance of {plural(layers, 'block')} × {plural(heads, 'head')}, a dot per head: from "
            f"{float(measured.min()):.1f} px (block {near[0] + 1}, head {near[1] + 1}) to {float(measured.max()):.1f} "
            f"px (block {far[0] + 1}, head {far[1] + 1}); uniform attention would reach {uniform:.1f} px.")


def raw_alt(embedding: torch.Tensor) -> str:
    tokens, width = embedding.shape
    return (f"The raw position vectors as a picture: {tokens} rows (CLS first) × {width} numbers, from "
            f"{float(embedding.min()):.2f} (blue) to {float(embedding.max()):.2f} (red).")


@cached(maxsize=None)
def drawn(model_name: str) -> tuple:
    return figure_seven(bundle(model_name))


def show_positions(model_name: str):
    *figures, text = drawn(model_name)
    return (*(images.described(picture, alt) for picture, alt in figures), text)


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    with gr.Tab("7 · What it learned", id="positions") as tab:
        gr.Markdown("The ViT paper's figure 7, for this model, and one panel more. **Filters** (the first panel): "
                    "each tile is compared with a set of learned filters (step 2 of *How it decides*); these are the "
                    "patterns those filters vary along most. **Positions** (the second): attention alone does not "
                    "know where a word came from, so each position gets a vector added to its tile; each small map "
                    "shows how similar one position's vector is to all the others — a bright patch around its own "
                    "place means the model learned the 2-D layout by itself. "
                    f"**{term('mean attention distance', 'Distance')}** (the third): how far, in pixels, each head "
                    f"gathers from. The last: the raw position vectors, as {term('the notebook')} showed them.")
        text = gr.Markdown(elem_id="positions-text")
        with gr.Row():
            components = images.output_image("filter components", "components", wide=True)
            grid = images.output_image("similarity", "positions", wide=True)
        with gr.Row():
            reach = images.output_image("mean attention distance", "distance", wide=True, chart=True)
            raw = images.output_image("raw embeddings", wide=True)
    outputs = [components, grid, reach, raw, text]
    tab.select(show_positions, context.model_choice, outputs, api_visibility="private")
    return TabWiring("positions", tab, show_positions, [], outputs, lazy=True)
