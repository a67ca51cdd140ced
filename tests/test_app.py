"""app.py: the models it starts with, and the app as a real server (`python app.py` in a subprocess serving the
committed weights) called as programs call it: /predict and /explain through gradio_client, and the MCP endpoint
through a real MCP client (Streamable HTTP). The server tests are marked slow.

The MNIST test digits come from the data_dir fixture.
"""

import asyncio
import base64
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import MNIST_TINY, ROOT
from model_files import broken_copy, config_with, truncated, weights_with
from server import running_app

WEIGHTS = ROOT / "weights"
MODELS = ("mnist", "mnist-tiny")  # the committed folders: several heads and one
CLASSES = [str(i) for i in range(10)]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with running_app(WEIGHTS, tmp_path_factory.mktemp("server") / "app.log") as (url, _):
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client
    return Client(app_url, verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def test_digits(data_dir):
    """Per model: three MNIST test digits its own pipeline (preprocess + model) reads right, as PNG drawings."""
    from vit.bundle import load_folder
    from vit.data import load_split
    from vit.preprocess import to_model_input

    split = load_split("mnist", "test", data_dir)
    chosen = {}
    for name in MODELS:
        model = load_folder(WEIGHTS / name).model
        picks = []
        for index in range(200):
            drawing = ink_on_paper(split.images[index, 0].numpy())
            with torch.no_grad():
                probabilities = model(to_model_input(drawing)[None, None]).softmax(-1)[0]
            label = int(split.labels[index])
            if int(probabilities.argmax()) == label and label not in [pick[1] for pick in picks]:
                picks.append((drawing, label))
            if len(picks) == 3:
                break
        chosen[name] = picks
    return chosen


def ink_on_paper(digit: np.ndarray, size: int = 280) -> Image.Image:
    """An MNIST digit (light ink on black, 28×28) as someone would draw it: black ink on white, large."""
    return Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR)


def png_file(picture: Image.Image, folder: Path, name: str) -> Path:
    path = folder / name
    picture.save(path)
    return path


# -- the models it starts with ---------------------------------------------------------------------------------

# A bundled folder broken in one of these ways must be left out, logged with its name and the reason.
BROKEN_BUNDLED = {
    "truncated weights": (lambda: {"model.safetensors": truncated(MNIST_TINY, "model.safetensors", 12000)},
                          "model.safetensors"),
    "float16 weights": (lambda: {"model.safetensors": weights_with(MNIST_TINY, lambda t: {k: v.half() for k, v in
                                                                                          t.items()})}, "float16"),
    "evaluation.json missing": (lambda: {"evaluation.json": None}, "evaluation.json is missing"),
    "class names for 2 of 10 outputs": (lambda: {"config.json": config_with(MNIST_TINY, class_names=["zero", "one"])},
                                        "class_names"),
}


@pytest.mark.parametrize("changes, reason", list(BROKEN_BUNDLED.values()), ids=list(BROKEN_BUNDLED))
def test_load_models_leaves_a_broken_bundled_folder_out_and_logs_why(tmp_path, caplog, monkeypatch, changes, reason):
    """app.load_models (what `python app.py` runs) keeps the good folder and logs the skipped one with its reason."""
    import app
    weights = tmp_path / "weights"
    shutil.copytree(MNIST_TINY, weights / "mnist-tiny")
    broken_copy(MNIST_TINY, weights / "mnist-broken", changes())
    monkeypatch.setenv("VIT_MODELS", "")
    with caplog.at_level("INFO", logger="vit"):
        bundles = app.load_models(weights)
    assert [bundle.name for bundle in bundles] == ["mnist-tiny"]
    skipped = [record.getMessage() for record in caplog.records if "mnist-broken" in record.getMessage()]
    assert skipped and "left out" in skipped[0] and reason in skipped[0], skipped


def test_load_models_with_only_broken_folders_exits_with_a_message(tmp_path, monkeypatch):
    import app
    broken_copy(MNIST_TINY, tmp_path / "weights" / "mnist-tiny", {"model.safetensors": b"not safetensors"})
    monkeypatch.setenv("VIT_MODELS", "")
    with pytest.raises(SystemExit, match="no model to show"):
        app.load_models(tmp_path / "weights")


