"""A link that reopens the app as a visitor sees it: the model, the open tab, the picture being explained and the
step of "How it decides", as URL query parameters. This module owns the format: `link_for` writes it,
`state_from` reads it (never raising: a malformed link is a message), `opening` checks it against the app.

    ?model=mnist-tiny&tab=walk&step=4&example=7.0    a stored test example of the model: class 7, its first one
    ?model=mnist&tab=predict&picture=eNpj...&dataset=mnist
                                                     any picture (a drawing, an upload): its 28×28 model input as
                                                     uint8, zlib-compressed, base64url; the dataset whose framing it has

A drawing travels as the model reads it, rounded to 1/255 a pixel, and the reopened page reads that rounded input
(tests/test_link.py checks on a drawing that the answer stays and no probability moves by 0.001).
"""

import base64
import binascii
import functools
import json
import re
import urllib.parse
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import gradio as gr
import numpy as np

from vit.bundle import ModelBundle
from vit.datasets import DATASETS
from vit.registry import bundle, model_names

from .picture import Picture
from .shared import TabWiring

SIDE = 28                            # every model here reads 28×28 pictures
PICTURE_BYTES = SIDE * SIDE
MAX_PICTURE_TEXT = 1500              # characters: a full 784-byte picture compresses and encodes to far less
MAX_VALUE_TEXT = 100                 # characters of any other parameter
PARAMETERS = ("model", "tab", "step", "example", "picture", "dataset")  # in the order a link writes them
EXAMPLE = re.compile(r"(\d{1,3})(?:\.(\d{1,4}))?")  # class index, then which stored example of it (0 if left out)
LINKED = "the linked picture"        # a linked drawing or upload is called this where the tabs name the picture
COPIED = "(copied where the browser allows)"
LINK_LABEL = f"the link to this view as you copied it {COPIED}"  # drawn on since? the label warns
# Runs in the page as the copy button is pressed: what the page shows, as the ids and names of the selected tab
# buttons (the tabs' and the walk's steps'), read where they are on screen rather than from events that set a state
# (a tab's select event can come late, or twice).
SEEN_JS = """(model, seen, current) => {
  const selected = [...document.querySelectorAll('[role="tab"][aria-selected="true"]')];
  return [model, JSON.stringify({ids: selected.map(b => b.id), names: selected.map(b => b.innerText.trim())}), current];
}"""
# Runs in the page before a link's page is opened: it waits (at most 20 s) until the views the page starts drawing
# have arrived, so that none of them, drawn for the model the page starts with, lands after the linked model's.
SETTLED_JS = """async (...values) => {
  if (!/[?&](%s)=/.test(window.location.search)) { return values; }
  const busy = () => [...document.querySelectorAll('[data-testid="status-tracker"]')]
    .some(tracker => !tracker.classList.contains("hide"));
  for (let waited = 0; waited < 20000 && (waited < 300 || busy()); waited += 100) {
    await new Promise(resolve => setTimeout(resolve, 100));
  }
  return values;
}"""
# Runs in the page after the server wrote the query string into the link box: the whole address, copied where the
# browser allows it (only on https or localhost) and shown in the box either way, to copy by hand.
COPY_JS = """(query) => {
  const link = window.location.origin + window.location.pathname + query;
  if (navigator.clipboard && window.isSecureContext) { navigator.clipboard.writeText(link).catch(() => {}); }
  return link;
}"""


@dataclass(frozen=True)
class Example:
    """A stored test example of the link's model: its class and which of that class's stored examples."""
    label: int                       # class index
    index: int = 0                   # from 0, in the order the model's folder stores them


@dataclass(frozen=True)
class LinkState:
    """What a link names; None: not named (the app's own start)."""
    model: str | None = None
    tab: str | None = None           # a gr.Tab id
    step: int | None = None          # the step of "How it decides", from 0 (the link writes 1… as the stepper shows)
    example: Example | None = None
    pixels: bytes | None = None      # (SIDE, SIDE) uint8, row by row: any other picture, as the model reads it
    dataset: str | None = None       # whose framing `pixels` has


@dataclass(frozen=True)
class Opening:
    """A link checked against this app: what the page opens on."""
    model: str
    tab: str | None
    step: int | None
    picture: Picture | None


# --- Writing ------------------------------------------------------------------------------------------------

