"""Pacing a run: budgets parsed, epochs sized from measured speed, threads chosen by measurement."""

import math
import os
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY, train_in_process
from vit import ViT, pacing
from vit.data import Split
from vit.recipe import PRESETS
from vit.bundle import read_evaluation


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


def synthetic_split(count: int = 64) -> Split:
    return Split(torch.randint(0, 256, (count, 1, 28, 28), dtype=torch.uint8), torch.arange(count) % 10)


@pytest.mark.parametrize("measured, fastest", [({1: 0.3, 2: 0.1}, 2), ({1: 0.1, 2: 0.3}, 1)])
def test_the_thread_count_measured_fastest_is_chosen_and_set(monkeypatch, torch_threads, measured, fastest):
    """Each candidate is timed with that many threads set; the second may give up at twice the first's time."""
    calls = []

    def seconds_per_step(model, recipe, split, device, give_up):  # what each thread count measures, made up
        calls.append((torch.get_num_threads(), give_up))
        return measured[torch.get_num_threads()]

    monkeypatch.setattr(pacing, "seconds_per_step", seconds_per_step)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    chosen, timings = pacing.choose_threads(ViT(**TINY), PRESETS["tiny"][1], synthetic_split(), torch.device("cpu"))
    assert (chosen, timings, torch.get_num_threads()) == (fastest, measured, fastest)
    assert calls == [(1, math.inf), (2, pytest.approx(2 * measured[1] * pacing.PROBE_STEPS))]


def test_thread_counts_above_the_machines_cores_are_not_tried(monkeypatch, torch_threads):
    monkeypatch.setattr(pacing, "seconds_per_step", lambda *args, **kwargs: 0.1)
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert pacing.choose_threads(ViT(**TINY), PRESETS["tiny"][1], synthetic_split(), torch.device("cpu")) == (1, {1: 0.1})


def test_a_step_is_timed_on_the_real_model_and_a_slow_candidate_gives_up_after_one(monkeypatch):
    steps = []
    step = pacing.Probe.step
    monkeypatch.setattr(pacing.Probe, "step", lambda probe: (steps.append(1), step(probe)))
    seconds = pacing.seconds_per_step(ViT(**TINY), PRESETS["tiny"][1], synthetic_split(), torch.device("cpu"),
                                      give_up=0.0)
    assert seconds > 0 and len(steps) == pacing.WARMUP_STEPS + 1  # the warm-up, then one timed step, not eight


def run_train(*args, cwd):
    return subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("args, message", [(["--budget", "3 minutes"], "e.g. 90s, 3m or 1.5h"),
                                           (["--budget", "1m", "--epochs", "2"], "choose one: --budget")])
def test_cli_rejects_a_bad_budget(tmp_path, monkeypatch, capsys, torch_threads, args, message):
    result = train_in_process("--preset", "tiny", "--output", str(tmp_path / "out"), *args, cwd=tmp_path,
                              monkeypatch=monkeypatch, capsys=capsys)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.slow
def test_a_budget_run_sizes_its_epochs_and_says_so_in_its_card(data_dir, tmp_path):
    result = run_train("--preset", "tiny", "--budget", "15s", "--data-dir", str(data_dir), "--output", "model",
                       "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "threads: 1: " in result.stderr and "budget 15 s:" in result.stderr
    evaluation = read_evaluation(tmp_path / "model")
    paced = evaluation.pacing
    assert paced.budget_seconds == 15 and paced.planned_epochs == evaluation.recipe["epochs"] >= 1
    assert len(evaluation.history) == paced.planned_epochs and evaluation.faithfulness is None
    assert paced.threads in (1, 2) and paced.run_seconds > 0 and paced.seconds_per_step > 0
    card = (tmp_path / "model" / "README.md").read_text()
    assert "a budget of 15 s (`--budget`)" in card and f"{paced.planned_epochs} epochs fitted" in card
    # its checkpoint cannot be resumed by another architecture (this run stands in for a training of its own)
    result = run_train("--preset", "tiny", "--data-dir", str(data_dir), "--output", "model", "--embed-size", "32",
                       "--resume", cwd=tmp_path)
    assert result.returncode == 2 and "another architecture (differs in embed_size)" in result.stderr
