"""MNIST and Fashion-MNIST (vit.datasets) from the classic IDX gzip files, held as one in-memory tensor.

Where the files come from: a directory you name (`--data-dir` or the VIT_DATA_DIR environment variable),
else a cache folder filled by downloading the original IDX files and checking their SHA-256.
Batches are indexed straight from the uint8 tensor: a per-item DataLoader is several times slower here.
"""

import gzip
import hashlib
import os
import struct
import tempfile
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .datasets import DATASETS

DATA_DIR_VARIABLE = "VIT_DATA_DIR"
CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vit-explainer"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
SPLIT_SIZES = {"train": 60_000, "test": 10_000}


class DataError(ValueError):
    """A data file is missing, truncated, corrupt or not what its name says."""


@dataclass
class Split:
    """One split in memory: images (N, 1, 28, 28) uint8 and labels (N,) int64."""
    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.labels)

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Float pixels in [0, 1] and labels for the given indices."""
        return self.images[index].float().div_(255), self.labels[index]

    def subset(self, index: torch.Tensor) -> "Split":
        return Split(self.images[index], self.labels[index])


VALIDATION_SIZE, VALIDATION_SEED = 5_000, 0


def carve_validation(train: Split, size: int = VALIDATION_SIZE, seed: int = VALIDATION_SEED) -> tuple[Split, Split]:
    """(what the model trains on, the validation split): a fixed random `size` of the training images held out.

    Every choice made after looking at data (epoch, temperature, the "not a digit" threshold) is made on the
    validation split; the test split only reports. The same seed gives the same split on every machine.
    """
    order = torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))
    return train.subset(order[size:].sort().values), train.subset(order[:size].sort().values)


def read_idx(path: Path, magic: int, count: int | None = None) -> torch.Tensor:
    """Read one gzip IDX file, checking its magic number, its item count and its length."""
    try:
        with gzip.open(path, "rb") as file:
            data = file.read()
    except FileNotFoundError:
        raise
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError
        raise DataError(f"{path} is not a readable gzip file ({error}); delete it and supply it again") from error
    if len(data) < 8:
        raise DataError(f"{path} is too short to be an IDX file ({len(data)} bytes)")
    found, items = struct.unpack(">II", data[:8])
    if found != magic:
        raise DataError(f"{path} has magic number {found}, expected {magic}: "
                        f"{'an image' if magic == IMAGE_MAGIC else 'a label'} file was expected")
    ndim = magic & 0xFF
    dims = (items, *struct.unpack(f">{ndim - 1}I", data[8:4 + 4 * ndim])) if ndim > 1 else (items,)
    header = 4 + 4 * ndim
    if count is not None and items != count:
        raise DataError(f"{path} holds {items} items, expected {count}")
    if magic == IMAGE_MAGIC and dims[1:] != (28, 28):
        raise DataError(f"{path} holds images of {dims[1]}x{dims[2]} pixels, expected 28x28")
    expected = header + items * (dims[1] * dims[2] if ndim == 3 else 1)
    if len(data) != expected:
        raise DataError(f"{path} is {len(data)} bytes after decompression, expected {expected}: truncated or padded")
    return torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8).view(*dims)


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_file(name: str, dataset: str, data_dir: Path | None) -> Path | None:
    """The first existing copy of a file: data_dir/dataset/name, data_dir/name, then the cache. MNIST and
    Fashion-MNIST name their files alike, so a file straight in data_dir that is another dataset's (by its
    checksum) is passed over: --data-dir .../mnist must not feed digits to a Fashion-MNIST model."""
    if data_dir and (data_dir / dataset / name).is_file():
        return data_dir / dataset / name
    if data_dir and (data_dir / name).is_file() and not _another_datasets(data_dir / name, dataset):
        return data_dir / name
    cached = CACHE_DIR / dataset / name
    return cached if cached.is_file() else None


def _another_datasets(path: Path, dataset: str) -> bool:
    """True when the file is byte for byte one of another dataset's files."""
    others = {digest for key, info in DATASETS.items() if key != dataset for digest in info.sha256.values()}
    return sha256(path) in others


def download(name: str, dataset: str) -> Path:
    """Download one file into the cache, verify its checksum, and only then give it its name."""
    info = DATASETS[dataset]
    target = CACHE_DIR / dataset / name
    target.parent.mkdir(parents=True, exist_ok=True)
    errors = []
    for mirror in info.mirrors:
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
        try:
            with os.fdopen(handle, "wb") as out, urllib.request.urlopen(mirror + name, timeout=30) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                with tqdm(total=total, unit="B", unit_scale=True, desc=f"{dataset}/{name}") as bar:
                    for chunk in iter(lambda: response.read(1 << 16), b""):
                        out.write(chunk)
                        bar.update(len(chunk))
            if sha256(Path(temporary)) != info.sha256[name]:
                raise DataError(f"checksum mismatch for {mirror + name}")
            os.replace(temporary, target)
            return target
        except (OSError, DataError) as error:
            errors.append(f"{mirror}: {error}")
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    raise DataError(
        f"could not download {name} for {dataset} ({'; '.join(errors)}).\n"
        f"Supply the files yourself: put the four IDX .gz files ({', '.join(info.sha256)}) in a folder and pass "
        f"--data-dir FOLDER or set {DATA_DIR_VARIABLE}=FOLDER, or copy them to {CACHE_DIR / dataset}.")


def load_split(dataset: str = "mnist", split: str = "train", data_dir: str | Path | None = None,
               download_missing: bool = True) -> Split:
    """Load one split into memory, downloading missing files into the cache when allowed."""
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    data_dir = Path(data_dir or os.environ.get(DATA_DIR_VARIABLE) or "") or None
    if data_dir and not data_dir.is_dir():
        raise DataError(f"data directory {data_dir} does not exist")
    paths = []
    for name in FILES[split]:
        path = find_file(name, dataset, data_dir)
        if path is None:
            if not download_missing:
                raise DataError(f"{name} for {dataset} not found in {data_dir or CACHE_DIR}")
            path = download(name, dataset)
        paths.append(path)
    images = read_idx(paths[0], IMAGE_MAGIC, SPLIT_SIZES[split]).unsqueeze(1)  # (N, 1, 28, 28)
    labels = read_idx(paths[1], LABEL_MAGIC, SPLIT_SIZES[split]).long()  # (N,)
    if labels.max() >= len(DATASETS[dataset].class_names):
        raise DataError(f"{paths[1]} holds label {int(labels.max())}, beyond the {dataset} classes")
    return Split(images, labels)
