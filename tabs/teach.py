"""Teach it: the visitor names a few symbols of their own, draws each at least five times, and a new model learns
them in seconds on top of the features of the model chosen in the menu (vit.teach: pretrain, then adapt). The new
model joins the visitor's menu, chosen, and the Predict tab reads their symbols with the maps.

The drawings live in the visitor's session only (a gr.State), at most vit.teach.MAX_DRAWINGS of a symbol.
"""

from dataclasses import dataclass, replace
from typing import NamedTuple

import gradio as gr
import numpy as np

from vit import teach
from vit.bundle import ModelBundle
from vit.card import taught_sentence
from vit.registry import bundle, is_known

from . import images, pad
from .glossary import term
from .picture import Picture, picture_from_drawing, picture_from_file, reread
from .shared import Context, TabWiring, captioned, menu_with, plural, unused_label, zipped

DEFAULT_NAMES = "star, heart, arrow"
MAX_KEPT = teach.MAX_SYMBOLS * teach.MAX_DRAWINGS  # drawings a session keeps, those of renamed symbols included
TURNS = pad.Turns()  # every visitor's pad reads, newest last: a slow read never overwrites a later drawing's
KEYS = ("No mouse, pen or touch screen? Upload a picture of each drawing instead (under the buttons): the Tab key "
        "reaches the upload, Enter opens it.")


@dataclass(frozen=True)
class Collected:
    """One drawing the visitor added, and which symbol they said it is."""
    symbol: str
    picture: Picture   # as the pad sent it (its data URL), framed for the model chosen then (picture.dataset)


# --- Views --------------------------------------------------------------------------------------------------

def names_in(text: str | None) -> list[str]:
    """The symbols' names as typed, separated by commas (a trailing comma names nothing)."""
    names = [name.strip() for name in (text or "").split(",")]
    return names[:-1] if len(names) > 1 and not names[-1] else names


def choosable(text: str | None) -> list[str]:
    """The names a drawing can be added to: each non-empty name once, at most MAX_SYMBOLS."""
    seen = []
    for name in names_in(text):
        if name and name.casefold() not in (other.casefold() for other in seen) and len(name) <= teach.MAX_NAME:
            seen.append(name)
    return seen[:teach.MAX_SYMBOLS]


def base_of(model_name: str) -> ModelBundle:
    """The model whose features a new model learns on: the one chosen, or, for a taught one, the one it was taught on
    (its encoder is that model's)."""
    model = bundle(model_name)
    taught = model.evaluation.taught
    return bundle(taught.base) if taught and is_known(taught.base) else model


def base_words(model_name: str) -> str:
    model = base_of(model_name)
    return (f"The new model reads with **{model.name}**'s {term('block', 'blocks')}, unchanged, and learns only a new "
            f"head: one linear layer from the {term('CLS token')} to your symbols. Choose another model in the menu "
            f"to learn on its features.")


def counts_words(names: list[str], collected: list[Collected]) -> str:
    """How many drawings of each symbol there are, against what teaching needs; drawings of a name no longer listed
    are said to be left out."""
    counted = {name: sum(item.symbol == name for item in collected) for name in names}
    shown = " · ".join(f"**{name}** {count}{' ✓' if count >= teach.MIN_DRAWINGS else ''}"
                       for name, count in counted.items())
    others = sorted({item.symbol for item in collected} - set(names))
    left_out = (f" Drawings of {', '.join(others)} are kept but left out: that name is not among your symbols."
                if others else "")
    return (f"Your drawings: {shown or 'none yet'} (at least {teach.MIN_DRAWINGS} of each, at most "
            f"{teach.MAX_DRAWINGS}).{left_out}")


def gallery_items(collected: list[Collected]) -> list[tuple]:
    """Each drawing as the model reads it, its symbol written under it; the alt text numbers it."""
    return [(captioned(pixels(item.picture), item.symbol), f"drawing {index + 1}, a {item.symbol}")
            for index, item in enumerate(collected)]


def pixels(picture: Picture) -> np.ndarray:
    return (picture.input * 255).round().astype(np.uint8)


def seen_view(picture: Picture | None) -> dict:
    """The drawing on the pad as the model will learn it (hidden while there is none)."""
    if picture is None:
        return images.described(None, None)
    return images.described(np.asarray(captioned(pixels(picture), "as the model reads it")),
                            "Your drawing as the model reads it: 28×28 grey pixels.")


def shown(names: list[str], collected: list[Collected]) -> tuple:
    """The gallery (hidden while empty: an empty gallery is an unnamed box to a screen reader) and the counts."""
    return gr.Gallery(gallery_items(collected), visible=bool(collected)), counts_words(names, collected)


def lesson_of(base: ModelBundle, names: list[str], collected: list[Collected]) -> teach.Lesson:
    """The lesson the listed symbols' drawings make, each framed as `base`'s dataset frames its pictures (read again
    from what was sent when it was framed for another); TeachError says what is missing."""
    chosen = [item for item in collected if item.symbol in names]
    drawings = [framed_for(base, item.picture) for item in chosen]
    return teach.lesson(names, drawings, [names.index(item.symbol) for item in chosen])


