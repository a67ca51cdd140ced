"""The pad's model in the page (tabs/pad_model.js, run in Chromium) against the server's Python: the weights it is sent
(tabs/pad_model.py), its 28x28 input on stored test drawings, and its logits for every shipped model."""

import base64
import math

import numpy as np
import pytest
import torch
from safetensors.torch import load

from paper_photos import CLEAN, photographed
from picture_files import CANVAS, drawn_on_pad, ink_on_paper, symbol_strokes
from tabs import pad_model
from test_browser import browser  # noqa: F401 - the module's Chromium
from vit.bundle import bundled_folders, load_folder, zoo_folders
from vit.data import load_split
from vit.datasets import dataset as describe
from vit.preprocess import DIGITS, ImageError, KEEP_DRAWING, read_page, to_model_input

pytestmark = pytest.mark.slow
LOGITS = 1e-4   # the bound: the page's logits within this of PyTorch's
INPUT = 1 / 255  # the page's input within one grey level of the server's


def shipped() -> dict:
    return {**bundled_folders(), **zoo_folders()}


@pytest.fixture(scope="module")
def blank(browser):  # noqa: F811
    """A blank page with the pad's runtime loaded, as the pad's script loads it."""
    page = browser.new_page()
    page.set_content("<html><body></body></html>")
    page.add_script_tag(content=pad_model.SCRIPT + "\nwindow.inPage = inPage;")
    yield page
    page.close()


def send_model(page, chosen) -> None:
    """The model's page weights into the page, read there as the pad reads them (window.model)."""
    encoded = base64.b64encode(pad_model.page_weights(chosen)).decode()
    page.evaluate("""encoded => {
        const bytes = Uint8Array.from(atob(encoded), (c) => c.charCodeAt(0));
        window.model = inPage.readWeights(bytes.buffer);
    }""", encoded)


def test_the_app_serves_a_models_page_weights_once_and_refuses_an_unknown_name(models):
    from starlette.applications import Starlette
    from starlette.testclient import TestClient
    client = TestClient(Starlette(routes=pad_model.routes()))
    sent = client.get("/" + pad_model.weights_url("mnist-tiny"))
    assert sent.status_code == 200 and sent.content == pad_model.page_weights(models["mnist-tiny"])
    again = client.get("/" + pad_model.weights_url("mnist-tiny"), headers={"If-None-Match": sent.headers["ETag"]})
    assert again.status_code == 304 and not again.content  # the browser's copy is still good
    unknown = client.get("/" + pad_model.weights_url("no-such-model"))
    assert unknown.status_code == 404 and "No model of that name" in unknown.text


def test_the_page_weights_are_the_models_own_with_what_the_page_needs():
    chosen = load_folder(bundled_folders()["mnist-tiny"])
    weights = pad_model.page_weights(chosen)
    tensors = load(weights)
    for key, value in chosen.model.state_dict().items():
        assert torch.equal(tensors[key], value.reshape(-1)), key
    sinusoidal = load_folder(zoo_folders()["tiles-7-sinusoidal"])  # fixed codes are a buffer, not a weight: sent anyway
    assert torch.equal(load(pad_model.page_weights(sinusoidal))["pos_embedding"],
                       sinusoidal.model.pos_embedding.reshape(-1))


@pytest.mark.parametrize("name", sorted(shipped()))
def test_the_page_gives_pytorchs_logits_for_every_shipped_model(blank, name):
    chosen = load_folder(shipped()[name])
    send_model(blank, chosen)
    images, _ = chosen.examples()
    inputs = images[:4].float().reshape(4, 28, 28)
    if inputs.max() > 1:
        inputs = inputs / 255
    with torch.no_grad():
        expected = chosen.model(inputs[:, None])
    got = blank.evaluate("""inputs => inputs.map((input) => {
        const out = inPage.forward(window.model, Float32Array.from(input));
        return {logits: Array.from(out.logits), top: inPage.answers(window.model, out.logits, 1)[0]};
    })""", inputs.reshape(4, -1).tolist())
    difference = (torch.tensor([g["logits"] for g in got]) - expected).abs().max().item()
    assert difference < LOGITS, f"{name}: logits differ by {difference:.2e}"
    for row, one in zip(expected, got):  # the answer as the server calibrates it
        probabilities = (row / chosen.temperature).softmax(-1)
        assert one["top"]["label"] == chosen.class_names[int(probabilities.argmax())]
        assert math.isclose(one["top"]["probability"], float(probabilities.max()), abs_tol=1e-5)


def verdict_inputs(chosen, rng) -> torch.Tensor:
    """Inputs of every kind of answer: the model's stored examples (mostly sure), blends of two of them (often
    unsure), and pictures that are no digit (noise, photo-like, nearly blank: often refused), as the server frames
    them."""
    from vit.probes import NOT_DIGITS
    images, _ = chosen.examples()
    examples = images[:8].float().reshape(-1, 28, 28)
    examples = examples / 255 if examples.max() > 1 else examples
    blends = [(examples[i] + examples[(i + 3) % len(examples)]) / 2 for i in range(len(examples))]
    others = []
    for make in NOT_DIGITS.values():
        for _ in range(3):
            try:
                others.append(to_model_input(make(rng), chosen.framing))
            except ImageError:  # refused before any model sees it: nothing for the page to judge
                pass
    return torch.cat([examples, torch.stack(blends), torch.stack(others)])


