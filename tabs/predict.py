"""Predict: draw, upload or pick a digit; the answer on every stroke, then where CLS looks and what mattered.

A stroke runs two steps: `read_drawing` (preprocess and one forward pass: the label) and then `show_maps`
(ModelBundle.explain and the maps, drawn from arrays by vit.pictures), so the label is on screen before
the maps are computed. Both passes are shared with the visitors who stroke at the same moment (vit.batching).
Nothing on this path touches matplotlib.
"""

import json
import tempfile

import gradio as gr
import numpy as np

from vit import pictures
from vit.analysis import Explanation
from vit.bundle import ModelBundle
from vit.numbers import explanation_numbers
from vit.registry import bundle

from . import images, pad
from .glossary import term
from .picture import Display, Picture, picture_for, picture_from_drawing, picture_from_file
from .shared import Context, TabWiring, enlarged, plural

EXAMPLES_PER_CLASS = 1  # example digits offered per class
PROMPT = "Draw a digit"  # the label with nothing to read (for a digit model)
TURNS = pad.Turns()  # every visitor's pad reads, newest last
DRAWN = pad.Turns()  # the newest pad read whose maps each visitor was sent
OCCLUSION_FLOOR = 1.0  # log-odds: the colour scale never spans less, so a tiny effect looks tiny
# How many pad reads and how many pad maps run at once, each a group of its own in the queue. Reads are cheap and
# share their forward passes (vit.batching), so many run together and a stroke's label never waits behind maps.
# The maps cost many times more. Several run at once, so that their passes are shared and both cores work on them,
# below the labels' priority (vit.bundle.MAPS_NICE); a visitor's queued maps events after the first cost nothing
# (show_drawing_maps).
READS_AT_ONCE, MAPS_AT_ONCE = 16, 4


# --- Views: a model and a picture in; Markdown, label confidences and pictures out ---------------------------

def answer(model: ModelBundle, picture: Picture | None) -> tuple[str, dict | str]:
    """The status line and the label confidences for a picture (a prompt when there is none).

    Confidences are calibrated (the folder's temperature); a picture that does not look like a digit gets
    that sentence instead of an answer, and every status shows the two scores the verdict rests on."""
    if picture is None:
        return prompt(f"Draw a {model.noun} on the canvas, upload a picture, or pick a {model.data.stored} "
                      f"{model.noun}.", model.noun)
    reading = model.read(picture.input)
    said = reading.answer(model.class_names)
    confidences = {name: float(p) for name, p in zip(model.class_names, reading.probabilities)}
    if said.kind == "refused":  # the label says so too; the guess it would have made stays in the sentence
        return f"### 🚫 {picture.source}: {said.sentence}\n\n{scores_line(model, reading)}", f"not a {model.noun}"
    mark, verb = ("🤔 ", "is ") if said.kind == "unsure" else ("", "")
    sentence = said.sentence.replace(said.candidates[0], f"**{said.candidates[0]}**", 1)
    return f"### {mark}{picture.source}: the model {verb}{sentence}\n\n{scores_line(model, reading)}", confidences


def scores_line(model: ModelBundle, reading) -> str:
    """What the "does it look like a digit?" verdict rests on, each score beside where digits end."""
    limits = model.limits
    if reading.verdict is None or limits is None:
        return "<small>This model's folder has no calibration: confidences are the raw softmax.</small>"
    s = reading.verdict.scores
    return (f"<small>{term('not a digit', f'Does it look like a {model.noun}?')} {term('evidence')} "
            f"{s['evidence']:.2f} ({model.noun}s ≥ "
            f"{limits.min_evidence:.2f}) · ink cover {s['ink_cover']:.0%} (≤ {limits.max_ink_cover:.0%}). "
            f"Confidence {term('calibration', 'calibrated')}: divided by "
            f"{term('temperature', 'T')} = {model.temperature:.2f}, fitted on {term('validation split', 'validation')} "
            f"{model.noun}s.</small>")


def prompt(message: str, noun: str = "digit", label: str | None = None) -> tuple[str, str]:
    """The status line and label when there is nothing to read (`label`: instead of the prompt to draw)."""
    return f"### ✏️ {message}", label or PROMPT.replace("digit", noun)


def mattered_words(model: ModelBundle) -> str:
    """What the three maps under the answer show, with an example from the model's own dataset."""
    return (f"**Which parts mattered?** *{term('attention rollout', 'Rollout')}* follows CLS's "
            f"{term('attention')} back through all the blocks; *{term('saliency')}* "
            f"shows where a little more ink would change the answer most; *{term('occlusion')}* blanks one tile at a "
            f"time and measures the answer's {term('log-odds')} (red: the tile supports the answer, blue: it argues "
            "against it). "
            "Decisions often hinge on **what is missing**: look for empty areas lighting up in the saliency map — "
            f"{model.data.absence}. Which of these maps deserves belief is tested in tab 4, *Which map to trust?*")


