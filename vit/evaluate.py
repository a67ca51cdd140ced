"""Test accuracy of a model folder, its calibration error before and after the folder's temperature, and
with --faithfulness which explanation to trust (vit.faithfulness):
`python -m vit.evaluate weights/mnist --data-dir DIR [--json] [--faithfulness [--count N] [--randomised N]
[--write]]`; `--refit` fits the temperature and the "not a digit" limits again on the validation split, as train.py
does after training, and rewrites them with their test report and the model card (after the preprocessing
changed)."""

import argparse
import copy
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import faithfulness, rendered, validation
from .analysis import predict_split
from .bundle import (CALIBRATION, EVALUATION_JSON, Answers, add_to_evaluation, load_folder, read_calibration,
                     read_dataset, read_model, summarise, write_folder, write_records)
from .calibration import expected_calibration_error
from .data import DATA_DIR_VARIABLE, DataError, Split, carve_validation, load_split
from .datasets import DATASETS, dataset as describe
from .model import ViT
from .record import Evaluation
from .validation import logits_of


# After training (train.py, the bench), everything a model folder records is measured here and written by its
# owner, vit.bundle; the command line below measures a written folder again.

@dataclass(frozen=True)
class TrainingFacts:
    """How a model was trained, as its folder records it."""
    dataset: str
    history: list[dict]      # per epoch (vit.training.train)
    seconds: float           # training time
    command: str             # what reproduces it
    device: str
    recipe: dict             # vit.recipe.Recipe's fields
    pacing: dict | None = None   # threads and, with --budget, what was planned (vit.pacing)


def choose_and_report(model: ViT, val_split: Split, test_split: Split, dataset: str,
                      quick: bool = False) -> tuple[dict, dict]:
    """The temperature and the "not a digit" limits fitted on the validation split, pictures framed as the app
    frames this dataset's, and their test-split report (vit.validation); `quick`: on fewer drawn pages."""
    data = describe(dataset)
    on_canvas = validation.QUICK_ON_CANVAS if quick else validation.ON_CANVAS
    others = validation.QUICK_NOT_DIGITS_EACH if quick else validation.NOT_DIGITS_EACH
    chosen = validation.choose(model, val_split, data.framing, on_canvas)
    return chosen, validation.report(model, test_split, chosen, data.noun, data.framing, on_canvas=on_canvas,
                                     not_digits_each=others)


def write_model_folder(folder: Path, model: ViT, test_split: Split, facts: TrainingFacts, *,
                       val_split: Split | None = None, faithfulness_count: int = 0,
                       started: float | None = None, quick: bool = False) -> Evaluation:
    """Evaluate on the test split and write the model folder (vit.bundle); return its evaluation record.

    With a validation split, the temperature and the "not a digit" limits are fitted on it and reported on the
    test split, with the digits from outside MNIST (vit.rendered) where the dataset has them. With a
    faithfulness count, the explanations' scoreboard over that many test images (vit.faithfulness). The
    pacing gets the whole run's seconds when `started` (a time.perf_counter() value) says when it began.
    `quick` (a model trained while a visitor waits): the limits on fewer drawn pages, no digits from outside MNIST.
    """
    probabilities, losses = predict_split(model, test_split)
    answers = Answers(test_split.images, test_split.labels, probabilities, losses)
    parts, chosen = {}, None
    if val_split is not None:
        chosen, parts = choose_and_report(model, val_split, test_split, facts.dataset, quick)
        if describe(facts.dataset).other_writers and not quick:
            parts["other_writers"] = rendered.evaluate(model)
    if faithfulness_count:
        temperature = chosen["temperature"] if chosen else 1.0
        parts["faithfulness"] = faithfulness.evaluate(copy.deepcopy(model).requires_grad_(False), test_split,
                                                      temperature, faithfulness_count)
    if facts.pacing is not None:  # the whole run but writing the files, a second or less
        run = {"run_seconds": round(time.perf_counter() - started, 1)} if started is not None else {}
        parts["pacing"] = facts.pacing | run
    evaluation = summarise(answers, facts.dataset).with_parts(
        history=facts.history, training_seconds=round(facts.seconds, 1), command=facts.command,
        device=facts.device, recipe=facts.recipe, **parts)
    write_folder(folder, model, answers, evaluation, chosen)
    return evaluation


