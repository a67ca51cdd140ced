"""How it decides: one forward pass of the Predict tab's picture, step by step, with its real numbers.

Every number comes from vit.walk, the forward pass written out by hand from the model's weights (the tests
check it lands on the model's logits). Tokens are numbered as everywhere in the app: 0 is CLS, 1…N the tiles
in reading order. The query token is chosen by clicking a tile of the first picture, the key by clicking one
in the attention pictures; layer and head are buttons.
"""

import contextlib
import functools
from dataclasses import dataclass, fields
from typing import Callable

import gradio as gr
import numpy as np
import torch

from vit import pictures
from vit.bundle import ModelBundle
from vit.registry import bundle
from vit.tiling import piece_noun
from vit.walk import Walk, walk

from . import images
from .glossary import term
from .picture import Picture, picture_for
from .shared import Context, TabWiring, components_alt, components_picture, plural

FACTOR = 10  # screen pixels per input pixel in the clickable pictures: a 4-pixel tile is 40 px, room for a number
QUERY, KEY = (0, 170, 110), (255, 150, 0)  # the boxes around the chosen query and key tiles
STEPS = ("Tiles become vectors", "Each tile is embedded", "CLS and positions", "Inside a block",
         "When the answer forms", "The answer")  # the stepper numbers them
CONTROLS = ("layer", "head", "query", "key")  # the fields of ChoiceViews that are also the choice's inputs


@dataclass(frozen=True)
class Choice:
    """What the visitor looks at: a block and a head (from 0), a query token and a key token (0 = CLS)."""
    layer: int
    head: int
    query: int
    key: int


@dataclass(frozen=True)
class ChoiceViews:
    """The controls and steps 1–4 for one choice: what a new block, head, query or key redraws. Each field is
    shown by the component of the same name (`outputs`); pictures are images.described: (H, W, 3) uint8 and the
    words a screen reader says for it."""
    layer: gr.Radio                   # the block buttons: this model's blocks, the chosen one set
    head: gr.Radio                    # the head buttons
    query: gr.Number                  # the query token (0 = CLS), at most this model's last tile
    key: gr.Number                    # the key token
    tiles: dict                       # step 1: the picture cut into numbered tiles, the followed one boxed
    tiles_matrix: dict                # the tiles as an N × C·t² matrix, a row per tile
    tiles_text: str                   # the followed tile's pixels and how they are normalised
    filters: dict                     # step 2: the embedding's D filters
    principal_components: dict        # the patterns the filters vary along most
    embedded: dict                    # the followed tile's pixels and its D-vector
    embedding_text: str
    positions: dict                   # step 3: CLS + tiles, + positions, = block 1's input, three T × D matrices
    positions_text: str
    block_intro: str                  # step 4: LayerNorm and q, k, v
    vectors: dict                     # the query's vectors and the key's k and v
    scores: dict                      # q·k/√d of the query with every tile
    weights: dict                     # the softmax of those scores
    dot_text: str                     # q·k for the chosen key term by term, and its softmax
    mixing_text: str                  # the weighted sum, projection, residual and MLP
    mlp: dict                         # the query token through the rest of the block


@dataclass(frozen=True)
class WalkViews(ChoiceViews):
    """Every step for one picture: the choice's views and those that depend on the picture alone."""
    heading: str                      # which picture goes through which model
    lens: dict                        # step 5: the logit lens
    lens_text: str
    answer_text: str                  # step 6: logits, temperature and softmax


# --- Views --------------------------------------------------------------------------------------------------

def grid_size(model: ModelBundle) -> tuple[int, int]:
    """(rows, columns) of the model's pieces: tiles make a square, strips one column or one row."""
    return model.model.grid


def noun(model: ModelBundle) -> str:
    return piece_noun(model.model.cut)


def choose(model: ModelBundle, steps: Walk, layer, head, query, key=None) -> Choice:
    """The visitor's choices made valid for this model; the key defaults to the token the query attends to most."""
    vit = model.model
    tokens = model.model.num_tiles + 1
    # a block or head beyond this model's is its last; a token beyond its tiles (chosen on another model) is
    # no token at all, so it starts afresh
    clamp = lambda value, top: 0 if value is None else min(max(int(value), 0), top)  # noqa: E731
    token = lambda value, default: default if value is None or not 0 <= int(value) < tokens else int(value)  # noqa: E731
    layer, head = clamp(layer, vit.num_layers - 1), clamp(head, vit.num_heads - 1)
    query = token(query, inkiest_tile(steps))
    row = steps.blocks[layer].attention[head, query]
    return Choice(layer, head, query, token(key, int(row.argmax())))


def inkiest_tile(steps: Walk) -> int:
    """The tile (1…N) with the most ink: where a walk through one tile starts."""
    return int(steps.tile_vectors.sum(dim=1).argmax()) + 1


