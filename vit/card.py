"""The model card (a model folder's README.md) and the sentences that describe a model in words.

Everything here is rendered from the folder's evaluation record (vit.record) and the model's config, so the
card, the About tab and the docs say the same thing: `trust_summary` is "how far to trust it" for all of them.
"""

from dataclasses import asdict

from huggingface_hub import EvalResult, ModelCardData

from . import rendered
from .datasets import dataset as describe
from .export import INPUT, OPSET, OUTPUT
from .model import ViT
from .recipe import Recipe
from .record import Evaluation, ProxySets
from .tiling import cut_words, grid_shape

# The config's and the recipe's keys in words, for model cards and the About tab.
SETTING_NAMES = {
    "image_size": "image side, pixels", "channels": "colour channels", "num_classes": "classes",
    "tile_size": "tile side or strip width, pixels", "cut": "pieces", "embed_size": "token width",
    "num_layers": "transformer blocks",
    "num_heads": "attention heads per block", "mlp_size": "MLP hidden width", "pos_embedding": "positions",
    "dropout": "dropout", "pixel_mean": "pixel mean (normalisation)", "pixel_std": "pixel spread (normalisation)",
    "class_names": "class names", "epochs": "epochs", "batch_size": "batch size", "lr": "peak learning rate",
    "weight_decay": "weight decay", "warmup_epochs": "warm-up epochs", "label_smoothing": "label smoothing",
    "rotate": "rotation, degrees", "shift": "shift, pixels", "scale": "zoom range",
    "thickness": "stroke thickness change", "elastic": "elastic distortion, pixels",
    "flip": "chance of a mirror image", "flag_ones": "chance of a flag on a 1",
    "coarse": "chance of a coarse scan", "erase": "chance of a rectangle erased",
    "ema_decay": "weight-average decay", "seed": "seed"}


def settings_table(settings: dict, heading: str = "setting", *, with_keys: bool = True) -> str:
    """A Markdown table, one setting a row: its name in words (and its key), then its value."""
    rows = (f"| {SETTING_NAMES.get(key, key)}{f' (`{key}`)' if with_keys else ''} | {value} |"
            for key, value in settings.items())
    return "\n".join([f"| {heading} | value |", "| --- | --- |", *rows])


def training_words(evaluation: Evaluation) -> str:
    """How long it trained. A fine-tune records its own minutes only: the weights it began from were trained by
    the earlier parts of its command, in runs whose time this folder does not hold."""
    minutes = f"{(evaluation.training_seconds or 0) / 60:.1f} minutes on {evaluation.device}"
    if evaluation.fine_tuned:
        return f"fine-tuned in {minutes}, not counting the training before it: the command below, up to its last `&&`"
    return f"trained in {minutes}"


def budget_sentence(evaluation: Evaluation) -> str:
    """What a --budget run planned and what it took ("" without a budget)."""
    return evaluation.pacing.budget_sentence() if evaluation.pacing else ""


def trust_summary(evaluation: Evaluation) -> str:
    """Calibration, refusals and the out-of-dataset figures as Markdown bullets ("" when not measured)."""
    calibration, refusals, others = evaluation.calibration, evaluation.not_a_digit, evaluation.other_writers
    if calibration is None:
        return ""
    noun = describe(evaluation.dataset).noun
    kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in refusals.others_refused.items())
    lines = [
        f"- **Calibration** (temperature scaling, fitted on the validation split): logits are divided by\n"
        f"  T = {calibration.temperature:.3f}. Expected calibration error on the test set (15 bins):\n"
        f"  **{calibration.ece_before * 100:.2f} % before, {calibration.ece_after * 100:.2f} % after**.",
        f"- **\"Not a {noun}\"**: limits on two scores (evidence, ink cover), set on validation\n"
        f"  {noun}s, refuse {refusals.test_refused * 100:.2f} % of the test {noun}s and {refusals.drawn_test_refused * 100:.2f} %\n"
        f"  of {refusals.drawn_test_count:,} test {noun}s drawn on a large white page; of {refusals.others_count} pictures of\n"
        f"  each kind that are not {noun}s they refuse {kinds}."]
    if others:
        lines.append(f"- **Digits from outside MNIST** (vit.rendered, made by this project's code: a proxy for other "
                     f"writers): {others.typed * 100:.1f} % of {others.typed_count} digits typed in {len(others.fonts)} "
                     f"fonts, {others.drawn * 100:.1f} % of {others.drawn_count} drawn in "
                     f"{sum(len(s) for s in rendered.STYLES.values())} pen styles, thin to thick.")
    if evaluation.proxies:
        lines.append(proxies_summary(evaluation.proxies))
    return "\n".join(lines)


