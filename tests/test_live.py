"""A watched training run (vit.live) and the visitor's own models it makes (vit.registry): the choices a learner can
make and the sentence for those that cannot train, a real run in its own process from start to model folder, Stop,
and how long and how many own models are kept."""

import os
import subprocess
import sys
import time

import pytest

from vit import live, registry
from vit.bundle import FILES, load_folder

from conftest import DATA_DIR, MNIST_TINY, ROOT, registered

SMALL = dict(blocks=1, heads=2, width=32)  # a model that learns something in seconds


@pytest.mark.parametrize("changes, words", [
    (dict(tile_size=5), "does not divide the 28-pixel picture"),
    (dict(tile_size=1), "Pieces of 1 pixel make 784 words"),  # 1 divides 28: not the reason it is refused
    (dict(width=64, heads=3), "does not split into 3 heads"),
    (dict(seconds=600), "between 10 and 120 seconds"),
    (dict(blocks=0), "between 1 and 6 blocks"),
    (dict(cut="diagonal"), "Choose the cut"),
    (dict(dataset="cifar"), "Choose the data"),
    (dict(positions="random"), "Choose positions"),
])
def test_a_choice_that_cannot_train_gets_a_sentence(changes, words):
    assert words in live.Choices(**changes).problem()


def test_the_train_endpoints_defaults_are_the_tabs():
    # /train's signature is what the API page and the MCP schema show: its defaults must be the Train tab's choices
    import dataclasses
    import inspect
    import api
    defaults = {name: p.default for name, p in inspect.signature(api.train).parameters.items()}
    assert defaults == dataclasses.asdict(live.Choices())


def test_the_default_choices_and_every_cut_of_every_offered_size_can_train():
    assert live.Choices().problem() is None
    assert all(live.Choices(cut=cut, tile_size=size).problem() is None
               for cut in ("tiles", "horizontal-strips", "vertical-strips") for size in (2, 4, 7, 14))


def test_the_menu_names_a_run_by_what_sets_it_apart():
    assert live.Choices().label() == "yours: tiles of 7, 2 blocks"
    assert live.Choices(positions="none").label() == "yours: tiles of 7, 2 blocks, no positions"
    assert (live.Choices(dataset="fashion-mnist", cut="vertical-strips", tile_size=4, blocks=1,
                         positions="sinusoidal").label()
            == "yours: garments, vertical strips of 4, 1 block, sinusoidal positions")


