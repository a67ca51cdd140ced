"""The measured figures in README.md and docs/*.md, generated from the model folders so they cannot drift.

    python docs/figures.py            # rewrite every <!-- figures:NAME --> ... <!-- /figures:NAME --> block
    python docs/figures.py --check    # change nothing; exit 1 naming each block that differs from the folders

Everything between a pair of markers belongs to this script: edit the renderer below, not the block. The
folders are read only through vit.bundle (the folder's owner), and only in `measured`.
"""

import argparse
import math
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python docs/figures.py` from anywhere
    sys.path.insert(0, str(ROOT))

from vit.bundle import load_folder  # noqa: E402
from dataclasses import asdict  # noqa: E402

from vit.faithfulness import SURVIVES, verdict  # noqa: E402

MNIST = ("mnist", "mnist-fast", "mnist-tiny")                       # the app's digit models, default first
FASHION = ("fashion/fashion-mnist", "fashion/fashion-mnist-tiny")
BASELINE = "zoo/tiles-7"                                            # the zoo is this preset with one change each
GOALS = {"mnist": 0.995, "mnist-fast": 0.99, "fashion/fashion-mnist": 0.935}  # test accuracy set before training
WRITERS_GOAL = 0.985   # the default's share of all digits from outside MNIST, set before training
FAITHFUL_GOAL = 0.25   # the deletion area aimed for, as a share of a random order's
METHODS = {"attention": "CLS attention (last block)", "rollout": "rollout", "saliency": "saliency",
           "integrated gradients": "integrated gradients", "occlusion": "occlusion",
           "relevance": "relevance (Chefer et al. 2021)", "random": "random order"}
OTHERS = ("noise", "photo-like", "nearly blank")  # pictures that are not digits, in the order the docs name them
MARKER = re.compile(r"<!-- figures:([\w-]+) -->(.*?)<!-- /figures:\1 -->", re.S)
OPENING = re.compile(r"<!-- figures:([\w-]+) -->")


# -- what a folder measured: the one place that reads a folder ------------------------------------------------

def measured(folder: Path) -> dict:
    """Every figure the documents quote from one model folder, under plain names (None where not measured)."""
    bundle = load_folder(folder)
    e, config = bundle.evaluation, bundle.model.config  # e: the folder's record (vit.record.Evaluation)
    history, calibration, refusal = e.history, e.calibration, e.not_a_digit
    writers, faith = e.other_writers, e.faithfulness
    best = max(history, key=lambda row: (row["val_accuracy"], -row["epoch"]))  # first epoch at the best
    return {
        "dataset": e.dataset, "noun": bundle.noun, "test_count": e.n, "accuracy": e.accuracy,
        "parameters": bundle.model.parameter_count,
        "cut": bundle.model.cut, "tile_size": config["tile_size"], "tokens": bundle.model.num_tiles + 1,
        "embed_size": config["embed_size"], "num_layers": config["num_layers"], "num_heads": config["num_heads"],
        "mlp_size": config["mlp_size"], "pos_embedding": config.get("pos_embedding", "learned"),
        "epochs": len(history), "validation_last": history[-1]["val_accuracy"],
        "validation_best": best["val_accuracy"], "validation_best_epoch": best["epoch"],
        "training_seconds": e.training_seconds, "run_seconds": e.pacing.run_seconds if e.pacing else None,
        "device": e.device, "command": e.command,
        "temperature": calibration.temperature, "ece_before": calibration.ece_before,
        "ece_after": calibration.ece_after,
        "test_refused": refusal.test_refused, "drawn_refused": refusal.drawn_test_refused,
        "drawn_refused_count": refusal.drawn_test_count, "others_refused": dict(refusal.others_refused),
        "others_count": refusal.others_count,
        "typed": writers and writers.typed, "typed_count": writers and writers.typed_count,
        "fonts": writers and len(writers.fonts), "drawn": writers and writers.drawn,
        "drawn_count": writers and writers.drawn_count, "writers_all": writers and writers.all,
        "writers_misses": writers and dict(writers.misses),
        "fine_tuned": e.fine_tuned,
        "proxies": e.proxies and {
            "writers": e.proxies.writers["all"], "photos": e.proxies.photos, "nondigits": e.proxies.nondigits,
            "aurc": e.proxies.aurc, "accepted": e.proxies.accepted, "risk_accepted": e.proxies.risk_accepted,
            "command": e.proxies.command, "fingerprints": dict(e.proxies.fingerprints)},
        "faithfulness": faith and {
            "count": faith.scoreboard.count, "points": faith.scoreboard.points,
            "areas": {method: (m["deletion"]["mean"], m["deletion"]["se"], m["insertion"]["mean"],
                               m["insertion"]["se"]) for method, m in faith.scoreboard.methods.items()},
            "randomised_count": faith.randomisation.count, "stages": list(faith.randomisation.stages),
            "cascade": {method: list(v) for method, v in faith.randomisation.methods.items()},
            "verdicts": dict(faith.verdicts), "best": faith.best,
            "bottom_line": verdict(bundle.noun, asdict(faith.scoreboard), asdict(faith.randomisation), faith.best)},
    }


# -- formatting: fixed, so the same folders always give the same bytes ----------------------------------------

def pct(share: float, places: int = 2) -> str:
    """0.9951 -> '99.51 %'."""
    return f"{100 * share:.{places}f} %"


def whole(number: float) -> str:
    """205962 -> '205,962'."""
    return f"{round(number):,}"


def signed(value: float) -> str:
    """A correlation with a true minus sign: -0.06 -> '−0.06'."""
    return f"{value:.2f}".replace("-", "−")


def duration(seconds: float | None) -> str:
    """Seconds under ten minutes, minutes above."""
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 600 else f"{seconds / 60:.0f} min"


def device(text: str) -> str:
    """'cpu, 2 thread(s)' -> 'cpu, 2 threads'."""
    return re.sub(r"\b1 thread\(s\)", "1 thread", text).replace("thread(s)", "threads")


def strong(text: str, yes: bool) -> str:
    return f"**{text}**" if yes else text


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def architecture(m: dict) -> str:
    words = m["tokens"] - 1
    piece = {"tiles": f"tiles of {m['tile_size']}",
             "horizontal-strips": f"strips of {m['tile_size']} rows",
             "vertical-strips": f"strips of {m['tile_size']} columns"}[m["cut"]]
    positions = "" if m["pos_embedding"] == "learned" else f", positions {m['pos_embedding']}"
    return (f"{piece} ({words} words), embedding {m['embed_size']}, {m['num_layers']} blocks, "
            f"{m['num_heads']} head{'s' if m['num_heads'] > 1 else ''}, MLP {m['mlp_size']}{positions}")


def epochs(m: dict) -> str:
    """'91', or '8 more (fine-tune)' for a folder fine-tuned from another (its history is the fine-tune's)."""
    return f"{m['epochs']} more (fine-tune)" if m["fine_tuned"] else str(m["epochs"])


def card(name: str) -> str:
    return f"[`weights/{name}`](../weights/{name}/README.md)"


# -- the blocks ---------------------------------------------------------------------------------------------

def headline(models: dict[str, dict]) -> str:
    default, tiny, fashion = models["mnist"], models["mnist-tiny"], models["fashion/fashion-mnist"]
    sets = default["proxies"]
    return (f"The default model ({whole(default['parameters'])} parameters) reads **{pct(default['accuracy'])}** "
            f"of the {whole(default['test_count'])} MNIST test digits; on pictures people bring (three proxy sets "
            f"built here) it reads {pct(sets['writers'].right, 1)} of other writers' digits and "
            f"{pct(sets['photos']['all'].right, 1)} of digits photographed on paper, and refuses or is unsure of "
            f"{pct(sets['nondigits']['all'].right, 1)} of drawn letters, signs and doodles; the notebook's tiny one ({whole(tiny['parameters'])} parameters) {pct(tiny['accuracy'])}; the "
            f"Fashion-MNIST one {pct(fashion['accuracy'])}."
            + (" All were trained on a CPU." if all(m["device"].startswith("cpu") for m in models.values()) else ""))


def models_table(models: dict[str, dict]) -> str:
    rows = []
    for name in MNIST + FASHION:
        m, goal = models[name], GOALS.get(name)
        reached = "—" if goal is None else (
            f"{pct(goal, 1)} ✓" if m["accuracy"] >= goal
            else f"{pct(goal, 1)} ✗ ({(m['accuracy'] - goal) * 100:.2f})".replace("-", "−"))
        run = f"{duration(m['training_seconds'])} / {duration(m['run_seconds'])}"
        validation = f"{pct(m['validation_last'])} ({pct(m['validation_best'])} at {m['validation_best_epoch']})"
        rows.append([card(name), m["dataset"], architecture(m), whole(m["parameters"]), f"**{pct(m['accuracy'])}**",
                     reached, validation, epochs(m), run, device(m["device"])])
    return table(["model", "dataset", "architecture", "parameters", "test accuracy", "goal",
                  "validation, last epoch (best, at epoch)", "epochs", "training / whole run", "on"], rows)


def commands(models: dict[str, dict]) -> str:
    lines = [f"# weights/{name}\n{models[name]['command']}" for name in models]
    return "```bash\n" + "\n".join(lines) + "\n```"


def default_result(models: dict[str, dict]) -> str:
    m = models["mnist"]
    misses = "; ".join(f"{what} × {count}" for what, count in sorted(m["writers_misses"].items()))
    best = (f"first reached at epoch {m['validation_best_epoch']}" if m["validation_last"] == m["validation_best"]
            else f"the best, {pct(m['validation_best'])}, at epoch {m['validation_best_epoch']}")
    return (f"Result: validation {pct(m['validation_last'])} at the last epoch ({m['epochs']}; {best}), "
            f"test **{pct(m['accuracy'])}**; out of MNIST "
            f"{pct(m['typed'], 1)} of {whole(m['typed_count'])} typed and {pct(m['drawn'], 1)} of "
            f"{whole(m['drawn_count'])} drawn digits ({pct(m['writers_all'], 1)} of all; goal {pct(WRITERS_GOAL, 1)}: "
            f"{'met' if m['writers_all'] >= WRITERS_GOAL else 'missed'}); the misses: {misses}.")


def zoo_table(models: dict[str, dict]) -> str:
    base, rows = models[BASELINE], []
    for name, m in models.items():
        if name != BASELINE and not name.startswith("zoo/"):
            continue
        change = ", ".join(f"`{key}` {m[key]}" for key in ("cut", "tile_size", "pos_embedding") if m[key] != base[key])
        rows.append([card(name), change or "(none: the baseline)", str(m["tokens"]), whole(m["parameters"]),
                     epochs(m), f"**{pct(m['accuracy'])}**",
                     f"{duration(m['run_seconds'])}, {device(m['device'])}", out_of_mnist(m)])
    return table(["model", f"change from `{BASELINE}`", "tokens", "parameters", "epochs", "test accuracy",
                  "whole run", "typed / drawn out of MNIST"], rows)


def out_of_mnist(m: dict) -> str:
    return "—" if m["typed"] is None else f"{pct(m['typed'], 1)} / {pct(m['drawn'], 1)}"


def same(models: list[dict], key: str) -> str:
    values = sorted({m[key] for m in models if m[key] is not None})
    return " or ".join(whole(v) for v in values)


def trust_table(models: dict[str, dict]) -> str:
    chosen = [models[name] for name in MNIST + FASHION]
    found = {kind for m in chosen for kind in m["others_refused"]}
    others = [kind for kind in OTHERS if kind in found] + sorted(found - set(OTHERS))
    rows = [[card(name), f"{m['temperature']:.3f}", f"{pct(m['ece_before'])} → **{pct(m['ece_after'])}**",
             pct(m["test_refused"]), pct(m["drawn_refused"], 1),
             " / ".join(pct(m["others_refused"][kind], 0) if kind in m["others_refused"] else "—" for kind in others),
             out_of_mnist(m)] for name, m in zip(MNIST + FASHION, chosen)]
    return table(["model", "temperature", "ECE raw → calibrated", "test items refused",
                  f"drawn test items refused ({same(chosen, 'drawn_refused_count')})",
                  f"{' / '.join(others)} refused ({same(chosen, 'others_count')} each)",
                  f"typed ({same(chosen, 'typed_count')}, {same(chosen, 'fonts')} fonts) / drawn "
                  f"({same(chosen, 'drawn_count')}) digits read"], rows)


def scoreboard(name: str, m: dict) -> str:
    f = m["faithfulness"]
    areas, cascade, stages = f["areas"], f["cascade"], f["stages"]
    blocks = len(stages) - 2                 # stages: the head, each block from the top, the embedding
    half = math.ceil(blocks / 2)             # stage `half`: the head and the top half of the blocks re-drawn
    random_deletion = areas["random"][0]
    methods = [k for k in METHODS if k in areas] + sorted(set(areas) - set(METHODS))
    explained = [k for k in methods if k != "random"]
    most_faithful = min(explained, key=lambda k: areas[k][0])   # the lowest deletion area
    best_inserted = max(explained, key=lambda k: areas[k][2])   # the highest insertion area
    rows = []
    for k in methods:
        deletion, deletion_se, insertion, insertion_se = areas[k]
        c = cascade.get(k)
        correlation = "—" if c is None else (
            f"{signed(c[0])} / {strong(signed(c[half]), c[half] > SURVIVES)} / {signed(c[-1])}")
        rows.append([METHODS.get(k, k), f"{strong(f'{deletion:.3f}', k == most_faithful)} ± {deletion_se:.3f}",
                     strong(f"{deletion / random_deletion * 100:.0f} %", k == most_faithful),
                     f"{strong(f'{insertion:.3f}', k == best_inserted)} ± {insertion_se:.3f}", correlation])
    ratio = areas[f["best"]][0] / random_deletion
    summary = (f"**`weights/{name}`**: {whole(f['count'])} test {m['noun']}s, {f['points']} points a curve; the "
               f"randomisation test over {whole(f['randomised_count'])}. "
               f"Most faithful: {METHODS.get(f['best'], f['best'])}, "
               f"at {ratio * 100:.0f} % of a random order's deletion area (goal ≤ {FAITHFUL_GOAL * 100:.0f} %: "
               f"{'met' if ratio <= FAITHFUL_GOAL else 'missed'}).")
    board = table(["method", "deletion area ± s.e. (lower: more faithful)", "of a random order's",
                   "insertion area ± s.e. (higher)",
                   f"rank correlation with the trained maps: head re-drawn / + top {half} of {blocks} blocks "
                   "/ everything"],
                  rows)
    verdicts = "\n".join(f"- {text}" for _, text in sorted(f["verdicts"].items(), key=lambda kv: methods.index(kv[0])
                                                           if kv[0] in methods else len(methods)))
    return f"{summary}\n\n{board}\n\n{verdicts}"


def faithfulness(models: dict[str, dict]) -> str:
    return "\n\n".join(scoreboard(name, m) for name, m in models.items() if m["faithfulness"])


def bottom_lines(models: dict[str, dict]) -> str:
    """What the "Which map to trust?" tab concludes for each model, before any picture's curves."""
    return "\n".join(f"- `weights/{name}`: " + (m["faithfulness"]["bottom_line"]
                                                 if m["faithfulness"] else "no scoreboard was measured: the tab "
                                                 "can only show one picture's curves, a hint, not a test.")
                     for name, m in models.items())


def proxies_table(models: dict[str, dict]) -> str:
    """The digit models on the proxy sets' report draw: read right / refused, turned away, selective prediction."""
    chosen = {name: models[name]["proxies"] for name in MNIST if models[name]["proxies"]}
    if not chosen:
        return "No model folder holds proxy-set figures yet: `python -m proxies weights/mnist --write`."
    kinds = [kind for kind in next(iter(chosen.values()))["photos"] if kind != "all"]
    share = lambda s: f"{pct(s.right, 1)} / {pct(s.refused, 1)}"  # noqa: E731
    rows = [[card(name), share(p["writers"]), share(p["photos"]["all"]),
             *(pct(p["photos"][kind].right, 0) for kind in kinds), f"**{pct(p['nondigits']['all'].right, 1)}**",
             f"{p['aurc']:.3f}", f"{pct(p['accepted'], 1)} / {pct(p['risk_accepted'], 1)}"]
            for name, p in chosen.items()]
    first = next(iter(chosen.values()))
    header = ["model", f"other writers' digits ({first['writers'].n}): read / refused",
              f"photographed digits ({first['photos']['all'].n}): read / refused", *kinds,
              f"drawn non-digits ({first['nondigits']['all'].n}): refused or unsure",
              "AURC (lower: better)", "answered / wrong among the answered"]
    prints = ", ".join(f"{name} `{value[:16]}`" for name, value in first["fingerprints"].items())
    return (table(header, rows) + f"\n\nMeasured with `{first['command']}` on the report draw; the sets' "
            f"fingerprints (SHA-256 of their pixels, first 16 digits): {prints}.")


BLOCKS = {"headline": headline, "proxies": proxies_table, "models": models_table, "commands": commands, "default-result": default_result,
          "zoo": zoo_table, "trust": trust_table, "faithfulness": faithfulness,
          "bottom-lines": bottom_lines}


# -- reading the folders, rewriting and checking the documents ----------------------------------------------

def folder_names(weights: Path) -> list[str]:
    """The model folders the documents quote, in a fixed order: the app's models, then the zoo sorted."""
    zoo = sorted(f"zoo/{p.name}" for p in (weights / "zoo").iterdir() if (p / "config.json").is_file())
    return [*MNIST, *FASHION, *zoo]


def render(weights: Path) -> dict[str, str]:
    """Every block's text, from the folders under `weights`."""
    models = {name: measured(weights / name) for name in folder_names(weights)}
    return {name: make(models) for name, make in BLOCKS.items()}


def documents(root: Path) -> list[Path]:
    """The files whose blocks this script owns."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


def difference(written: str, wanted: str) -> str:
    """Where the first difference is: the block's line and the text around it, as written and as generated."""
    old, new = written.strip("\n").splitlines(), wanted.strip("\n").splitlines()
    line = next((i for i, (a, b) in enumerate(zip(old, new)) if a != b), min(len(old), len(new)))
    a, b = (old[line] if line < len(old) else ""), (new[line] if line < len(new) else "")
    column = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, column - 30)
    return f"line {line + 1} of the block reads {a[start:column + 30]!r}, the folders give {b[start:column + 30]!r}"


def rewrite(text: str, blocks: dict[str, str], where: str) -> tuple[str, list[str]]:
    """The text with every block regenerated, and a line for each block that was not as generated."""
    problems = []
    opened = OPENING.findall(text)
    closed = {m.group(1) for m in MARKER.finditer(text)}
    problems += [f"{where}: block '{name}' has no closing <!-- /figures:{name} -->" for name in opened
                 if name not in closed]

    def replace(match: re.Match) -> str:
        name, body = match.group(1), match.group(2)
        if name not in blocks:
            problems.append(f"{where}: unknown block '{name}' (known: {', '.join(sorted(blocks))})")
            return match.group(0)
        wanted = f"\n\n{blocks[name]}\n\n"
        if body != wanted:
            problems.append(f"{where}: block '{name}' differs from the model folders ({difference(body, wanted)})")
        return f"<!-- figures:{name} -->{wanted}<!-- /figures:{name} -->"

    return MARKER.sub(replace, text), problems


def main(argv: list[str] | None = None, blocks: dict[str, str] | None = None) -> int:
    """Rewrite (or with --check compare) every block; 1 when a block differs or is malformed. `blocks` skips the
    folders: tests pass them in once."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if any block differs")
    parser.add_argument("--root", type=Path, default=ROOT, help="where README.md and docs/ are (default: the repo)")
    parser.add_argument("--weights", type=Path, default=ROOT / "weights", help="the model folders (default: weights/)")
    args = parser.parse_args(argv)
    blocks = blocks if blocks is not None else render(args.weights)
    problems = []
    for path in documents(args.root):
        where = str(path.relative_to(args.root))
        text = path.read_text()
        new, found = rewrite(text, blocks, where)
        problems += found
        if not args.check and new != text:
            path.write_text(new)
            print(f"rewrote {where}")
    if args.check and problems:
        print("\n".join(problems) + "\nrun `python docs/figures.py` to regenerate them", file=sys.stderr)
        return 1
    unknown = [p for p in problems if "unknown block" in p or "no closing" in p]
    if unknown:
        print("\n".join(unknown), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