def shown_tile(steps: Walk, choice: Choice) -> int:
    """The tile steps 1–3 follow: the query, or the inkiest tile when the query is CLS (which is no tile)."""
    return choice.query or inkiest_tile(steps)


def token_name(token: int) -> str:
    return "CLS" if token == 0 else f"tile {token}"


def tile_box(model: ModelBundle, token: int) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a tile in the FACTOR-scaled pictures."""
    (height, width), (_, columns) = model.model.piece, grid_size(model)
    row, column = divmod(token - 1, columns)
    return row * height * FACTOR, column * width * FACTOR, height * FACTOR, width * FACTOR


def marked(model: ModelBundle, picture: np.ndarray, choice: Choice, key: bool = True) -> np.ndarray:
    """The picture with the query tile boxed in green and (with key) the key tile in orange."""
    for token, colour, wanted in ((choice.query, QUERY, True), (choice.key, KEY, key)):
        if wanted and token:
            picture = pictures.boxed(picture, *tile_box(model, token), colour=colour)
    return picture


def tile_numbers(grid: tuple[int, int]) -> np.ndarray:
    return np.arange(1, grid[0] * grid[1] + 1).reshape(grid)


def fixed(value, digits: int = 2) -> str:
    """A number with `digits` decimals, never "-0.00"."""
    return f"{round(float(value), digits) + 0.0:.{digits}f}"


def number_table(values: np.ndarray, digits: int = 2, header: str = "") -> str:
    """A Markdown table of a (rows, cols) array, numbers rounded."""
    rows = [[fixed(value, digits) for value in row] for row in np.atleast_2d(values)]
    head = [header] + [str(c + 1) for c in range(len(rows[0]))] if header else [" "] * (len(rows[0]) + 1)
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    lines += [f"| **{r + 1}** | " + " | ".join(row) + " |" for r, row in enumerate(rows)]
    return "\n".join(lines)


def vector_text(values: torch.Tensor, per_line: int = 8) -> str:
    """A vector's numbers in a code block, `per_line` to a line with the index of the first."""
    numbers = [f"{fixed(v, 2):>7}" for v in values]
    lines = [f"{start + 1:>3}: " + " ".join(numbers[start:start + per_line]) for start in range(0, len(numbers), per_line)]
    return "```\n" + "\n".join(lines) + "\n```"


