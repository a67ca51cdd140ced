"""Shared fixtures: a tiny model config, the data folder, one thread for torch."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
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


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The genuine MNIST / Fashion-MNIST IDX files (../shared/data, or $VIT_DATA_DIR)."""
    if not (DATA_DIR / "mnist" / "t10k-images-idx3-ubyte.gz").is_file():
        if os.environ.get("CI"):  # CI must run every test; a skip there would hide a broken set-up
            pytest.fail(f"no MNIST files under {DATA_DIR} (set VIT_DATA_DIR)")
        pytest.skip(f"no MNIST files under {DATA_DIR} (set VIT_DATA_DIR)")
    return DATA_DIR


def free_port() -> int:
    """A port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_app(weights: Path, log: Path, env: dict[str, str], prefix: tuple[str, ...] = ()):
    """`python app.py` on a free port with `env` until the block ends; yields (url, process)."""
    port = free_port()
    with open(log, "w") as output:
        process = subprocess.Popen([*prefix, sys.executable, str(ROOT / "app.py"), "--port", str(port),
                                    "--weights-dir", str(weights)], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"app.py exited early:\n{log.read_text()[-3000:]}"
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"app.py did not answer within 180 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
