"""Test accuracy of a model folder, its calibration error before and after the folder's temperature, and
with --faithfulness which explanation to trust (vit.faithfulness):
`python -m vit.evaluate weights/mnist --data-dir DIR [--json] [--faithfulness [--count N] [--randomised N]
[--write]]`; `--refit` fits the temperature and the "not a digit" limits again on the validation split, as train.py
does after training, and rewrites them with their test report and the model card (after the preprocessing
changed)."""

import argparse
import json
import sys
from pathlib import Path

import torch

from . import faithfulness
from .bundle import CALIBRATION, add_to_evaluation
from .calibration import expected_calibration_error
from .data import DATA_DIR_VARIABLE, DATASETS, DataError, carve_validation, load_split
from .model import ViT
from .validation import logits_of


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vit.evaluate", description=__doc__)
    parser.add_argument("folder", type=Path, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--data-dir", type=Path, help=f"folder with the IDX .gz files (default: ${DATA_DIR_VARIABLE} or the cache)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help="default: the one in the folder's evaluation.json, else mnist")
    parser.add_argument("--json", action="store_true", help='print one JSON line: {"accuracy": ..., "n": ...}')
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default: 1)")
    parser.add_argument("--faithfulness", action="store_true",
                        help="also the deletion/insertion scoreboard and the randomisation test of every explanation")
    parser.add_argument("--count", type=int, default=faithfulness.COUNT,
                        help=f"test images for --faithfulness (default: {faithfulness.COUNT}, the first ones; fewer "
                             f"are spread evenly over those {faithfulness.COUNT})")
    parser.add_argument("--randomised", type=int, default=faithfulness.RANDOMISED_IMAGES,
                        help=f"test images for the randomisation test (default: {faithfulness.RANDOMISED_IMAGES})")
    parser.add_argument("--write", action="store_true", help="store the --faithfulness results in the folder's "
                                                             "evaluation.json")
    parser.add_argument("--refit", action="store_true", help="fit the temperature and the 'not a digit' limits "
                        "again on the validation split and rewrite calibration.json, evaluation.json's reports and "
                        "the model card")
    args = parser.parse_args(argv)
    if args.count < 1 or args.randomised < 1:
        parser.error("--count and --randomised must be at least 1")
    if args.write and not args.faithfulness:
        parser.error("--write stores the --faithfulness results: give --faithfulness too")
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
    if args.refit:
        from .training import refit_folder  # the training module only when asked: it is slow to import
        _, val = carve_validation(load_split(dataset, "train", args.data_dir))
        refit_folder(args.folder, val, test)
    calibration = args.folder / CALIBRATION
    temperature = json.loads(calibration.read_text())["temperature"] if calibration.is_file() else 1.0
    logits = logits_of(model, test.images[:, 0].float() / 255)
    accuracy = (logits.argmax(-1) == test.labels).float().mean().item()
    ece = {"before": expected_calibration_error(logits.softmax(-1), test.labels),
           "after": expected_calibration_error((logits / temperature).softmax(-1), test.labels)}
    result = {"accuracy": accuracy, "n": len(test), "dataset": dataset, "folder": str(args.folder),
              "temperature": temperature, "ece_before": ece["before"], "ece_after": ece["after"]}
    if args.faithfulness:
        result["faithfulness"] = faithfulness.evaluate(model.requires_grad_(False), test, temperature, args.count,
                                                               args.randomised)
        if args.write:
            add_to_evaluation(args.folder, faithfulness=result["faithfulness"])
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.folder}: {accuracy * 100:.2f} % of {len(test):,} {dataset} test images; calibration error "
          f"(ECE, 15 bins) {ece['before'] * 100:.2f} % raw, {ece['after'] * 100:.2f} % at T = {temperature:g}")
    if args.faithfulness:
        print(scoreboard_text(result["faithfulness"]))
    return 0


def scoreboard_text(measured: dict) -> str:
    """The scoreboard as a table for the terminal, then the verdicts."""
    board = measured["scoreboard"]
    lines = [f"deletion and insertion areas over {board['count']:,} test images (mean ± standard error):"]
    for name, areas in board["methods"].items():
        deletion, insertion = areas["deletion"], areas["insertion"]
        lines.append(f"  {name:22} deletion {deletion['mean']:.3f} ± {deletion['se']:.3f}   "
                     f"insertion {insertion['mean']:.3f} ± {insertion['se']:.3f}")
    return "\n".join(lines + ["", *measured["verdicts"].values()])


if __name__ == "__main__":
    sys.exit(main())