def introduction(model: ModelBundle) -> str:
    """The words above the pad, for the model's dataset: a digit, or a fashion item."""
    noun = model.noun
    return (f"Draw a {noun} (big, in the middle), upload a picture, or pick a {model.data.stored} {noun}: the answer "
            "updates as you draw. Below it, three answers to *which parts mattered?* and where the CLS token "
            "looks.")


def maps(model: ModelBundle, picture: Picture | None) -> tuple:
    """What the model sees, where CLS looks, rollout, saliency and occlusion as pictures, and occlusion's size
    in words."""
    if picture is None:
        return no_maps()
    return drawn_maps(model, picture, model.explain(picture.input))  # batched with other visitors' (vit.batching)


def drawn_maps(model: ModelBundle, picture: Picture, result: Explanation) -> tuple:
    """`maps` of a picture already explained."""
    image = picture.input
    name = model.class_names[result.predicted]
    single, blocks = result.occlusion.numpy(), result.occlusion_blocks.numpy()
    cls_attention, rollout, saliency = result.cls_attention.numpy(), result.rollout.numpy(), result.saliency.numpy()
    source, piece = picture.source, model.model.piece
    described = images.described
    return (described(seen_picture(picture, piece), seen_alt(picture, piece)),
            described(attention_picture(image, cls_attention), attention_alt(source, cls_attention)),
            described(rollout_picture(image, rollout), rollout_alt(source, rollout)),
            described(saliency_picture(image, saliency), saliency_alt(source, saliency, rollout.shape)),
            described(occlusion_picture(image, single, blocks, name), occlusion_alt(source, single, blocks, name)),
            occlusion_words(single, blocks, name))


def no_maps() -> tuple:
    """The maps without a picture: hidden, and no words (new updates each call: gradio takes the value out of an
    update it is handed, so one must never be shared)."""
    return (*(images.described(None, None) for _ in range(5)), "")


# Alt text: what each map shows, with its numbers, for a screen reader (tabs.images.described).

def seen_alt(picture: Picture, piece: tuple[int, int]) -> str:
    size = picture.input.shape[0]
    pieces, noun = size * size // (piece[0] * piece[1]), "tiles" if piece[0] == piece[1] else "strips"
    beside = "; beside it, the picture as sent" if picture.original is not None else ""
    if picture.page is not None:
        beside += " and the page as read, its light and shadow divided out"
    return (f"What the model sees of {picture.source}: {size}×{size} grey pixels cut into {pieces} {noun} of "
            f"{piece[0]}×{piece[1]}{beside}.")


def attention_alt(source: str, cls_attention: np.ndarray) -> str:
    layers, heads = cls_attention.shape[:2]
    layer, head, *place = np.unravel_index(cls_attention.argmax(), cls_attention.shape)
    noun, _ = piece_names(cls_attention[0, 0])
    tile = int(np.ravel_multi_index(place, cls_attention.shape[2:])) + 1
    return (f"Where CLS looks in {source}, {plural(layers, 'block')} × {plural(heads, 'head')}: its strongest is "
            f"block {layer + 1}, head {head + 1} on {noun} {tile} ({float(cls_attention.max()) * 100:.0f} % of its "
            f"attention).")


def rollout_alt(source: str, rollout: np.ndarray) -> str:
    return (f"Attention rollout for {source}: CLS's attention is highest on "
            f"{images.ranked(rollout, piece_names(rollout)[0], percent=True)}.")


