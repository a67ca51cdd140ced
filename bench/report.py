"""Figures and the report: a number with its goal, percentiles, the machine, and the text and markdown tables.

A figure is a dict {"value", "unit", "goal", "better", "met", ...}; every part of the benchmark returns
them, `rows` lists them in reading order under a name, and both tables are drawn from those rows.
"""

import math
import os
import platform
import statistics
from pathlib import Path

import torch

from . import ROOT
from .budget import STARTUP_THREADS


def figure(value: float | None, unit: str, goal: float | None = None, better: str = "lower", **extra) -> dict:
    """One measured number with its goal (a bound; `better` says which side) and whether it was met."""
    met = None if value is None or goal is None else bool(value <= goal if better == "lower" else value >= goal)
    rounded = None if value is None else round(float(value), 3 if abs(value) < 100 else 1)
    return {"value": rounded, "unit": unit, "goal": goal, "better": better if goal is not None else None,
            "met": met, **extra}


def percentiles(milliseconds: list[float], goal_p95: float | None = None, goal_p50: float | None = None) -> dict:
    """p50 and p95 of a list of durations in ms, each with its goal if it has one (None when the list is empty)."""
    ordered = sorted(milliseconds)
    p50 = statistics.median(ordered) if ordered else None
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)] if ordered else None  # nearest-rank
    return {"p50": figure(p50, "ms", goal_p50), "p95": figure(p95, "ms", goal_p95), "runs": len(ordered)}


def shown(path: Path) -> str:
    """A path as the reader would type it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "default_threads": STARTUP_THREADS, "load_average_start": load()}


def load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


# --- Rows: every figure under its name, in reading order ------------------------------------------------------

def rows(results: dict) -> list[tuple[str, dict]]:
    """Every reported figure as (name, figure), in reading order."""
    return [*training_rows(results), *inference_rows(results["inference"]), *choice_rows(results.get("choices")),
            *update_rows(results.get("predict_update")), *app_rows(results["app"]),
            *accuracy_rows(results["accuracy"])]


def training_rows(results: dict) -> list[tuple[str, dict]]:
    """The seed's recipe and ours: time to the seed's accuracy, their ratio, and ours to 99 %."""
    seed, ours = results["seed_recipe"], results["time_to_accuracy"]
    timed = "" if seed["epoch_seconds"]["steps_timed"] == seed["epoch_seconds"]["steps_per_epoch"] else \
        f", {seed['epoch_seconds']['steps_timed']} steps timed"
    table = [(f"the seed's recipe: one epoch of {seed['images']:,} images ({seed['threads']} threads{timed})",
              seed["epoch_seconds"]),
             ("the seed's recipe: time to 96.97 % (500 epochs)", seed["seconds_to_accuracy"])]
    if ours.get("skipped"):
        return table + [(f"fast preset: time to 96.97 % and to 99 % (skipped: {ours['skipped']})", figure(None, "s"))]
    return table + [(reached_label("fast preset: time to 96.97 %", ours, "to_seed_accuracy"), ours["to_seed_accuracy"]),
                    ("time to 96.97 %: the seed's recipe ÷ the fast preset", ours["ratio"]),
                    (reached_label("fast preset: time to 99 %", ours, "to_99"), ours["to_99"]),
                    *train_tab_rows(results.get("train_tab"))]


def train_tab_rows(part: dict | None) -> list[tuple[str, dict]]:
    """The Train tab's default choices trained as the tab trains them."""
    if not part:  # results files from before this part have none
        return []
    if part.get("skipped"):
        return [(f"Train tab: its defaults for 60 s and 30 s (skipped: {part['skipped']})", figure(None, "%"))]
    choices = part["choices"]
    label = f"Train tab defaults (tiles of {choices['tile_size']}, {choices['blocks']} blocks, 1 thread)"
    return [(f"{label}: test accuracy after 60 s", part["accuracy_60s"]),
            (f"{label}: test accuracy after 30 s", part["accuracy_30s"]),
            (ratio_label(part["ratio"]), part["ratio"])]


def ratio_label(ratio: dict) -> str:
    if ratio.get("budget") is None:
        return "time to 96.97 %: the seed's recipe ÷ the Train tab's defaults (no run ended above 96.97 %)"
    return (f"time to 96.97 %: the seed's recipe ÷ the Train tab's defaults (at most {ratio['budget']} s: its "
            f"{ratio['budget']}-second run ended above it)")


def reached_label(label: str, part: dict, key: str) -> str:
    """The row's name with the epoch it was reached at, or what was reached instead."""
    epoch = part[key]["epoch"]
    if epoch is None:
        return (f"{label} (not reached: {part['final_accuracy'] * 100:.2f} % after {part['epochs']} epochs, "
                f"{part['total_seconds']:.0f} s)")
    return f"{label} (epoch {epoch} of {part['epochs']}, {part['threads']} thread{'s' if part['threads'] > 1 else ''})"