# -- the running app -------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_import_starts_nothing_and_help_documents_the_options():
    """One interpreter (starting gradio and torch is slow here): import app, then ask for --help."""
    code = ("import threading, sys, app; "
            "assert threading.active_count() == 1, threading.enumerate(); "
            "assert not hasattr(app, 'demo'); "
            "assert 'matplotlib' not in sys.modules, 'matplotlib is for figures, imported when one is drawn'; "
            "app.parse_args(['--help'])")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for text in ("--host", "--port", "--weights-dir", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "7860"):
        assert text in run.stdout


@pytest.mark.slow
def test_only_predict_and_explain_are_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/predict", "/explain"]
    assert api["unnamed_endpoints"] == {}
    for endpoint in ("/predict", "/explain"):
        parameters = api["named_endpoints"][endpoint]["parameters"]
        assert parameters[0]["component"] == "File"
        assert parameters[1]["parameter_has_default"]  # the model: optional


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_explain_returns_every_array_in_its_documented_shape(client, test_digits, tmp_path, model):
    from gradio_client import handle_file

    from vit.bundle import load_folder
    config = load_folder(WEIGHTS / model).model
    drawing, label = test_digits[model][0]
    path = handle_file(str(png_file(drawing, tmp_path, "digit.png")))
    numbers = client.predict(path, model, api_name="/explain")
    layers, heads, grid = config.num_layers, config.num_heads, 28 // config.tile_size
    tokens = grid * grid + 1
    shape = lambda values: tuple(np.asarray(values).shape)  # noqa: E731
    assert numbers["label"] == str(label) and numbers["class_names"] == CLASSES
    assert shape(numbers["attention"]["values"]) == (layers, heads, tokens, tokens)
    assert np.allclose(np.asarray(numbers["attention"]["values"]).sum(axis=-1), 1, atol=1e-4)
    assert shape(numbers["cls_attention"]["values"]) == (layers, heads, grid, grid)
    assert shape(numbers["logit_lens"]["logits"]) == shape(numbers["logit_lens"]["probabilities"]) == (layers + 1, 10)
    assert np.allclose(numbers["logit_lens"]["logits"][-1], numbers["logits"], atol=1e-5)
    assert shape(numbers["rollout"]["values"]) == (grid, grid) and shape(numbers["saliency"]["values"]) == (28, 28)
    assert shape(numbers["occlusion"]["one_tile"]) == shape(numbers["occlusion"]["two_by_two"]) == (grid, grid)
    assert shape(numbers["relevance"]["values"]) == shape(numbers["integrated_gradients"]["values"]) == (grid, grid)
    assert shape(numbers["input"]) == (28, 28)
    answer = client.predict(path, model, api_name="/predict")  # the same probabilities as /predict's
    predicted = {c["label"]: c["confidence"] for c in answer["confidences"]}
    assert np.allclose([predicted[name] for name in CLASSES], numbers["probabilities"], atol=1e-6)
    with pytest.raises(Exception, match="Draw a digit first"):
        client.predict(handle_file(str(png_file(Image.new("L", (99, 99), 255), tmp_path, "b.png"))), model,
                       api_name="/explain")


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_predict_reads_real_test_digits_with_ten_confidences(client, test_digits, tmp_path, model):
    from gradio_client import handle_file
    for number, (drawing, label) in enumerate(test_digits[model]):
        path = png_file(drawing, tmp_path, f"digit-{number}.png")
        result = client.predict(handle_file(str(path)), model, api_name="/predict")
        assert result["label"] == str(label)
        confidences = result["confidences"]
        assert sorted(c["label"] for c in confidences) == CLASSES
        assert confidences[0]["label"] == str(label)
        assert [c["confidence"] for c in confidences] == sorted((c["confidence"] for c in confidences), reverse=True)
        assert sum(c["confidence"] for c in confidences) == pytest.approx(1, abs=1e-4)


