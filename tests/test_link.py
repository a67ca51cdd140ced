"""The shared link's format (tabs/link.py): what a link names reopens as it was, and a malformed one is a message."""

import base64
import zlib
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest

from tabs import link
from tabs.link import Example, LinkState
from tabs.picture import Picture, start_picture
from tabs.shared import TabWiring

TABS = ["tiling", "predict", "walk", "about"]
STEPS = 6


def query(text: str) -> dict:
    """A link's query string as the request's query_params give it."""
    from urllib.parse import parse_qsl
    return dict(parse_qsl(text.removeprefix("?"), keep_blank_values=True))


def drawing() -> Picture:
    """A picture no model stores: a bar with soft edges, as a drawing is framed (values between the 255ths)."""
    pixels = np.zeros((28, 28), np.float32)
    pixels[6:22, 12:16] = 0.9
    pixels[6:22, 11] = pixels[6:22, 16] = 0.3337
    return Picture(input=pixels, source="your drawing", dataset="mnist")


@pytest.mark.parametrize("state", [
    LinkState(model="mnist"), LinkState(tab="walk", step=5), LinkState(model="fashion-mnist", example=Example(9, 3)),
    LinkState(model="mnist-tiny", tab="predict", step=0, pixels=bytes(range(256)) * 3 + bytes(16), dataset="mnist"),
])
def test_a_link_reads_back_as_the_state_it_was_written_from(state):
    assert link.state_from(query(link.link_for(state))) == state


def test_a_link_is_short_and_names_each_parameter_plainly():
    state = LinkState("mnist", "walk", 3, None, link.model_pixels(drawing()), "mnist")
    written = link.link_for(state)
    assert written.startswith("?model=mnist&tab=walk&step=4&picture=") and written.endswith("&dataset=mnist")
    assert len(written) < 200  # a drawing is mostly blank: it compresses to a link a mail or a chat keeps whole
    assert link.link_for(LinkState()) == ""


def test_the_start_picture_is_linked_as_a_stored_example_and_a_drawing_by_its_pixels(models):
    start = link.state_of("mnist", "predict", start_picture(models["mnist"]), 2)
    assert start == LinkState("mnist", "predict", 2, Example(7, 0))
    assert link.state_of("mnist", "walk", None, 0) == LinkState("mnist", "walk")  # no picture; the walk's first step
    drawn = link.state_of("mnist", "predict", drawing(), None)
    assert drawn.example is None and drawn.dataset == "mnist" and len(drawn.pixels) == 28 * 28
    images, _ = models["mnist"].examples(3)
    third = Picture(input=images[2].numpy().astype(np.float32) / 255, source="a test 3", dataset="mnist")
    assert link.state_of("mnist", None, third, None).example == Example(3, 2)


def test_a_drawing_reopens_as_the_model_read_it(models):
    model, picture = models["mnist"], drawing()
    opened = link.open_link(query(link.link_for(link.state_of("mnist", "predict", picture, None))), tabs=TABS,
                            steps=STEPS, default_model="mnist")
    assert opened.model == "mnist" and opened.tab == "predict" and opened.step is None
    assert opened.picture.source == link.LINKED and opened.picture.dataset == "mnist"
    assert np.abs(opened.picture.input - picture.input).max() <= 0.5 / 255 + 1e-6  # rounded to the 255ths
    before, after = model.read(picture.input).probabilities, model.read(opened.picture.input).probabilities
    # the same answer, and its confidences within a point: rounding to the 255ths moves a 1 read at 94 % a little
    assert int(before.argmax()) == int(after.argmax()) and float((before - after).abs().max()) < 1e-2


def test_a_stored_example_reopens_as_that_example(models):
    opened = link.open_link({"model": "fashion-mnist", "example": "9.1"}, tabs=TABS, steps=STEPS,
                            default_model="mnist")
    images, _ = models["fashion-mnist"].examples(9)
    assert opened.picture.source == "a test Ankle boot" and opened.picture.dataset == "fashion-mnist"
    assert np.array_equal(opened.picture.input * 255, images[1].numpy())


def packed(payload: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(payload)).decode().rstrip("=")


