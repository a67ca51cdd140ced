"""Shared fixtures: a tiny model config, the data folder, the committed models (registered and put back), one
thread for torch, train.py's main run in the test's process (usage errors), and real MNIST digits as visitors draw
them."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("VIT_DATA_DIR", ROOT.parent / "shared" / "data"))
MNIST_TINY = ROOT / "weights" / "mnist-tiny"  # committed: the tests that need a trained model need no training

torch.set_num_threads(1)  # measured: two threads on two busy cores is many times slower for tiny models

TINY = dict(tile_size=7, embed_size=16, num_layers=2, num_heads=2, mlp_size=32)


@pytest.fixture
def tiny_model():
    """A small untrained ViT, seeded, in eval mode."""
    torch.manual_seed(0)
    from vit import ViT
    return ViT(**TINY).eval()


@pytest.fixture
def torch_threads():
    """For a test that sets torch's thread count: the count it had is put back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# -- the loaded models ---------------------------------------------------------------------------------------------

@contextmanager
def registered(models: Iterable | None = None):
    """Register `models` as the app does (the first is the default) for the block, then put back the models and the
    Compare tab's zoo that were registered before: whatever the block registered meanwhile (app.build_demo
    registers both) is undone."""
    from vit import registry as loaded
    before, zoo_before = [loaded.bundle(name) for name in loaded.model_names()], loaded.zoo()
    if models is not None:
        loaded.use_models(list(models))
    try:
        yield
    finally:
        loaded.use_models(before)
        loaded.use_zoo(zoo_before)


@pytest.fixture(scope="session")
def committed_models() -> dict:
    """The committed model folders of weights/, loaded once as the app loads them, by name (default first)."""
    import app
    return {bundle.name: bundle for bundle in app.load_models(ROOT / "weights")}


@pytest.fixture(scope="module")
def models(committed_models):
    """The committed models, registered with the tabs for the module as the app registers them, by name."""
    with registered(committed_models.values()):
        yield committed_models


# -- train.py in this process ---------------------------------------------------------------------------------------

def train_in_process(*args: str, cwd: Path, monkeypatch, capsys) -> subprocess.CompletedProcess:
    """train.py's main(args) in this process, from `cwd`, reported as subprocess.run reports the real process: for
    usage errors, which need no interpreter and torch started for each (other tests run the real process through
    the same parser.error). An exception other than SystemExit fails the test as a traceback would; the global random
    state is put back (the caller's torch_threads puts back the threads)."""
    import train
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["train.py", *args])  # argparse names the program after argv[0]
    with torch.random.fork_rng():
        try:
            status = train.main(list(args))
        except SystemExit as exit:
            status = exit.code
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(sys.argv, status, out, err)


# -- data ------------------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The genuine MNIST / Fashion-MNIST IDX files (../shared/data, or $VIT_DATA_DIR)."""
    if not (DATA_DIR / "mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):  # CI must run every test; a skip there would hide a broken set-up
            pytest.fail(f"no MNIST files under {DATA_DIR} (set VIT_DATA_DIR)")
        pytest.skip(f"no MNIST files under {DATA_DIR} (set VIT_DATA_DIR)")
    return DATA_DIR


@pytest.fixture(scope="session")
def digits(data_dir) -> list:
    """32 real MNIST test digits drawn black on white at 280x280, labels 0..9 in turn, each read right and surely
    (over 0.9) by the committed mnist-tiny: [(PIL image, label)]."""
    from picture_files import ink_on_paper
    from vit.bundle import load_folder
    from vit.data import load_split
    from vit.preprocess import to_model_input

    assert (MNIST_TINY / "config.json").is_file(), f"{MNIST_TINY} is missing: it is committed, restore it"
    model = load_folder(MNIST_TINY).model
    split = load_split("mnist", "test", data_dir)
    chosen = []
    for index in range(2000):
        label = int(split.labels[index])
        if label != len(chosen) % 10:
            continue
        drawing = ink_on_paper(split.images[index, 0].numpy())
        with torch.no_grad():
            probabilities = model(to_model_input(drawing)[None, None]).softmax(-1)[0]
        if int(probabilities.argmax()) == label and probabilities[label] > 0.9:
            chosen.append((drawing, label))
        if len(chosen) == 32:
            return chosen
    pytest.fail(f"{MNIST_TINY} reads too few test digits surely; is it broken?")
