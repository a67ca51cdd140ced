"""evaluation.json's schema (vit.record), read and written by the folder's owner (vit.bundle)."""

import json
import shutil

import pytest

from conftest import ROOT
from vit.bundle import add_to_evaluation, bundled_folders, load_folder, read_evaluation, zoo_folders
from vit.record import Evaluation, Pacing

FOLDERS = {**bundled_folders(), **zoo_folders()}


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_every_shipped_record_reads_and_writes_back_byte_for_byte(name):
    text = (FOLDERS[name] / "evaluation.json").read_text()
    evaluation = Evaluation.from_json(json.loads(text))
    assert json.dumps(evaluation.to_json(), indent=1) == text
    assert evaluation.calibration.temperature > 0 and 0 < evaluation.accuracy <= 1


@pytest.mark.parametrize("name", sorted(FOLDERS))
def test_every_shipped_card_is_the_one_its_record_writes_and_says_whose_minutes_it_counts(name):
    # a fine-tune's record holds its own minutes only, so its card must not call them the whole training
    from vit.bundle import read_model
    from vit.card import model_card
    folder = FOLDERS[name]
    evaluation = read_evaluation(folder)
    card = model_card(read_model(folder), evaluation)
    assert card == (folder / "README.md").read_text()
    said = "(fine-tuned in " if evaluation.fine_tuned else "(trained in "
    assert card.count(said) == 1 and card.count("(fine-tuned in ") + card.count("(trained in ") == 1


def test_a_key_the_schema_does_not_know_or_a_missing_one_is_named():
    content = json.loads((ROOT / "weights" / "mnist-tiny" / "evaluation.json").read_text())
    with pytest.raises(ValueError, match="'accuracy_top5', which the schema does not know"):
        Evaluation.from_json(content | {"accuracy_top5": 1.0})
    del content["calibration"]["ece_after"]
    with pytest.raises(ValueError, match="evaluation.calibration is incomplete.*ece_after"):
        Evaluation.from_json(content)


def test_a_folder_whose_record_breaks_the_schema_is_refused_naming_the_file(tmp_path):
    folder = tmp_path / "mnist-tiny"
    shutil.copytree(ROOT / "weights" / "mnist-tiny", folder)
    content = json.loads((folder / "evaluation.json").read_text())
    (folder / "evaluation.json").write_text(json.dumps(content | {"dataset": "cifar-10"}))
    with pytest.raises(ValueError, match=r"evaluation.json does not follow the schema \(unknown dataset 'cifar-10'"):
        load_folder(folder)


def test_parts_measured_later_join_the_record_and_are_checked(tmp_path):
    folder = tmp_path / "mnist-tiny"
    shutil.copytree(ROOT / "weights" / "mnist-tiny", folder)
    added = add_to_evaluation(folder, pacing={"threads": 2, "run_seconds": 12.5})
    assert read_evaluation(folder) == added and added.pacing == Pacing(threads=2, run_seconds=12.5)
    assert added.faithfulness == read_evaluation(ROOT / "weights" / "mnist-tiny").faithfulness  # the rest stays
    with pytest.raises(ValueError, match="pacing has 'speed'"):
        add_to_evaluation(folder, pacing={"threads": 2, "speed": 3})
    with pytest.raises(ValueError, match="no part 'speed'"):
        add_to_evaluation(folder, speed=3)


def test_a_budget_sentence_only_for_a_budget_run():
    assert Pacing(threads=1).budget_sentence() == ""
    sentence = Pacing(threads=2, budget_seconds=180, planned_epochs=14, run_seconds=161.2).budget_sentence()
    assert sentence == (" It was given a budget of 180 s (`--budget`), evaluation included: 14 epochs fitted, and the "
                        "whole run took 161 s.")