def framed_for(model: ModelBundle, picture: Picture) -> np.ndarray:
    if picture.dataset == model.dataset:
        return picture.input
    again = reread(picture, model)
    return again.input if isinstance(again, Picture) else picture.input


# --- Handlers -----------------------------------------------------------------------------------------------

def sketched(model_name: str, event: gr.EventData, request: gr.Request | None = None):
    """A stroke, Undo or Clear on the pad: the drawing to add (None when the pad is empty), what the model will see
    of it, and a sentence when it cannot be read; nothing when a later stroke's read began meanwhile (pad.Turns)."""
    session = request.session_hash if request else None
    turn = TURNS.start(session, pad.number(event))
    drawing = pad.drawing(event)
    result = (None, seen_view(None), "") if drawing is None else read_sketch(
        picture_from_drawing(drawing, base_of(model_name)))
    return (gr.skip(),) * len(result) if TURNS.overtaken(session, turn) else result


def uploaded(path: str | None, model_name: str):
    """An uploaded picture is the drawing to add; the pad is wiped."""
    if not path:
        return None, seen_view(None), "", gr.skip()
    return (*read_sketch(picture_from_file(path, base_of(model_name))), pad.wiped())


def read_sketch(picture: Picture | str) -> tuple:
    if isinstance(picture, str):  # vit.preprocess speaks of digits; here the visitor draws symbols
        return None, seen_view(None), picture.replace("a digit", "a symbol")
    return picture, seen_view(picture), ""


class Added(NamedTuple):
    """What Add hands back, in the order of its outputs."""
    collected: list
    gallery: object
    counts: object
    note: str
    sketch: object
    seen: object
    pad: object
    upload: object


def add(symbol: str | None, sketch: Picture | None, collected: list[Collected], names_text: str) -> Added:
    """The drawing joins the chosen symbol's; the pad and the upload are emptied. A sentence instead when it cannot."""
    names = choosable(names_text)
    if sketch is None:
        return refused("Draw a symbol on the pad first (or upload a picture of one).")
    if symbol not in names:
        return refused("Choose which of your symbols this drawing is.")
    if sum(item.symbol == symbol for item in collected) >= teach.MAX_DRAWINGS:
        return refused(f"You have {teach.MAX_DRAWINGS} drawings of {symbol}: that is plenty. Add another symbol's.")
    if len(collected) >= MAX_KEPT:
        return refused(f"You have {MAX_KEPT} drawings, as many as a session keeps: forget some first.")
    collected = [*collected, Collected(symbol, replace(sketch, original=None))]  # kept small: no thumbnail
    gallery, counts = shown(names, collected)
    said = f"Added to {symbol}: {plural(sum(item.symbol == symbol for item in collected), 'drawing')} of it now."
    return Added(collected, gallery, counts, said, None, seen_view(None), pad.wiped(), None)


def refused(message: str) -> Added:
    """What `add` hands back when it adds nothing: the sentence, every other output as it is."""
    skip = gr.skip()
    return Added(skip, skip, skip, f"⚠️ {message}", skip, skip, skip, skip)


def forget_last(collected: list[Collected], names_text: str):
    collected = collected[:-1]
    return collected, *shown(choosable(names_text), collected)


def forget_all(names_text: str):
    return [], *shown(choosable(names_text), [])


def forget_one(collected: list[Collected], names_text: str, event: gr.SelectData):
    """A drawing clicked in the gallery is forgotten."""
    collected = [item for index, item in enumerate(collected) if index != event.index]
    return collected, *shown(choosable(names_text), collected)


def renamed(names_text: str, symbol: str | None, collected: list[Collected]):
    """New names: the symbol menu offers them (keeping the choice when it is still there), and the counts follow."""
    names = choosable(names_text)
    chosen = symbol if symbol in names else (names[0] if names else None)
    return gr.Radio(names, value=chosen), counts_words(names, collected)


class Taught(NamedTuple):
    """What Teach hands back, in the order of its outputs."""
    result: str
    own: object          # the visitor's own models, the new one among them
    menu: object         # the model menu, the new model chosen
    try_it: object       # the button to the Predict tab
    download: object     # the model folder as a zip