def refit_folder(folder: Path, val_split: Split, test_split: Split) -> Evaluation:
    """Fit the temperature and the limits of a written folder again (after the preprocessing changed) and
    rewrite the calibration, the record's reports and the model card (vit.bundle); return the new record."""
    bundle = load_folder(folder)
    chosen, reported = choose_and_report(bundle.model, val_split, test_split, bundle.dataset)
    evaluation = bundle.evaluation.with_parts(**reported)
    write_records(folder, bundle.model, evaluation, chosen)
    return evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vit.evaluate", description=__doc__)
    parser.add_argument("folder", type=Path, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--data-dir", type=Path, help=f"folder with the IDX .gz files (default: ${DATA_DIR_VARIABLE} or the cache)")
    parser.add_argument("--dataset", choices=sorted(DATASETS), help=f"default: the one in the folder's {EVALUATION_JSON}, else mnist")
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
                                                             f"{EVALUATION_JSON}")
    parser.add_argument("--refit", action="store_true", help="fit the temperature and the 'not a digit' limits "
                        f"again on the validation split and rewrite {CALIBRATION}, {EVALUATION_JSON}'s reports and "
                        "the model card")
    args = parser.parse_args(argv)
    if args.count < 1 or args.randomised < 1:
        parser.error("--count and --randomised must be at least 1")
    if args.write and not args.faithfulness:
        parser.error("--write stores the --faithfulness results: give --faithfulness too")
    torch.set_num_threads(args.threads)
    try:
        model = read_model(args.folder)
        dataset = args.dataset or read_dataset(args.folder)
        test = load_split(dataset, "test", args.data_dir)
        if args.refit:
            _, val = carve_validation(load_split(dataset, "train", args.data_dir))
            refit_folder(args.folder, val, test)
    except (ValueError, DataError) as error:
        parser.error(str(error))
    result = measure(model, test, read_calibration(args.folder), dataset, args)
    print(json.dumps(result) if args.json else report_text(result))
    return 0


def measure(model: ViT, test: Split, calibration: dict | None, dataset: str, args: argparse.Namespace) -> dict:
    """Accuracy, calibration error before and after the folder's temperature and, when asked, the scoreboard
    (stored in the folder with --write)."""
    temperature = calibration["temperature"] if calibration else 1.0
    logits = logits_of(model, test.images[:, 0].float() / 255)
    result = {"accuracy": (logits.argmax(-1) == test.labels).float().mean().item(), "n": len(test),
              "dataset": dataset, "folder": str(args.folder), "temperature": temperature,
              "ece_before": expected_calibration_error(logits.softmax(-1), test.labels),
              "ece_after": expected_calibration_error((logits / temperature).softmax(-1), test.labels)}
    if args.faithfulness:
        result["faithfulness"] = faithfulness.evaluate(model.requires_grad_(False), test, temperature, args.count,
                                                       args.randomised)
        if args.write:
            add_to_evaluation(args.folder, faithfulness=result["faithfulness"])
    return result


def report_text(result: dict) -> str:
    """What measure() found, for the terminal."""
    text = (f"{result['folder']}: {result['accuracy'] * 100:.2f} % of {result['n']:,} {result['dataset']} test images; "
            f"calibration error (ECE, 15 bins) {result['ece_before'] * 100:.2f} % raw, "
            f"{result['ece_after'] * 100:.2f} % at T = {result['temperature']:g}")
    return text + ("\n" + scoreboard_text(result["faithfulness"]) if "faithfulness" in result else "")


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
