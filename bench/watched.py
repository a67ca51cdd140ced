"""The Train tab's runs as the tab starts them (vit.live: their own process, one thread, the clock's schedule): its
default choices for 60 s and for 30 s, their test accuracy, and the time to the seed's 96.97 % they give."""

from dataclasses import asdict, replace
from pathlib import Path

from vit import live

from .budget import Budget
from .report import figure
from .timings import SEED_ACCURACY

SECONDS = (60, 30)  # the tab's default budget, and a shorter one for the ratio to the seed's recipe


def watched(choices: live.Choices, folder: Path) -> dict:
    """The run's last report ("done" or "failed") with its parameter count."""
    reports = live.Run(choices, folder).ended()
    return reports.last | {"parameters": reports.started.get("parameters")}


def bench_train_tab(workdir: Path, seed: dict | None, budget: Budget) -> dict:
    """Test accuracy after each budget (goal: 97 % in 60 s), and the ratio to the seed's time to 96.97 % (goal: 100 ×;
    seed_ratio). Nothing here is chosen: the recipe was chosen on validation (docs/training.md)."""
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
    part["ratio"] = seed_ratio(part, seed)
    return part


def seed_ratio(part: dict, seed: dict | None) -> dict:
    """The seed's time to 96.97 % ÷ the shortest budget whose run ended above 96.97 %: a lower bound on how many
    times faster the Train tab's defaults get there (the run reached it within that budget)."""
    reached = [seconds for seconds in sorted(SECONDS)
               if (part[f"accuracy_{seconds}s"]["value"] or 0) >= SEED_ACCURACY * 100]
    theirs = seed["seconds_to_accuracy"]["value"] if seed else None
    if not reached or not theirs:
        return figure(None, "×", goal=100, better="higher", budget=None, note="no run ended above 96.97 %") | {
            "met": False}
    return figure(theirs / reached[0], "×", goal=100, better="higher", budget=reached[0])
