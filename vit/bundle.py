"""The model folder: its file names, writing it, reading it, and typed access to what it stores.

A folder holds model.safetensors + config.json (the model), model.onnx (the same model for other runtimes,
vit.export), README.md (the model card, vit.card),
calibration.json (what was chosen on the validation split: the temperature and the "not a digit" limits),
evaluation.json (what was measured, in the schema of vit.record) and evaluation.safetensors (test images the
app shows: the highest-loss ones and every mistake, and correctly read examples of each class), so the app
needs no dataset. This module is the only one that opens those files; only safetensors and JSON are read.
"""

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from . import novelty
from .answer import Answer, answer
from .analysis import Explanation, confusion_matrix, explain_many
from .batching import Batcher
from .card import model_card
from .datasets import DEFAULT as DEFAULT_DATASET, Dataset, dataset as describe, taught
from .export import ONNX_NAME, export_onnx
from .model import ViT, WEIGHTS_NAME
from .preprocess import Framing
from .record import Evaluation

CONFIG, WEIGHTS, CARD = "config.json", WEIGHTS_NAME, "README.md"
EVALUATION_JSON, EVALUATION_TENSORS = "evaluation.json", "evaluation.safetensors"
CALIBRATION = "calibration.json"  # optional: a folder written before it existed reads uncalibrated, unchecked
ONNX = ONNX_NAME  # optional: written when the exporter can take the model; a folder written before it existed has none
LOADED = (WEIGHTS, CONFIG, CARD, CALIBRATION, EVALUATION_JSON, EVALUATION_TENSORS)  # what the app reads (and pulls)
FILES = (*LOADED, ONNX)  # what a push uploads
REQUIRED = tuple(name for name in LOADED if name != CALIBRATION)  # what a complete folder must hold

HIGHEST_LOSSES = 64      # test images kept by loss, right or wrong
EXAMPLES_PER_CLASS = 20  # correctly read test images per class (attention by label, confusion cells)
MAX_MISTAKES = 1000      # misclassified test images kept, so every confusion cell can be opened
# The maps' passes run this many nice levels below the server's other threads: when the cores are busy, a label
# (one cheap pass) and the event loop that sends every answer go first, and the maps take the time left.
MAPS_NICE = 10

logger = logging.getLogger(__name__)


@dataclass
class Answers:
    """A model's answers on a labelled split: what the evaluation files are made from."""
    images: torch.Tensor         # (N, 1, H, W) uint8, as the dataset stores them
    labels: torch.Tensor         # (N,)
    probabilities: torch.Tensor  # (N, C)
    losses: torch.Tensor         # (N,) cross-entropy

    @property
    def predictions(self) -> torch.Tensor:
        return self.probabilities.argmax(-1)


@dataclass(frozen=True)
class StoredImage:
    """One stored test image and what the model made of it."""
    pixels: np.ndarray  # (H, W) uint8, ink bright
    label: int
    prediction: int
    loss: float | None  # None for the correctly read examples, whose loss is not stored

    @property
    def input(self) -> np.ndarray:
        """The pixels as the model reads them: (H, W) float32 in [0, 1]."""
        return self.pixels.astype(np.float32) / 255


