"""Push to and pull from a stand-in Hub (tests/hub_server.py) with the real huggingface_hub client.

train.py and the loader run in subprocesses: HF_ENDPOINT, HF_HOME and HF_TOKEN must be set before
huggingface_hub is imported, and a subprocess shows exactly what a user would see. Nothing is patched.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from dataclasses import asdict

import pytest
import torch
import yaml

from hub_server import StandInHub, Token
from model_files import config_with, truncated, weights_with
from vit import ViT
from vit.bundle import load_folder, read_evaluation
from vit.data import Split
from vit.bundle import CALIBRATION, ONNX
from vit.hub import MODEL_FILES, REPO_ID, hub_timeout, model_name, parse_spec
from vit.evaluate import TrainingFacts, write_model_folder
from vit.recipe import Recipe

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "hf_vitexplainerTEST5ecretT0ken0123456789"  # recognisable, so a leak is easy to find
LOADER = """
import json, logging, sys
import torch
torch.set_num_threads(1)
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
from vit.hub import load_models
torch.manual_seed(0)
batch = torch.rand(4, 1, 28, 28)
bundles = load_models(json.loads(sys.argv[1]), weights_dir=sys.argv[2])
with torch.no_grad():
    print(json.dumps([{"name": b.name, "source": b.source, "notice": b.notice, "logits": b.model(batch).tolist()}
                      for b in bundles]))
"""


def make_folder(folder: Path, seed: int) -> Path:
    """An untrained tiny model folder, evaluated on 200 synthetic images: seconds, and no dataset needed."""
    torch.manual_seed(seed)
    model = ViT(tile_size=7, embed_size=16, num_layers=1, num_heads=2, mlp_size=32).eval()
    split = Split(torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8), torch.arange(200) % 10)
    facts = TrainingFacts("mnist", [], 0.0, "python train.py --preset tiny", "cpu", asdict(Recipe(epochs=1)))
    write_model_folder(folder, model, split, facts)
    return folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    """The folder the tests push or serve from the stand-in Hub."""
    return make_folder(tmp_path_factory.mktemp("hub-model") / "mnist", seed=0)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory) -> Path:
    """A weights/ folder holding a bundled 'mnist' that differs from the Hub copy."""
    weights = tmp_path_factory.mktemp("weights")
    make_folder(weights / "mnist", seed=1)
    return weights


@pytest.fixture
def hub():
    """A fresh stand-in Hub that knows one write token, alice's."""
    with StandInHub({TOKEN: Token("alice")}) as server:
        yield server


def folder_files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in MODEL_FILES if (folder / name).is_file()}