@pytest.mark.slow
def test_predict_with_only_the_file_uses_the_default_model(client, test_digits, tmp_path):
    from gradio_client import handle_file
    drawing, label = test_digits["mnist"][0]
    result = client.predict(handle_file(str(png_file(drawing, tmp_path, "digit.png"))), api_name="/predict")
    assert result["label"] == str(label)


@pytest.mark.slow
def test_predict_transparent_png(client, test_digits, tmp_path):
    """Black strokes on a transparent sheet, as many drawing programs save them."""
    from gradio_client import handle_file
    drawing, label = test_digits["mnist"][1]
    ink = 255 - np.asarray(drawing)  # (H, W), ink bright
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink  # black, opaque where the ink is
    path = png_file(Image.fromarray(rgba, "RGBA"), tmp_path, "transparent.png")
    assert client.predict(handle_file(str(path)), api_name="/predict")["label"] == str(label)


@pytest.mark.slow
def test_predict_very_large_image(client, test_digits, tmp_path):
    from gradio_client import handle_file
    drawing, label = test_digits["mnist"][2]
    path = png_file(drawing.resize((4000, 4000), Image.Resampling.BILINEAR), tmp_path, "large.png")
    assert client.predict(handle_file(str(path)), api_name="/predict")["label"] == str(label)


# Every kind of bad picture gets the documented answer (README, "The API"): an error whose message says what to send.
BAD_PICTURES = {
    "white.png": (lambda: Image.new("L", (280, 280), 255), "Draw a digit first: the picture looks empty."),
    "transparent.png": (lambda: Image.new("RGBA", (280, 280), (0, 0, 0, 0)), "Draw a digit first"),
    "1x1.png": (lambda: Image.new("L", (1, 1), 0), "too small"),
    "notes.png": (lambda: b"just some text, not a picture\n", "This file is not a picture"),
    "empty.png": (lambda: b"", "The file is empty"),
    "truncated.png": (lambda: b"\x89PNG\r\n\x1a\n\x00\x00", "not a picture"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BAD_PICTURES))
def test_a_bad_picture_gets_the_documented_error_and_the_server_keeps_serving(client, tmp_path, test_digits, name):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    make, words = BAD_PICTURES[name]
    content = make()
    path = tmp_path / name
    path.write_bytes(content) if isinstance(content, bytes) else content.save(path)
    with pytest.raises(AppError) as raised:
        client.predict(handle_file(str(path)), api_name="/predict")
    assert words in str(raised.value) and "Traceback" not in str(raised.value)
    drawing, label = test_digits["mnist"][0]
    assert client.predict(handle_file(str(png_file(drawing, tmp_path, "after.png"))), api_name="/predict")["label"] \
        == str(label)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["noise", "photo-like", "nearly blank"])
def test_a_picture_that_is_not_a_digit_is_answered_as_such(client, tmp_path, kind):
    from gradio_client import handle_file

    from vit import probes
    path = png_file(probes.NOT_DIGITS[kind](np.random.default_rng(0)), tmp_path, f"{kind}.png")
    for model in MODELS:
        result = client.predict(handle_file(str(path)), model, api_name="/predict")
        assert result["label"] is None and result["not_a_digit"].startswith("This does not look like a digit: ")
        assert set(result["scores"]) == {"evidence", "ink_cover", "grey_share", "stroke_width"} and len(result["confidences"]) == 10