def saliency_alt(source: str, saliency: np.ndarray, grid: tuple[int, int]) -> str:
    rows, columns = grid
    per_piece = saliency.reshape(rows, saliency.shape[0] // rows, columns, -1).sum(axis=(1, 3))  # (rows, columns)
    share = per_piece / max(float(per_piece.sum()), 1e-9)
    return (f"Saliency for {source}: {images.ranked(share, piece_names(share)[0], percent=True)} hold the largest "
            f"shares of the gradient, where a little more ink would change the answer most.")


def occlusion_alt(source: str, single: np.ndarray, blocks: np.ndarray, class_name: str) -> str:
    piece, block = piece_names(single)
    return (f"Occlusion of {source} for class {class_name}: blanking {images.ranked(single, piece, count=1)} lowers "
            f"its log-odds most of any one {piece}; blanking a {block}, by at most {float(blocks.max()):.2f}.")


def seen_picture(picture: Picture, piece: tuple[int, int]) -> np.ndarray:
    size = picture.input.shape[0]
    seen = pictures.titled(pictures.grey(picture.input, piece=piece),
                           f"what the model sees ({size}×{size})")
    if picture.original is None:
        return seen
    original = picture.original
    if original.ndim == 2:
        original = np.repeat(original[..., None], 3, axis=2)
    elif original.shape[2] == 4:  # transparency shown on white, as the preprocessing reads it
        alpha = original[..., 3:] / 255
        original = (original[..., :3] * alpha + 255 * (1 - alpha)).round().astype(np.uint8)
    shown = [pictures.titled(np.ascontiguousarray(original), "your image")]
    if picture.page is not None:  # a photo: the page as read, its light and shadow divided out, before framing
        shown.append(pictures.titled(np.repeat(picture.page[..., None], 3, axis=2), "the page, light divided out"))
    return pictures.side_by_side([*shown, seen])


def rollout_picture(image: np.ndarray, rollout: np.ndarray) -> np.ndarray:
    high = max(float(rollout.max()), 1e-9)
    heat = pictures.heatmap(rollout, image, "inferno", 0, high)
    return pictures.stack([pictures.titled(heat, "attention rollout"),
                           pictures.colour_bar("inferno", 0, high, heat.shape[1], "share of CLS's attention")])


def saliency_picture(image: np.ndarray, saliency: np.ndarray) -> np.ndarray:
    heat = pictures.heatmap(saliency, image, "inferno", 0, 1)
    return pictures.stack([pictures.titled(heat, "saliency"),
                           pictures.colour_bar("inferno", 0, 1, heat.shape[1], "|gradient|, ÷ its maximum")])


def piece_names(values: np.ndarray) -> tuple[str, str]:
    """What one piece and one occlusion block are called, from the map's shape: a square grid is tiles."""
    return ("tile", "2×2 block") if values.shape[0] == values.shape[1] else ("strip", "pair of strips")


def occlusion_picture(image: np.ndarray, single: np.ndarray, blocks: np.ndarray, class_name: str) -> np.ndarray:
    """Blanking one tile and blanking 2×2 blocks (one strip, two strips), side by side on one symmetric scale of
    at least ±1 log-odds."""
    limit = max(float(np.abs(single).max()), float(np.abs(blocks).max()), OCCLUSION_FLOOR)
    piece, block = piece_names(single)
    heats = [pictures.titled(pictures.heatmap(values, image, "RdBu_r", -limit, limit, factor=3,
                                              outline=pictures.DARK_INK), title)
             for values, title in ((single, f"one {piece}"), (blocks, block))]
    pair = pictures.side_by_side(heats, gap=6)
    return pictures.stack([pictures.titled(pair, f"occlusion (class {class_name})"),
                           pictures.colour_bar("RdBu_r", -limit, limit, pair.shape[1], "log-odds drop when blanked")])


def occlusion_words(single: np.ndarray, blocks: np.ndarray, class_name: str) -> str:
    """How much blanking moves the answer, in a sentence: the size the colours alone would not tell."""
    one, four = float(np.abs(single).max()), float(np.abs(blocks).max())
    piece, block = piece_names(single)
    if one < 0.5:
        said = (f"blanking any one {piece} moves the answer *{class_name}* by at most {one:.2g} log-odds: no single "
                f"{piece} decides (a {block}: up to {four:.2g})")
    else:
        said = (f"blanking the {piece} that matters most moves the answer *{class_name}* by {one:.2g} log-odds "
                f"(a {block}: up to {four:.2g})")
    return f"**Occlusion:** {said}. One log-odds is the step from 73 % to 50 %."


def attention_picture(image: np.ndarray, cls_attention: np.ndarray) -> np.ndarray:
    """CLS's attention to the tiles: a row per head, a column per block, all on one scale with its colour bar."""
    cells = pictures.heatmaps(cls_attention, image, "inferno", factor=4)  # (layers, heads, h, w, 3)
    grid = pictures.labelled_grid(cells.swapaxes(0, 1), "block", "head")
    high = max(float(cls_attention.max()), 1e-9)
    return pictures.stack([grid, pictures.colour_bar("inferno", 0, high, min(grid.shape[1], 420),
                                                     "share of CLS's attention (one scale for every map)")])


def example_items(model: ModelBundle) -> list[tuple]:
    """The test digits offered under the pad: the first stored example of each class."""
    return [(enlarged(pixels), f"a {model.data.stored} {model.class_names[label]}")
            for pixels, label in offered_examples(model)]


def offered_examples(model: ModelBundle) -> list[tuple[np.ndarray, int]]:
    """(pixels uint8 (28, 28), label) of each offered example, in gallery order."""
    offered = []
    for label in range(len(model.class_names)):
        found, _ = model.examples(label)
        offered += [(image.numpy(), label) for image in found[:EXAMPLES_PER_CLASS]]
    return offered


# --- Handlers: a model name and the event's values in, component values out ---------------------------------

def read_drawing(model_name: str, event: gr.EventData, request: gr.Request | None = None):
    """A stroke, Undo or Clear: the new picture, the status, the label and the read's turn (the maps follow in
    show_drawing_maps); nothing when a newer stroke's read began meanwhile (pad.Turns)."""
    session = request.session_hash if request else None
    turn = TURNS.start(session, pad.number(event))
    drawing = pad.drawing(event)
    result = (*read(picture_from_drawing(drawing, bundle(model_name)), model_name, drawing is not None), turn)
    return (gr.skip(),) * len(result) if TURNS.overtaken(session, turn) else result


def read_upload(path: str | None, model_name: str):
    """An uploaded picture takes the drawing's place: the pad is wiped."""
    return (*read(picture_from_file(path, bundle(model_name)), model_name, bool(path)), pad.wiped())


def remove_upload(model_name: str):
    """The visitor removed their upload: nothing is explained until they draw, upload or pick again."""
    return read(picture_from_file(None, bundle(model_name)), model_name, False)


def read_example(model_name: str, event: gr.SelectData):
    """A test picture takes the place of the drawing and the upload: both are emptied."""
    model = bundle(model_name)
    pixels, label = offered_examples(model)[event.index]
    picture = Picture(pixels.astype(np.float32) / 255, f"a {model.data.stored} {model.class_names[label]}",
                      dataset=model.dataset)
    return (*read(picture, model_name), pad.wiped(), None)


def read(picture: Picture | str, model_name: str, sent: bool = True):
    """(current, status, label) for a Picture, or for a message when the input could not become one: a prompt to
    draw when nothing was `sent`, "not read" on the label when what was sent could not be read."""
    model = bundle(model_name)
    if isinstance(picture, str):
        return (None, *prompt(picture, model.noun, f"{model.noun} not read" if sent else None))
    return (picture, *answer(model, picture))


def show_maps(current: Picture | None, model_name: str):
    return maps(bundle(model_name), current)


def show_drawing_maps(current: Picture | None, model_name: str, turn: int | None, request: gr.Request | None = None):
    """The maps of a stroke's read, unless a newer stroke's read has begun (its own maps follow) or they were already
    sent. A busy server queues a visitor's maps events; each reads the newest picture when it runs, so the first
    draws it and the others, finding it drawn, cost nothing."""
    session = request.session_hash if request else None
    skipped = (gr.skip(),) * len(no_maps())
    if TURNS.overtaken(session, turn) or (turn is not None and DRAWN.overtaken(session, turn - 1)):
        return skipped
    model = bundle(model_name)
    explanation = None if current is None else model.explain(current.input)
    if TURNS.overtaken(session, turn):  # a newer stroke came while this one waited for its pass: no pictures
        return skipped
    result = no_maps() if explanation is None else drawn_maps(model, current, explanation)
    if TURNS.overtaken(session, turn):
        return skipped
    DRAWN.start(session, turn)
    return result


def explained(current: Picture | None, model_name: str):
    """Status, label and every map of the current picture."""
    model = bundle(model_name)
    return (*answer(model, current), *maps(model, current))


def show(current: Picture | None, model_name: str):
    """A picture sent from another tab: it takes the place of the drawing and the upload, which are emptied; then
    its status, label and maps."""
    return (pad.wiped(), None, *explained(current, model_name))


def export_numbers(current: Picture | None, model_name: str):
    """A JSON file of the numbers behind the maps, offered for download; nothing to offer without a picture."""
    if current is None:
        raise gr.Error("Draw, upload or pick a digit first: there are no maps to export.")
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="vit-maps-", delete=False) as file:
        json.dump(explanation_numbers(bundle(model_name), current.input, current.source), file)
    return gr.File(file.name, visible=True)


