""""This does not look like a digit": four scores of a model input, each with a limit set on the validation split.

- evidence: logsumexp of the logits, the negative free energy of Liu et al. 2020 ("Energy-based
  out-of-distribution detection"): how strongly any class the model knows fires. Low for noise and photos.
- ink cover: the mean pixel, the share of the 28×28 frame that is ink. A digit covers about an eighth.
- grey share: the share of inked pixels that are neither background nor solid stroke. Pen strokes are solid
  with soft edges; noise and photos are grey all over.
- stroke width: 2 × area / perimeter of the ink (vit.preprocess.pen_width), in pixels. A pen draws lines
  one to three pixels wide at MNIST's scale; a photo's shapes are filled blobs.

The limits are quantiles of validation digits, both as MNIST frames them and drawn on a big white page
(vit.probes) so a visitor's drawing is not refused for being drawn: each limit refuses at most
`REFUSE_SHARE` of either kind.
"""

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

REFUSE_SHARE = 0.002   # of validation digits, per score: four scores refuse at most 0.8 % of them
INK, SOLID = 0.15, 0.85  # pixel levels: above INK is ink; between INK and SOLID is grey


@dataclass(frozen=True)
class Limits:
    """Where digits end, per score, fitted on validation digits."""
    min_evidence: float
    max_ink_cover: float
    max_grey_share: float
    max_stroke_width: float


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
    """The four scores of a batch: inputs (N, H, W) in [0, 1] and their logits (N, C) -> each (N,)."""
    pixels = inputs.flatten(1).float()
    inked = pixels > INK
    grey = inked & (pixels < SOLID)
    return {"evidence": torch.logsumexp(logits.float(), -1), "ink_cover": pixels.mean(1),
            "grey_share": grey.sum(1) / inked.sum(1).clamp(min=1), "stroke_width": stroke_width(inputs >= 0.5)}


def stroke_width(masks: torch.Tensor) -> torch.Tensor:
    """2 × area / perimeter of each boolean mask (N, H, W) -> (N,): vit.preprocess.pen_width, batched."""
    padded = F.pad(masks.float(), (1, 1, 1, 1))
    perimeter = (padded[:, 1:] != padded[:, :-1]).sum((1, 2)) + (padded[:, :, 1:] != padded[:, :, :-1]).sum((1, 2))
    return 2 * masks.sum((1, 2)) / perimeter.clamp(min=1)


def fit(pools: list[tuple[torch.Tensor, torch.Tensor]], share: float = REFUSE_SHARE) -> Limits:
    """Limits that refuse at most `share` of each pool of (validation) digits on each score: pools are
    (inputs, logits) pairs, e.g. digits as MNIST frames them and the same digits drawn on a page, whose soft
    edges make more of their ink grey."""
    measured = [scores(inputs, logits) for inputs, logits in pools]
    return Limits(min_evidence=round(min(m["evidence"].quantile(share).item() for m in measured), 4),
                  max_ink_cover=round(max(m["ink_cover"].quantile(1 - share).item() for m in measured), 4),
                  max_grey_share=round(max(m["grey_share"].quantile(1 - share).item() for m in measured), 4),
                  max_stroke_width=round(max(m["stroke_width"].quantile(1 - share).item() for m in measured), 4))


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
        if value["grey_share"] > limits.max_grey_share:
            reasons.append(f"its ink is shades of grey rather than strokes ({value['grey_share']:.0%} grey; "
                           f"{noun}s at most {limits.max_grey_share:.0%})")
        if value["stroke_width"] > limits.max_stroke_width:
            reasons.append(f"its shapes are filled rather than drawn (strokes {value['stroke_width']:.1f} pixels wide; "
                           f"{noun}s at most {limits.max_stroke_width:.1f})")
        verdicts.append(Verdict(value, tuple(reasons), noun))
    return verdicts


def as_json(limits: Limits) -> dict:
    return asdict(limits)
