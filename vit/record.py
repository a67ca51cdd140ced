"""evaluation.json's schema: what a model folder measured, as typed records.

The folder's owner (vit.bundle) alone reads and writes the file, through Evaluation.from_json and
Evaluation.to_json; everyone else reads these fields. The producers of the parts (vit.validation.report,
vit.rendered.evaluate, vit.faithfulness.evaluate, the training loop's history, the pacing of train.py,
vit.teach's record of a taught model) hand
their plain JSON parts to the owner, which checks them against this schema when it assembles the record: a
key the schema does not know, or a missing one, is an error naming the key.
"""

import types
import typing
from dataclasses import dataclass, field, fields, is_dataclass, replace


@dataclass(frozen=True)
class Bins:
    """A reliability diagram's bins: per confidence bin, how many answers, their mean confidence and accuracy."""
    bins: int
    counts: list[int]
    confidence: list[float]
    accuracy: list[float]
    ece: float                 # expected calibration error over these bins


@dataclass(frozen=True)
class Calibration:
    """Temperature scaling fitted on the validation split, and its effect on the test split."""
    temperature: float
    ece_before: float
    ece_after: float
    before: Bins
    after: Bins


@dataclass(frozen=True)
class Refusals:
    """What the "not a digit" limits (fitted on validation) refuse: shares of test pictures and of non-pictures."""
    test_refused: float                # of the test split's pictures
    drawn_test_refused: float          # of test pictures drawn on a large white page, as a visitor draws
    drawn_test_count: int
    others_refused: dict[str, float]   # per kind of picture that is no digit (vit.probes): noise, photo-like, ...
    others_count: int                  # pictures of each kind


@dataclass(frozen=True)
class OtherWriters:
    """Digits from outside MNIST (vit.rendered): typed in fonts and drawn in pen styles, made by code."""
    typed: float
    typed_count: int
    drawn: float
    drawn_count: int
    all: float
    misses: dict[str, int]     # per kind ("font X", "drawn flag 1, thin pen"): how many were misread
    fonts: list[str]
    seed: int


@dataclass(frozen=True)
class Scoreboard:
    """Deletion and insertion areas of each explanation (vit.faithfulness): mean, sd and se per method."""
    count: int
    points: int
    methods: dict[str, dict[str, dict[str, float]]]   # method -> "deletion"/"insertion" -> mean, sd, se


@dataclass(frozen=True)
class Randomisation:
    """The model-randomisation sanity check: each map's similarity as the blocks are randomised in turn."""
    count: int
    stages: list[str]
    methods: dict[str, list[float]]


@dataclass(frozen=True)
class Faithfulness:
    scoreboard: Scoreboard
    randomisation: Randomisation
    verdicts: dict[str, str]   # method -> one sentence from both tests
    best: str                  # the method to believe


@dataclass(frozen=True)
class Pacing:
    """How a run was paced: its threads, and for a --budget run what was measured and planned."""
    threads: int
    seconds_per_step_by_threads: dict[str, float] | None = None
    seconds_per_step: float | None = None
    validation_seconds: float | None = None
    checkpoint_seconds: float | None = None
    reserve_seconds: float | None = None
    budget_seconds: float | None = None
    planned_epochs: int | None = None
    run_seconds: float | None = None   # the whole run, evaluation included

    def budget_sentence(self) -> str:
        """What a --budget run planned and what it took ("" without a budget)."""
        if self.budget_seconds is None:
            return ""
        took = f", and the whole run took {self.run_seconds:.0f} s" if self.run_seconds is not None else ""
        return (f" It was given a budget of {self.budget_seconds:.0f} s (`--budget`), evaluation included: "
                f"{self.planned_epochs} epochs fitted{took}.")


@dataclass(frozen=True)
class Share:
    """One group of pictures: how many, the share read right (digits) or turned away (non-digits), and refused."""
    n: int
    right: float               # digits: read as their label, not refused; non-digits: refused or answered unsure
    refused: float


@dataclass(frozen=True)
class ProxySets:
    """Pictures people bring, as three proxy sets built here with code of their own (proxies/): other writers'
    digits, photographed digits, drawn non-digits; their report draw, read through the app's upload path."""
    draw: str                          # "report"
    fingerprints: dict[str, str]       # set -> SHA-256 of its pixels: the sets were fixed before any choice
    writers: dict[str, Share]          # "all", then per kind
    photos: dict[str, Share]           # "all", then per kind of light and ink
    nondigits: dict[str, Share]        # "all", then per group (letter, sign, doodle, scribble)
    aurc: float                        # area under the risk-coverage curve, digits and non-digits together
    accepted: float                    # the share the app answers (not refused)
    risk_accepted: float               # the share of those answers that are wrong (a non-digit answered is wrong)
    coverage: list[float]              # the risk-coverage curve (Geifman & El-Yaniv 2017), sampled
    risk: list[float]
    command: str