def refresh(model_name: str, current: Picture | None):
    """A model switch: the same picture read by the new model (the drawing on the pad, the upload, framed as its
    dataset frames its own; a stored example of another dataset gives way to the model's own), its answer and maps,
    the model's examples and the words for its dataset."""
    model = bundle(model_name)
    if current is not None:
        current = picture_for(model, current)
    return (current, *explained(current, model_name), example_items(model), introduction(model),
            f"or pick a {model.data.stored} {model.noun}:", mattered_words(model))


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> tuple[TabWiring, Display]:
    """The tab, and where it shows a picture that another tab sends it."""
    start = context.current.value  # the app starts every visitor on start_picture(first)
    status_start, label_start = answer(first, start)
    maps_start = maps(first, start)
    with gr.Tab("2 · Predict", id="predict") as tab:
        intro = gr.Markdown(introduction(first))
        with gr.Row():
            with gr.Column(scale=1, min_width=340):
                drawn = pad.drawing_pad(model=first.name)
                upload = gr.File(label="or upload a picture", file_types=["image"], type="filepath", height=120,
                                 elem_id="upload")
                pick = gr.Markdown(f"or pick a {first.data.stored} {first.noun}:")
                # no label: a gallery's label floats over its top row
                examples = images.Gallery(example_items(first), label="test digits", show_label=False, columns=5,
                                      rows=2, height=260, allow_preview=False, object_fit="contain",
                                      elem_id="examples")
            with gr.Column(scale=1, min_width=340):
                status = gr.Markdown(status_start, elem_id="status")
                label = gr.Label(label_start, num_top_classes=3, label="prediction", elem_id="prediction")
                seen = images.output_image("what the model sees", "seen", maps_start[0])
        mattered = gr.Markdown(mattered_words(first))
        with gr.Row():
            rollout, saliency, occlusion = (images.output_image(name, name, maps_start[i]) for i, name in
                                            ((2, "rollout"), (3, "saliency"), (4, "occlusion")))
        words = gr.Markdown(maps_start[5], elem_id="occlusion-words")
        gr.Markdown("**Where does CLS look?** In every block each head lets the CLS token gather from the tiles; "
                    "brighter means more attention, every map on the same scale (the bar below). Which tiles does CLS "
                    "read before it decides?")
        attention = images.output_image("CLS attention", "attention", maps_start[1],
                                        wide=True)  # the one map wider than a phone
        with gr.Row():
            export = gr.Button("Download the numbers behind these maps (JSON)", size="sm", elem_id="export",
                               scale=0)
            exported = gr.File(label="the numbers (JSON)", visible=False, interactive=False, elem_id="exported")
        turn = gr.State()  # the pad read whose answer is on screen (pad.Turns); inside the tab: Tabs count children
    export.click(export_numbers, [context.current, context.model_choice], exported, api_visibility="private")
    reads = [context.current, status, label]
    shown = [seen, attention, rollout, saliency, occlusion, words]
    wire(context, drawn, upload, examples, reads, turn, shown)
    wiring = TabWiring("predict", tab, refresh, [context.current],
                       [context.current, status, label, *shown, examples, intro, pick, mattered])
    return wiring, Display(show, [drawn, upload, status, label, *shown])


