"""Test accuracy of a model folder, and its calibration error before and after the folder's temperature:
`python -m vit.evaluate weights/mnist --data-dir DIR [--json]`."""

import argparse
import json
import sys
from pathlib import Path

import torch

from .bundle import CALIBRATION
from .calibration import expected_calibration_error
from .data import DATA_DIR_VARIABLE, DATASETS, DataError, load_split
from .model import ViT
from .validation import logits_of


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
    calibration = args.folder / CALIBRATION
    temperature = json.loads(calibration.read_text())["temperature"] if calibration.is_file() else 1.0
    logits = logits_of(model, test.images[:, 0].float() / 255)
    accuracy = (logits.argmax(-1) == test.labels).float().mean().item()
    ece = {"before": expected_calibration_error(logits.softmax(-1), test.labels),
           "after": expected_calibration_error((logits / temperature).softmax(-1), test.labels)}
    if args.json:
        print(json.dumps({"accuracy": accuracy, "n": len(test), "dataset": dataset, "folder": str(args.folder),
                          "temperature": temperature, "ece_before": ece["before"], "ece_after": ece["after"]}))
    else:
        print(f"{args.folder}: {accuracy * 100:.2f} % of {len(test):,} {dataset} test images; calibration error "
              f"(ECE, 15 bins) {ece['before'] * 100:.2f} % raw, {ece['after'] * 100:.2f} % at T = {temperature:g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