def tiles_step(model: ModelBundle, steps: Walk, choice: Choice) -> tuple[dict, dict, str]:
    """Step 1: the picture cut into numbered tiles (click one), the N × t² matrix, one tile's pixels."""
    vit, grid, tile = model.model, grid_size(model), shown_tile(steps, choice)
    image = steps.pixels[0].numpy()
    cut = pictures.written(pictures.grey(image, FACTOR, vit.piece), tile_numbers(grid), size=10)
    cut = marked(model, cut, Choice(choice.layer, choice.head, tile, 0), key=False)
    vectors = steps.tile_vectors.numpy()  # (N, C·t²), normalised pixels
    count, width = vectors.shape
    cell_h, cell_w = max(2, 300 // count), max(2, 300 // width)
    low, high = (0 - vit.pixel_mean) / vit.pixel_std, (1 - vit.pixel_mean) / vit.pixel_std
    matrix = pictures.cells(vectors, "inferno", low, high, cell_h, cell_w)
    matrix = pictures.boxed(matrix, (tile - 1) * cell_h, 0, cell_h, matrix.shape[1], colour=QUERY, line=2)
    matrix = pictures.titled(matrix, f"{count} tiles × {width} pixels: the sentence as a matrix", size=12)
    (h, w), (_, columns), piece = vit.piece, grid, noun(model)
    pixels = steps.pixels[0].reshape(grid[0], h, columns, w)[(tile - 1) // columns, :, (tile - 1) % columns]
    cut = images.described(cut, f"The picture cut into {plural(count, piece)} of {h}×{w} pixels, numbered in reading "
                                f"order; {piece} {tile} is boxed in green. Click a {piece}, or type its number in "
                                f"step 4's query box, to follow it.")
    matrix = images.described(matrix, f"The {plural(count, piece)} as a matrix of {count} rows × {width} normalised "
                                      f"pixels, from {low:.2f} (blank) to {high:.2f} (ink); row {tile} boxed in green.")
    text = (f"The picture is cut into {plural(count, piece)} of {h}×{w} pixels, read row by row like words. Each "
            f"{piece} is flattened into one row of {h * w} numbers: the matrix on the right is the whole sentence, a row "
            f"per word. **{piece.capitalize()} {tile}** (green; click another {piece} to choose it) holds these pixels, "
            f"0 blank and 1 full ink:\n\n{number_table(pixels.numpy(), header='row')}\n\nThe model first normalises "
            f"every pixel, "
            f"(x − {vit.pixel_mean}) / {vit.pixel_std}, so blank paper becomes {low:.2f} and full ink {high:.2f}; "
            f"those are the numbers in its row.")
    return cut, matrix, text


def filters_picture(model: ModelBundle) -> dict:
    """The embedding matrix as D little t×t filters, 8 to a row, on one symmetric scale."""
    vit = model.model
    weight = vit.tile_embedding.weight.detach().numpy().reshape(-1, *vit.piece)  # (D, h, w)
    limit = max(float(np.abs(weight).max()), 1e-9)
    cell = max(2, 48 // max(vit.piece))
    little = [pictures.cells(f, "RdBu_r", -limit, limit, cell) for f in weight]
    out = pictures.stack([pictures.side_by_side(little[start:start + 8], gap=6) for start in range(0, len(little), 8)],
                         gap=6)
    picture = pictures.stack([pictures.titled(out, f"the {len(weight)} filters (red +, blue −)", size=12),
                              pictures.colour_bar("RdBu_r", -limit, limit, min(out.shape[1], 300), "filter weight")])
    return images.described(picture, f"The {len(weight)} filters of the embedding, 8 to a row, each "
                                     f"{vit.piece[0]}×{vit.piece[1]} weights from {-limit:.2f} (blue) to {limit:.2f} "
                                     f"(red).")


def embedding_step(model: ModelBundle, steps: Walk, choice: Choice) -> tuple[dict, dict, dict, str]:
    """Step 2: the filters, the chosen tile's D-vector, and where its largest entry comes from."""
    vit, tile = model.model, shown_tile(steps, choice)
    vector, pixels = steps.embedded[tile - 1], steps.tile_vectors[tile - 1]
    top = int(vector.abs().argmax())
    weight, bias = vit.tile_embedding.weight[top].detach(), float(vit.tile_embedding.bias[top].detach())
    strips = pictures.vector_rows([(f"tile {tile}: {len(pixels)} pixels", pixels.numpy()),
                                   (f"its {len(vector)}-vector", vector.numpy())])
    text = (f"A linear layer turns each row of {len(pixels)} pixels into a vector of {len(vector)} numbers, the "
            f"tile's *{term('embedding')}*: number j is the tile's pixels multiplied by filter j, summed, plus a bias. "
            f"So each {term('filter')} (left) is a little {vit.piece[0]}×{vit.piece[1]} pattern the tile is compared "
            f"with. Tile "
            f"{tile}'s largest entry is **number {top + 1}**: Σ pixel × filter = {float(pixels @ weight):.3f}, plus "
            f"the bias {bias:.3f}, = **{float(vector[top]):.3f}**.\n\nTile {tile}'s {len(vector)} numbers:\n\n"
            f"{vector_text(vector)}\n\nOn the right, the patterns the {len(vector)} filters vary along most "
            f"(their {term('principal components')}, the ViT paper's figure 7 left, which shows the same for its "
            f"16×16 filters of photographs).")
    strips = images.described(strips, f"Tile {tile}'s {len(pixels)} pixels as a strip of colours, and below it its "
                                      f"{len(vector)}-number embedding; its largest entry by size is number {top + 1} "
                                      f"({float(vector[top]):.2f}).")
    return (filters_picture(model), images.described(components_picture(model.name), components_alt(model.name)),
            strips, text)


def positions_step(model: ModelBundle, steps: Walk, choice: Choice) -> tuple[dict, str]:
    """Step 3: CLS in front, a position added to every token: three T × D matrices and what position did."""
    tile = shown_tile(steps, choice)
    count, width = steps.tokens.shape
    cell_h, cell_w = max(3, 260 // count), max(3, 260 // width)
    limit = max(float(steps.start.abs().max()), 1e-9)
    row = lambda values: pictures.boxed(pictures.cells(values.numpy(), "RdBu_r", -limit, limit, cell_h, cell_w),  # noqa: E731
                                        tile * cell_h, 0, cell_h, width * cell_w, colour=QUERY, line=1)
    panels = [pictures.titled(row(values), title, size=12)
              for values, title in ((steps.tokens, "CLS + tiles"), (steps.positions, "+ positions"),
                                    (steps.start, "= block 1's input"))]
    picture = pictures.stack([pictures.side_by_side(panels, gap=18),
                              pictures.colour_bar("RdBu_r", -limit, limit, 300, "value (one scale for all three)")])
    picture = images.described(picture, f"Three matrices of {count} tokens × {width} numbers side by side: CLS and "
                                        f"the tiles, the position vectors, and their sum, block 1's input; row {tile} "
                                        f"boxed; values from {-limit:.2f} (blue) to {limit:.2f} (red).")
    embedded, position = steps.tokens[tile], steps.positions[tile]
    similar = torch.nn.functional.cosine_similarity(steps.positions[1:], position[None], dim=1)
    similar[tile - 1] = -2  # itself
    nearest = ", ".join(str(int(i) + 1) for i in similar.topk(3).indices)
    kind = model.model.pos_embedding_kind
    where = {"learned": f"The tiles whose learned position vectors are most like tile {tile}'s: **{nearest}**.",
             "sinusoidal": f"These positions are fixed sine and cosine waves; the most similar to tile {tile}'s: "
                           f"**{nearest}**.",
             "none": "This model adds no position: it cannot tell where a tile was."}[kind]
    text = (f"A learned **CLS** token goes in front (row 0): the same {width} numbers for every picture, so it knows "
            f"nothing about this digit yet; it will gather what the answer needs. Tile {tile} is row {tile} (boxed). Attention alone cannot tell where a "
            f"word came from, so {term('positional embedding', 'a vector for each place')} is added. "
            f"For **tile {tile}**: its embedding has length "
            f"{float(embedded.norm()):.2f}, its position vector {float(position.norm()):.2f}. {where} The "
            f"{plural(count, 'token')} × {width} numbers on the right enter block 1.")
    return picture, text


def scores_picture(model: ModelBundle, steps: Walk, choice: Choice) -> np.ndarray:
    """The query's q·k/√d with every tile, written in each tile on a diverging colour (click a tile: the key)."""
    grid, tile_size = grid_size(model), min(model.model.piece)
    row = steps.blocks[choice.layer].scores[choice.head, choice.query].numpy()
    limit = max(float(np.abs(row).max()), 1e-9)
    tiles = row[1:].reshape(grid)
    heat = pictures.heatmap(tiles, steps.pixels[0].numpy(), "RdBu_r", -limit, limit, factor=FACTOR,
                            outline=pictures.DARK_INK)
    texts = np.vectorize(lambda v: f"{v:.1f}")(tiles)
    return marked(model, pictures.written(heat, texts, size=10 if tile_size < 7 else 13), choice)


def weights_picture(model: ModelBundle, steps: Walk, choice: Choice) -> np.ndarray:
    """The softmax row over the picture: each tile's share of the query's attention, in % (click: the key)."""
    grid, tile_size = grid_size(model), min(model.model.piece)
    row = steps.blocks[choice.layer].attention[choice.head, choice.query].numpy()
    tiles = row[1:].reshape(grid)
    heat = pictures.heatmap(tiles, steps.pixels[0].numpy(), "inferno", 0, max(float(row.max()), 1e-9),
                            factor=FACTOR)
    texts = np.vectorize(lambda v: f"{v * 100:.0f}")(tiles)
    return marked(model, pictures.written(heat, texts, size=10 if tile_size < 7 else 13), choice)


def dot_product_text(steps: Walk, choice: Choice) -> str:
    """q·k for the chosen query and key, term by term, and the softmax that turns it into a weight."""
    block = steps.blocks[choice.layer]
    q, k = block.q[choice.head, choice.query], block.k[choice.head, choice.key]
    size = len(q)
    terms = np.stack([q.numpy(), k.numpy(), (q * k).numpy()])
    table = number_table(terms, header="i").replace("| **1** |", "| **q** |", 1).replace(
        "| **2** |", "| **k** |", 1).replace("| **3** |", "| **q·k** |", 1)
    score, row = float(block.scores[choice.head, choice.query, choice.key]), block.scores[choice.head, choice.query]
    weight = float(block.attention[choice.head, choice.query, choice.key])
    exponent = float(torch.exp(row - row.max()).sum())
    return (f"**Why {token_name(choice.query)} attends to {token_name(choice.key)}** (orange; click another tile to "
            f"choose the key). The query's q and the key's k, number by number:\n\n{table}\n\n"
            f"Σ q·k = {float((q * k).sum()):.3f}; divided by √{size} = {size ** 0.5:.0f}: score **{score:.3f}**. "
            f"{term('softmax', 'Softmax')} over the row of {len(row)} scores: "
            f"e^({score:.2f} − {float(row.max()):.2f}) ÷ "
            f"{exponent:.3f} = **{weight * 100:.1f} %** of {token_name(choice.query)}'s attention "
            f"(CLS: score {float(row[0]):.2f}, weight {float(block.attention[choice.head, choice.query, 0]) * 100:.1f} %).")


def block_intro(steps: Walk, choice: Choice) -> str:
    """Step 4 begins: LayerNorm, then q, k and v."""
    block, query = steps.blocks[choice.layer], choice.query
    x = block.input[query]
    return (f"**Block {choice.layer + 1}, head {choice.head + 1}, query {token_name(query)}.** "
            f"{term('LayerNorm')} first: "
            f"{token_name(query)}'s {len(x)} numbers have mean {fixed(x.mean())} and spread "
            f"{fixed(x.std(unbiased=False))}; it subtracts the one, divides by the other and applies a learned "
            f"scale and shift. Three linear maps then give each token a **{term('query, key and value', 'query')}** "
            f"q (what it looks for), a **key** k "
            f"(what it offers) and a **value** v (what it hands over), {len(block.q[0, 0])} numbers each per head.")


def vectors_picture(steps: Walk, choice: Choice) -> np.ndarray:
    """The query token entering the block, after LayerNorm, its q, and the key's k and v."""
    block, query, head = steps.blocks[choice.layer], choice.query, choice.head
    return pictures.vector_rows([(f"{token_name(query)} enters", block.input[query].numpy()),
                                 ("after LayerNorm", block.normed[query].numpy()),
                                 (f"q (head {head + 1})", block.q[head, query].numpy()),
                                 (f"k of {token_name(choice.key)}", block.k[head, choice.key].numpy()),
                                 (f"v of {token_name(choice.key)}", block.v[head, choice.key].numpy())])


def mlp_picture(steps: Walk, choice: Choice) -> np.ndarray:
    """The query token through the rest of the block: projection, residual, MLP, residual."""
    block, query = steps.blocks[choice.layer], choice.query
    return pictures.vector_rows([("heads → projection", block.attended[query].numpy()),
                                 ("+ residual", block.middle[query].numpy()),
                                 ("MLP hidden units", block.hidden[query].numpy()),
                                 ("MLP output", block.mlp[query].numpy()),
                                 (f"leaves block {choice.layer + 1}", block.output[query].numpy())])


# Alt text for step 4's pictures: what each shows, with its numbers (tabs.images.described).

def vectors_alt(steps: Walk, choice: Choice) -> str:
    block, query, key = steps.blocks[choice.layer], token_name(choice.query), token_name(choice.key)
    return images.sentence(f"{query} entering block {choice.layer + 1} ({block.input.shape[1]} numbers), after "
                           f"LayerNorm, its query q for head {choice.head + 1}, and the key k and value v of {key} "
                           f"({block.q.shape[-1]} numbers each), a strip of colours each.")


def scores_alt(model: ModelBundle, steps: Walk, choice: Choice) -> str:
    row, piece = steps.blocks[choice.layer].scores[choice.head, choice.query].numpy(), noun(model)
    lowest = int(row[1:].argmin())
    return (f"Scores q·k/√d of {token_name(choice.query)} with every {piece} in block {choice.layer + 1}, head "
            f"{choice.head + 1}, written on each: highest {images.ranked(row[1:], piece, digits=1)}, lowest {piece} "
            f"{lowest + 1} ({row[1 + lowest]:.1f}); CLS {row[0]:.1f}. The key, {token_name(choice.key)}, is boxed in "
            f"orange; click a {piece} or type its number in the key box to choose another.")


def weights_alt(model: ModelBundle, steps: Walk, choice: Choice) -> str:
    row, piece = steps.blocks[choice.layer].attention[choice.head, choice.query].numpy(), noun(model)
    return (f"Softmax of those scores, in % on each {piece}: {token_name(choice.query)} gives the most attention to "
            f"{images.ranked(row[1:], piece, count=3, percent=True)}; CLS {row[0] * 100:.0f} %.")


def mlp_alt(steps: Walk, choice: Choice) -> str:
    block, query = steps.blocks[choice.layer], choice.query
    hidden = block.hidden[query]
    return images.sentence(f"{token_name(query)} through the rest of block {choice.layer + 1}, a strip of colours "
                           f"each: the heads' projection, plus the residual, the {len(hidden)} MLP hidden units "
                           f"({int((hidden > 0.1).sum())} above 0.1), the MLP output, and the token leaving the block.")


def mixing_text(model: ModelBundle, steps: Walk, choice: Choice) -> str:
    """The weighted sum of values, the heads joined and projected, the residual, and which MLP units fire."""
    block, query = steps.blocks[choice.layer], choice.query
    heads, width = block.q.shape[0], block.input.shape[1]
    out = block.heads[choice.head, query]
    weights = block.attention[choice.head, query]
    top = weights.topk(min(3, len(weights)))
    gatherers = ", ".join(f"{token_name(int(i))} {float(w) * 100:.0f} %" for w, i in zip(top.values, top.indices))
    hidden = block.hidden[query]
    firing = int((hidden > 0.1).sum())
    strongest = ", ".join(f"{int(i) + 1} ({float(hidden[i]):.2f})" for i in hidden.topk(3).indices)
    change = float(block.attended[query].norm() / block.input[query].norm().clamp_min(1e-9))
    joined = (f"The {heads} heads' outputs are set side by side ({heads} × {len(out)} = {width} numbers) and multiplied "
              f"by the output projection" if heads > 1 else "The head's output goes through the output projection")
    return (f"**Weighted sum.** The head hands {token_name(query)} Σ weight × v over all tokens, mostly from "
            f"{gatherers}:\n\n{vector_text(out)}\n\n**Join and add.** {joined}; the result is *added* to the token "
            f"({term('residual stream', 'the residual')}), changing it by {change * 100:.0f} % of its length. "
            f"**{term('MLP')}.** Another LayerNorm, then "
            f"{len(hidden)} hidden units, each GELU(w·x + b): {firing} of {len(hidden)} fire above 0.1, the strongest "
            f"{strongest}. A second linear layer maps them back to {width} numbers, added once more: the token "
            f"leaves block {choice.layer + 1} (bottom row).")


def lens_step(model: ModelBundle, steps: Walk) -> tuple[dict, str]:
    """Step 5: the logit lens, and the block after which the final answer leads for good."""
    from vit import plots
    probabilities = torch.softmax(steps.lens / steps.temperature, dim=1)  # (L + 1, classes)
    answer = int(steps.logits.argmax())
    leading = probabilities.argmax(dim=1) == answer
    settled = next(depth for depth in range(len(leading)) if leading[depth:].all())
    names, blocks = model.class_names, len(steps.blocks)
    when = ("from the start, before any block" if settled == 0 else
            f"after block {settled} of {blocks}" + (" — only at the very end" if settled == blocks else ""))
    picture = plots.render(plots.logit_lens_figure(probabilities, names, answer))
    first = probabilities[0]
    text = (f"The *{term('logit lens')}*: CLS is read out through the final LayerNorm and the head after every "
            f"block, as if "
            f"the model stopped there. Before block 1 CLS holds nothing of this picture, so every picture gets the "
            f"same guess ({names[int(first.argmax())]} at {float(first.max()) * 100:.0f} %). Here the answer "
            f"**{names[answer]}** leads {when}, and ends at {float(probabilities[-1, answer]) * 100:.1f} %.")
    alt = (f"The logit lens: the probability of each of the {len(names)} classes when CLS is read out before block 1 "
           f"and after each of the {blocks} blocks; the answer {names[answer]} leads {when} and ends at "
           f"{float(probabilities[-1, answer]) * 100:.1f} %.")
    return images.described(picture, alt), text


def answer_text(model: ModelBundle, steps: Walk) -> str:
    """Step 6: the logits, divided by the temperature, through softmax: the answer."""
    names, temperature = model.class_names, steps.temperature
    order = torch.argsort(steps.probabilities, descending=True)
    rows = "\n".join(f"| {names[i]} | {float(steps.logits[i]):.3f} | {float(steps.logits[i]) / temperature:.3f} | "
                     f"{float(steps.probabilities[i]) * 100:.2f} % |" for i in order)
    best = int(order[0])
    scaled = steps.logits / temperature
    total = float(torch.exp(scaled - scaled.max()).sum())
    verdict = model.read(steps.pixels[0].numpy()).verdict
    refused = (f" The Predict tab still answers *not a {model.noun}*: {verdict.message}" if verdict and verdict.refused
               else "")
    calibrated = (f"divided by the temperature T = {temperature:.3f}, fitted on validation {model.noun}s so that 90 % means "
                  f"right 9 times in 10," if temperature != 1 else "(this model has no calibration: T = 1)")
    return (f"The last LayerNorm and one linear layer turn CLS's {steps.blocks[-1].output.shape[1]} numbers into "
            f"{len(names)} scores, the *{term('logit', 'logits')}*; they are {calibrated} and softmax makes them "
            f"probabilities that sum "
            f"to 1: each is e^(its logit ÷ T − the largest) ÷ {total:.4f}, the sum of them all.\n\n"
            f"| class | logit | ÷ T | probability |\n| --- | --- | --- | --- |\n{rows}\n\n"
            f"**The answer: {names[best]}**, at {float(steps.probabilities[best]) * 100:.1f} %, the confidence the "
            f"Predict tab shows.{refused}")


def heading(model: ModelBundle, picture: Picture) -> str:
    vit = model.model
    return (f"Following **{picture.source}** through **{model.name}**: {plural(vit.num_tiles, noun(model))} + CLS = "
            f"{vit.num_tiles + 1} tokens, {plural(vit.num_layers, 'block')} of {plural(vit.num_heads, 'head')}. "
            f"Draw, upload or pick another picture in the Predict tab.")


def choice_views(model: ModelBundle, steps: Walk, choice: Choice) -> ChoiceViews:
    """Everything that depends on the chosen layer, head, query and key: the controls and steps 1 to 4."""
    tiles, tiles_matrix, tiles_text = tiles_step(model, steps, choice)
    filters, principal_components, embedded, embedding_text = embedding_step(model, steps, choice)
    positions, positions_text = positions_step(model, steps, choice)
    return ChoiceViews(**controls(model, choice), tiles=tiles, tiles_matrix=tiles_matrix, tiles_text=tiles_text,
                       filters=filters, principal_components=principal_components, embedded=embedded,
                       embedding_text=embedding_text, positions=positions, positions_text=positions_text,
                       block_intro=block_intro(steps, choice),
                       vectors=images.described(vectors_picture(steps, choice), vectors_alt(steps, choice)),
                       scores=images.described(scores_picture(model, steps, choice), scores_alt(model, steps, choice)),
                       weights=images.described(weights_picture(model, steps, choice),
                                                weights_alt(model, steps, choice)),
                       dot_text=dot_product_text(steps, choice), mixing_text=mixing_text(model, steps, choice),
                       mlp=images.described(mlp_picture(steps, choice), mlp_alt(steps, choice)))


def controls(model: ModelBundle, choice: Choice) -> dict:
    """The layer and head buttons and the token numbers, set to the choice and to this model's ranges."""
    vit, tokens = model.model, model.model.num_tiles + 1
    return dict(layer=gr.Radio([(str(i + 1), i) for i in range(vit.num_layers)], value=choice.layer),
                head=gr.Radio([(str(i + 1), i) for i in range(vit.num_heads)], value=choice.head),
                query=gr.Number(choice.query, maximum=tokens - 1), key=gr.Number(choice.key, maximum=tokens - 1))


# --- Handlers -----------------------------------------------------------------------------------------------

def prepared(model_name: str, current: Picture | None) -> tuple[ModelBundle, Picture, Walk]:
    model = bundle(model_name)
    picture = picture_for(model, current)
    return model, picture, walk(model.model, torch.from_numpy(picture.input), model.temperature)


def show_walk(model_name: str, current: Picture | None, layer=None, head=None, query=None, key=None) -> WalkViews:
    """Every step for the picture (on opening the tab and on a model switch), keeping the choices that fit."""
    if layer is None:  # the first draw: no block chosen yet, so a 0 in the token boxes is the page's, not a choice
        query = key = None  # (a tab a link selects is drawn after the page has put 0 in them)
    model, picture, steps = prepared(model_name, current)
    choice = choose(model, steps, layer, head, query, key)
    lens, lens_text = lens_step(model, steps)
    return WalkViews(**vars(choice_views(model, steps, choice)), heading=heading(model, picture), lens=lens,
                     lens_text=lens_text, answer_text=answer_text(model, steps))


def show_choice(model_name: str, current: Picture | None, layer, head, query, key=None) -> ChoiceViews:
    """Steps 1–4 for a new layer, head or query (the key becomes the token the query attends to most) or key."""
    model, _, steps = prepared(model_name, current)
    return choice_views(model, steps, choose(model, steps, layer, head, query, key))


def clicked_tile(model_name: str, event: gr.SelectData) -> int:
    """The tile (1…N) under a click on one of the FACTOR-scaled pictures."""
    model = bundle(model_name)
    (height, width), (rows, columns) = model.model.piece, grid_size(model)
    x, y = event.index
    return min(int(y) // (height * FACTOR), rows - 1) * columns + min(int(x) // (width * FACTOR), columns - 1) + 1


def click_query(model_name: str, current: Picture | None, layer, head, event: gr.SelectData) -> ChoiceViews:
    return show_choice(model_name, current, layer, head, clicked_tile(model_name, event))


def click_key(model_name: str, current: Picture | None, layer, head, query,
              event: gr.SelectData) -> ChoiceViews:
    return show_choice(model_name, current, layer, head, query, clicked_tile(model_name, event))


# --- Layout and wiring --------------------------------------------------------------------------------------

def values(views: ChoiceViews) -> list:
    """The views as gradio takes them: a value per field, in the order of `outputs`."""
    return [getattr(views, field.name) for field in fields(views)]


def outputs(components: dict, views: type[ChoiceViews]) -> list:
    """The component that shows each field of `views`, by name, in field order."""
    return [components[field.name] for field in fields(views)]


def listed(handler: Callable[..., ChoiceViews]) -> Callable[..., list]:
    """The handler as gradio calls it (same name and parameters, so it still receives the click's SelectData)."""
    @functools.wraps(handler)
    def as_values(*args, **kwargs):
        return values(handler(*args, **kwargs))
    return as_values


@contextlib.contextmanager
def step(number: int, moves: list):
    """One step of the walk, with its back and next buttons under it (collected in `moves` for wiring)."""
    with gr.Step(STEPS[number], id=number, elem_id=f"walk-step-{number + 1}"):
        yield
        moves.append(step_buttons(number))


def step_buttons(step: int) -> tuple:
    """(back, next, step): the buttons under a step (none back from the first, none on from the last)."""
    with gr.Row():
        back = gr.Button(f"← back: {STEPS[step - 1]}", size="md", elem_id=f"walk-back-{step + 1}") if step else None
        ahead = (gr.Button(f"next: {STEPS[step + 1]} →", variant="primary", size="md",
                           elem_id=f"walk-next-{step + 1}") if step + 1 < len(STEPS) else None)
    return back, ahead, step


def tiles_layout() -> dict:
    with gr.Row():
        with gr.Column():
            tiles = images.output_image("the tiles", "walk-tiles",
                                        caption="**Click a tile** to follow it through the model")
        with gr.Column():
            tiles_matrix = images.output_image("the tiles as a matrix", "walk-matrix", caption="The tiles, a row each")
    return dict(tiles=tiles, tiles_matrix=tiles_matrix, tiles_text=gr.Markdown(elem_id="walk-tiles-text"))


def embedding_layout() -> dict:
    with gr.Row():
        filters = images.output_image("filters", "walk-filters")
        principal_components = images.output_image("principal components of the filters", "walk-components")
    embedded = images.output_image("the tile and its embedding", "walk-embedded")
    return dict(filters=filters, principal_components=principal_components, embedded=embedded,
                embedding_text=gr.Markdown(elem_id="walk-embedding-text"))


def positions_layout() -> dict:
    positions = images.output_image("tokens and positions", "walk-positions")
    return dict(positions=positions, positions_text=gr.Markdown(elem_id="walk-positions-text"))


def block_layout() -> dict:
    with gr.Row():
        layer = gr.Radio(label="block", elem_id="walk-layer")
        head = gr.Radio(label="head", elem_id="walk-head")
        query = gr.Number(label="query token (0 = CLS)", precision=0, minimum=0, elem_id="walk-query")
        key = gr.Number(label="key token (0 = CLS)", precision=0, minimum=0, elem_id="walk-key")
    block_intro = gr.Markdown(elem_id="walk-block-intro")
    vectors = images.output_image("the query's vectors", "walk-vectors")
    with gr.Row():
        with gr.Column():
            scores = images.output_image("scores", "walk-scores", caption="**Scores** q·k/√d of the query (green) "
                                         "with every tile; **click a tile** to make it the key (orange)")
        with gr.Column():
            weights = images.output_image("weights", "walk-weights", caption="**Softmax** of those scores: the % "
                                          "of the query's attention each tile gets")
    dot_text = gr.Markdown(elem_id="walk-dot")
    mixing_text = gr.Markdown(elem_id="walk-mixing")
    mlp = images.output_image("the token through the rest of the block", "walk-mlp")
    return dict(layer=layer, head=head, query=query, key=key, block_intro=block_intro, vectors=vectors, scores=scores,
                weights=weights, dot_text=dot_text, mixing_text=mixing_text, mlp=mlp)


def lens_layout() -> dict:
    lens = images.output_image("logit lens", "walk-lens", chart=True)
    return dict(lens=lens, lens_text=gr.Markdown(elem_id="walk-lens-text"))


def answer_layout() -> dict:
    return dict(answer_text=gr.Markdown(elem_id="walk-head-text"))


def build(context: Context, first: ModelBundle) -> TabWiring:
    moves = []
    with gr.Tab("3 · How it decides", id="walk") as tab:
        components = dict(heading=gr.Markdown(elem_id="walk-heading"))
        with gr.Walkthrough(selected=0, elem_id="walk") as stepper:
            for number, layout in enumerate((tiles_layout, embedding_layout, positions_layout, block_layout,
                                             lens_layout, answer_layout)):
                with step(number, moves):
                    components |= layout()
    wire(context, tab, components, stepper, moves)
    inputs = [context.current, *(components[name] for name in CONTROLS)]
    return TabWiring("walk", tab, listed(show_walk), inputs, outputs(components, WalkViews), lazy=True,
                     walkthrough=stepper)


def wire(context: Context, tab: gr.Tab, components: dict, stepper: gr.Walkthrough, moves: list) -> None:
    """Opening the tab shows every step; a new choice or a click redraws the controls and steps 1–4."""
    shown, everything = outputs(components, ChoiceViews), outputs(components, WalkViews)
    layer, head, query, key = (components[name] for name in CONTROLS)
    model_choice, current, private = context.model_choice, context.current, dict(api_visibility="private")
    chosen = [model_choice, current, layer, head, query]
    tab.select(listed(show_walk), [*chosen, key], everything, **private)
    for control in (layer, head, query):
        control.input(listed(show_choice), chosen, shown, trigger_mode="always_last", **private)
    key.input(listed(show_choice), [*chosen, key], shown, trigger_mode="always_last", **private)
    components["tiles"].select(listed(click_query), [model_choice, current, layer, head], shown, **private)
    for target in (components["scores"], components["weights"]):
        target.select(listed(click_key), chosen, shown, **private)
    for back, ahead, number in moves:  # the stepper opens a step once it is reached: these buttons reach them
        for button, target in ((back, number - 1), (ahead, number + 1)):
            if button is not None:
                button.click(functools.partial(gr.Walkthrough, selected=target), None, stepper, queue=False,
                             **private)