def teach_symbols(model_name: str, names_text: str, collected: list[Collected], own: list | None) -> Taught:
    """Teach a new model the symbols; it joins this visitor's menu, chosen. A sentence instead when it cannot."""
    names, base = names_in(names_text), base_of(model_name)
    try:
        lesson = lesson_of(base, names, collected)
    except teach.TeachError as error:
        hidden = gr.Button(visible=False), gr.DownloadButton(visible=False)
        return Taught(f"⚠️ {error}", gr.skip(), gr.skip(), *hidden)
    kept = teach.taught_model(base, lesson)
    label = unused_label(f"taught: {', '.join(lesson.names)}", own)
    own, menu = menu_with(own, label, kept.model.name)
    said = (f"### Taught: {', '.join(lesson.names)}\n{taught_sentence(kept.model.evaluation)}\n\nThe model menu now "
            f"reads *{label}*. Draw one of your symbols in the Predict tab: it answers with the maps.")
    download = gr.DownloadButton(value=zipped(kept.folder), visible=True)
    return Taught(said, own, menu, gr.Button(visible=True), download)


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    names_start = choosable(DEFAULT_NAMES)
    with gr.Tab("11 · Teach it", id="teach") as tab:
        gr.Markdown("Teach the model symbols of your own: name 2 to 5, draw each at least 5 times, and press "
                    f"*Teach*. This is how Vision Transformers are used in practice: pretrained on much data, then "
                    f"adapted to a new task with little. Each drawing is "
                    f"{term('augmentation', 'turned, zoomed, shifted, thickened and bent')} into {teach.COPIES} "
                    "pictures, so a few are enough; learning takes seconds.")
        intro = gr.Markdown(base_words(first.name), elem_id="teach-base")
        with gr.Row():
            with gr.Column(scale=1, min_width=340):
                names = gr.Textbox(DEFAULT_NAMES, label=f"your symbols ({teach.MIN_SYMBOLS} to {teach.MAX_SYMBOLS}, "
                                   "separated by commas)", max_length=200, elem_id="teach-names")
                symbol = gr.Radio(names_start, value=names_start[0], label="the drawing on the pad is a",
                                  elem_id="teach-symbol")
                drawn = pad.drawing_pad("draw one symbol", elem_id="teach-pad", keys=KEYS)
                add_button = gr.Button("Add this drawing", variant="primary", elem_id="teach-add")  # under the pad
                with gr.Row():
                    last = gr.Button("Forget the last", size="sm", elem_id="teach-forget-last")
                    everything = gr.Button("Forget all", size="sm", elem_id="teach-forget-all")
                note = gr.Markdown(elem_id="teach-note")
                seen = images.output_image("your drawing as the model reads it", "teach-seen")
                upload = gr.File(label="or upload a picture of one", file_types=["image"], type="filepath",
                                 height=120, elem_id="teach-upload")
            with gr.Column(scale=1, min_width=340):
                counts = gr.Markdown(counts_words(names_start, []), elem_id="teach-counts")
                gallery = images.Gallery(label="your drawings (click one to forget it)", columns=5, height="auto",
                                         allow_preview=False, object_fit="contain", visible=False,
                                         elem_id="teach-gallery")
                go = gr.Button("Teach", variant="primary", elem_id="teach-go")
                result = gr.Markdown(elem_id="teach-result")
                with gr.Row():
                    try_it = gr.Button("Draw in the Predict tab", visible=False, elem_id="teach-try")
                    download = gr.DownloadButton("Download the model (zip)", visible=False,
                                                 elem_id="teach-download")
        sketch, collected = gr.State(None), gr.State([])  # inside the tab: gr.Tabs counts its children
    wire(context, dict(names=names, symbol=symbol, drawn=drawn, upload=upload, add=add_button, last=last,
                       everything=everything, note=note, seen=seen, counts=counts, gallery=gallery, go=go,
                       result=result, try_it=try_it, download=download, sketch=sketch, collected=collected))
    return TabWiring("teach", tab, base_words, [], [intro])


def wire(context: Context, parts: dict) -> None:
    p, private = parts, dict(api_visibility="private")
    model = context.model_choice
    p["drawn"].input(sketched, model, [p["sketch"], p["seen"], p["note"]], trigger_mode="multiple",
                     show_progress="hidden", **private)
    p["upload"].upload(uploaded, [p["upload"], model], [p["sketch"], p["seen"], p["note"], p["drawn"]], **private)
    p["upload"].clear(lambda: (None, seen_view(None)), None, [p["sketch"], p["seen"]], **private)
    p["add"].click(add, [p["symbol"], p["sketch"], p["collected"], p["names"]],
                   [p["collected"], p["gallery"], p["counts"], p["note"], p["sketch"], p["seen"], p["drawn"],
                    p["upload"]], **private)
    listing = [p["collected"], p["gallery"], p["counts"]]
    p["last"].click(forget_last, [p["collected"], p["names"]], listing, **private)
    p["everything"].click(forget_all, p["names"], listing, **private)
    p["gallery"].select(forget_one, [p["collected"], p["names"]], listing, **private)
    p["names"].change(renamed, [p["names"], p["symbol"], p["collected"]], [p["symbol"], p["counts"]], **private)
    p["go"].click(teach_symbols, [model, p["names"], p["collected"], context.own],
                  [p["result"], context.own, model, p["try_it"], p["download"]], **private)
    p["try_it"].click(lambda: gr.Tabs(selected="predict"), None, context.layout, **private)