@pytest.mark.parametrize("parameters, said", [
    ({"step": "0"}, "step='0' is not a step number"),
    ({"step": "two"}, "step='two' is not a step number"),
    ({"example": "7-1"}, "example='7-1' is not a class number"),
    ({"picture": "not base64!"}, "picture= is not a picture"),
    ({"picture": packed(bytes(784))[:-6]}, "picture= is not a picture"),                 # cut short
    ({"picture": packed(bytes(783))}, "picture= is not a picture"),                      # a pixel missing
    ({"picture": packed(bytes(785))}, "picture= is not a picture"),                      # a pixel too many
    ({"picture": packed(bytes(10_000_000))}, "picture= is too long"),                    # 10 MB of zeros
    ({"picture": packed(bytes(700_000))}, "picture= is not a picture"),                  # short, unpacking to 700 kB
    ({"picture": packed(bytes(784)), "example": "1"}, "both a stored example and a picture"),
    ({"dataset": "mnist"}, "dataset= without a picture="),
    ({"model": "x" * 500}, "model= is too long"),
])
def test_a_malformed_link_is_a_sentence_never_an_exception(parameters, said):
    message = link.state_from(parameters)
    assert isinstance(message, str) and said in message


@pytest.mark.parametrize("parameters, said", [
    ({"model": "mnist-huge"}, "names the model 'mnist-huge', which this app does not serve (it has mnist, "),
    ({"tab": "settings"}, "names the tab 'settings'"),
    ({"step": "7"}, "names step 7 of How it decides, which has 6"),
    ({"example": "10.0"}, "names class 10, and mnist has 10 classes"),
    ({"example": "3.9999"}, "names stored example 9999 of class 3, and mnist stores "),
    ({"picture": packed(bytes(784)), "dataset": "kmnist"}, "names the dataset 'kmnist'"),
    ({"model": "fashion-mnist", "picture": packed(bytes(784)), "dataset": "mnist"}, "fashion-mnist reads fashion-mnist"),
])
def test_a_link_naming_what_this_app_lacks_says_what(models, parameters, said):
    message = link.open_link(parameters, tabs=TABS, steps=STEPS, default_model="mnist")
    assert message.startswith("⚠️ This link could not be opened: ") and said in message
    assert message.endswith("The app starts as usual.")


def test_parameters_of_gradios_own_are_no_link():
    assert link.open_link({"__theme": "dark", "view": "api"}, tabs=TABS, steps=STEPS, default_model="mnist") is None


def test_random_parameters_never_raise(models):
    rng = np.random.default_rng(0)
    alphabet = list("abcXYZ019._-=/+%~ ") + ["", "é", "\x00"]
    for _ in range(300):
        parameters = {key: "".join(rng.choice(alphabet, rng.integers(0, 12))) for key in link.PARAMETERS
                      if rng.random() < 0.5}
        result = link.open_link(parameters, tabs=TABS, steps=STEPS, default_model="mnist")
        assert result is None or isinstance(result, (str, link.Opening))


# --- what the page shows, as the copy button reads it ---------------------------------------------------------

SEEN_TABS, SEEN_STEPS = {"2 · Predict": "predict", "3 · How it decides": "walk"}, {"walk-step-5-button": 4}


@pytest.mark.parametrize("seen, view", [
    ('{"ids": ["", "walk-step-5-button"], "names": ["3 · How it decides", "5\\nWhen the answer forms"]}', ("walk", 4)),
    ('{"ids": [""], "names": ["2 · Predict"]}', ("predict", None)),             # the walk never opened: no step
    ('{"ids": [], "names": ["9 · Somewhere else"]}', (None, None)),
    ("not json", (None, None)), ("[1, 2]", (None, None)), (None, (None, None)),
])
def test_the_open_tab_and_step_are_read_from_the_selected_buttons(seen, view):
    assert link.seen_view(seen, SEEN_TABS, SEEN_STEPS) == view


def test_the_copy_button_writes_the_views_query_string(models):
    box = link.share(SEEN_TABS, SEEN_STEPS, "mnist", '{"ids": ["walk-step-5-button"], "names": ["3 · How it decides"]}',
                     start_picture(models["mnist"]))
    assert box.value == "?model=mnist&tab=walk&step=5&example=7.0" and box.visible