def inference_rows(inference: dict) -> list[tuple[str, dict]]:
    table = []
    for name, part in inference.items():
        weights = "untrained" if part["weights"] == "untrained" else "trained"
        for key, label in (("forward_ms", "forward"), ("explain_ms", "predict + explain"),
                           ("explain_and_faithfulness_ms", "explain + six maps and their deletion/insertion curves")):
            if key not in part:  # results files from before that row have none
                continue
            table += [(f"{name} ({weights}): {label} p50", part[key]["p50"]),
                      (f"{name} ({weights}): {label} p95", part[key]["p95"])]
        for key in ("test_split_seconds", "test_split_seconds_all_cores"):
            threads = part[key]["threads"]
            table.append((f"{name} ({weights}): 10k test images, {threads} thread{'s' if threads > 1 else ''}",
                          part[key]))
    return table


def choice_rows(choices: dict | None) -> list[tuple[str, dict]]:
    if not choices:  # results files from before these rows have none
        return []
    model = choices["evaluation_model"]
    return [("augmenting 128 images, F.affine_grid + grid_sample (before)", choices["augment_affine_grid_ms"]),
            ("augmenting 128 images, einsum grid + grid_sample (now)", choices["augment_einsum_grid_ms"]),
            ("EMA update, tiny model, one lerp_ per parameter (before)", choices["ema_per_parameter_ms"]),
            ("EMA update, tiny model, one fused _foreach_lerp_ (now)", choices["ema_fused_ms"]),
            ("AdamW step, tiny model, torch's default on a CPU (before)", choices["adamw_default_ms"]),
            ("AdamW step, tiny model, fused=True (now)", choices["adamw_fused_ms"]),
            (f"{model}: 10k test images in batches of 1000 (before)", choices["evaluation_batch_1000_s"]),
            (f"{model}: 10k test images in batches of 100 (now)", choices["evaluation_batch_100_s"])]


def update_rows(update: dict | None) -> list[tuple[str, dict]]:
    if update is None:  # results files from before this part have none
        return []
    if update.get("not_measured"):
        return [(f"Predict update in process: not measured ({update['not_measured']})", update["p95"])]
    weights = "untrained" if update["weights"] == "untrained" else "trained"
    label = f"Predict update in process, {update['model']} ({weights})"
    return [(f"{label} p50", update["p50"]), (f"{label} p95", update["p95"]),
            (f"{label}: drawings not read", update["not_read"])]


def app_rows(app: dict) -> list[tuple[str, dict]]:
    if app.get("skipped"):
        return [(f"app: skipped ({app['skipped']})", figure(None, ""))]
    table = [*startup_rows(app.get("startup")), ("app: start-up to /gradio_api/info", app["startup_seconds"])]
    for key in ("one_client", "concurrent"):
        part = app[key]
        label = f"app /predict, {part['clients']} client{'s' if part['clients'] > 1 else ''}"
        table += [(f"{label} p50", part["p50"]), (f"{label} p95", part["p95"]), (f"{label} errors", part["errors"]),
                  (f"{label} wrong labels", part["wrong_labels"])]
    table += [("app /predict, 1 client, gradio_client defaults, p50", app["one_client_default_options"]["p50"]),
              ("app /predict, 1 client, plain HTTP (REST API), p50", app["one_client_plain_http"]["p50"]),
              ("app /predict, 1 client, plain HTTP (REST API), p95", app["one_client_plain_http"]["p95"])]
    return (table + browser_rows(app.get("browser"))
            + browser_rows(app.get("browser_while_training"), "Chromium while another caller trains"))


def startup_rows(startup: dict | None) -> list[tuple[str, dict]]:
    if startup is None:  # results files from before this figure have none
        return []
    runs = f"median of {startup['launches']}" if startup["launches"] > 1 else "1 launch"
    return [(f"start-up to the first page: the app ({runs})", startup["app_seconds"]),
            (f"start-up to the first page: a bare Gradio app ({runs})", startup["bare_seconds"]),
            ("start-up, the app ÷ a bare Gradio app", startup["ratio"])]


