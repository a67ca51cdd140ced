"""`python -m bench [--quick]`: the arguments, the parts in order, and the files they are written to."""

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from vit.bundle import CONFIG
from vit.data import DATA_DIR_VARIABLE, DataError, load_split

from . import ROOT, timings
from .app import bench_app
from .budget import FULL, MODELS, QUICK, Budget
from .open_loop import BATCHING, SETTINGS, Setting, bench_open_loop, markdown as open_loop_markdown, parse_setting
from .report import load, machine, markdown, rows, shown, text_table
from .watched import bench_train_tab

PARTS = 7


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="How fast this project trains, answers and serves, against the "
                                            "notebook it grew from and against its goals.",
        epilog="Run it on a quiet machine: other processes' load slows every figure. bench/README.md says how long "
               "the last full run took.")
    parser.add_argument("--quick", action="store_true",
                        help="small samples, untrained models, accuracy read from evaluation.json, no training to 96.97 %% "
                             "and 99 %% (a minute or two on 2 cores)")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON to write (default: bench/results.json, with --quick bench/results-quick.json); "
                             "the markdown table goes beside it: README.md for results.json, else NAME.md")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"folder holding the MNIST IDX files (default: ${DATA_DIR_VARIABLE}, else vit.data's "
                             "download cache)")
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "weights",
                        help="folder of shipped model folders: mnist, mnist-tiny (default: weights/)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS),
                        help="models for the inference, app and accuracy parts (default: all; the first one is "
                             "the app's in --quick)")
    parser.add_argument("--skip-app", action="store_true", help="leave out the running app (start-up, /predict, "
                                                                "Chromium)")
    parser.add_argument("--open-loop", action="store_true",
                        help="only the open-loop load on the running app: 20 visitors stroking once and twice a "
                             "second on the Predict tab and on /predict, the app started with batching off, then on "
                             "(about 6 minutes) -> bench/open-loop.json, bench/open-loop.md")
    parser.add_argument("--settings", nargs="+", metavar="LOAD", type=setting_argument,
                        help="with --open-loop: other loads, each VISITORSxRATE for the pad (20x0.5: 20 visitors, a "
                             "stroke every 2 s each) or predict:VISITORSxRATE, 25 s each")
    parser.add_argument("--batching", nargs="+", choices=list(BATCHING), default=list(BATCHING),
                        help="with --open-loop: the app with the sharing of passes off, on, or both (default)")
    args = parser.parse_args(argv)
    if not args.open_loop and (args.settings or args.batching != list(BATCHING)):
        parser.error("--settings and --batching go with --open-loop")
    default = "open-loop.json" if args.open_loop else "results-quick.json" if args.quick else "results.json"
    args.output = args.output or ROOT / "bench" / default
    return args


