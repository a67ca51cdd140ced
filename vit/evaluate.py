"""Test accuracy of a model folder: `python -m vit.evaluate weights/mnist --data-dir DIR [--json]`."""

import argparse
import json
import sys
from pathlib import Path

import torch

from .analysis import predict_split
from .data import DATA_DIR_VARIABLE, DATASETS, DataError, load_split
from .model import ViT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vit.evaluate", description=__doc__)
    parser.add_argument("folder", type=Path, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--data-dir", type=Path, help=f"folder with the IDX .gz files (default: ${DATA_DIR_VARIABLE} or the cache)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="default: the one in the folder's evaluation.json, else mnist")
    parser.add_argument("--json", action="store_true", help='print one JSON line: {"accuracy": ..., "n": ...}')
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not (args.folder / "config.json").is_file():
        parser.error(f"{args.folder} is not a model folder (no config.json)")
    dataset = args.dataset
    if dataset is None:
        summary = args.folder / "evaluation.json"
        dataset = json.loads(summary.read_text()).get("dataset", "mnist") if summary.is_file() else "mnist"
    try:
        model = ViT.from_pretrained(args.folder)
        test = load_split(dataset, "test", args.data_dir)
    except (ValueError, DataError) as error:
        parser.error(str(error))
    probabilities, _ = predict_split(model, test)
    accuracy = (probabilities.argmax(-1) == test.labels).float().mean().item()
    if args.json:
        print(json.dumps({"accuracy": accuracy, "n": len(test), "dataset": dataset, "folder": str(args.folder)}))
    else:
        print(f"{args.folder}: {accuracy * 100:.2f} % of {len(test):,} {dataset} test images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