def test_a_link_to_a_visitors_own_model_opens_on_a_served_model_of_its_data_and_says_so(models, tmp_path):
    from vit import registry
    from vit.bundle import load_folder
    from conftest import ROOT
    own = registry.own_name("tiles-7")
    registry.keep_own_model(load_folder(ROOT / "weights" / "fashion" / "fashion-mnist-tiny", name=own), tmp_path)
    garment = Picture(input=drawing().input, source="your drawing", dataset="fashion-mnist")
    box = link.share(SEEN_TABS, SEEN_STEPS, own, '{"ids": [], "names": ["2 · Predict"]}', garment)
    assert own not in box.value and box.value.startswith("?model=fashion-mnist&tab=predict&picture=")
    assert "on fashion-mnist: your own model is yours alone" in box.label
    assert isinstance(link.open_link(query(box.value), tabs=TABS, steps=STEPS, default_model="mnist"), link.Opening)


# --- the page load ------------------------------------------------------------------------------------------

def page(switched: list) -> tuple[link.Page, link.Shared]:
    """A Page of stand-in components (the handler only uses them as keys) whose switch records its calls."""
    blocks = SimpleNamespace(**{name: object() for name in ("model_choice", "current", "box", "notice", "seen",
                                                            "source", "shown", "tab", "step", "query")})
    blocks.layout = type("Tabs", (), {"selected": "tiling"})()  # as the page starts
    walkthrough = type("Walkthrough", (), {"children": [None] * STEPS})()  # hashable, as components are
    wirings = [TabWiring("tiling", None, None, [blocks.source, blocks.current], [blocks.shown], lazy=True),
               TabWiring("walk", None, None, [blocks.current], [], lazy=True, walkthrough=walkthrough)]
    def switch(*arguments):
        switched.append(arguments)
        return {blocks.shown: "redrawn"}
    return (link.Page(None, blocks.model_choice, blocks.current, blocks.layout, wirings, switch, [blocks.shown]),
            link.Shared(blocks.box, blocks.notice, blocks.seen, blocks.tab, blocks.step, blocks.query))


def request(parameters: dict):
    return SimpleNamespace(query_params=parameters)


def test_the_page_load_reads_only_the_link_parameters_and_changes_nothing_without_them():
    assert link.link_query(request({"model": "mnist", "step": 2, "__theme": "dark"})) == {"model": "mnist", "step": "2"}
    assert link.link_query(request({"__theme": "dark"})) == gr.skip() == link.link_query(None)


def test_the_page_load_opens_the_link_and_refreshes_the_tabs_for_the_same_model(models):
    switched = []
    shown, shared = page(switched)
    values = ("7", "the start picture", "the start picture")  # the tabs' inputs: tiling's source and picture, walk's
    updates = link.opened_page(shown, shared, {"model": "mnist", "tab": "walk", "step": "5", "example": "3.0"},
                               "mnist", *values)
    picture = updates[shown.current]
    assert picture.source == "a test 3" and updates[shown.model_choice] == "mnist"
    assert updates[shared.tab] == "walk" and updates[shared.step] == 4
    # the tabs are redrawn with the linked picture; the walk draws itself when the link selects it
    assert switched == [("mnist", None, "7", picture, picture)] and updates[shown.wirings[0].outputs[0]] == "redrawn"


def test_the_page_load_leaves_a_new_models_refresh_to_the_model_switch(models):
    switched = []
    shown, shared = page(switched)
    updates = link.opened_page(shown, shared, {"model": "mnist-tiny", "example": "1"}, "mnist", "7", None, None)
    assert updates[shown.model_choice] == "mnist-tiny" and updates[shown.current].source == "a test 1"
    assert switched == [] and updates[shared.tab] is None  # no tab named: the open one stays


def test_the_page_load_without_a_link_changes_nothing_and_a_bad_link_says_so(models):
    switched = []
    shown, shared = page(switched)
    assert link.opened_page(shown, shared, {}, "mnist", "7", None, None) == {shared.notice: gr.skip()}
    bad = link.opened_page(shown, shared, {"picture": "%%%"}, "mnist", "7", None, None)
    assert list(bad) == [shared.notice] and bad[shared.notice].visible
    assert "could not be opened" in bad[shared.notice].value and switched == []
