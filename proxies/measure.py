"""How a model fares on the three proxy sets, through the app's own path: each picture is opened as an upload
(vit.preprocess.open_image), made the model's input (vit.preprocess.to_model_input with the model's framing; an
ImageError counts as refused) and read (ModelBundle.read: calibrated probabilities and the "not a digit" verdict).

Besides the shares per set and kind, selective prediction as Geifman and El-Yaniv 2017 ("Selective classification
for deep neural networks") measure it: rank every picture, digits and non-digits together, by the reading's
confidence (refused readings below every accepted one), and follow the risk (the share of errors among the pictures
answered; a non-digit answered is an error) as the coverage grows; its area (AURC) sums the curve up.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from vit.bundle import ModelBundle
from vit.preprocess import Framing, ImageError, open_image, to_model_input

from . import nondigits, photos, writers
from .draw import Draw, Picture
from .store import STORE, cached

BUILDERS = {"writers": writers.build, "photos": photos.build, "nondigits": nondigits.build}
COVERAGES = (0.5, 0.8, 0.9, 1.0)


@dataclass(frozen=True)
class Answer:
    """What the app made of one picture."""
    kind: str
    group: str
    label: int | None          # None: a non-digit
    refused: bool              # preprocessing refused it, or the reading's verdict did
    best: int | None           # the likeliest class; None when preprocessing refused it
    confidence: float          # its calibrated probability, what the answers are ranked by; 0 when preprocessing
                               # refused it
    claimed: bool              # the app claims a digit (vit.answer's "sure"), not refused or unsure
    reasons: tuple[str, ...] = ()  # why it was refused: the app's own clauses, without their figures

    @property
    def right(self) -> bool:
        """A digit read as its label and not refused."""
        return not self.refused and self.best == self.label

    @property
    def turned_away(self) -> bool:
        """A non-digit refused, or answered unsure: the app claims no digit for it."""
        return not self.claimed


@dataclass(frozen=True)
class DigitScore:
    """Digits of one kind (or all of a set): how many, the share read right, the share refused."""
    kind: str
    n: int
    read_right: float
    refused: float
    reasons: dict[str, int]    # why they were refused: the app's clause -> how many (one picture may give two)


@dataclass(frozen=True)
class NonDigitScore:
    """Non-digits of one kind or group: how many, the share refused or answered under SURE, the share refused."""
    kind: str
    n: int
    turned_away: float
    refused: float
    reasons: dict[str, int]


@dataclass(frozen=True)
class Selective:
    """The risk-coverage curve over digits and non-digits together, its area and a few of its points."""
    digits: int
    nondigits: int
    aurc: float                        # mean risk over coverages 1/N .. N/N: 0 is perfect
    risk_at: dict[str, float]          # coverage ("50 %") -> risk there
    accepted: float                    # the share the app answers (not refused): its own coverage
    risk_accepted: float               # the risk at that coverage
    coverage: list[float] = field(repr=False)  # the curve, every point
    risk: list[float] = field(repr=False)


@dataclass(frozen=True)
class ModelReport:
    """One model on one draw of the three sets."""
    name: str
    folder: str
    draw: str
    writers: DigitScore
    writer_kinds: list[DigitScore]
    photos: DigitScore
    photo_kinds: list[DigitScore]
    nondigits: NonDigitScore
    nondigit_groups: list[NonDigitScore]
    nondigit_kinds: list[NonDigitScore]
    selective: Selective
    seconds: float                     # reading every prepared picture (preprocessing is shared by the models)


def build_draws(draw: str, limit: int | None = None, store: Path | None = STORE) -> dict[str, Draw]:
    """The three sets' draws, by set name, from `store` when built there before (None: always build); `limit`
    keeps about that many pictures of each (quick checks)."""
    sizes = {"writers": limit, "nondigits": limit or nondigits.SIZE,
             "photos": -(-limit // len(photos.KINDS)) if limit else photos.PER_KIND}
    draws = {}
    for name, build in BUILDERS.items():
        make = partial(build, draw, sizes[name])
        draws[name] = cached(name, draw, sizes[name], make, store) if store else make()
    return draws


def model_inputs(pictures: tuple[Picture, ...], framing: Framing) -> list[torch.Tensor | str]:
    """Each picture as the model's (28, 28) input, through the app's upload path; where it was refused, the
    sentence the app says instead."""
    inputs = []
    for picture in pictures:
        try:
            inputs.append(to_model_input(open_image(picture.data), framing))
        except ImageError as error:
            inputs.append(str(error))
    return inputs


def answers(bundle: ModelBundle, pictures: tuple[Picture, ...], inputs: list[torch.Tensor | str]) -> list[Answer]:
    """What the model makes of each prepared picture."""
    found = []
    for picture, x in zip(pictures, inputs):
        if isinstance(x, str):
            found.append(Answer(picture.kind, picture.group, picture.label, True, None, 0.0, False, (x,)))
            continue
        reading = bundle.read(x)
        said = reading.answer(bundle.class_names)
        why = tuple(reason.split(" (")[0] for reason in reading.verdict.reasons) if reading.refused else ()
        found.append(Answer(picture.kind, picture.group, picture.label, reading.refused, reading.best,
                            said.confidence, said.kind == "sure", why))
    return found


def digit_score(kind: str, found: list[Answer]) -> DigitScore:
    n = max(len(found), 1)
    return DigitScore(kind, len(found), sum(a.right for a in found) / n, sum(a.refused for a in found) / n,
                      reasons(found))


def nondigit_score(kind: str, found: list[Answer]) -> NonDigitScore:
    n = max(len(found), 1)
    return NonDigitScore(kind, len(found), sum(a.turned_away for a in found) / n,
                         sum(a.refused for a in found) / n, reasons(found))


def reasons(found: list[Answer]) -> dict[str, int]:
    """How often each reason for refusing was given, most often first."""
    counts = Counter(reason for a in found for reason in a.reasons)
    return dict(counts.most_common())


def by(found: list[Answer], key: str) -> dict[str, list[Answer]]:
    """Answers grouped by `kind` or `group`, in the order first seen."""
    groups: dict[str, list[Answer]] = {}
    for answer in found:
        groups.setdefault(getattr(answer, key), []).append(answer)
    return groups


def selective(digits: list[Answer], others: list[Answer]) -> Selective:
    """The risk-coverage curve of Geifman and El-Yaniv: accepted before refused, each by confidence, highest first;
    an error is a digit misread or any non-digit answered."""
    everything = digits + others
    order = sorted(range(len(everything)), key=lambda i: (not everything[i].refused, everything[i].confidence),
                   reverse=True)
    errors = np.array([everything[i].label is None or everything[i].best != everything[i].label for i in order])
    count = np.arange(1, len(errors) + 1)
    risk = np.cumsum(errors) / count
    coverage = count / len(errors)

    def risk_at(share: float) -> float:
        return float(risk[max(1, int(np.ceil(share * len(errors)))) - 1])
    accepted = sum(not a.refused for a in everything) / len(everything)
    return Selective(len(digits), len(others), float(risk.mean()),
                     {f"{round(c * 100)} %": risk_at(c) for c in COVERAGES}, accepted,
                     risk_at(accepted) if accepted else 0.0, coverage.round(5).tolist(), risk.round(5).tolist())


def measure(bundle: ModelBundle, folder: str, draws: dict[str, Draw],
            inputs: dict[str, list[torch.Tensor | str]]) -> ModelReport:
    """One model on the draws, given each draw's pictures already made its inputs (for the model's framing)."""
    start = time.perf_counter()
    found = {name: answers(bundle, draws[name].pictures, inputs[name]) for name in draws}
    seconds = time.perf_counter() - start
    writer_kinds = [digit_score(k, a) for k, a in by(found["writers"], "kind").items()]
    photo_kinds = [digit_score(k, a) for k, a in by(found["photos"], "kind").items()]
    return ModelReport(
        bundle.name, folder, draws["writers"].draw, digit_score("all", found["writers"]), writer_kinds,
        digit_score("all", found["photos"]), photo_kinds, nondigit_score("all", found["nondigits"]),
        [nondigit_score(g, a) for g, a in by(found["nondigits"], "group").items()],
        [nondigit_score(k, a) for k, a in by(found["nondigits"], "kind").items()],
        selective(found["writers"] + found["photos"], found["nondigits"]), seconds)


@dataclass(frozen=True)
class OtherThingsReport:
    """A model of other things (garments) on the three sets, none of whose pictures is one of its classes: per
    set, the share it refuses or answers unsure (turned_away)."""
    name: str
    folder: str
    draw: str
    sets: list[NonDigitScore]


def measure_other_things(bundle: ModelBundle, folder: str, draws: dict[str, Draw],
                         inputs: dict[str, list[torch.Tensor | str]]) -> OtherThingsReport:
    """A garment model on the draws, given each draw's pictures already made its inputs (for its framing)."""
    found = {name: answers(bundle, draws[name].pictures, inputs[name]) for name in draws}
    return OtherThingsReport(bundle.name, folder, draws["writers"].draw,
                             [nondigit_score(name, found[name]) for name in draws])


