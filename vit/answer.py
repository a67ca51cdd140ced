"""What the app says about one reading, in the words a learner reads: the Predict tab, /predict and the MCP tool
all say it through this module.

Three answers, nothing in between:
- refused: the picture does not look like a digit (vit.novelty), with the reason in plain words;
- unsure between two classes: the top calibrated confidence is under SURE, so neither is claimed;
- a class with its calibrated confidence.
"""

from dataclasses import dataclass

import torch

SURE = 0.5  # a top confidence below this is no answer: calibrated, it is wrong more often than right


@dataclass(frozen=True)
class Answer:
    kind: str                 # "refused", "unsure" or "sure"
    label: str | None         # the class claimed; None unless sure
    candidates: tuple[str, ...]  # the classes named: the claim, the two it hesitates between, or the forced guess
    confidence: float         # the top calibrated confidence
    sentence: str             # what the learner reads

    @property
    def ranking(self) -> float:
        """Higher is surer, refused answers below every other: the order selective prediction covers inputs in."""
        return self.confidence - (1.0 if self.kind == "refused" else 0.0)


def answer(probabilities: torch.Tensor, refusal: str | None, names: list[str]) -> Answer:
    """The answer to one reading: calibrated `probabilities` (C,), the "not a digit" sentence or None, the class
    names."""
    top = probabilities.topk(min(2, len(names)))
    values, best = top.values.tolist(), [names[i] for i in top.indices.tolist()]
    percent = [f"{v * 100:.0f} %" for v in values]
    if refusal:
        return Answer("refused", None, (best[0],), values[0],
                      f"{refusal} (Forced to choose, it would say {best[0]} at {percent[0]}.)")
    if values[0] < SURE and len(best) > 1:
        return Answer("unsure", None, tuple(best), values[0],
                      f"unsure between {best[0]} ({percent[0]}) and {best[1]} ({percent[1]})")
    return Answer("sure", best[0], (best[0],), values[0], f"reads {best[0]} ({values[0] * 100:.1f} %)")
