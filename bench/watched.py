"""The Train tab's runs as the tab starts them (vit.live: their own process, one thread, the clock's schedule): its
default choices for 60 s and for 30 s, their test accuracy, and the time to the seed's 96.97 % they give."""

from dataclasses import asdict, replace
from pathlib import Path

from vit import live

from .budget import Budget
from .report import figure
from .timings import SEED_ACCURACY

SECONDS = (60, 30)  # the tab's default budget, and the one the ratio to the seed's recipe is read from


def watched(choices: live.Choices, folder: Path) -> dict:
    """The run's last report ("done" or "failed") with its parameter count."""
    started = {}
    for batch in live.Run(choices, folder).batches():
        started |= next((event for event in batch if event["kind"] == "started"), {})
        last = batch[-1]
    return last | {"parameters": started.get("parameters")}


def bench_train_tab(workdir: Path, seed: dict | None, budget: Budget) -> dict:
    """Test accuracy after each budget (goal: 97 % in 60 s), and the seed's time to 96.97 % ÷ 30 s when the 30-second
    run ends above 96.97 % (goal: 100 ×). Nothing here is chosen: the recipe was chosen on validation
    (docs/training.md)."""
    if not budget.time_to_99:
        return {"skipped": "quick mode"}
    part = {"choices": asdict(replace(live.Choices(), seconds=0)), "threads": 1}
    for seconds in SECONDS:
        done = watched(replace(live.Choices(), seconds=seconds), workdir / f"watched-{seconds}")
        accuracy = done.get("test_accuracy")
        part[f"accuracy_{seconds}s"] = figure(accuracy and accuracy * 100, "%", goal=97 if seconds == 60 else None,
                                              better="higher", seconds=done.get("seconds"),
                                              pictures=done.get("pictures"), parameters=done.get("parameters"),
                                              failed=done.get("message"))
    short = part[f"accuracy_{SECONDS[-1]}s"]["value"]
    theirs = seed["seconds_to_accuracy"]["value"] if seed else None
    reached = short is not None and short >= SEED_ACCURACY * 100
    part["ratio"] = figure(theirs / SECONDS[-1] if reached and theirs else None, "×", goal=100, better="higher",
                           note=None if reached else f"the {SECONDS[-1]}-second run ended below 96.97 %")
    if not reached:
        part["ratio"]["met"] = False
    return part