def write_folder(folder: str | Path, model: ViT, answers: Answers, evaluation: Evaluation,
                 chosen: dict | None = None) -> None:
    """Write weights, config, the model card, the validation choices, the evaluation files and model.onnx.

    `evaluation` (vit.record) becomes evaluation.json and the card; `chosen` (vit.validation.choose) becomes
    calibration.json. model.onnx comes last: a failed export costs that file and a warning, not the folder.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in _kept_images(answers).items()}, str(folder / EVALUATION_TENSORS))
    write_records(folder, model, evaluation, chosen)
    write_onnx(folder, model)


def write_onnx(folder: str | Path, model: ViT) -> bool:
    """Write a folder's model.onnx (vit.export) from the model its weights hold; True when written. When the
    export fails, a one-line warning says why and no model.onnx is left (not one of earlier weights either)."""
    path = Path(folder) / ONNX
    try:
        export_onnx(model, path)
        return True
    except Exception as error:  # the exporter raises many kinds; the folder is complete without this file
        path.unlink(missing_ok=True)
        reason = " ".join(str(error).split())[:200] or type(error).__name__
        logger.warning("%s was not written (%s); the rest of the folder is complete. Once that is fixed: "
                       "python -m vit.export %s", path, reason, folder)
        return False


def add_onnx(folder: str | Path) -> bool:
    """Write model.onnx into a written folder from its weights, and its model card again (it says how to run the
    file); True when model.onnx was written."""
    model = read_model(folder)
    written = write_onnx(folder, model)
    (Path(folder) / CARD).write_text(model_card(model, read_evaluation(folder)))
    return written


def write_records(folder: str | Path, model: ViT, evaluation: Evaluation, chosen: dict | None) -> None:
    """Write calibration.json (when there are choices), evaluation.json and the model card of a folder (the
    weights and the stored test images stay)."""
    folder = Path(folder)
    if chosen is not None:
        (folder / CALIBRATION).write_text(json.dumps(chosen, indent=1))
    (folder / EVALUATION_JSON).write_text(json.dumps(evaluation.to_json(), indent=1))
    (folder / CARD).write_text(model_card(model, evaluation))


def add_to_evaluation(folder: str | Path, **parts) -> Evaluation:
    """Add or replace parts of a written folder's evaluation.json, each as its producer's plain JSON (results
    measured later, as `python -m vit.evaluate --faithfulness --write` and `python -m proxies --write` do), and
    write the model card again so it says the same; return the new record."""
    evaluation = read_evaluation(folder).with_parts(**parts)
    (Path(folder) / EVALUATION_JSON).write_text(json.dumps(evaluation.to_json(), indent=1))
    (Path(folder) / CARD).write_text(model_card(read_model(folder), evaluation))
    return evaluation


def read_evaluation(folder: str | Path) -> Evaluation:
    """A folder's evaluation.json as a record; ValueError names the file and what is wrong."""
    path = Path(folder) / EVALUATION_JSON
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    content = _read_json(path, "valid evaluation results")
    try:
        evaluation = Evaluation.from_json(content)
        describe(evaluation.dataset)
    except (KeyError, ValueError) as error:
        raise ValueError(f"{path} does not follow the schema ({error.args[0]})") from error
    return evaluation


def read_dataset(folder: str | Path) -> str:
    """The dataset a folder's model was trained on: its evaluation record's, else the default."""
    return read_evaluation(folder).dataset if (Path(folder) / EVALUATION_JSON).is_file() else DEFAULT_DATASET


def read_calibration(folder: str | Path) -> dict | None:
    """A folder's calibration.json (temperature and "not a digit" limits), checked; None when it has none."""
    path = Path(folder) / CALIBRATION
    if not path.is_file():
        return None
    calibration = _read_json(path, "valid calibration")
    _check_calibration(path, calibration)
    return calibration


def summarise(answers: Answers, dataset: str) -> Evaluation:
    """The record of the answers on the test split: count, accuracy and the confusion matrix."""
    labels, predictions = answers.labels, answers.predictions
    matrix = confusion_matrix(labels, predictions, answers.probabilities.shape[1])
    return Evaluation(split="test", n=len(labels), accuracy=matrix.trace().item() / len(labels),
                      confusion_matrix=matrix.tolist(), dataset=dataset)


def _kept_images(answers: Answers) -> dict[str, torch.Tensor]:
    """The test images the app shows, keyed as evaluation.safetensors stores them."""
    labels, predictions, losses = answers.labels, answers.predictions, answers.losses
    mistakes = (predictions != labels).nonzero().squeeze(1)
    mistakes = mistakes[losses[mistakes].argsort(descending=True)][:MAX_MISTAKES]
    highest = losses.topk(min(HIGHEST_LOSSES, len(losses))).indices
    kept = torch.cat([highest, mistakes]).unique()
    kept = kept[losses[kept].argsort(descending=True)]  # highest loss first
    examples = torch.cat([((labels == c) & (predictions == c)).nonzero().squeeze(1)[:EXAMPLES_PER_CLASS]
                          for c in range(answers.probabilities.shape[1])])
    return {"gallery_images": answers.images[kept, 0], "gallery_labels": labels[kept],
            "gallery_predictions": predictions[kept], "gallery_losses": losses[kept],
            "example_images": answers.images[examples, 0], "example_labels": labels[examples]}


@dataclass(frozen=True)
class Reading:
    """What a model makes of one input: calibrated probabilities and, when the folder has limits, a verdict."""
    probabilities: torch.Tensor            # (C,) softmax(logits / temperature)
    verdict: novelty.Verdict | None

    @property
    def best(self) -> int:
        return int(self.probabilities.argmax())

    @property
    def refused(self) -> bool:
        return self.verdict is not None and self.verdict.refused

    def answer(self, names: list[str]) -> Answer:
        """What the app says about it (vit.answer): refused, unsure between two, or a class."""
        return answer(self.probabilities, self.verdict.message if self.verdict else None, names)