def test_the_command_line_refuses_a_bad_choice_with_the_same_sentence(tmp_path):
    run = subprocess.run([sys.executable, "-m", "vit.live", "--tile-size", "5", "--output", str(tmp_path / "x")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "does not divide the 28-pixel picture" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "x").exists()


def reports(run: live.Run) -> list[dict]:
    return [event for batch in run.batches() for event in batch]


@pytest.fixture
def data(data_dir, monkeypatch):
    monkeypatch.setenv("VIT_DATA_DIR", str(data_dir))


def test_a_run_reports_as_it_learns_and_leaves_a_model_folder_the_app_reads(data, tmp_path):
    """Ten seconds of a small model: it starts, reports every two seconds with the pictures the tab draws, and ends
    with a model folder that reads test digits far better than chance (a tenth), however busy the machine."""
    run = live.Run(live.Choices(seconds=10, **SMALL), tmp_path / "mine")
    events = reports(run)
    kinds = [event["kind"] for event in events]
    assert kinds[0] == "started" and kinds[-1] == "done" and kinds.count("progress") >= 3, kinds
    progress = [event for event in events if event["kind"] == "progress"]
    assert [p["seconds"] for p in progress] == sorted(p["seconds"] for p in progress)
    assert progress[-1]["val_accuracy"] > progress[0]["val_accuracy"]
    assert len(progress[-1]["similarity"]) == 16 and len(progress[-1]["attention"]) == 4  # 4 × 4 tiles of 7
    done = events[-1]
    assert not done["stopped"] and done["seconds"] >= 10 and done["test_accuracy"] > 0.3  # chance: 0.1
    # the end carries the curve's last point and the maps of the model as kept, for the tab's last drawing
    assert done["train_loss"] > 0 and len(done["similarity"]) == 16 and len(done["attention"]) == 4
    ended = live.Reports()
    ended.add(events)
    assert ended.curve() == [*progress, done] and ended.curve()[-1]["seconds"] >= progress[-1]["seconds"]
    model = load_folder(tmp_path / "mine")
    assert model.accuracy == done["test_accuracy"] and model.model.num_layers == 1
    assert "python -m vit.live" in (tmp_path / "mine" / "README.md").read_text()
    assert all((tmp_path / "mine" / name).is_file() for name in FILES)  # what `train.py --push-only` uploads
    import app
    assert [loaded.name for loaded in app.load_models(tmp_path)] == ["mine"]  # `python app.py --weights-dir`


def test_stop_ends_the_run_early_and_keeps_what_it_learned(data, tmp_path):
    run = live.Run(live.Choices(seconds=120, **SMALL), tmp_path / "stopped")
    events = []
    for batch in run.batches():
        events += batch
        if any(event["kind"] == "progress" for event in batch):
            run.stop()
    done = events[-1]
    assert done["kind"] == "done" and done["stopped"] and done["seconds"] < 120  # its budget
    assert load_folder(tmp_path / "stopped").accuracy == done["test_accuracy"]


def test_a_model_too_big_for_its_budget_is_refused_with_a_sentence(data, tmp_path):
    run = live.Run(live.Choices(tile_size=2, blocks=2, heads=4, width=64, seconds=10), tmp_path / "big")
    last = reports(run)[-1]
    assert last["kind"] == "failed" and "too few to learn from" in last["message"]
    assert not (tmp_path / "big").exists()


def test_a_run_too_slow_for_its_budget_is_told_only_the_changes_its_choices_leave_open():
    assert live._lighter(live.Choices(tile_size=2, blocks=2, width=64, seconds=10)) == \
        "larger pieces, fewer blocks, a smaller width or more seconds"
    assert live._lighter(live.Choices(tile_size=2, heads=8, width=16, seconds=10)) == \
        "larger pieces, fewer blocks or more seconds"  # the width is already the smallest
    assert live._lighter(live.Choices(tile_size=14, blocks=1, heads=1, width=16, seconds=60)) == "more seconds"


def test_a_run_without_its_data_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("VIT_DATA_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    last = reports(live.Run(live.Choices(seconds=10), tmp_path / "none"))[-1]
    assert last["kind"] == "failed" and "pictures could not be read" in last["message"]


# -- the visitor's own models ------------------------------------------------------------------------------------------

@pytest.fixture
def served():
    with registered([load_folder(MNIST_TINY)]):
        yield
        registry._own.clear()


def own_copy(name: str):
    return load_folder(MNIST_TINY, name=name)


def test_an_own_model_is_found_by_its_name_only_and_not_offered_to_others(served, tmp_path):
    name = registry.own_name("tiles-7")
    assert name.startswith("tiles-7-") and name != registry.own_name("tiles-7")
    registry.keep_own_model(own_copy(name), tmp_path)
    assert registry.is_known(name) and registry.bundle(name).name == name
    assert name not in registry.model_names()
    assert registry.bundle("tiles-7").name == "mnist-tiny"  # a guess finds the default, not someone's model


def test_an_own_model_is_forgotten_an_hour_after_its_last_use_and_its_folder_deleted(served, tmp_path, monkeypatch):
    folder = tmp_path / "kept"
    folder.mkdir()
    registry.keep_own_model(own_copy("mine-1"), folder)
    now = time.monotonic()
    monkeypatch.setattr(time, "monotonic", lambda: now + registry.OWN_MODEL_SECONDS - 1)
    assert registry.is_known("mine-1")  # used: its hour starts again
    monkeypatch.setattr(time, "monotonic", lambda: now + 2 * registry.OWN_MODEL_SECONDS)
    assert not registry.is_known("mine-1") and not folder.exists()


def test_at_most_so_many_own_models_are_kept_the_least_recently_used_forgotten_first(served, tmp_path):
    for index in range(registry.MAX_OWN_MODELS + 2):
        registry.keep_own_model(own_copy(f"mine-{index}"), None)
        registry.is_known("mine-0")  # the first is used all along
    kept = [name for name in (f"mine-{i}" for i in range(registry.MAX_OWN_MODELS + 2)) if name in registry._own]
    assert len(kept) == registry.MAX_OWN_MODELS and "mine-0" in kept and "mine-1" not in kept
