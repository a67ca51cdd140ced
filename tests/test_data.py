"""The IDX reader on the real files and on corrupt, truncated and wrong-magic ones."""

import gzip
import shutil

from dataclasses import replace

import pytest
import torch

from vit import data


def test_real_mnist_test_split(data_dir):
    split = data.load_split("mnist", "test", data_dir)
    assert split.images.shape == (10_000, 1, 28, 28) and split.images.dtype == torch.uint8
    assert split.labels.bincount().tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    images, labels = split.batch(torch.tensor([0, 1]))
    assert images.dtype == torch.float32 and 0 <= images.min() and images.max() <= 1
    assert labels.tolist() == [7, 2]


def test_dataset_folder_or_its_parent(data_dir):
    assert len(data.load_split("fashion-mnist", "test", data_dir / "fashion-mnist")) == 10_000


def test_shared_files_match_the_published_checksums(data_dir):
    for name, digest in data.DATASETS["mnist"].sha256.items():
        assert data.sha256(data_dir / "mnist" / name) == digest


def _copy_labels(data_dir, tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    shutil.copy(data_dir / "mnist" / path.name, path)
    return path


def test_truncated_file(data_dir, tmp_path):
    path = _copy_labels(data_dir, tmp_path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(data.DataError, match="not a readable gzip"):
        data.read_idx(path, data.LABEL_MAGIC, 10_000)


def test_short_content(tmp_path):
    path = tmp_path / "labels.gz"
    path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 10]) + bytes(5)))
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(path, data.LABEL_MAGIC)


def test_wrong_magic(data_dir, tmp_path):
    path = _copy_labels(data_dir, tmp_path)
    with pytest.raises(data.DataError, match="magic number 2049, expected 2051"):
        data.read_idx(path, data.IMAGE_MAGIC, 10_000)


def test_not_gzip(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"this is not gzip")
    with pytest.raises(data.DataError, match="not a readable gzip"):
        data.read_idx(path, data.LABEL_MAGIC)


def test_wrong_count(data_dir, tmp_path):
    path = _copy_labels(data_dir, tmp_path)
    with pytest.raises(data.DataError, match="holds 10000 items, expected 60000"):
        data.read_idx(path, data.LABEL_MAGIC, 60_000)


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load_split("mnist", "test", tmp_path / "nowhere")


def test_offline_download_says_how_to_supply_the_files(tmp_path, monkeypatch):
    """No network here: the download fails and the message says what to do."""
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    monkeypatch.setattr(data, "DATASETS", {"mnist": replace(data.DATASETS["mnist"], mirrors=("http://127.0.0.1:9/",))})
    with pytest.raises(data.DataError, match="--data-dir FOLDER or set VIT_DATA_DIR"):
        data.load_split("mnist", "test", tmp_path)
    assert not list((tmp_path / "cache").rglob("*.part"))


def test_download_verifies_the_checksum(data_dir, tmp_path, monkeypatch):
    """A mirror serving the wrong bytes is rejected; the right bytes are kept under the final name."""
    good = data.DATASETS["mnist"]
    monkeypatch.setattr(data, "CACHE_DIR", tmp_path / "cache")
    wrong = dict(good.sha256, **{"t10k-labels-idx1-ubyte.gz": "0" * 64})
    mirror = (data_dir / "mnist").as_uri() + "/"
    monkeypatch.setattr(data, "DATASETS", {"mnist": replace(good, mirrors=(mirror,), sha256=wrong)})
    with pytest.raises(data.DataError, match="checksum mismatch"):
        data.download("t10k-labels-idx1-ubyte.gz", "mnist")
    monkeypatch.setattr(data, "DATASETS", {"mnist": replace(good, mirrors=(mirror,))})
    path = data.download("t10k-labels-idx1-ubyte.gz", "mnist")
    assert path == tmp_path / "cache" / "mnist" / "t10k-labels-idx1-ubyte.gz"
    assert data.sha256(path) == good.sha256["t10k-labels-idx1-ubyte.gz"]


def test_a_folder_of_mnist_files_is_not_read_as_fashion_mnist(data_dir):
    from vit.data import find_file
    name = "t10k-labels-idx1-ubyte.gz"
    assert find_file(name, "mnist", data_dir / "mnist") == data_dir / "mnist" / name
    assert find_file(name, "fashion-mnist", data_dir / "mnist") != data_dir / "mnist" / name  # the same name, digits
    assert find_file(name, "fashion-mnist", data_dir) == data_dir / "fashion-mnist" / name