@pytest.mark.slow
def test_a_blank_picture_gets_the_documented_error(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    path = png_file(Image.new("L", (300, 300), 255), tmp_path, "blank.png")
    with pytest.raises(AppError, match="Draw a digit first: the picture looks empty."):
        client.predict(handle_file(str(path)), api_name="/predict")


@pytest.mark.slow
def test_at_most_one_percent_of_test_digits_drawn_on_a_page_are_refused(app_url, data_dir, tmp_path):
    """The "not a digit" check on digits as a visitor sends them, through the running server: 400 of them (the
    model folder's evaluation measures 1,000 in process, `evaluation.json` "not_a_digit"; this checks that the
    server's path refuses no more)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import Client, handle_file

    from vit import probes
    from vit.data import load_split
    split = load_split("mnist", "test", data_dir)
    rng = np.random.default_rng(7)
    paths = [png_file(probes.on_canvas(split.images[i, 0].numpy(), rng), tmp_path, f"{i}.png") for i in range(400)]
    clients = [Client(app_url, verbose=False, analytics_enabled=False) for _ in range(4)]

    def refused(job: tuple[int, Path]) -> bool:
        return clients[job[0] % 4].predict(handle_file(str(job[1])), api_name="/predict")["label"] is None

    with ThreadPoolExecutor(4) as pool:
        count = sum(pool.map(refused, enumerate(paths)))
    assert count <= 4, f"{count} of 400 drawn test digits refused"


@pytest.mark.slow
def test_an_unknown_model_gets_a_clear_error(client, test_digits, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    path = png_file(test_digits["mnist"][0][0], tmp_path, "digit.png")
    with pytest.raises((AppError, ValueError)) as raised:  # gradio_client may check the menu's choices itself
        client.predict(handle_file(str(path)), "mnist-huge", api_name="/predict")
    assert "mnist-huge" in str(raised.value)


@pytest.mark.slow
def test_private_events_are_not_callable(client):
    with pytest.raises(ValueError, match="Cannot find a function with `?api_name`?: /read_drawing"):
        client.predict(None, "mnist", api_name="/read_drawing")


@pytest.mark.slow
def test_hub_fallback_notice_and_source_are_shown(tmp_path):
    """A Hub model that cannot be fetched falls back to the bundled folder, and the header says so."""
    import os
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "VIT_MODELS": "nobody/mnist",
                        "NO_PROXY": "127.0.0.1,localhost"}
    with running_app(WEIGHTS, tmp_path / "app.log", env) as (url, _):
        with urllib.request.urlopen(url + "config", timeout=30) as response:
            config = json.load(response)
    components = {c.get("props", {}).get("elem_id") or str(c.get("props", {}).get("elem_classes")): c["props"]
                  for c in config["components"]}
    notice = next(props for key, props in components.items() if "notice" in key)
    assert notice["visible"] is True
    assert "Could not fetch nobody/mnist" in notice["value"] and "bundled copy" in notice["value"]
    assert "source:" in components["model-info"]["value"]


# -- MCP: a real client over Streamable HTTP ------------------------------------------------------------------------

async def mcp_session(url: str, work):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client
    async with streamablehttp_client(url + "gradio_api/mcp/") as (read, write, _):
        async with ClientSession(read, write) as session:
            await session.initialize()
            return await work(session)


def data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


@pytest.mark.slow
def test_an_mcp_client_lists_predict_and_explain_and_reads_a_label(app_url, test_digits, tmp_path):
    drawing, label = test_digits["mnist"][0]
    digit, blank = png_file(drawing, tmp_path, "digit.png"), png_file(Image.new("L", (99, 99), 255), tmp_path, "b.png")

    async def work(session):
        tools = (await session.list_tools()).tools
        answer = await session.call_tool("predict", {"image": data_url(digit)})
        refused = await session.call_tool("predict", {"image": data_url(blank), "model": "mnist-tiny"})
        explained = await session.call_tool("explain", {"image": data_url(digit), "model": "mnist-tiny"})
        return tools, answer, refused, explained

    tools, answer, refused, explained = asyncio.run(mcp_session(app_url, work))
    assert [tool.name for tool in tools] == ["predict", "explain"]
    assert "every class's confidence" in tools[0].description  # the function's docstring
    assert "the logit lens" in tools[1].description
    assert all(set(tool.inputSchema["properties"]) == {"image", "model"} for tool in tools)
    assert not explained.isError and "'logit_lens'" in explained.content[0].text
    assert not answer.isError
    text = answer.content[0].text
    assert f"'label': '{label}'" in text and text.count("'confidence'") == 10
    assert refused.isError and "Draw a digit first" in refused.content[0].text