def link_for(state: LinkState) -> str:
    """The query string ("?model=…&tab=…") that reopens `state`; parameters not named are left out."""
    values = {"model": state.model, "tab": state.tab, "step": None if state.step is None else state.step + 1,
              "example": state.example and f"{state.example.label}.{state.example.index}",
              "picture": state.pixels and encode(state.pixels), "dataset": state.pixels and state.dataset}
    named = [(key, str(values[key])) for key in PARAMETERS if values[key] is not None]
    return "?" + urllib.parse.urlencode(named, safe="/") if named else ""


def encode(pixels: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(pixels, 9)).decode().rstrip("=")


def model_pixels(picture: Picture) -> bytes:
    """The picture's model input as uint8 bytes (rounded to 1/255)."""
    return np.clip(np.rint(np.asarray(picture.input, np.float32) * 255), 0, 255).astype(np.uint8).tobytes()


def stored_example(model: ModelBundle, pixels: bytes) -> Example | None:
    """The model's stored example with exactly these pixels, or None."""
    images, labels = model.examples()
    found = np.flatnonzero((images.numpy().reshape(len(images), -1) == np.frombuffer(pixels, np.uint8)).all(axis=1))
    if not len(found):
        return None
    label = int(labels[found[0]])
    return Example(label, int((labels[:found[0]] == label).sum()))


def state_of(model_name: str, tab: str | None, current: Picture | None, step: int | None) -> LinkState:
    """What a visitor sees, as a link names it: a picture of the model's own dataset as a stored example when it is
    one, as its pixels otherwise; a picture of another dataset is left out (the tabs show their own instead), and
    so is the first step of How it decides (where it starts anyway)."""
    model = bundle(model_name)
    example = pixels = None
    if current is not None and current.dataset == model.dataset and np.shape(current.input) == (SIDE, SIDE):
        pixels = model_pixels(current)
        example = stored_example(model, pixels)
    return LinkState(model.name, tab, step or None, example, None if example else pixels,
                     None if example or pixels is None else model.dataset)


def seen_view(seen: str | None, tabs: Mapping[str, str], steps: Mapping[str, int]) -> tuple[str | None, int | None]:
    """(open tab, step of How it decides) from SEEN_JS's report: `tabs` maps a tab's name to its id, `steps` a step
    button's element id to its step; (None, None) for a report that cannot be read."""
    try:
        report = json.loads(seen or "{}")
        names, ids = [str(name) for name in report.get("names", [])], [str(id_) for id_ in report.get("ids", [])]
    except (ValueError, TypeError, AttributeError):
        return None, None
    return next((tabs[name] for name in names if name in tabs), None), next((steps[i] for i in ids if i in steps), None)


def share(tabs: Mapping[str, str], steps: Mapping[str, int], model_name: str, seen: str | None,
          current: Picture | None):
    """The copy-link button: the link box, shown, holding this view's query string (COPY_JS makes it a link).
    `seen`: SEEN_JS's report of the open tab and step (seen_view). A visitor's own model is theirs alone, so its
    link names a served model of the same data instead, and the box says so."""
    tab, step = seen_view(seen, tabs, steps)
    shared_model, label = model_name, LINK_LABEL
    if model_name not in model_names():
        shared_model = served_for(bundle(model_name).dataset)
        label = f"the link to this view on {shared_model}: your own model is yours alone {COPIED}"
    return gr.Textbox(link_for(state_of(shared_model, tab, current, step)), label=label, visible=True)


def served_for(dataset: str) -> str:
    """The first served model of a dataset: the one a link to a visitor's own model opens on (the default when
    none reads that dataset)."""
    return next((name for name in model_names() if bundle(name).dataset == dataset), model_names()[0])


# --- Reading ------------------------------------------------------------------------------------------------

def state_from(query: Mapping[str, str]) -> LinkState | str:
    """The state a link's query parameters name (others, such as gradio's own `__theme`, are ignored), or the
    sentence saying which parameter cannot be read."""
    named = {key: str(query[key]) for key in PARAMETERS if key in query}
    long = [key for key, value in named.items() if len(value) > (MAX_PICTURE_TEXT if key == "picture" else
                                                                MAX_VALUE_TEXT)]
    if long:
        return f"its {long[0]}= is too long to be one this app writes"
    if "example" in named and "picture" in named:
        return "it names both a stored example and a picture"
    if "dataset" in named and "picture" not in named:
        return "it names a dataset= without a picture="
    step = named.get("step")
    if step is not None and not (step.isdigit() and 1 <= int(step) <= 99):
        return f"its step={step!r} is not a step number (1, 2, …)"
    example = EXAMPLE.fullmatch(named.get("example", "0"))
    if example is None:
        return f"its example={named['example']!r} is not a class number and an index, such as 7.0"
    pixels = decode(named["picture"]) if "picture" in named else None
    if isinstance(pixels, str):
        return pixels
    return LinkState(named.get("model"), named.get("tab"), None if step is None else int(step) - 1,
                     Example(int(example[1]), int(example[2] or 0)) if "example" in named else None,
                     pixels, named.get("dataset"))


