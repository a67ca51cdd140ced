""""This does not look like a digit": two scores of a model input, each with a limit set on validation digits.

- evidence: logsumexp of the logits, the negative free energy of Liu et al. 2020 ("Energy-based
  out-of-distribution detection"): how strongly any class the model knows fires. A model trained with outlier
  exposure (vit.outliers) answers a drawn letter or doodle with logits near zero, evidence near log(10).
- ink cover: the mean pixel, the share of the 28×28 frame that is ink. A digit covers about an eighth; noise and
  filled pictures far more.

Two scores of the input's texture were dropped: the share of grey ink and the stroke width refused blurry scans
of other writers' digits that the model read right at 99.9 % (the proxies' choose draw: 3.8 % of its writers'
digits refused by them, and almost no non-digit that evidence had not refused already). Older folders' limits
on them are ignored when read.

The limits are quantiles of validation digits, both as MNIST frames them and drawn on a big white page
(vit.probes) so a visitor's drawing is not refused for being drawn: each limit refuses at most
`REFUSE_SHARE` of either kind.
"""

from dataclasses import asdict, dataclass

import torch

REFUSE_SHARE = 0.002   # of validation digits, per score: two scores refuse at most 0.4 % of them


@dataclass(frozen=True)
class Limits:
    """Where digits end, per score, fitted on validation digits."""
    min_evidence: float
    max_ink_cover: float

    @classmethod
    def from_json(cls, content: dict) -> "Limits":
        """calibration.json's limits; ones on scores no longer used (grey share, stroke width) are ignored."""
        return cls(**{name: content[name] for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class Verdict:
    """Whether an input looks like a digit, its scores, and the sentences that say why not."""
    scores: dict[str, float]
    reasons: tuple[str, ...]
    noun: str = "digit"

    @property
    def refused(self) -> bool:
        return bool(self.reasons)

    @property
    def message(self) -> str | None:
        """The sentence shown instead of an answer, or None for a picture that looks like a digit."""
        return f"This does not look like a {self.noun}: " + "; ".join(self.reasons) + "." if self.reasons else None


def scores(inputs: torch.Tensor, logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """The two scores of a batch: inputs (N, H, W) in [0, 1] and their logits (N, C) -> each (N,)."""
    return {"evidence": torch.logsumexp(logits.float(), -1), "ink_cover": inputs.flatten(1).float().mean(1)}


def fit(pools: list[tuple[torch.Tensor, torch.Tensor]], share: float = REFUSE_SHARE) -> Limits:
    """Limits that refuse at most `share` of each pool of (validation) digits on each score: pools are
    (inputs, logits) pairs, e.g. digits as MNIST frames them and the same digits drawn on a page."""
    measured = [scores(inputs, logits) for inputs, logits in pools]
    return Limits(min_evidence=round(min(m["evidence"].quantile(share).item() for m in measured), 4),
                  max_ink_cover=round(max(m["ink_cover"].quantile(1 - share).item() for m in measured), 4))


def judge(limits: Limits, inputs: torch.Tensor, logits: torch.Tensor, noun: str = "digit") -> list[Verdict]:
    """One verdict per input of the batch."""
    measured = scores(inputs, logits)
    verdicts = []
    for i in range(len(inputs)):
        value = {name: round(float(v[i]), 4) for name, v in measured.items()}
        reasons = []
        if value["evidence"] < limits.min_evidence:
            reasons.append(f"no class fires strongly (evidence {value['evidence']:.2f}; {noun}s score at least "
                           f"{limits.min_evidence:.2f})")
        if value["ink_cover"] > limits.max_ink_cover:
            reasons.append(f"too much of it is ink ({value['ink_cover']:.0%}; {noun}s cover at most "
                           f"{limits.max_ink_cover:.0%})")
        verdicts.append(Verdict(value, tuple(reasons), noun))
    return verdicts


def as_json(limits: Limits) -> dict:
    return asdict(limits)
