"""What the app says about a reading (vit.answer) and the non-digits a model learns to refuse (vit.outliers)."""

import torch

from vit import outliers
from vit.answer import SURE, answer

NAMES = [str(digit) for digit in range(10)]


def probabilities(**shares: float) -> torch.Tensor:
    """Calibrated probabilities with the given shares on digits named d4=0.45 etc., the rest spread evenly."""
    given = {int(name[1:]): share for name, share in shares.items()}
    rest = (1 - sum(given.values())) / (10 - len(given))
    return torch.tensor([given.get(digit, rest) for digit in range(10)])


def test_a_sure_answer_claims_its_class_with_its_confidence():
    said = answer(probabilities(d7=0.97), None, NAMES)
    assert (said.kind, said.label, said.sentence) == ("sure", "7", "reads 7 (97.0 %)")


def test_below_sure_it_names_the_two_classes_it_hesitates_between_and_claims_neither():
    said = answer(probabilities(d4=0.45, d9=0.38), None, NAMES)
    assert said.kind == "unsure" and said.label is None and said.candidates == ("4", "9")
    assert said.sentence == "unsure between 4 (45 %) and 9 (38 %)"
    assert answer(probabilities(d4=SURE), None, NAMES).kind == "sure"  # the edge counts as sure


def test_a_refusal_wins_over_any_confidence_and_keeps_the_forced_guess_in_its_sentence():
    said = answer(probabilities(d0=0.99), "This does not look like a digit: no class fires strongly.", NAMES)
    assert said.kind == "refused" and said.label is None
    assert said.sentence.endswith("(Forced to choose, it would say 0 at 99 %.)")


def test_refused_answers_rank_below_every_other_for_the_risk_coverage_curve():
    refused = answer(probabilities(d0=0.99), "no.", NAMES)
    unsure = answer(probabilities(d4=0.2, d9=0.19), None, NAMES)
    assert refused.ranking < unsure.ranking < answer(probabilities(d1=0.9), None, NAMES).ranking


def test_the_outlier_pool_is_reproducible_and_every_picture_has_ink(data_dir):
    from vit.data import load_split
    digits = load_split("mnist", "train", data_dir).images[:200, 0]
    count = len(outliers.KINDS) * 5
    first = outliers.pool(count, digits, seed=3)
    assert torch.equal(first, outliers.pool(count, digits, seed=3))
    assert not torch.equal(first, outliers.pool(count, digits, seed=4))
    assert first.shape[1:] == (28, 28) and bool((first.flatten(1).amax(1) > 0.5).all())
