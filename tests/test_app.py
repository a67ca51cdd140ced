"""app.py: the models it starts with, and the app as a real server called as programs call it: /predict and
/explain through gradio_client and plain HTTP, the MCP endpoint through a real MCP client (Streamable HTTP).

One server for the module, as a Space on a bad day: `python app.py` serving the committed models with a broken
folder beside them, VIT_MODELS naming a Hub that is down, a Hub token set. What visitors, broken files, a Hub outage
and many clients at once do to it; the server tests are marked slow. The MNIST test digits come from the data_dir
fixture; the same pictures go through api.py in this process in test_api.py.
"""

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

from conftest import DATA_DIR, MNIST_TINY, ROOT
from model_files import broken_copy, config_with, truncated, weights_with
from picture_files import PICTURES, assert_friendly, ink_on_paper, write_picture
from server import free_port, running_app

WEIGHTS = ROOT / "weights"
SERVED = ["mnist", "fashion-mnist", "fashion-mnist-tiny", "mnist-fast", "mnist-tiny"]  # weights/, default first
MODELS = ("mnist", "mnist-tiny")  # the committed folders: several heads and one
TINY = "mnist-tiny"  # the model the digits fixture's digits are sure for
CLASSES = [str(i) for i in range(10)]
TOKEN = "hf_appserver" + "TEST5ecretT0ken0123456789"  # recognisable, so a leak is easy to spot