@dataclass(frozen=True)
class Measured:
    """What `measure_models` found: the draws, the digit models' reports, the other models' (garments)."""
    draws: dict[str, Draw]
    reports: list[ModelReport]
    others: list[OtherThingsReport]


def measure_models(models: dict[str, ModelBundle], draw: str, limit: int | None = None,
                   store: Path | None = STORE) -> Measured:
    """Build the draws once and measure every model (folder -> its loaded bundle): a digit model on what it reads
    and turns away, a model of other things on how much of it all it turns away (none of it is one of its classes)."""
    bundles = list(models.items())
    draws = build_draws(draw, limit, store)
    prepared: dict[Framing, dict[str, list]] = {}  # pictures made inputs once per framing, shared by the models
    for _, bundle in bundles:
        if bundle.framing not in prepared:
            prepared[bundle.framing] = {name: model_inputs(d.pictures, bundle.framing) for name, d in draws.items()}
    return Measured(draws, [measure(b, f, draws, prepared[b.framing]) for f, b in bundles if b.dataset == "mnist"],
                    [measure_other_things(b, f, draws, prepared[b.framing]) for f, b in bundles
                     if b.dataset != "mnist"])


CURVE_POINTS = 101  # the risk-coverage curve as a model folder keeps it: every whole percent of coverage


def as_record(report: ModelReport, fingerprints: dict[str, str], command: str) -> dict:
    """A report as the model folder's "proxies" part (vit.record.ProxySets), in plain JSON."""
    def share(score) -> dict:
        right = score.read_right if isinstance(score, DigitScore) else score.turned_away
        return {"n": score.n, "right": round(right, 4), "refused": round(score.refused, 4)}
    curve = report.selective
    points = np.linspace(0, 1, CURVE_POINTS)
    at = np.clip(np.ceil(points * len(curve.risk)).astype(int) - 1, 0, len(curve.risk) - 1)
    return {"draw": report.draw, "fingerprints": fingerprints,
            "writers": {"all": share(report.writers)} | {s.kind: share(s) for s in report.writer_kinds},
            "photos": {"all": share(report.photos)} | {s.kind: share(s) for s in report.photo_kinds},
            "nondigits": {"all": share(report.nondigits)} | {s.kind: share(s) for s in report.nondigit_groups},
            "aurc": round(curve.aurc, 4), "accepted": round(curve.accepted, 4),
            "risk_accepted": round(curve.risk_accepted, 4), "coverage": points.round(2).tolist(),
            "risk": [round(curve.risk[i], 4) for i in at], "command": command}