def hub_env(endpoint: str, home: Path, token: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a subprocess that talks to `endpoint`, with its own HF cache and nothing of ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING", "VIT_"))}
    env |= {"HF_ENDPOINT": endpoint, "HF_HOME": str(home), "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
            "VIT_HUB_TIMEOUT": "60", **extra}  # generous: a loaded CI machine must not fall back by accident
    if token is not None:
        env["HF_TOKEN"] = token
    return env


def run_train(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def pull(specs: list[str], env: dict, weights: Path) -> tuple[list[dict], str]:
    """load_models(specs) in a subprocess: (name, source, notice and logits on a fixed batch per model, log)."""
    result = subprocess.run([sys.executable, "-c", LOADER, json.dumps(specs), str(weights)], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def local_logits(folder: Path) -> torch.Tensor:
    torch.manual_seed(0)
    batch = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        return load_folder(folder).model(batch)


def closed_port_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once the socket is closed


# -- names and settings -------------------------------------------------------------------------------------

def test_specs_parse_into_repo_and_revision():
    assert parse_spec("someone/vit-mnist") == ("someone/vit-mnist", "main")
    assert parse_spec(" someone/vit-mnist@v2 ") == ("someone/vit-mnist", "v2")
    assert model_name("someone/vit-mnist") == "mnist" and model_name("someone/mnist-tiny") == "mnist-tiny"
    for bad in ("mnist", "a/b/c", "someone/vit-mnist@", "/x"):
        with pytest.raises(ValueError, match="owner/name"):
            parse_spec(bad)


def test_hub_timeout_is_bounded_and_configurable(monkeypatch):
    monkeypatch.delenv("VIT_HUB_TIMEOUT", raising=False)
    assert hub_timeout() == 10.0
    monkeypatch.setenv("VIT_HUB_TIMEOUT", "2.5")
    assert hub_timeout() == 2.5


# -- push -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_and_pushed(tmp_path_factory, data_dir):
    """`train.py --preset tiny --epochs 1 --push` once, against its own stand-in Hub, in an empty folder."""
    workdir = tmp_path_factory.mktemp("train-push")
    with StandInHub({TOKEN: Token("alice")}) as server:
        env = hub_env(server.endpoint, workdir / "hf_home", TOKEN)
        result = run_train(["--preset", "tiny", "--epochs", "1", "--data-dir", str(data_dir), "--output", "model",
                            "--no-progress", "--faithfulness", "20", "--push", "--repo-id", "alice/vit-mnist"],
                           env, workdir)
        yield server, result, workdir


@pytest.mark.slow  # trains for an epoch
def test_train_push_then_pull_gives_identical_logits(trained_and_pushed, tmp_path):
    server, result, workdir = trained_and_pushed
    assert result.returncode == 0, result.stderr
    expected = folder_files(workdir / "model")
    assert CALIBRATION in expected and {name: server.files("alice/vit-mnist")[name] for name in expected} == expected
    bundles, _ = pull(["alice/vit-mnist"], hub_env(server.endpoint, tmp_path / "hf_home"), tmp_path)
    assert [(b["name"], b["source"], b["notice"]) for b in bundles] == [("mnist", "alice/vit-mnist@main", None)]
    assert torch.equal(torch.tensor(bundles[0]["logits"]), local_logits(workdir / "model"))
    measured = read_evaluation(workdir / "model").faithfulness  # --faithfulness 20
    assert measured.scoreboard.count == 20 and set(measured.verdicts) == {
        "attention", "rollout", "saliency", "integrated gradients", "occlusion", "relevance"}


@pytest.mark.slow  # shares the training run above
def test_token_is_never_printed_or_written(trained_and_pushed):
    _, result, workdir = trained_and_pushed
    assert result.returncode == 0, result.stderr
    assert TOKEN not in result.stdout and TOKEN not in result.stderr
    written = [path for path in workdir.rglob("*") if path.is_file()]
    assert any(path.suffix == ".safetensors" for path in written)  # the model folder and the checkpoint
    assert [path for path in written if TOKEN.encode() in path.read_bytes()] == []


def test_push_only_pushes_the_folder_as_written_and_a_missing_onnx_first(hub, model_folder, tmp_path):
    """An older folder without model.onnx gets it written from its weights first, and pushed with the rest."""
    older = shutil.copytree(model_folder, tmp_path / "older")
    (older / ONNX).unlink()
    result = run_train(["--push-only", str(older), "--repo-id", "alice/vit-mnist", "--revision", "dev"],
                       hub_env(hub.endpoint, tmp_path / "hf_home", TOKEN), tmp_path)
    assert result.returncode == 0, result.stderr
    pushed = hub.files("alice/vit-mnist", "dev")
    expected = folder_files(older)
    assert {name: pushed[name] for name in expected} == expected
    assert pushed[ONNX] == (model_folder / ONNX).read_bytes()  # the same export as the folder's writer made
    card = pushed["README.md"].decode()  # training's card, not the mixin's default one
    assert all(field in card for field in ("model-index:", "datasets:", "pipeline_tag:", "library_name:"))


def test_push_without_token_fails_before_training(hub, data_dir, tmp_path):
    result = run_train(["--preset", "tiny", "--epochs", "1", "--data-dir", str(data_dir), "--output", "model",
                        "--push", "--repo-id", "alice/vit-mnist"], hub_env(hub.endpoint, tmp_path / "hf_home"),
                       tmp_path)
    assert result.returncode == 2 and "token" in result.stderr and "training mnist-tiny" not in result.stderr
    assert not (tmp_path / "model").exists() and not (tmp_path / "checkpoints").exists()


def test_push_with_wrong_token_fails_before_training(hub, data_dir, tmp_path):
    result = run_train(["--preset", "tiny", "--epochs", "1", "--data-dir", str(data_dir), "--output", "model",
                        "--push", "--repo-id", "alice/vit-mnist"],
                       hub_env(hub.endpoint, tmp_path / "hf_home", "hf_not_a_real_token"), tmp_path)
    assert result.returncode == 2 and "token was rejected" in result.stderr
    assert "hf_not_a_real_token" not in result.stderr
    assert not (tmp_path / "model").exists() and not (tmp_path / "checkpoints").exists()


# -- pull and fall back ---------------------------------------------------------------------------------------

def test_missing_repo_falls_back_to_the_bundled_copy(hub, weights_dir, tmp_path):
    bundles, log = pull(["alice/vit-mnist", "alice/vit-gone"], hub_env(hub.endpoint, tmp_path / "hf_home"),
                        weights_dir)
    assert [(b["name"], b["source"]) for b in bundles] == [("mnist", str(weights_dir / "mnist"))]  # no bundled 'gone'
    assert bundles[0]["notice"] == ("Could not fetch alice/vit-mnist@main from the Hub (repo not found); "
                                    "using the bundled copy.")
    assert f"using the bundled folder {weights_dir / 'mnist'}" in log and "gone: " in log


def test_unreachable_hub_falls_back(weights_dir, tmp_path):
    bundles, log = pull(["alice/vit-mnist"], hub_env(closed_port_endpoint(), tmp_path / "hf_home"), weights_dir)
    assert bundles[0]["source"] == str(weights_dir / "mnist") and "cannot connect" in bundles[0]["notice"]


def test_http_500_falls_back(hub, model_folder, weights_dir, tmp_path):
    hub.add_repo("alice/vit-mnist", folder_files(model_folder))
    hub.fail_status = 500
    bundles, _ = pull(["alice/vit-mnist"], hub_env(hub.endpoint, tmp_path / "hf_home"), weights_dir)
    assert bundles[0]["source"] == str(weights_dir / "mnist") and "HTTP 500" in bundles[0]["notice"]


def test_slow_hub_falls_back_after_the_timeout(hub, model_folder, weights_dir, tmp_path):
    hub.add_repo("alice/vit-mnist", folder_files(model_folder))
    hub.delay = 30.0  # far beyond VIT_HUB_TIMEOUT: only a bounded wait gets a result at all
    bundles, _ = pull(["alice/vit-mnist"], hub_env(hub.endpoint, tmp_path / "hf_home", VIT_HUB_TIMEOUT="1"),
                      weights_dir)
    assert bundles[0]["source"] == str(weights_dir / "mnist") and "no answer within 1 s" in bundles[0]["notice"]


# repo name -> (the folder's files replaced on the Hub (None: missing), words the notice must hold)
BROKEN_COPIES = {
    "truncated": (lambda folder: {"model.safetensors": truncated(folder, "model.safetensors", 1000)},
                  ["model.safetensors"]),
    "missing-file": (lambda folder: {"evaluation.json": None}, ["evaluation.json is missing"]),
    "other-config": (lambda folder: {"config.json": config_with(folder, embed_size=32)},
                     ["model.safetensors", "config.json implies"]),
    "missing-tensor": (lambda folder: {"model.safetensors": weights_with(folder, lambda t: {
        k: v for k, v in t.items() if k != "head.bias"})}, ["model.safetensors", "head.bias"]),
    "extra-tensor": (lambda folder: {"model.safetensors": weights_with(folder, lambda t: t | {
        "extra.weight": torch.zeros(2)})}, ["model.safetensors", "extra.weight"]),
    "float16": (lambda folder: {"model.safetensors": weights_with(folder, lambda t: {
        k: v.half() for k, v in t.items()})}, ["model.safetensors", "float16"]),
    "garbage": (lambda folder: {"model.safetensors": b"\xff" * 4000}, ["model.safetensors", "header"]),
}


@pytest.fixture(scope="module")
def broken_copies(model_folder, tmp_path_factory):
    """One pull, with a token, of a Hub repo per broken copy (each with a good bundled folder of its name) and of a
    revision that is not there: (the pulled models by name, the loader's log, the weights folder)."""
    base = tmp_path_factory.mktemp("broken-copies")
    weights, specs = base / "weights", []
    with StandInHub({TOKEN: Token("alice")}) as server:
        for name, (changes, _) in BROKEN_COPIES.items():
            files = folder_files(model_folder) | changes(model_folder)
            server.add_repo(f"alice/vit-{name}", {k: v for k, v in files.items() if v is not None})
            shutil.copytree(model_folder, weights / name)
            specs.append(f"alice/vit-{name}")
        server.add_repo("alice/vit-other-revision", folder_files(model_folder))
        shutil.copytree(model_folder, weights / "other-revision")
        specs.append("alice/vit-other-revision@no-such-branch")
        bundles, log = pull(specs, hub_env(server.endpoint, base / "hf_home", TOKEN), weights)
    return {bundle["name"]: bundle for bundle in bundles}, log, weights


@pytest.mark.parametrize("name", list(BROKEN_COPIES))
def test_a_broken_hub_copy_falls_back_and_the_notice_says_which_file_and_why(broken_copies, name):
    bundles, _, weights = broken_copies
    notice = bundles[name]["notice"]
    assert bundles[name]["source"] == str(weights / name)  # the bundled copy is served
    assert notice.startswith(f"Could not fetch alice/vit-{name}@main from the Hub (")
    assert notice.endswith("using the bundled copy.")
    assert all(words in notice for words in BROKEN_COPIES[name][1]), notice


def test_a_missing_revision_falls_back_with_a_notice(broken_copies):
    bundles, _, weights = broken_copies
    assert (bundles["other-revision"]["source"], bundles["other-revision"]["notice"]) == (
        str(weights / "other-revision"),
        "Could not fetch alice/vit-other-revision@no-such-branch from the Hub (revision not found); using the bundled "
        "copy.")


def test_token_is_not_in_the_loaders_output(broken_copies):
    bundles, log, _ = broken_copies
    assert TOKEN not in json.dumps(bundles) and TOKEN not in log


def test_offline_loads_from_the_cache(hub, model_folder, weights_dir, tmp_path):
    hub.add_repo("alice/vit-mnist", folder_files(model_folder), branch="v1")
    endpoint = hub.endpoint
    pull(["alice/vit-mnist@v1"], hub_env(endpoint, tmp_path / "hf_home"), weights_dir)  # fills the cache
    hub.close()
    bundles, log = pull(["alice/vit-mnist@v1"], hub_env(endpoint, tmp_path / "hf_home", HF_HUB_OFFLINE="1"),
                        weights_dir)
    assert [(b["name"], b["source"], b["notice"]) for b in bundles] == [("mnist", "alice/vit-mnist@v1", None)]
    assert torch.equal(torch.tensor(bundles[0]["logits"]), local_logits(model_folder))
    assert "alice/vit-mnist@v1" in log and "from the local cache" in log


# -- the Space ------------------------------------------------------------------------------------------------

def test_readme_front_matter_makes_a_gradio_space():
    readme = ROOT / "README.md"
    assert readme.is_file(), "README.md is missing"
    text = readme.read_text()
    assert text.startswith("---\n"), "README.md does not start with YAML front matter"
    front = yaml.safe_load(text.split("---\n", 2)[1])
    gradio_pin = re.search(r"^gradio(?:\[mcp\])?==(\S+)", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert front["sdk"] == "gradio" and front["sdk_version"] == gradio_pin == "6.31.0"
    assert front["python_version"] == "3.11"  # what the tests run on; a string: YAML reads 3.11 unquoted as a float
    assert front["app_file"] == "app.py" and (ROOT / "app.py").is_file()
    assert front["title"] and front["emoji"] and front["license"] == "mit"
    assert 0 < len(front["short_description"]) <= 60  # the Hub's limit
    assert "ylecun/mnist" in front["datasets"]
    assert front["models"] and all(REPO_ID.fullmatch(model) for model in front["models"])
