"""The app as a real server: `python app.py` in a subprocess, its public endpoint called with gradio_client.

The model folders are trained here, small and quick (train.py in a temporary working directory, so its
checkpoints never touch the repo's), and the MNIST test digits come from the data_dir fixture.
"""

import os
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ROOT
from vit.bench import running_app

pytestmark = pytest.mark.slow

# Two architectures so that every view is exercised with several heads and with one: "mnist" (2 layers, 2 heads)
# is the app's default, "mnist-tiny" is the notebook's model (2 layers, 1 head), both with 7×7 tiles to stay
# quick. Three epochs of the tiny recipe reach about 88 %, enough for clear digits (one epoch is all warm-up).
MODELS = {"mnist": ["--num-heads", "2"], "mnist-tiny": []}
CACHE_VARIABLE = "VIT_TEST_WEIGHTS"  # a folder to keep these models between test sessions (development)


def model_folders(base: Path, data_dir: Path) -> Path:
    """Train the small model folders once (both at once) under `base`, or $VIT_TEST_WEIGHTS; the weights folder."""
    base = Path(os.environ.get(CACHE_VARIABLE) or base)
    weights = base / "weights"
    runs = {}
    for name, options in MODELS.items():
        if (weights / name / "evaluation.safetensors").is_file():
            continue
        command = [sys.executable, str(ROOT / "train.py"), "--preset", "tiny", "--epochs", "3", *options,
                   "--data-dir", str(data_dir), "--name", f"test-{name}", "--output", str(weights / name),
                   "--no-progress"]
        base.mkdir(parents=True, exist_ok=True)  # the working directory: train.py's checkpoints/ go here
        runs[name] = subprocess.Popen(command, cwd=base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for name, run in runs.items():
        output, _ = run.communicate(timeout=1800)
        assert run.returncode == 0, f"training the test model {name} failed:\n{output[-2000:]}"
    return weights


@contextmanager
def serve(weights: Path, log: Path, **env_overrides: str):
    """`python app.py` on a free port until the block ends; yields its URL."""
    env = os.environ | {"GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1", "VIT_MODELS": "",
                        "NO_PROXY": "127.0.0.1,localhost"} | env_overrides
    with running_app(weights, log, env) as (url, _):
        yield url


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, data_dir) -> Path:
    return model_folders(tmp_path_factory.getbasetemp(), data_dir)


@pytest.fixture(scope="module")
def app_url(weights_dir, tmp_path_factory):
    with serve(weights_dir, tmp_path_factory.mktemp("server") / "app.log") as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    from gradio_client import Client
    return Client(app_url, verbose=False, analytics_enabled=False)


@pytest.fixture(scope="module")
def test_digits(data_dir, weights_dir):
    """Per model: MNIST test digits its own pipeline (preprocess + model) reads right and surely, as PNG drawings."""
    from vit.bundle import load_folder
    from vit.data import load_split
    from vit.preprocess import to_model_input

    split = load_split("mnist", "test", data_dir)
    chosen = {}
    for name in MODELS:
        model = load_folder(weights_dir / name).model
        picks = []
        for index in range(200):
            drawing = ink_on_paper(split.images[index, 0].numpy())
            with torch.no_grad():
                probabilities = model(to_model_input(drawing)[None, None]).softmax(-1)[0]
            label = int(split.labels[index])
            sure = int(probabilities.argmax()) == label and probabilities[label] > 0.9
            if sure and label not in [pick[1] for pick in picks]:
                picks.append((drawing, label))
            if len(picks) == 3:
                break
        assert len(picks) == 3, f"{name} reads too few test digits surely; is its training broken?"
        chosen[name] = picks
    return chosen


def ink_on_paper(digit: np.ndarray, size: int = 280) -> Image.Image:
    """An MNIST digit (light ink on black, 28×28) as someone would draw it: black ink on white, large."""
    return Image.fromarray(255 - digit).resize((size, size), Image.Resampling.BILINEAR)


def png_file(picture: Image.Image, folder: Path, name: str) -> Path:
    path = folder / name
    picture.save(path)
    return path


def test_import_starts_nothing_and_help_documents_the_options():
    """One interpreter (starting gradio and torch is slow here): import app, then ask for --help."""
    code = ("import threading, app; "
            "assert threading.active_count() == 1, threading.enumerate(); "
            "assert not hasattr(app, 'demo'); "
            "app.parse_args(['--help'])")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    for text in ("--host", "--port", "--weights-dir", "GRADIO_SERVER_NAME", "GRADIO_SERVER_PORT", "7860"):
        assert text in run.stdout


def test_only_predict_is_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/predict"]
    assert api["unnamed_endpoints"] == {}
    parameters = api["named_endpoints"]["/predict"]["parameters"]
    assert parameters[0]["component"] == "File"
    assert parameters[1]["parameter_has_default"]  # the model: optional