@dataclass(frozen=True)
class Taught:
    """A model taught in the app (vit.teach): a trained model's encoder, and a new head fitted on a visitor's
    drawings."""
    base: str                  # the model whose encoder it reads with (its menu name)
    drawings: list[int]        # per symbol, the visitor's drawings
    copies: int                # augmented pictures of each drawing the head was fitted on
    rounds: int                # held-out rounds of the measurement: each drawing read by a head fitted without it
    seconds: float             # teaching and measuring


@dataclass(frozen=True)
class Evaluation:
    """evaluation.json: the test split's figures, how the model was trained, and the honesty reports."""
    split: str                          # "test"
    n: int                              # test pictures
    accuracy: float
    confusion_matrix: list[list[int]]   # (C, C): row = true class, column = predicted
    dataset: str = "mnist"              # a key of vit.datasets.DATASETS
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, train_loss, train_accuracy, val_loss, val_accuracy, seconds
    training_seconds: float | None = None
    command: str | None = None          # the command that trained it
    device: str | None = None
    recipe: dict | None = None          # vit.training.Recipe's fields
    calibration: Calibration | None = None
    not_a_digit: Refusals | None = None
    other_writers: OtherWriters | None = None   # MNIST models only
    faithfulness: Faithfulness | None = None
    pacing: Pacing | None = None
    taught: Taught | None = None        # a model taught in the app: split, n and accuracy are its held-out drawings
    proxies: ProxySets | None = None    # python -m proxies FOLDER --write

    @property
    def fine_tuned(self) -> bool:
        """Fine-tuned from another folder's weights (train.py --start-from records both commands, joined by &&):
        its history and seconds are the fine-tune's only."""
        return " && " in (self.command or "")

    @property
    def run_seconds(self) -> float | None:
        """The whole run's seconds (a --budget run records them), else the training loop's."""
        return (self.pacing.run_seconds if self.pacing else None) or self.training_seconds

    @classmethod
    def from_json(cls, content: dict) -> "Evaluation":
        """The record of evaluation.json's content; ValueError names a key the schema lacks or needs."""
        return _build(cls, content, "evaluation")

    def to_json(self) -> dict:
        """evaluation.json's content: the fields in schema order, the ones not measured left out."""
        return _plain(self)

    def with_parts(self, **parts) -> "Evaluation":
        """A copy with some top-level parts replaced, each given as its plain JSON (as the producers make it)."""
        hints = typing.get_type_hints(Evaluation)
        unknown = sorted(set(parts) - set(hints))
        if unknown:
            raise ValueError(f"evaluation has no part {unknown[0]!r}")
        return replace(self, **{name: _value(hints[name], value, name) for name, value in parts.items()})


def _build(cls, content: dict, where: str):
    if not isinstance(content, dict):
        raise ValueError(f"{where} should be an object")
    hints, known = typing.get_type_hints(cls), {each.name for each in fields(cls)}
    unknown = sorted(set(content) - known)
    if unknown:
        raise ValueError(f"{where} has {unknown[0]!r}, which the schema does not know")
    try:
        return cls(**{name: _value(hints[name], value, f"{where}.{name}") for name, value in content.items()})
    except TypeError as error:  # a required field missing
        raise ValueError(f"{where} is incomplete ({error})") from None


def _value(hint, value, where: str):
    """A JSON value as the hinted type: a dataclass built from its object, a dict of them from an object of
    objects, anything else as it is."""
    options = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in options:
        return None
    record = next((option for option in options if is_dataclass(option)), None)
    if record is not None:
        return _build(record, value, where)
    if typing.get_origin(hint) is dict and is_dataclass(typing.get_args(hint)[1]):
        if not isinstance(value, dict):
            raise ValueError(f"{where} should be an object")
        return {key: _build(typing.get_args(hint)[1], item, f"{where}.{key}") for key, item in value.items()}
    return value


def _plain(value):
    """A record as JSON: each dataclass an object of its measured fields (None: not measured, left out)."""
    if is_dataclass(value):
        return {field.name: _plain(getattr(value, field.name)) for field in fields(value)
                if getattr(value, field.name) is not None}
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return value