def test_the_page_says_what_the_server_says_refused_unsure_or_sure_for_every_shipped_model(blank):
    kinds = set()
    for name, folder in sorted(shipped().items()):
        chosen = load_folder(folder)
        send_model(blank, chosen)
        inputs = verdict_inputs(chosen, np.random.default_rng(5))
        server = [chosen.read(one).answer(chosen.class_names).kind for one in inputs]
        page = blank.evaluate("""inputs => inputs.map((input) => {
            const pixels = Float32Array.from(input), out = inPage.forward(window.model, pixels);
            return inPage.verdict(window.model, pixels, out.logits, inPage.answers(window.model, out.logits));
        })""", inputs.reshape(len(inputs), -1).tolist())
        assert page == server, name
        kinds |= set(server)
    assert kinds == {"refused", "unsure", "sure"}  # every verdict was compared


def stored_drawings(data_dir) -> dict:
    """The test drawings, as the pad paints them on its canvas: strokes of digits and symbols, a stroke that is no
    digit yet, and MNIST test digits blown up onto the canvas (grey edges, thick and thin)."""
    rng = np.random.default_rng(28)
    strokes = {"a one": [[(0.5, 0.25), (0.5, 0.75)]], "a seven": [[(0.35, 0.28), (0.65, 0.28), (0.45, 0.75)]],
               "a zero": [[(0.5 + 0.15 * math.sin(k * math.pi / 8), 0.5 - 0.22 * math.cos(k * math.pi / 8))
                           for k in range(17)]],
               "a dot": [[(0.5, 0.5), (0.52, 0.53)]], "a bar": [[(0.3, 0.3), (0.7, 0.32)]],
               # drawn small, so the pen is thick for the 20-pixel box: narrowed (preprocess._to_mnist_pen)
               "a small seven": [[(0.44, 0.39), (0.56, 0.39), (0.48, 0.61)]],
               "a small zero": [[(0.5 + 0.06 * math.sin(k * math.pi / 8), 0.5 - 0.11 * math.cos(k * math.pi / 8))
                                 for k in range(17)]],
               **{f"a {name}": symbol_strokes(name, rng) for name in ("star", "heart", "arrow")}}
    drawings = {name: drawn_on_pad(points) for name, points in strokes.items()}
    test = load_split("mnist", "test", data_dir)
    for index in range(12):
        drawings[f"test digit {index}"] = ink_on_paper(test.images[index, 0].numpy(), CANVAS)
    return drawings


def server_reading(drawing, framing) -> np.ndarray | str:
    try:
        return to_model_input(drawing, framing).numpy()
    except ImageError as error:
        return "keep" if str(error) == KEEP_DRAWING else str(error)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_the_page_frames_the_stored_test_drawings_as_the_server_does(blank, data_dir, dataset):
    framing = describe(dataset).framing
    for name, drawing in stored_drawings(data_dir).items():
        rgba = base64.b64encode(np.asarray(drawing.convert("RGBA")).tobytes()).decode()
        page = blank.evaluate("""([rgba, side, framing]) => {
            const pixels = Uint8ClampedArray.from(atob(rgba), (c) => c.charCodeAt(0));
            const read = inPage.frame(pixels, side, side, framing);
            return read && (read.input ? Array.from(read.input) : Object.keys(read)[0]);
        }""", [rgba, CANVAS, framing.__dict__])
        server = server_reading(drawing, framing)
        if isinstance(server, str):
            assert page == server or page is None, f"{name}: the server says {server!r}, the page {page!r}"
            continue
        assert isinstance(page, list), f"{name}: the page gave {page!r}"
        difference = np.abs(np.asarray(page, dtype=np.float32).reshape(28, 28) - server).max()
        assert difference <= INPUT, f"{name}: inputs differ by {difference:.4f}"


def test_the_page_leaves_photos_of_paper_to_the_server_which_reads_them(blank, data_dir, committed_models):
    test = load_split("mnist", "test", data_dir)
    for kind in (CLEAN, "pencil, middle in shadow", "ruled paper"):  # lit evenly, unevenly, with lines
        photo = photographed(test.images[0, 0].numpy(), kind, np.random.default_rng(0))
        photo = photo.resize((CANVAS, CANVAS)).convert("RGBA")
        rgba = base64.b64encode(np.asarray(photo).tobytes()).decode()
        read = blank.evaluate("""([rgba, side, framing]) => inPage.frame(
            Uint8ClampedArray.from(atob(rgba), (c) => c.charCodeAt(0)), side, side, framing)""",
                              [rgba, CANVAS, DIGITS.__dict__])
        assert read is None, f"{kind}: the page read it; the server removes its page's light, lines and specks"
        assert not read_page(photo).canvas
        assert committed_models["mnist"].read(to_model_input(photo).numpy()).best == int(test.labels[0]), kind