@dataclass
class Server:
    url: str
    process: object     # the subprocess.Popen of app.py
    log: Path
    uploads: Path       # GRADIO_TEMP_DIR: the only place uploads may land
    hub_endpoint: str   # VIT_MODELS points here, and nothing listens


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`python app.py` on a free port: the committed models (weights/ but the zoo, linked), a broken folder beside
    them, VIT_MODELS naming the default model on a Hub that is down, a token set, uploads in their own folder."""
    base = tmp_path_factory.mktemp("server")
    weights = base / "weights"
    weights.mkdir()
    for entry in WEIGHTS.iterdir():
        if entry.name != "zoo":
            (weights / entry.name).symlink_to(entry)
    broken_copy(MNIST_TINY, weights / "mnist-broken",
                {"model.safetensors": truncated(MNIST_TINY, "model.safetensors", 12000)})
    hub_endpoint = f"http://127.0.0.1:{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "VIT_", "GRADIO_"))}
    env |= {"GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(base / "uploads"), "HF_ENDPOINT": hub_endpoint,
            "HF_HOME": str(base / "hf_home"), "HF_TOKEN": TOKEN, "HF_HUB_DISABLE_TELEMETRY": "1",
            "VIT_MODELS": "alice/vit-mnist", "VIT_HUB_TIMEOUT": "5", "NO_PROXY": "127.0.0.1,localhost",
            "VIT_DATA_DIR": str(DATA_DIR)}  # for /train
    log = base / "app.log"
    with running_app(weights, log, env, prefix=("nice", "-n", "5")) as (url, process):  # nice execs python: same pid
        yield Server(url, process, log, base / "uploads", hub_endpoint)


def new_client(server: Server):
    from gradio_client import Client
    # ssl_verify=False: the client builds an SSL context for every upload otherwise (plain http here), measured
    # ten times the CPU of the server itself under load
    return Client(server.url, verbose=False, analytics_enabled=False, ssl_verify=False)


@pytest.fixture(scope="module")
def client(server):
    return new_client(server)


def ask(client, path: Path, model: str = TINY):
    from gradio_client import handle_file
    return client.predict(handle_file(str(path)), model, api_name="/predict")


def assert_still_serving(client, digits, folder: Path) -> None:
    drawing, label = digits[9]
    path = folder / "afterwards.png"
    drawing.save(path)
    assert ask(client, path)["label"] == str(label)


def page_config(server: Server) -> dict:
    with urllib.request.urlopen(server.url + "config", timeout=30) as response:
        return json.loads(response.read())


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
    with pytest.raises(SystemExit, match="no model to show") as stopped:
        app.load_models(tmp_path / "weights")
    assert "VIT_MODELS" not in str(stopped.value) and "no model folder that loads" in str(stopped.value)


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
def test_only_predict_explain_and_train_are_public(client):
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/predict", "/explain", "/train"]
    assert api["unnamed_endpoints"] == {}
    training = api["named_endpoints"]["/train"]["parameters"]
    assert [p["parameter_name"] for p in training] == ["dataset", "cut", "tile_size", "positions", "blocks", "heads",
                                                      "width", "seconds"]
    assert all(p["parameter_has_default"] for p in training)
    for endpoint in ("/predict", "/explain"):
        parameters = api["named_endpoints"][endpoint]["parameters"]
        assert parameters[0]["component"] == "File"
        assert parameters[1]["parameter_has_default"]  # the model: optional
    returned = {endpoint: [r["label"] for r in described["returns"]]
                for endpoint, described in api["named_endpoints"].items()}
    assert returned == {"/predict": ["answer"], "/explain": ["numbers"], "/train": ["trained model"]}


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


# Every kind of bad picture gets the documented answer (docs/api.md, "The error contract"): an error whose message says what to send.
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
    assert words in str(raised.value)
    assert_friendly(str(raised.value))
    drawing, label = test_digits["mnist"][0]
    assert client.predict(handle_file(str(png_file(drawing, tmp_path, "after.png"))), api_name="/predict")["label"] \
        == str(label)


@pytest.mark.slow
def test_a_refused_picture_leaves_no_traceback_in_the_server_log(server, client, tmp_path):
    # A refusal is an answer: a log that a class's blank drawings fill with tracebacks hides the server's faults.
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    path = tmp_path / "nothing-drawn.png"
    Image.new("L", (200, 120), 255).save(path)
    for _ in range(3):
        with pytest.raises(AppError, match="Draw a digit first"):
            client.predict(handle_file(str(path)), api_name="/predict")
    assert "Draw a digit first" not in server.log.read_text()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["noise", "photo-like", "nearly blank"])
def test_a_picture_that_is_not_a_digit_is_answered_as_such(client, tmp_path, kind):
    from gradio_client import handle_file

    from vit import probes
    path = png_file(probes.NOT_DIGITS[kind](np.random.default_rng(0)), tmp_path, f"{kind}.png")
    for model in MODELS:
        result = client.predict(handle_file(str(path)), model, api_name="/predict")
        assert result["label"] is None and result["answer"] in ("refused", "unsure"), (model, result["sentence"])
        if result["answer"] == "refused":  # else unsure between two: no digit is claimed either
            assert result["not_a_digit"].startswith("This does not look like a digit: ")
            assert result["sentence"].startswith(result["not_a_digit"])
        assert set(result["scores"]) == {"evidence", "ink_cover"} and len(result["confidences"]) == 10


@pytest.mark.slow
def test_at_most_one_percent_of_test_digits_drawn_on_a_page_are_refused(server, data_dir, tmp_path):
    """The "not a digit" check on digits as a visitor sends them, through the running server: 400 of them (the
    model folder's evaluation measures 1,000 in process, `evaluation.json` "not_a_digit"; this checks that the
    server's path refuses no more)."""
    from concurrent.futures import ThreadPoolExecutor

    from gradio_client import handle_file

    from vit import probes
    from vit.data import load_split
    split = load_split("mnist", "test", data_dir)
    rng = np.random.default_rng(7)
    paths = [png_file(probes.on_canvas(split.images[i, 0].numpy(), rng), tmp_path, f"{i}.png") for i in range(400)]

    def refused(share: int) -> int:
        """Every fourth picture, through a client of this thread's own: gradio_client can lose an answer when two
        threads wait on one Client's event stream (CancelledError)."""
        client = new_client(server)
        return sum(client.predict(handle_file(str(path)), api_name="/predict")["label"] is None
                   for path in paths[share::4])

    with ThreadPoolExecutor(4) as pool:
        count = sum(pool.map(refused, range(4)))
    assert count <= 4, f"{count} of 400 drawn test digits refused"


@pytest.mark.slow
def test_an_unknown_model_is_refused_naming_it_and_the_models_there_are(client, test_digits, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    path = png_file(test_digits["mnist"][0][0], tmp_path, "digit.png")
    with pytest.raises(AppError, match="mnist-huge") as raised:  # the server's model menu refuses it
        client.predict(handle_file(str(path)), "mnist-huge", api_name="/predict")
    assert all(name in str(raised.value) for name in SERVED), str(raised.value)


@pytest.mark.slow
def test_private_events_are_not_callable(client):
    with pytest.raises(ValueError, match="Cannot find a function with `?api_name`?: /read_drawing"):
        client.predict(None, "mnist", api_name="/read_drawing")


@pytest.mark.slow
def test_the_page_says_the_hub_is_down_and_serves_the_bundled_models_but_the_broken_one(server, client, digits,
                                                                                       tmp_path):
    components = page_config(server)["components"]
    notice = next(c["props"] for c in components if "notice" in (c["props"].get("elem_classes") or []))
    assert notice["visible"] and notice["value"].startswith(
        f"⚠️ Could not fetch alice/vit-mnist@main from the Hub (cannot connect to {server.hub_endpoint})")
    assert notice["value"].endswith("using the bundled copy.")
    info = next(c["props"] for c in components if c["props"].get("elem_id") == "model-info")
    assert "source: `weights/mnist`" in info["value"]
    choice = next(c["props"] for c in components if c["props"].get("elem_id") == "model-choice")
    assert [value for _, value in choice["choices"]] == SERVED  # the broken folder is not offered
    log = server.log.read_text()
    assert re.search(r"mnist-broken: the bundled folder is broken \(.*model\.safetensors.*\); left out", log), log
    assert_still_serving(client, digits, tmp_path)


# BAD_PICTURES and test_predict_transparent_png send the others through /predict.
SERVER_PICTURES = ["10000x10", "16-bit", "palette", "animated-gif", "exif-jpeg", "one-dot"]


@pytest.mark.slow
@pytest.mark.parametrize("name", SERVER_PICTURES)
def test_predict_reads_a_digit_in_any_format_or_refuses_the_picture_clearly(server, client, digits, tmp_path, name):
    from gradio_client.exceptions import AppError
    kind, expected = PICTURES[name][1]
    if kind == "digit":
        result = ask(client, write_picture(name, digits, tmp_path))
        assert result["label"] == str(digits[expected][1]) and len(result["confidences"]) == 10
    else:
        with pytest.raises(AppError) as raised:
            ask(client, write_picture(name, digits, tmp_path))
        assert expected in str(raised.value)
        assert_friendly(str(raised.value))
    assert_still_serving(client, digits, tmp_path)


def peak_rss(pid: int) -> int:
    """VmHWM, the process's peak resident memory, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc: not Linux?")


@pytest.mark.slow
def test_predict_8000x8000_picture_stays_within_memory(server, client, digits, tmp_path):
    """64 megapixels: decoded once (64 MB in L) and shrunk before any float copy; 1 GB would mean copies of copies."""
    path = write_picture("8000x8000", digits, tmp_path)
    pid = server.process.pid
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS: a clean measurement
    except OSError:
        pass  # not allowed here: growth of the peak is still an upper bound
    before = peak_rss(pid)
    assert ask(client, path)["label"] == str(digits[0][1])
    growth = peak_rss(pid) - before
    print(f"peak RSS growth for 8000x8000: {growth / 1e6:.0f} MB")
    assert growth < 1e9
    assert_still_serving(client, digits, tmp_path)


@pytest.mark.slow
def test_32_visitors_at_once_each_get_their_own_answer(server, digits):
    """32 gradio clients x 20 uploads, each client its own digit (labels 0..9 in turn): no error, no cross-talk."""
    from gradio_client import handle_file
    folder = server.log.parent / "visitors"
    folder.mkdir(exist_ok=True)

    def visitor(number: int) -> list[str]:
        drawing, label = digits[number]
        path = folder / f"visitor-{number}.png"
        drawing.save(path)
        visitor_client, problems = new_client(server), []
        for attempt in range(20):
            try:
                answer = visitor_client.predict(handle_file(str(path)), TINY, api_name="/predict")["label"]
                if answer != str(label):
                    problems.append(f"visitor {number} (a {label}), call {attempt}: got {answer}")
            except Exception as error:
                problems.append(f"visitor {number}, call {attempt}: {type(error).__name__}: {error}")
        return problems

    with ThreadPoolExecutor(max_workers=32) as pool:
        problems = [problem for found in pool.map(visitor, range(32)) for problem in found]
    assert problems == [], f"{len(problems)} of 640 calls went wrong: {problems[:5]}"


# -- what a visitor must never get: the token, a file on the server, a trace of an upload in the repo ------------

@pytest.mark.slow
def test_the_hub_token_is_never_shown(server, client):
    api = json.dumps(client.view_api(print_info=False, return_format="dict"))
    with urllib.request.urlopen(server.url, timeout=30) as response:
        page = response.read().decode()
    assert TOKEN not in server.log.read_text() and TOKEN not in json.dumps(page_config(server))
    assert TOKEN not in page and TOKEN not in api


def content(path: Path) -> bytes:
    """A file's bytes, or none if it went meanwhile (another run's *.tmp checkpoint, a cache file)."""
    try:
        return path.read_bytes()
    except OSError:
        return b""


def files_changed_since(root: Path, started: float) -> list[Path]:
    """Files under root modified since `started`, ignored ones included (.git and .venv aside)."""
    changed = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [name for name in subfolders if not (folder == str(root) and name in (".git", ".venv"))]
        for name in names:
            path = Path(folder, name)
            try:
                if path.stat().st_mtime >= started:
                    changed.append(path)
            except OSError:  # removed meanwhile
                pass
    return changed


@pytest.mark.slow
def test_an_upload_is_only_read_and_stays_in_gradios_temp_folder(server, client, digits, tmp_path):
    """Nothing derived from the upload lands in the repo (ignored folders included): only in GRADIO_TEMP_DIR.

    Compared by a tag inside the file rather than `git status` before/after: others edit this working tree while
    the tests run, and their changes must not fail this test.
    """
    tag = f"upload-{uuid.uuid4().hex}"
    drawing, label = digits[6]
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", tag)
    path = tmp_path / f"{tag}.png"
    drawing.save(path, pnginfo=info)
    started = time.time() - 1  # mtime granularity
    assert ask(client, path)["label"] == str(label)
    leaked = [p for p in files_changed_since(ROOT, started) if tag in p.name or tag.encode() in content(p)]
    assert leaked == []
    kept = [p for p in server.uploads.rglob("*") if p.is_file() and tag.encode() in p.read_bytes()]
    assert kept, "the upload is not in GRADIO_TEMP_DIR either: was the search looking in the right place?"


def call_predict_raw(server: Server, file_value) -> str:
    """/predict through Gradio's HTTP API, as any program may call it; the event stream as text."""
    request = urllib.request.Request(server.url + "gradio_api/call/predict", method="POST",
                                     data=json.dumps({"data": [file_value, TINY]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        event = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{server.url}gradio_api/call/predict/{event}", timeout=60) as response:
        return response.read().decode()


@pytest.mark.slow
def test_local_paths_from_a_client_are_refused(server, client, digits, tmp_path):
    """A caller naming a file on the server instead of uploading one gets an error, never the file's content."""
    from gradio_client.exceptions import AppError
    drawing, label = digits[5]
    outside = server.uploads.parent / "outside.png"  # a readable digit on the server, next to the upload folder
    drawing.save(outside)
    secrets = {"/etc/passwd": "root:", str(outside): None, "weights/mnist-tiny/config.json": "tile_size",
               "app.py": "gradio", f"{server.uploads}/../outside.png": None,
               f"{server.uploads}/../../../../../../etc/passwd": "root:"}
    for path, content in secrets.items():
        for value in ({"path": path, "meta": {"_type": "gradio.FileData"}}, {"path": path}, path):
            stream = call_predict_raw(server, value)
            assert "event: error" in stream and "event: complete" not in stream, (value, stream)
            assert (content is None or content not in stream) and f'"label": "{label}"' not in stream
        with pytest.raises(AppError) as raised:  # gradio_client passes a dict without "meta" on unchanged
            client.predict({"path": path}, TINY, api_name="/predict")
        assert content is None or content not in str(raised.value)
        try:
            with urllib.request.urlopen(server.url + "gradio_api/file=" + urllib.parse.quote(path), timeout=30) as r:
                served = r.status, r.read().decode(errors="replace")
        except urllib.error.HTTPError as error:
            served = error.code, error.read().decode(errors="replace")
        assert served[0] == 403 and (content is None or content not in served[1]), (path, served)  # each exists
    assert_still_serving(client, digits, tmp_path)


@pytest.mark.slow
def test_train_returns_a_curve_and_an_accuracy_and_its_model_answers_that_caller(client, test_digits, tmp_path):
    """/train for ten seconds, then /predict and /explain with the model name it returned; the name is refused
    with a letter changed, and a choice that cannot train is refused with a sentence."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    trained = client.predict("mnist", "tiles", 7, "learned", 1, 2, 32, 10, api_name="/train")
    assert len(trained["curve"]) >= 3 and trained["curve"][-1]["val_accuracy"] > trained["curve"][0]["val_accuracy"]
    assert trained["curve"][-1]["val_accuracy"] == trained["val_accuracy"]  # the last point is the end
    assert trained["test_accuracy"] > 0.3 and trained["seconds"] >= 10 and not trained["stopped"]  # chance: 0.1
    assert trained["model"].startswith("tile-7-1-block-")
    drawing, _ = test_digits["mnist"][0]
    path = png_file(drawing, tmp_path, "digit.png")
    answer = ask(client, path, trained["model"])
    assert len(answer["confidences"]) == 10
    explained = client.predict(handle_file(str(path)), trained["model"], api_name="/explain")
    assert explained["model"] == trained["model"] and explained["tile_size"] == 7
    with pytest.raises(AppError, match="There is no model"):
        ask(client, path, trained["model"][:-1] + ("0" if trained["model"][-1] != "0" else "1"))
    with pytest.raises(AppError, match="does not divide the 28-pixel picture"):
        client.predict("mnist", "tiles", 5, "learned", 1, 2, 32, 10, api_name="/train")


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
def test_an_mcp_client_lists_predict_and_explain_and_reads_a_label(server, test_digits, tmp_path):
    drawing, label = test_digits["mnist"][0]
    digit, blank = png_file(drawing, tmp_path, "digit.png"), png_file(Image.new("L", (99, 99), 255), tmp_path, "b.png")

    async def work(session):
        tools = (await session.list_tools()).tools
        answer = await session.call_tool("predict", {"image": data_url(digit)})
        refused = await session.call_tool("predict", {"image": data_url(blank), "model": "mnist-tiny"})
        explained = await session.call_tool("explain", {"image": data_url(digit), "model": "mnist-tiny"})
        # a name outside the menu reaches the app, as one /train returned would: no enum of the menu's names
        unknown = await session.call_tool("predict", {"image": data_url(digit), "model": "no-such-model"})
        return tools, answer, refused, explained, unknown

    tools, answer, refused, explained, unknown = asyncio.run(mcp_session(server.url, work))
    assert unknown.isError and "There is no model 'no-such-model'" in unknown.content[0].text
    assert [tool.name for tool in tools] == ["predict", "explain", "train"]
    assert "every class's confidence" in tools[0].description  # the function's docstring
    assert "the logit lens" in tools[1].description
    assert all(set(tool.inputSchema["properties"]) == {"image", "model"} for tool in tools[:2])
    assert "keep it for you" in tools[2].description
    # the Returns sections read as sentences (gradio alone joins their lines with commas)
    assert "known only to whoever holds it" in tools[2].description and ", only" not in tools[2].description
    assert {"cut", "tile_size", "seconds"} <= set(tools[2].inputSchema["properties"])
    assert not explained.isError and "'logit_lens'" in explained.content[0].text
    assert not answer.isError
    text = answer.content[0].text
    assert f"'label': '{label}'" in text and text.count("'confidence'") == 10
    assert refused.isError and "Draw a digit first" in refused.content[0].text