def browser_rows(browser: dict | None, name: str = "Chromium") -> list[tuple[str, dict]]:
    if browser is None:  # results files from before this figure have none
        return []
    if browser.get("not_measured"):
        reason = f"not measured: {browser['not_measured']}"
        return [(f"{name}: stroke → label p50 ({reason})", browser["label_ms"]["p50"]),
                (f"{name}: stroke → every map loaded p50 ({reason})", browser["maps_ms"]["p50"])]
    strokes = f"{browser['label_ms']['runs']} strokes"
    if "training_throughout" in browser and not browser["training_throughout"]:
        strokes += ", the training ended before the last"
    return [(f"{name}: stroke → label p50 ({strokes})", browser["label_ms"]["p50"]),
            (f"{name}: stroke → label p95", browser["label_ms"]["p95"]),
            (f"{name}: stroke → every map loaded p50 ({browser['maps_ms']['runs']} strokes)",
             browser["maps_ms"]["p50"]),
            (f"{name}: stroke → every map loaded p95", browser["maps_ms"]["p95"]),
            (f"{name}: strokes with no update", browser["failed"])]


def accuracy_rows(accuracy: dict) -> list[tuple[str, dict]]:
    return [(f"accuracy: {name}", value) for part in ("shipped", "anchors") for name, value in accuracy[part].items()]


# --- Tables ---------------------------------------------------------------------------------------------------

def format_value(value: dict) -> str:
    number = value["value"]
    if number is None:
        return "—"
    if value["unit"] == "%":
        text = f"{number:.2f}"
    elif abs(number) >= 100:
        text = f"{number:,.0f}".replace(",", " ")
    else:
        text = f"{number:.3g}"
    return f"{text} {value['unit']}".rstrip()


def format_goal(value: dict) -> str:
    if value["goal"] is None:
        return ""
    return f"{'≤' if value['better'] == 'lower' else '≥'} {value['goal']:g} {value['unit']}".rstrip()


def format_met(value: dict) -> str:
    return {True: "met", False: "MISSED", None: ""}[value["met"]]


def text_table(results: dict) -> str:
    table = [(name, format_value(value), format_goal(value), format_met(value)) for name, value in rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table)


def markdown(results: dict, details: str = "results.json") -> str:
    """The table for the README: date, machine, then every figure with its goal, then how each was measured."""
    info = results["machine"]
    lines = [f"# Benchmark ({results['mode']} mode)", "",
             f"Measured {results['date']} on {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
             f"Python {info['python']}; load average {info['load_average_start']} at the start. "
             f"Command: `{results['command']}`{took(results)}. Figures and details: `{details}`.", "",
             *figure_table(rows(results))]
    return "\n".join(lines + ["", *notes(results), ""])


def figure_table(named: list[tuple[str, dict]]) -> list[str]:
    """Markdown lines: every (name, figure) with its value, its goal and whether it was met."""
    return ["| figure | value | goal | |", "| --- | ---: | --- | --- |",
            *(f"| {name} | {format_value(value)} | {format_goal(value)} | {format_met(value)} |" for name, value in named)]


def took(results: dict) -> str:
    return f", which took {results['seconds'] / 60:.1f} minutes" if "seconds" in results else ""


def notes(results: dict) -> list[str]:
    """One line per part: what was measured, how."""
    seed, app, update = results["seed_recipe"], results["app"], results.get("predict_update") or {}
    lines = [f"- The seed's recipe: its tiny ViT (bench.notebook), Adam 3e-4, batch 128, a per-item DataLoader over "
             f"{seed['images']:,} images, torch's default {seed['threads']} threads; the median of "
             f"{len(seed['epoch_seconds']['runs'])} timed epochs × the 500 epochs it took to reach 96.97 %.",
             "- Ours: `PRESETS[\"fast\"]` through `vit.training.train` as train.py runs it (the validation split "
             "carved out, threads by measurement); the seconds are the epochs' own, each with a pass over the test "
             "split that only reports when 96.97 % and 99 % are reached.",
             *(f"- {name}: weights `{part['weights']}`, {part['parameters']:,} parameters, "
               f"{part['threads']} thread (the 10k evaluation also on all cores)"
               for name, part in results["inference"].items()),
             "- Before / now: each speed choice in `vit.augment`, `vit.optimiser` and `vit.analysis` timed beside the "
             "code it replaced, medians on 1 thread in the same run."]
    if update and not update.get("not_measured"):
        lines.append(f"- Predict update in process: `tabs.predict.read_drawing` then `show_maps` on "
                     f"{update['runs']} MNIST test digits sent as the drawing pad sends a stroke (black on white, "
                     "336×336, a PNG data URL), 1 thread.")
    if not app.get("skipped"):
        lines += [f"- App: `python app.py` with weights `{app['weights']}`, called through {app['client']}.",
                  f"- Start-up: from starting the process to the first HTTP 200 on `/`, the app and "
                  f"`{app['startup']['bare_app']}` launched in turn."]
        if not app["browser"].get("not_measured"):
            lines.append(f"- Chromium: {app['browser']['method']}")
    lines.append("- Many visitors at once (open loop, batching off and on): `python -m bench --open-loop`, its own "
                 "table in `open-loop.md`.")
    return lines