def decode(text: str) -> bytes | str:
    """A picture= value as SIDE × SIDE uint8 bytes, or why it cannot be one."""
    wrong = "its picture= is not a picture this app wrote (damaged or cut short?)"
    if not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        return wrong
    try:
        packed = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        unpacker = zlib.decompressobj()
        pixels = unpacker.decompress(packed, PICTURE_BYTES + 1)  # at most one byte too many: no zip bomb
    except (binascii.Error, ValueError, zlib.error):
        return wrong
    if len(pixels) != PICTURE_BYTES or not unpacker.eof or unpacker.unused_data:
        return wrong
    return pixels


def opening(state: LinkState, *, tabs: list[str], steps: int, default_model: str) -> Opening | str:
    """What the page opens on for a link's state, checked against the models, the tab ids, the number of steps of
    "How it decides" and the model's examples; or the sentence saying what this app does not have."""
    names = model_names()
    if state.model is not None and state.model not in names:
        return f"it names the model {state.model!r}, which this app does not serve (it has {', '.join(names)})"
    if state.tab is not None and state.tab not in tabs:
        return f"it names the tab {state.tab!r}, which this app does not have"
    if state.step is not None and state.step >= steps:
        return f"it names step {state.step + 1} of How it decides, which has {steps}"
    model = bundle(state.model or default_model)
    picture = linked_picture(model, state)
    if isinstance(picture, str):
        return picture
    return Opening(model.name, state.tab, state.step, picture)


def linked_picture(model: ModelBundle, state: LinkState) -> Picture | None | str:
    """The picture a link names, for its model, or why the model cannot show it."""
    if state.example is not None:
        label, index = state.example.label, state.example.index
        if label >= len(model.class_names):
            return f"it names class {label}, and {model.name} has {len(model.class_names)} classes"
        images, _ = model.examples(label)
        if index >= len(images):
            return f"it names stored example {index} of class {label}, and {model.name} stores {len(images)}"
        return Picture(input=images[index].numpy().astype(np.float32) / 255,
                       source=f"a {model.data.stored} {model.class_names[label]}", dataset=model.dataset)
    if state.pixels is None:
        return None
    dataset = state.dataset or model.dataset
    if dataset not in DATASETS:
        return f"it names the dataset {dataset!r}, which this app does not know"
    if dataset != model.dataset:
        return f"its picture is framed as {dataset} frames its pictures, and {model.name} reads {model.dataset}"
    pixels = np.frombuffer(state.pixels, np.uint8).reshape(SIDE, SIDE)
    return Picture(input=pixels.astype(np.float32) / 255, source=LINKED, dataset=dataset)


def open_link(query: Mapping[str, str], *, tabs: list[str], steps: int, default_model: str) -> Opening | str | None:
    """What a page opened with these query parameters shows: None for no link parameters, else an Opening or
    the message to show (the page then starts as usual)."""
    if not any(key in query for key in PARAMETERS):
        return None
    state = state_from(query)
    opened = state if isinstance(state, str) else opening(state, tabs=tabs, steps=steps, default_model=default_model)
    if isinstance(opened, str):
        return f"⚠️ This link could not be opened: {opened}. The app starts as usual."
    return opened


# --- The page: the link box, the copy button's wiring and the page load that opens a link -------------------

@dataclass(frozen=True)
class Page:
    """The app-level blocks a link reads and sets, and the app's model switch to refresh the tabs with."""
    demo: object                     # the gr.Blocks, for its load event
    model_choice: object
    current: object                  # gr.State of the visitor's Picture
    layout: object                   # the gr.Tabs
    wirings: list[TabWiring]
    switch: Callable[..., dict]      # (model name, open tab or None, *the tabs' inputs) -> {component: value}
    switched: list                   # the components `switch` sets


@dataclass(frozen=True)
class Shared:
    """The header's link box and the notice saying why a link could not be opened; SEEN_JS's report (hidden); the
    tab and the step a link asks for (gr.State: the page load sets them, their change selects the tab and step);
    the link parameters the page's address names (gr.State: the page load sets it only when it names any)."""
    box: gr.Textbox
    notice: gr.Markdown
    seen: gr.Textbox
    tab: gr.State
    step: gr.State
    query: gr.State