def proxies_summary(sets: ProxySets) -> str:
    """The proxy sets' figures (proxies/) as one Markdown bullet."""
    writers, photos, others = sets.writers["all"], sets.photos["all"], sets.nondigits["all"]
    kinds = ", ".join(f"{kind} {share.right:.0%}" for kind, share in sets.photos.items() if kind != "all")
    return (f"- **Pictures people bring** (three proxy sets built here by code independent of the training "
            f"pictures; their report draw, `{sets.command}`): other writers' digits (optdigits scans): "
            f"**{writers.right:.1%} read right**, {writers.refused:.1%} refused, of {writers.n}; photographed digits: "
            f"**{photos.right:.1%} read right** ({kinds}), {photos.refused:.1%} refused, of {photos.n}; drawn "
            f"non-digits: **{others.right:.1%} refused or answered unsure**, of {others.n}. Selective prediction "
            f"over all of them: area under the risk-coverage curve {sets.aurc:.3f}; it answers {sets.accepted:.1%} "
            f"and {sets.risk_accepted:.1%} of those answers are wrong.")


def counted(evaluation: Evaluation) -> str:
    """What a model's accuracy, confusion matrix and stored pictures are of, as a plural noun: the test split's
    images, or a taught model's drawings (each read by a head fitted without it)."""
    return "drawings" if evaluation.taught else "test images"


def taught_sentence(evaluation: Evaluation) -> str:
    """How a taught model (vit.teach) was made and measured, in words."""
    taught, right = evaluation.taught, round(evaluation.accuracy * evaluation.n)
    drawings = ", ".join(str(count) for count in taught.drawings)
    return (f"Taught in {taught.seconds:.1f} s on the features of **{taught.base}**, whose encoder it keeps unchanged: "
            f"a new head (one linear layer from the CLS token) was fitted on {evaluation.n} drawings ({drawings} per "
            f"symbol), each turned, zoomed, shifted, thickened and bent into {taught.copies} pictures. "
            f"**{right} of the {evaluation.n} drawings** were read right by a head fitted without them "
            f"({taught.rounds} rounds, each leaving one drawing of every symbol out). It has no test set, no "
            f"temperature and no \"not a symbol\" limits: its confidences are the raw softmax, and it answers with one "
            f"of its symbols whatever it is shown.")


def onnx_section(model: ViT, evaluation: Evaluation) -> str:
    """The card's "Use it without this project": running model.onnx (vit.export) with onnxruntime alone."""
    data, calibration = describe(evaluation.dataset), evaluation.calibration  # a taught model: its base's dataset
    side, centred = model.config["image_size"], "centre of mass" if data.framing.by_mass else "bounding box"
    scaled = (f"logits / {calibration.temperature:g}  # the temperature of calibration.json" if calibration
              else "logits  # no temperature: its confidences are the raw softmax")
    limits = (f"the \"not a {data.noun}\" limits of calibration.json are not in it" if calibration
              else "it has no \"not a symbol\" limits")
    return f"""## Use it without this project

`model.onnx` is the same model for any ONNX runtime (opset {OPSET}, weights inside, no PyTorch needed). Input
`{INPUT}`: float32 `(batch, 1, {side}, {side})` in [0, 1], light ink on a black background, each picture framed as
{data.title} frames its {data.noun}s: the ink scaled so its longer side is {data.framing.box} pixels, its {centred} in
the middle. Output `{OUTPUT}`: `(batch, {len(model.class_names)})`, in the order of the class names stored in the file.

```python
import json
import numpy as np
import onnxruntime

session = onnxruntime.InferenceSession("model.onnx")
names = json.loads(session.get_modelmeta().custom_metadata_map["class_names"])
images = np.zeros((1, 1, {side}, {side}), dtype=np.float32)  # your pictures: ink 1.0, background 0.0
logits = session.run(["{OUTPUT}"], {{"{INPUT}": images}})[0]
scaled = {scaled}
probabilities = np.exp(scaled - scaled.max(-1, keepdims=True))
probabilities /= probabilities.sum(-1, keepdims=True)
print(names[probabilities[0].argmax()], probabilities[0].max())
```

It names one of its classes whatever it is shown: {limits}.
`python -m vit.export <this folder>` writes it again from the weights and, with onnxruntime installed,
reports its largest logit difference from PyTorch.
"""