def wire(context: Context, drawn, upload, examples, reads: list, turn: gr.State, shown: list) -> None:
    """`reads`: the current picture, the status and the label; `turn`: the pad read whose answer is shown. One
    picture is explained at a time: an upload wipes the pad, an example wipes the pad and the upload."""
    model_choice, private = context.model_choice, dict(api_visibility="private", show_progress="hidden")
    then_maps = dict(fn=show_maps, inputs=[context.current, model_choice], outputs=shown, **private)
    # Every stroke re-reads, and the newest read's answer stays (pad.Turns). Not always_last: gradio replays a
    # deferred run with the event data of the run it waited for, so the strokes drawn while one was being read
    # would be lost from the answer.
    drawn.input(read_drawing, model_choice, [*reads, turn], trigger_mode="multiple", concurrency_id="pad reads",
                concurrency_limit=READS_AT_ONCE, **private) \
         .then(show_drawing_maps, [context.current, model_choice, turn], shown, concurrency_id="pad maps",
               concurrency_limit=MAPS_AT_ONCE, **private)
    upload.upload(read_upload, [upload, model_choice], [*reads, drawn], **private).then(**then_maps)
    upload.clear(remove_upload, model_choice, reads, **private).then(**then_maps)
    examples.select(read_example, model_choice, [*reads, drawn, upload], **private).then(**then_maps)
    # The page reads the drawing with the model in the menu. A listener of its own: an event that skips the pad
    # (gr.skip) hands gradio's HTML component a props update without the weights, which would forget them.
    model_choice.change(pad.follow, model_choice, drawn, queue=False, **private)