@pytest.mark.parametrize("model", list(MODELS))
def test_predict_reads_real_test_digits(client, test_digits, tmp_path, model):
    from gradio_client import handle_file
    for number, (drawing, label) in enumerate(test_digits[model]):
        path = png_file(drawing, tmp_path, f"digit-{number}.png")
        result = client.predict(handle_file(str(path)), model, api_name="/predict")
        assert result["label"] == str(label)
        assert len(result["confidences"]) >= 3
        assert result["confidences"][0]["confidence"] > 0.5


def test_predict_with_only_the_file_uses_the_default_model(client, test_digits, tmp_path):
    from gradio_client import handle_file
    drawing, label = test_digits["mnist"][0]
    result = client.predict(handle_file(str(png_file(drawing, tmp_path, "digit.png"))), api_name="/predict")
    assert result["label"] == str(label)


def test_predict_transparent_png(client, test_digits, tmp_path):
    """Black strokes on a transparent sheet, as many drawing programs save them."""
    from gradio_client import handle_file
    drawing, label = test_digits["mnist"][1]
    ink = 255 - np.asarray(drawing)  # (H, W), ink bright
    rgba = np.zeros((*ink.shape, 4), np.uint8)
    rgba[..., 3] = ink  # black, opaque where the ink is
    path = png_file(Image.fromarray(rgba, "RGBA"), tmp_path, "transparent.png")
    assert client.predict(handle_file(str(path)), api_name="/predict")["label"] == str(label)


def test_predict_very_large_image(client, test_digits, tmp_path):
    from gradio_client import handle_file
    drawing, label = test_digits["mnist"][2]
    path = png_file(drawing.resize((4000, 4000), Image.Resampling.BILINEAR), tmp_path, "large.png")
    started = time.perf_counter()
    result = client.predict(handle_file(str(path)), api_name="/predict")
    assert time.perf_counter() - started < 30
    assert result["label"] == str(label)


@pytest.mark.parametrize("picture", [Image.new("L", (280, 280), 255), Image.new("RGBA", (280, 280), (0, 0, 0, 0)),
                                     Image.new("L", (1, 1), 0)], ids=["white", "transparent", "1x1"])
def test_predict_without_a_digit_is_not_confident(client, tmp_path, picture):
    from gradio_client import handle_file
    result = client.predict(handle_file(str(png_file(picture, tmp_path, "blank.png"))), api_name="/predict")
    assert not result.get("confidences")  # a message, no probabilities
    assert result["label"] and not result["label"].isdigit()


@pytest.mark.parametrize("content, name", [(b"just some text, not a picture\n", "notes.png"), (b"", "empty.png"),
                                           (b"\x89PNG\r\n\x1a\n\x00\x00", "truncated.png")])
def test_predict_non_image_gives_a_clear_error_and_the_server_keeps_serving(client, tmp_path, test_digits, content,
                                                                           name):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(AppError) as raised:
        client.predict(handle_file(str(path)), api_name="/predict")
    message = str(raised.value)
    assert "picture" in message.lower() or "file" in message.lower()
    assert "Traceback" not in message
    drawing, label = test_digits["mnist"][0]
    result = client.predict(handle_file(str(png_file(drawing, tmp_path, "after.png"))), api_name="/predict")
    assert result["label"] == str(label)


def test_private_events_are_not_callable(client):
    with pytest.raises(Exception):
        client.predict(None, "mnist", api_name="/from_sketch")


def test_predict_round_trip_is_fast(client, test_digits, tmp_path):
    from gradio_client import handle_file
    path = png_file(test_digits["mnist"][0][0], tmp_path, "timed.png")
    client.predict(handle_file(str(path)), api_name="/predict")  # warm
    started = time.perf_counter()
    for _ in range(5):
        client.predict(handle_file(str(path)), api_name="/predict")
    per_call = (time.perf_counter() - started) / 5
    print(f"/predict round trip: {per_call * 1000:.0f} ms")
    assert per_call < 5


def test_hub_fallback_notice_and_source_are_shown(weights_dir, tmp_path):
    """A Hub model that cannot be fetched falls back to the bundled folder, and the header says so."""
    import json
    with serve(weights_dir, tmp_path / "app.log", VIT_MODELS="nobody/mnist") as url:
        with urllib.request.urlopen(url + "config", timeout=30) as response:
            config = json.load(response)
    components = {c.get("props", {}).get("elem_id") or str(c.get("props", {}).get("elem_classes")): c["props"]
                  for c in config["components"]}
    notice = next(props for key, props in components.items() if "notice" in key)
    assert notice["visible"] is True
    assert "Could not fetch nobody/mnist" in notice["value"] and "bundled copy" in notice["value"]
    assert "source:" in components["model-info"]["value"]
