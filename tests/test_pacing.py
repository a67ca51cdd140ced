"""Pacing a run: budgets parsed, epochs sized from measured speed, threads chosen by measurement."""

import json
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY
from vit import ViT, pacing
from vit.data import load_split
from vit.recipe import PRESETS


@pytest.mark.parametrize("text, seconds", [("90s", 90), ("3m", 180), ("1.5h", 5400), ("200", 200), (" 2M ", 120)])
def test_a_budget_is_a_duration(text, seconds):
    assert pacing.parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["", "3 minutes", "-1m", "0s", "m", "1m30s"])
def test_anything_else_is_refused_with_an_example(text):
    with pytest.raises(ValueError, match="e.g. 90s, 3m or 1.5h"):
        pacing.parse_budget(text)


def test_the_epochs_that_fit_pay_for_their_steps_their_validation_and_the_evaluation():
    # 180 s, 30 s kept: 150 s for epochs of 100 steps × 0.1 s + 4 s of validation = 14 s each -> 10 epochs
    assert pacing.epochs_for_budget(180, 0.1, 100, 4, 30) == 10
    assert pacing.epochs_for_budget(10, 0.1, 100, 4, 30) == 1  # never none
    assert pacing.epochs_for_budget(180, 0.1, 100, 4, 30, checkpoint=1) == 10  # 15 s each: still 10
    assert pacing.epochs_for_budget(180, 0.1, 100, 4, 30, checkpoint=2) == 9   # 16 s each
    assert pacing.evaluation_reserve(2.0, 0.01) == pytest.approx(12 + 30.1 + 3)


def test_threads_are_chosen_by_measuring_each(data_dir):
    split = load_split("mnist", "test", data_dir).subset(torch.arange(256))
    _, recipe = PRESETS["tiny"]
    before = torch.get_num_threads()
    try:
        chosen, timings = pacing.choose_threads(ViT(**TINY), recipe, split, torch.device("cpu"))
        assert chosen in timings and timings[chosen] == min(timings.values()) and torch.get_num_threads() == chosen
        assert set(timings) <= {1, 2} and all(seconds > 0 for seconds in timings.values())
    finally:
        torch.set_num_threads(before)


def run_train(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("args, message", [(["--budget", "3 minutes"], "e.g. 90s, 3m or 1.5h"),
                                           (["--budget", "1m", "--epochs", "2"], "choose one: --budget")])
def test_cli_rejects_a_bad_budget(tmp_path, args, message):
    result = run_train("--preset", "tiny", "--output", str(tmp_path / "out"), *args, cwd=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_budget_run_sizes_its_epochs_and_says_so_in_its_card(data_dir, tmp_path):
    result = run_train("--preset", "tiny", "--budget", "15s", "--data-dir", str(data_dir), "--output", "model",
                       "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "threads: 1: " in result.stderr and "budget 15 s:" in result.stderr
    evaluation = json.loads((tmp_path / "model" / "evaluation.json").read_text())
    paced = evaluation["pacing"]
    assert paced["budget_seconds"] == 15 and paced["planned_epochs"] == evaluation["recipe"]["epochs"] >= 1
    assert len(evaluation["history"]) == paced["planned_epochs"] and "faithfulness" not in evaluation
    assert paced["threads"] in (1, 2) and paced["run_seconds"] > 0 and paced["seconds_per_step"] > 0
    card = (tmp_path / "model" / "README.md").read_text()
    assert "a budget of 15 s (`--budget`)" in card and f"{paced['planned_epochs']} epochs fitted" in card
    # its checkpoint cannot be resumed by another architecture (this run stands in for a training of its own)
    result = run_train("--preset", "tiny", "--data-dir", str(data_dir), "--output", "model", "--embed-size", "32",
                       "--resume", cwd=tmp_path)
    assert result.returncode == 2 and "another architecture (differs in embed_size)" in result.stderr