def model_card(model: ViT, evaluation: Evaluation) -> str:
    """The model folder's README.md: metadata the Hub indexes, then architecture, recipe and results."""
    if evaluation.taught:
        return taught_card(model, evaluation)
    data = describe(evaluation.dataset)
    rows, columns = grid_shape(model.cut, model.tile_size, model.config["image_size"])
    # a recipe recorded before a setting existed was trained with that setting's default
    recipe = {key: value for key, value in asdict(Recipe(**(evaluation.recipe or {}))).items()
              if key not in data.inapplicable}
    trust = trust_summary(evaluation)
    return f"""---
{_metadata(evaluation).to_yaml()}
---

# A Vision Transformer for {data.title}

A pure Vision Transformer ({model.parameter_count:,} parameters) that cuts each 28×28 image into
{cut_words(model.cut, model.tile_size)}, reads them as a sequence of {rows * columns} "words"
plus a CLS token, and predicts the class from the CLS token.

**Test accuracy: {evaluation.accuracy * 100:.2f} %** on the {evaluation.n:,} {data.title} test images
({training_words(evaluation)}).{budget_sentence(evaluation)} Measure it again with
`python -m vit.evaluate <this folder> --data-dir DIR`.

Reproduce:

```bash
{evaluation.command}
```

Load it (raw pixels in [0, 1], shape `(B, 1, 28, 28)`):

```python
from vit import ViT
model = ViT.from_pretrained("<this folder or repo id>")
```
{f"{chr(10)}## How far to trust it{chr(10)}{chr(10)}{trust}{chr(10)}" if trust else ""}
{onnx_section(model, evaluation)}
## Architecture

{settings_table(model.config)}

## Recipe

AdamW, linear warm-up then cosine decay, label smoothing, random stroke thickness, rotation, zoom, shift and
elastic distortion of each batch, and an exponential moving average of the weights (the weights stored here).
5,000 of the 60,000 training images are kept back as the validation split (seed 0): the per-epoch history
follows it, and the temperature and the "not a digit" limits are fitted on it. The test split is only
reported.

{settings_table(recipe)}

## Files

`model.safetensors` and `config.json` rebuild the model; `model.onnx` is the same model for other runtimes
(above); `calibration.json` holds the temperature and the
"not a digit" limits; `evaluation.json` (accuracy, confusion matrix, calibration error and reliability bins,
refusals, the out-of-MNIST results, per-epoch history) and `evaluation.safetensors` (worst-loss and example
test images) feed the app.
"""


def taught_card(model: ViT, evaluation: Evaluation) -> str:
    """The README.md of a model taught in the app: what it reads, how it was taught and measured, its settings."""
    metadata = ModelCardData(license="mit", library_name="vit-explainer", pipeline_tag="image-classification",
                             tags=["vision-transformer", "image-classification", "pytorch_model_hub_mixin"])
    return f"""---
{metadata.to_yaml()}
---

# A Vision Transformer taught {len(model.class_names)} symbols: {", ".join(model.class_names)}

{taught_sentence(evaluation)}

Load it (raw pixels in [0, 1], shape `(B, 1, 28, 28)`, a drawing framed as `vit.preprocess.to_model_input` frames
it): `ViT.from_pretrained("<this folder>")`; `python app.py --weights-dir <the folder above it>` serves it.

{onnx_section(model, evaluation)}
## Architecture

{settings_table(model.config)}
"""


def _metadata(evaluation: Evaluation) -> ModelCardData:
    """The card's YAML front matter: what the Hub indexes, with the test accuracy as a model-index result."""
    data = describe(evaluation.dataset)
    return ModelCardData(
        license="mit", library_name="vit-explainer", pipeline_tag="image-classification", datasets=[data.hub_id],
        tags=["vision-transformer", "image-classification", data.name, "pytorch_model_hub_mixin"],
        model_name=f"vit-{data.name}",
        eval_results=[EvalResult(task_type="image-classification", dataset_type=data.hub_id, dataset_name=data.title,
                                 dataset_split="test", metric_type="accuracy",
                                 metric_value=round(evaluation.accuracy, 4))])
