"""Shared fixtures: a tiny model config, the data folder, one thread for torch."""

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("VIT_DATA_DIR", ROOT.parent / "shared" / "data"))

torch.set_num_threads(1)  # measured: two threads on two busy cores is many times slower for tiny models

TINY = dict(tile_size=7, embed_size=16, num_layers=2, num_heads=2, mlp_size=32)


@pytest.fixture
def tiny_model():
    """A small untrained ViT, seeded, in eval mode."""
    torch.manual_seed(0)
    from vit import ViT
    return ViT(**TINY).eval()


@pytest.fixture(scope="module")
def models():
    """The committed model folders, loaded as the app loads them and registered with the tabs, by name."""
    import app
    from vit import registry
    bundles = app.load_models(ROOT / "weights")
    registry.use_models(bundles)
    return {bundle.name: bundle for bundle in bundles}


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The genuine MNIST / Fashion-MNIST IDX files (../shared/data, or $VIT_DATA_DIR)."""
    if not (DATA_DIR / "mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):  # CI must run every test; a skip there would hide a broken set-up
            pytest.fail(f"no MNIST files under {DATA_DIR} (set VIT_DATA_DIR)")
        pytest.skip(f"no MNIST files under {DATA_DIR} (set VIT_DATA_DIR)")
    return DATA_DIR