@dataclass
class ModelBundle:
    """One model folder, loaded: the model, its evaluation results, and where it came from."""
    name: str
    model: ViT
    evaluation: Evaluation              # evaluation.json
    tensors: dict[str, torch.Tensor]    # evaluation.safetensors: read through the accessors below
    source: str                         # "repo@revision" or the bundled folder
    notice: str | None = None           # shown to the user, e.g. why the Hub copy was not used
    calibration: dict | None = None     # calibration.json, if the folder has one

    @property
    def class_names(self) -> list[str]:
        return self.model.class_names

    @property
    def temperature(self) -> float:
        return float(self.calibration["temperature"]) if self.calibration else 1.0

    @property
    def limits(self) -> novelty.Limits | None:
        return novelty.Limits.from_json(self.calibration["not_a_digit"]) if self.calibration else None

    @property
    def dataset(self) -> str:
        return self.evaluation.dataset

    @property
    def data(self) -> Dataset:
        """The description of the dataset it was trained on (vit.datasets); a taught model's symbols, framed as the
        dataset of the model it was taught on."""
        trained_on = describe(self.evaluation.dataset)
        return taught(trained_on, self.class_names) if self.evaluation.taught else trained_on

    @property
    def noun(self) -> str:
        """What one input is called in sentences: a digit, or a fashion item."""
        return self.data.noun

    @property
    def framing(self) -> Framing:
        """How a visitor's picture is placed in the frame: as the model's dataset places its own."""
        return self.data.framing

    def read(self, image: np.ndarray | torch.Tensor) -> Reading:
        """Calibrated probabilities and the "not a digit" verdict for one input (H, W) in [0, 1]; the reads of
        callers on other threads at the same moment share its forward pass (vit.batching)."""
        return self._reads(torch.as_tensor(image, dtype=torch.float32))

    @torch.inference_mode()
    def read_many(self, images: list[np.ndarray | torch.Tensor]) -> list[Reading]:
        """`read` of several inputs (H, W), in one forward pass."""
        inputs = torch.stack([torch.as_tensor(image, dtype=torch.float32) for image in images])  # (B, H, W)
        logits = self.model(inputs[:, None])
        probabilities = (logits / self.temperature).softmax(-1)  # (B, C)
        limits = self.limits
        verdicts = novelty.judge(limits, inputs, logits, self.noun) if limits else [None] * len(images)
        return [Reading(p, verdict) for p, verdict in zip(probabilities, verdicts)]

    def explain(self, image: np.ndarray | torch.Tensor) -> Explanation:
        """vit.analysis.explain of one input (H, W) in [0, 1] (the Predict tab's maps), batched like `read`."""
        return self._explanations(torch.as_tensor(image, dtype=torch.float32))

    def __post_init__(self):
        # one batcher per model: a pass runs one model; their workers start on first use
        self._reads = Batcher(self.read_many, name=f"{self.name} reads")
        self._explanations = Batcher(lambda images: explain_many(self.model, images), name=f"{self.name} maps",
                                     nice=MAPS_NICE)

    @property
    def accuracy(self) -> float:
        return self.evaluation.accuracy

    @property
    def confusion(self) -> np.ndarray:
        """Test counts (C, C): row = true class, column = predicted."""
        return np.asarray(self.evaluation.confusion_matrix, dtype=np.int64)

    @property
    def history(self) -> list[dict]:
        return self.evaluation.history

    def examples(self, label: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Correctly read stored test images (K, H, W) uint8 and their labels (K,): of one class, or all."""
        images, labels = self.tensors["example_images"], self.tensors["example_labels"]
        if label is None:
            return images, labels
        chosen = labels == label
        return images[chosen], labels[chosen]

    def example(self, label: int) -> StoredImage:
        """The first stored example of a class (the first stored example at all, if the class has none)."""
        images, labels = self.examples(label)
        if not len(images):
            images, labels = self.examples()
        return StoredImage(images[0].numpy(), int(labels[0]), int(labels[0]), None)

    def worst(self, count: int | None = None) -> list[StoredImage]:
        """The stored test images, the mistakes first, each group highest loss first (a right answer can lose
        more than a mistake: a 0.4 for the right class costs more than a 0.45 beside a 0.46)."""
        wrong = self._wrong().tolist()
        order = sorted(range(len(wrong)), key=lambda i: not wrong[i])  # stable: the loss order within each group
        return [self._gallery(i) for i in order[:count]]

    @property
    def mistakes(self) -> int:
        """How many stored gallery images the model got wrong (all the test set's mistakes, up to MAX_MISTAKES)."""
        return int(self._wrong().sum())

    def _wrong(self) -> torch.Tensor:
        """Which stored gallery images the model got wrong."""
        return self.tensors["gallery_labels"] != self.tensors["gallery_predictions"]

    def confused(self, true: int, predicted: int) -> list[StoredImage]:
        """Stored test images of class `true` read as `predicted` (for true == predicted: the stored examples)."""
        if true == predicted:
            images, _ = self.examples(true)
            return [StoredImage(image.numpy(), true, true, None) for image in images]
        pair = (self.tensors["gallery_labels"] == true) & (self.tensors["gallery_predictions"] == predicted)
        return [self._gallery(int(i)) for i in pair.nonzero().squeeze(1)]

    def _gallery(self, index: int) -> StoredImage:
        t = self.tensors
        return StoredImage(t["gallery_images"][index].numpy(), int(t["gallery_labels"][index]),
                           int(t["gallery_predictions"][index]), float(t["gallery_losses"][index]))


def load_folder(folder: str | Path, name: str | None = None, source: str | None = None) -> ModelBundle:
    """Load a model folder; a missing or broken file raises ValueError naming the file and the reason."""
    folder = Path(folder)
    for required in (CONFIG, WEIGHTS, EVALUATION_JSON, EVALUATION_TENSORS):
        if not (folder / required).is_file():
            raise ValueError(f"{folder / required} is missing")
    model = read_model(folder)
    evaluation = read_evaluation(folder)
    try:
        tensors = load_file(str(folder / EVALUATION_TENSORS))
    except Exception as error:  # safetensors raises several types for a bad file
        raise ValueError(f"{folder / EVALUATION_TENSORS} is not a readable safetensors file ({error})") from error
    calibration = read_calibration(folder)
    missing = {"gallery_images", "gallery_labels", "gallery_predictions", "gallery_losses", "example_images",
               "example_labels"} - tensors.keys()
    if missing:
        raise ValueError(f"{folder / EVALUATION_TENSORS} lacks {sorted(missing)}")
    return ModelBundle(name or folder.name, model, evaluation, tensors, source or str(folder), calibration=calibration)


def read_model(folder: str | Path) -> ViT:
    """The model of a folder (config.json + model.safetensors); ValueError names the file and the reason."""
    folder = Path(folder)
    _read_json(folder / CONFIG, "a valid config")
    try:
        return ViT.from_pretrained(folder)
    except (ValueError, TypeError) as error:  # TypeError: a config key the model does not take a value of
        raise ValueError(f"{folder}: cannot rebuild the model ({error})") from error


def _check_calibration(path: Path, calibration: dict) -> None:
    """A temperature above zero and every limit of novelty.Limits as a number (an older folder's limits on scores
    no longer used may be there too), or ValueError naming the file."""
    temperature, limits = calibration.get("temperature"), calibration.get("not_a_digit")
    fields = set(novelty.Limits.__dataclass_fields__)
    if not (isinstance(temperature, (int, float)) and temperature > 0 and isinstance(limits, dict)
            and fields <= set(limits) and all(isinstance(v, (int, float)) for v in limits.values())):
        raise ValueError(f"{path} needs a temperature above 0 and not_a_digit limits {sorted(fields)}")


def _read_json(path: Path, what: str) -> dict:
    try:
        content = json.loads(path.read_text())
        if not isinstance(content, dict):
            raise ValueError("it is not a JSON object")
    except OSError as error:  # missing, a folder, unreadable: a sentence, not a traceback
        raise ValueError(f"{path} cannot be read ({error.strerror or error})") from error
    except ValueError as error:
        raise ValueError(f"{path} is not {what} ({error})") from error
    return content


WEIGHTS_ROOT = Path(__file__).resolve().parent.parent / "weights"
ZOO = "zoo"  # weights/zoo/: one recipe, one change each (the Compare tab's models, not the menu's)


def bundled_folders(root: str | Path = WEIGHTS_ROOT) -> dict[str, Path]:
    """Model folders shipped in weights/, by name: those in it and those in its group folders (weights/fashion/),
    but not the zoo's."""
    root, found = Path(root), {}
    for path in sorted(root.iterdir()) if root.is_dir() else ():
        if (path / CONFIG).is_file():
            found[path.name] = path
        elif path.is_dir() and path.name != ZOO:
            found.update((inner.name, inner) for inner in sorted(path.iterdir()) if (inner / CONFIG).is_file())
    return found


def zoo_folders(root: str | Path = WEIGHTS_ROOT) -> dict[str, Path]:
    """The zoo's model folders, by name."""
    zoo = Path(root) / ZOO
    return {p.name: p for p in sorted(zoo.iterdir()) if (p / CONFIG).is_file()} if zoo.is_dir() else {}