def share_boxes() -> Shared:
    """The link box (shown once the button is pressed) and the notice for a link that cannot be opened."""
    return Shared(gr.Textbox(label=LINK_LABEL, visible=False,
                             interactive=False, buttons=["copy"], elem_id="link"),
                  gr.Markdown(visible=False, elem_classes="notice", elem_id="link-notice"),
                  gr.Textbox(visible=False), gr.State(), gr.State(), gr.State())


def walkthrough(page: Page) -> TabWiring:
    """The tab whose walkthrough's step a link names (How it decides)."""
    return next(wiring for wiring in page.wirings if wiring.walkthrough is not None)


def link_query(request: gr.Request | None) -> dict:
    """The page load's first step: the link parameters of the page's address, or no change without any. Only a
    page opened by a link pays for the second (opened_page), whose inputs and outputs are every tab's."""
    query = request.query_params if request else {}
    named = {key: str(query[key]) for key in PARAMETERS if key in query}
    return named or gr.skip()


def opened_page(page: Page, shared: Shared, query: Mapping[str, str], model_name: str, *values) -> dict:
    """A link's page: {component: value} for the model, picture, tab and step its parameters (`query`) name
    (nothing without link parameters; the notice, and the usual start, for a link that cannot be opened). A new
    model's switch then shows the picture; with the same model the tabs are refreshed here (`values`: the tabs'
    inputs, in wiring order)."""
    walk = walkthrough(page)
    opened = open_link(query or {}, tabs=[wiring.id for wiring in page.wirings],
                       steps=len(walk.walkthrough.children), default_model=model_name)
    if opened is None:
        return {shared.notice: gr.skip()}  # gradio reads an empty dict as a missing value
    if isinstance(opened, str):
        return {shared.notice: gr.Markdown(opened, visible=True)}
    updates = {page.model_choice: opened.model, shared.tab: opened.tab, shared.step: opened.step}
    if opened.picture is not None:
        updates[page.current] = opened.picture
        if opened.model == model_name:  # no model switch follows to show the picture
            inputs = [component for wiring in page.wirings for component in wiring.inputs]
            values = [opened.picture if component is page.current else value
                      for component, value in zip(inputs, values)]
            # a lazy tab the link selects draws itself on its select event; the one open as the page starts, here
            first = page.layout.selected
            updates |= page.switch(model_name, first if opened.tab in (None, first) else None, *values)
    return updates


def wire(page: Page, copy_link: gr.Button, shared: Shared) -> None:
    """The copy button (the server writes the query string, COPY_JS makes it a whole link and copies it) and the
    page load that opens a link."""
    walk, private = walkthrough(page), dict(api_visibility="private")
    tabs = {wiring.tab.label: wiring.id for wiring in page.wirings}
    steps = {f"{step.elem_id}-button": step.id for step in walk.walkthrough.children}  # gradio's id for its button
    copy_link.click(functools.partial(share, tabs, steps), [page.model_choice, shared.seen, page.current], shared.box,
                    js=SEEN_JS, **private) \
             .then(None, shared.box, shared.box, js=COPY_JS, **private)
    inputs = [page.model_choice, *(i for wiring in page.wirings for i in wiring.inputs)]
    outputs = [page.model_choice, page.current, shared.tab, shared.step, shared.notice, *page.switched]
    outputs = list({id(component): component for component in outputs}.values())  # the picture is a tab's output too

    page.demo.load(link_query, None, shared.query, show_progress="hidden", **private)
    # its own progress hidden: SETTLED_JS waits for the others'
    shared.query.change(functools.partial(opened_page, page, shared), [shared.query, *inputs], outputs,
                        js=SETTLED_JS % "|".join(PARAMETERS), show_progress="hidden", **private)
    # through a state's change: the tabs and the walk are touched only when a link names them
    shared.tab.change(select_tab, shared.tab, page.layout, queue=False, **private)
    shared.step.change(select_step, shared.step, walk.walkthrough, queue=False, **private)
    # another tab or model is another view: the box would name the old one (a picture drawn since, the label says)
    for changed in (page.layout.change, page.model_choice.change):
        changed(lambda: gr.Textbox(visible=False), None, shared.box, queue=False, show_progress="hidden", **private)


def select_tab(tab: str | None):
    return gr.Tabs(selected=tab) if tab else gr.skip()


def select_step(step: int | None):
    return gr.skip() if step is None else gr.Walkthrough(selected=step)