def setting_argument(text: str) -> Setting:
    """--settings' LOAD, or argparse's message saying what is wrong with it."""
    try:
        return parse_setting(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def app_weights(args: argparse.Namespace, test_split, workdir: Path) -> tuple[Path, str]:
    """The weights the app is measured with, and how to name them: the shipped ones, or (--quick) untrained."""
    if not args.quick and any((args.weights_dir / name / CONFIG).is_file() for name in args.models):
        return args.weights_dir, shown(args.weights_dir)
    return timings.untrained_weights_dir(args.models[0], test_split, workdir), "untrained"


def run_parts(args: argparse.Namespace, budget: Budget, train_split, test_split, workdir: Path) -> dict:
    """Every part in order, each a key of the results."""
    results = {}
    log(f"1/{PARTS} the seed's recipe: epochs timed, its time to 96.97 % extrapolated")
    results["seed_recipe"] = timings.bench_seed_recipe(train_split, budget)
    log(f"2/{PARTS} ours: time to 96.97 % and to 99 %" + ("" if budget.time_to_99 else ": skipped in --quick"))
    results["time_to_accuracy"] = (
        timings.bench_time_to_accuracy(train_split, test_split, workdir, results["seed_recipe"]) if budget.time_to_99
        else {"skipped": "quick mode"})
    log(f"3/{PARTS} the Train tab's defaults, 60 s and 30 s" + ("" if budget.time_to_99 else ": skipped in --quick"))
    results["train_tab"] = bench_train_tab(workdir, results["seed_recipe"], budget)
    log(f"4/{PARTS} inference")
    results["inference"], measured = {}, {}
    for name in args.models:
        model, source = timings.load_model(name, args.weights_dir, trained=not args.quick)
        results["inference"][name], probabilities = timings.bench_inference(model, source, test_split, budget)
        measured[name] = probabilities if source != "untrained" else None
        if "choices" not in results:  # the first model (by default mnist, the larger) times the choices
            results["choices"] = timings.bench_choices(train_split, test_split, model, name, budget)
    weights_dir, source = app_weights(args, test_split, workdir)
    log(f"5/{PARTS} the Predict tab's update, in process")
    results["predict_update"] = timings.bench_predict_update(weights_dir, source, test_split, budget)
    log(f"6/{PARTS} the running app" + (": skipped" if args.skip_app else ""))
    results["app"] = ({"skipped": "--skip-app"} if args.skip_app else
                      bench_app(weights_dir, source, test_split, budget, workdir))
    log(f"7/{PARTS} accuracy")
    results["accuracy"] = timings.bench_accuracy(measured, test_split, args.weights_dir)
    return results


def write(results: dict, output: Path) -> Path:
    """results.json (or --output) and its markdown table beside it; returns the table's path."""
    table = output.with_name("README.md") if output.name == "results.json" else output.with_suffix(".md")
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=1) + "\n")
    table.write_text(markdown(results, details=output.name))
    return table


def open_loop(args: argparse.Namespace, test_split) -> int:
    """`--open-loop`: the part alone, its JSON and its table."""
    result = {"command": open_loop_command(args), "machine": machine(),
              "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}
    with tempfile.TemporaryDirectory(prefix="vit-bench-") as temporary:
        result |= bench_open_loop(args.weights_dir, test_split, Path(temporary), tuple(args.settings or SETTINGS),
                                  tuple(dict.fromkeys(args.batching)))
    result["machine"]["load_average_end"] = load()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=1) + "\n")
    table = args.output.with_suffix(".md")
    table.write_text(open_loop_markdown(result, details=args.output.name))
    print(table.read_text())
    return 0


def open_loop_command(args: argparse.Namespace) -> str:
    """The command that measures the same loads again."""
    command = "python -m bench --open-loop"
    if args.settings:
        command += " --settings " + " ".join(setting.argument for setting in args.settings)
    if args.batching != list(BATCHING):
        command += " --batching " + " ".join(args.batching)
    if args.output != ROOT / "bench" / "open-loop.json":
        command += f" --output {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}"
    return command


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = QUICK if args.quick else FULL
    results = {"mode": "quick" if args.quick else "full",
               "command": "python -m bench" + (" --quick" if args.quick else ""),
               "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    if args.data_dir:  # the runs in their own processes (the Train tab's, /train's) read it from there
        os.environ[DATA_DIR_VARIABLE] = str(args.data_dir)
    try:  # no --data-dir: load_split reads $VIT_DATA_DIR, else its download cache
        train_split = load_split("mnist", "train", args.data_dir)
        test_split = load_split("mnist", "test", args.data_dir)
    except DataError as error:
        print(f"python -m bench: {error}", file=sys.stderr)
        return 2
    if args.open_loop:
        return open_loop(args, test_split)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vit-bench-") as temporary:
        results |= run_parts(args, budget, train_split, test_split, Path(temporary))
    results["seconds"] = round(time.perf_counter() - started)  # the whole run, for --help and bench/README.md
    results["machine"]["load_average_end"] = load()
    flagged = [(name, value) for name, value in rows(results) if value["met"] is not None]
    results["summary"] = {"met": sum(value["met"] for _, value in flagged),
                          "missed": [name for name, value in flagged if not value["met"]]}
    table = write(results, args.output)
    print(text_table(results))
    print(f"\n{results['summary']['met']} goals met, {len(results['summary']['missed'])} missed; "
          f"-> {shown(args.output)}, {shown(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
