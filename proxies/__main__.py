"""`python -m proxies FOLDER [FOLDER ...] [--draw choose|report] [--json OUT]`: measure digit models on the three
proxy sets and print one column per model; a model of other things (garments) is measured on how much of each
set it turns away, since none of it is one of its classes; --json writes every figure, the curves and the draws'
fingerprints."""

import argparse
import json
import sys
import time
from dataclasses import asdict

import torch

from .draw import DRAWS
from vit.bundle import add_to_evaluation, load_folder

from .measure import ModelReport, OtherThingsReport, as_record, measure_models
from .store import STORE


PROXIES_COMMAND = "python -m proxies weights/mnist weights/mnist-fast weights/mnist-tiny --write"


def percent(share: float) -> str:
    return f"{100 * share:5.1f} %"


def rows(reports: list[ModelReport]) -> list[tuple[str, list[str]]]:
    """The table's rows: a label and one cell per model."""
    first = reports[0]
    table = [("writers: read right / refused", [f"{percent(r.writers.read_right)} / {percent(r.writers.refused)}"
                                                for r in reports])]
    table += [(f"  {s.kind} ({s.n})", [f"{percent(k.read_right)} / {percent(k.refused)}"
                                        for k in (r.writer_kinds[i] for r in reports)])
              for i, s in enumerate(first.writer_kinds)]
    table += [("photos: read right / refused", [f"{percent(r.photos.read_right)} / {percent(r.photos.refused)}"
                                                for r in reports])]
    table += [(f"  {s.kind} ({s.n})", [f"{percent(k.read_right)} / {percent(k.refused)}"
                                        for k in (r.photo_kinds[i] for r in reports)])
              for i, s in enumerate(first.photo_kinds)]
    table += [("non-digits: refused or < 50 % / refused",
               [f"{percent(r.nondigits.turned_away)} / {percent(r.nondigits.refused)}" for r in reports])]
    table += [(f"  {s.kind} ({s.n})", [f"{percent(k.turned_away)} / {percent(k.refused)}"
                                        for k in (r.nondigit_groups[i] for r in reports)])
              for i, s in enumerate(first.nondigit_groups)]
    table += [("  the three kinds least turned away", [", ".join(
        f"{k.kind} {100 * k.turned_away:.0f} %" for k in sorted(r.nondigit_kinds, key=lambda k: k.turned_away)[:3])
        for r in reports])]
    table += [(f"selective ({first.selective.digits} digits + {first.selective.nondigits} non-digits): AURC",
               [f"{r.selective.aurc:.4f}" for r in reports])]
    table += [(f"  risk at coverage {c}", [f"{r.selective.risk_at[c]:.4f}" for r in reports])
              for c in first.selective.risk_at]
    table += [("  risk at its own coverage (answered)",
               [f"{r.selective.risk_accepted:.4f} ({percent(r.selective.accepted)})" for r in reports])]
    table += [("seconds reading", [f"{r.seconds:.1f}" for r in reports])]
    return table


def show(reports: list[ModelReport]) -> str:
    """The table as text, one column per model."""
    return aligned([("", [r.name for r in reports])] + rows(reports))


def aligned(table: list[tuple[str, list[str]]]) -> str:
    """Rows of a label and one cell per model as text: labels to the left, cells right-aligned in columns."""
    left = max(len(label) for label, _ in table)
    widths = [max(len(cells[i]) for _, cells in table) for i in range(len(table[0][1]))]
    return "\n".join(f"{label:<{left}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths))
                     for label, cells in table)


SET_NAMES = {"writers": "other writers' digits", "photos": "photographed digits", "nondigits": "drawn non-digits"}


def show_others(reports: list[OtherThingsReport]) -> str:
    """Models of other things (garments) as text, one column per model: how much of each set they turn away."""
    table = [("models of other things: turned away (refused or unsure)", [r.name for r in reports])]
    table += [(f"  {SET_NAMES[s.kind]} ({s.n})", [percent(r.sets[i].turned_away) for r in reports])
              for i, s in enumerate(reports[0].sets)]
    return aligned(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m proxies", description=__doc__.split("\n\n")[0])
    parser.add_argument("folders", nargs="+", help="model folders (weights/mnist ...)")
    parser.add_argument("--draw", choices=DRAWS, default="report",
                        help="choose: the draw to make choices on (validation); report: the draw cards quote")
    parser.add_argument("--json", help="write every figure, the curves and the fingerprints to this file")
    parser.add_argument("--limit", type=int, help="about this many pictures of each set, for a quick look")
    parser.add_argument("--write", action="store_true", help="store the figures in each model folder's "
                        "evaluation.json (its card and the About tab show them); only with --draw report")
    parser.add_argument("--fresh", action="store_true",
                        help=f"build the sets afresh instead of reading them from {STORE} (the result is the same)")
    args = parser.parse_args(argv)
    if args.write and (args.draw != "report" or args.limit):
        parser.error("--write stores the whole report draw: leave out --draw choose and --limit")
    try:  # a missing or damaged folder: a sentence, not a traceback
        models = {str(folder): load_folder(folder) for folder in args.folders}
    except ValueError as error:
        parser.error(str(error))
    torch.set_num_threads(1)
    start = time.perf_counter()
    measured = measure_models(models, args.draw, args.limit, store=None if args.fresh else STORE)
    draws, reports = measured.draws, measured.reports
    print(f"Proxy sets built here, draw {args.draw!r} "
          f"({', '.join(f'{name} {len(d.pictures)}' for name, d in draws.items())}):\n")
    if reports:
        print(show(reports))
    if measured.others:
        print(("\n" if reports else "") + show_others(measured.others))
    fingerprints = {name: d.fingerprint for name, d in draws.items()}
    print("\nfingerprints (SHA-256 of the pixels): " + ", ".join(f"{n} {f[:16]}" for n, f in fingerprints.items()))
    print(f"{time.perf_counter() - start:.0f} s in all, building (or loading) the sets included")
    if args.write:
        for report in reports:
            add_to_evaluation(report.folder, proxies=as_record(report, fingerprints, PROXIES_COMMAND))
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"draw": args.draw, "fingerprints": fingerprints,
                       "sizes": {name: len(d.pictures) for name, d in draws.items()},
                       "models": [asdict(r) for r in reports],
                       "other_models": [asdict(r) for r in measured.others]}, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
