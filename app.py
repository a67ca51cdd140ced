"""The Vision Transformer explainer: a Gradio app that shows how a ViT reads MNIST digits as words.

    python app.py                      # http://127.0.0.1:7860, models from weights/ (or the Hub, VIT_MODELS)
    python app.py --help               # host, port and weights folder options

Wiring only: inputs -> vit.preprocess / vit.analysis -> vit.plots -> components. One tab per idea:
tiling, prediction with its explanations, confusion matrix, worst losses, position embeddings,
attention by label, and the model card. Besides the UI there is one public endpoint, /predict.
"""

import argparse
import logging
import os
from functools import lru_cache
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it: no calls home

import gradio as gr  # noqa: E402
import numpy as np
import torch
from PIL import Image, ImageOps

from vit import hub, plots, tiling
from vit.analysis import explain, median_attention_by_label, positional_similarity
from vit.bundle import ModelBundle
from vit.preprocess import ImageError, open_image, to_model_input

ROOT = Path(__file__).resolve().parent
WEIGHTS_DIR_VARIABLE = "VIT_WEIGHTS_DIR"
DEFAULT_MODEL = "mnist"
# Events running at once. 2 cores, 1 torch thread per event: 4 lets a quick event (a stroke) pass a slow one
# (a model switch drawing every tab) while keeping at most two per core, so no visitor waits long for another.
CONCURRENCY = 4
MAX_FILE_SIZE = "20mb"
ORIGINAL_SIDE = 280  # the "your image" thumbnail: enough to recognise it, cheap to draw
EXAMPLES_PER_CLASS = 1  # example digits offered in the Predict tab per class
YOURS = "the Predict tab's digit"
CUTS = {"tiles": "tiles", "horizontal strips": "horizontal", "vertical strips": "vertical"}
CUT_FUNCTIONS = {"tiles": (tiling.tiles, tiling.tiles_einops),
                 "horizontal": (tiling.horizontal_strips, tiling.horizontal_strips_einops),
                 "vertical": (tiling.vertical_strips, tiling.vertical_strips_einops)}
CUT_CODE = {
    "tiles": ("b, c, h, w = images.shape\n"
              "tiles = images.view(b, c, h // {n}, {n}, w // {n}, {n})"
              ".permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c, {n}, {n})",
              "tiles = einops.rearrange(images, 'b c (h t1) (w t2) -> b (h w) c t1 t2', t1={n}, t2={n})"),
    "horizontal": ("b, c, h, w = images.shape\n"
                   "horizontal = images.view(b, c, {n}, h // {n}, w).permute(0, 2, 1, 3, 4)",
                   "horizontal = einops.rearrange(images, 'b c (k h) w -> b k c h w', k={n})"),
    "vertical": ("b, c, h, w = images.shape\n"
                 "vertical = images.view(b, c, h, {n}, w // {n}).permute(0, 3, 1, 2, 4)",
                 "vertical = einops.rearrange(images, 'b c h (k w) -> b k c h w', k={n})"),
}
# The sketchpad opens with no tool chosen ("select the draw tool to start"): pick the brush for the visitor,
# unless they already chose a tool. The canvas mounts when its tab opens, hence the retries.
PICK_BRUSH = """() => {
  const pick = (tries) => {
    const buttons = document.querySelectorAll(
      '#sketchpad button[aria-label="Brush"], #sketchpad button[aria-label="Erase"]');
    if (buttons.length) {
      if (![...buttons].some((b) => b.classList.contains('highlight'))) buttons[0].click();
    } else if (tries > 0) {
      setTimeout(() => pick(tries - 1), 100);
    }
  };
  pick(30);
}"""
LABEL_VIEWS = {"full attention matrices": "matrix", "CLS → tiles, in the tile layout": "cls"}

# System fonts: the default theme fetches web fonts, which a machine without internet waits for.
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
CSS = """
.lead { font-size: 1.02rem; }
.notice { border-left: 4px solid #f59e0b; padding-left: 0.6rem; }
#model-info p { margin: 0.15rem 0; }
#worst .caption-label, #pair-gallery .caption-label { white-space: normal; max-width: 100%; }
"""


# --- Loading ------------------------------------------------------------------------------------------------

def load_models(weights_dir: str | Path | None = None) -> list[ModelBundle]:
    """Every model the app can show: Hub repos named in VIT_MODELS, falling back to the folders in weights_dir."""
    weights_dir = Path(weights_dir or os.environ.get(WEIGHTS_DIR_VARIABLE) or ROOT / "weights")
    bundles = hub.load_models(weights_dir=weights_dir)
    if not bundles:
        raise SystemExit(f"no model to show: VIT_MODELS names none that loads and {weights_dir} holds no model "
                         f"folder; train one with `python train.py` or point --weights-dir at a folder of them")
    bundles.sort(key=lambda bundle: (bundle.name != DEFAULT_MODEL, bundle.name))
    for bundle in bundles:
        bundle.model.eval().requires_grad_(False)  # read-only and shared by every visitor
    return bundles


# --- Small helpers ------------------------------------------------------------------------------------------

def digit_picture(pixels, scale: int = 4) -> Image.Image:
    """A stored uint8 (28, 28) test image, enlarged without blurring, for galleries."""
    array = np.asarray(pixels, dtype=np.uint8)
    return Image.fromarray(array).resize((array.shape[1] * scale, array.shape[0] * scale), Image.Resampling.NEAREST)


def thumbnail(picture: Image.Image | np.ndarray) -> np.ndarray:
    """The user's picture, upright, at most ORIGINAL_SIDE pixels on a side, for the "your image" panel."""
    if isinstance(picture, np.ndarray):
        picture = Image.fromarray(picture)
    if getattr(picture, "n_frames", 1) > 1:
        picture.seek(0)  # an animation: its first frame, as the model reads it
    picture = ImageOps.exif_transpose(picture)  # a copy, turned as vit.preprocess turns it
    picture.thumbnail((ORIGINAL_SIDE, ORIGINAL_SIDE))
    if picture.mode.startswith("I") or picture.mode == "F":  # 16/32-bit grey or float: Pillow's convert clips at 255
        grey = np.asarray(picture, dtype=np.float32)
        peak = 1.0 if picture.mode == "F" else 65535.0 if grey.max() > 255 else 255.0
        return (np.clip(grey / peak, 0, 1) * 255).round().astype(np.uint8)
    if picture.mode not in ("L", "RGB", "RGBA"):
        picture = picture.convert("RGBA")
    return np.asarray(picture)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def shown_source(source: str) -> str:
    """A Hub "repo@revision" as is; a bundled folder relative to the app, e.g. weights/mnist."""
    try:
        return str(Path(source).resolve().relative_to(ROOT))
    except ValueError:
        return source


def model_summary(bundle: ModelBundle) -> str:
    """One line about the model for the header."""
    model, evaluation = bundle.model, bundle.evaluation
    grid = model.image_size // model.tile_size
    parameters = sum(p.numel() for p in model.parameters())
    accuracy = evaluation.get("accuracy")
    accuracy = f" · test accuracy **{accuracy * 100:.2f} %**" if accuracy is not None else ""
    return (f"**{bundle.name}**: {model.tile_size}×{model.tile_size} tiles → {grid * grid} words + CLS = "
            f"{grid * grid + 1} tokens · {plural(model.num_layers, 'layer')} × {plural(model.num_heads, 'head')} · "
            f"{parameters:,} parameters{accuracy}  \nsource: `{shown_source(bundle.source)}`")


def notice_text(bundle: ModelBundle) -> str:
    return f"⚠️ {bundle.notice}" if bundle.notice else ""


def example_indices(bundle: ModelBundle) -> list[int]:
    """Which stored example images the Predict tab offers: the first few of each class."""
    labels = bundle.tensors["example_labels"]
    chosen = []
    for label in range(len(bundle.model.class_names)):
        chosen += (labels == label).nonzero().squeeze(1)[:EXAMPLES_PER_CLASS].tolist()
    return chosen


def example_of(bundle: ModelBundle, label: int) -> np.ndarray:
    """One stored example test image of a class, (28, 28) float in [0, 1]."""
    matches = (bundle.tensors["example_labels"] == label).nonzero().squeeze(1)
    index = int(matches[0]) if len(matches) else 0
    return bundle.tensors["example_images"][index].float().numpy() / 255


# --- Analysis -> plots, per request ------------------------------------------------------------------------

def explain_input(bundle: ModelBundle, current: dict | None):
    """Status, label, and the three pictures of the Predict tab for the current input (or a prompt to draw)."""
    if not current:
        return ("### ✏️ Draw a digit on the canvas, upload a picture, or pick a test digit.",
                "Draw a digit", None, None, None)
    model_input = np.asarray(current["input"], dtype=np.float32)
    result = explain(bundle.model, torch.from_numpy(model_input))
    names = bundle.model.class_names
    confidences = {names[i]: float(p) for i, p in enumerate(result.probabilities)}
    name, confidence = names[result.predicted], float(result.probabilities[result.predicted])
    seen = plots.render(plots.model_input_figure(current.get("original"), model_input, bundle.model.tile_size))
    attention = plots.render(plots.attention_figure(model_input, result.cls_attention))
    evidence = plots.render(plots.explanation_figure(model_input, result.rollout, result.saliency,
                                                     result.occlusion, name))
    hedge = "" if confidence >= 0.5 else " — not sure at all: try drawing it bigger and in the middle"
    where = f"{current['source']}: " if current.get("source") else ""
    status = f"### {where}the model reads **{name}** ({confidence * 100:.1f} %){hedge}"
    return status, confidences, seen, attention, evidence


def blank_outputs(message: str):
    return f"### ✏️ {message}", "Draw a digit", None, None, None


def tiling_outputs(bundle: ModelBundle, source: str, cut: str, size: int, current: dict | None):
    """The tiling picture, the explanation under it and the code that makes the cut."""
    kind = CUTS[cut]
    if source == YOURS and current:
        image, what = np.asarray(current["input"], dtype=np.float32), "your digit as the model sees it"
    else:
        names = bundle.model.class_names
        label = names.index(source) if source in names else (names.index("7") if "7" in names else 0)
        image, what = example_of(bundle, label), f"a test {names[label]}"
    images = torch.from_numpy(image)[None, None]  # (1, 1, 28, 28)
    by_hand, with_einops = CUT_FUNCTIONS[kind]
    pieces, pieces_einops = by_hand(images, size), with_einops(images, size)
    agree = torch.equal(pieces, pieces_einops)
    figure = plots.render(plots.tiling_figure(image, pieces[0], kind))
    count, tile = pieces.shape[1], bundle.model.tile_size
    note = ""
    if source == YOURS and not current:
        note = " (the Predict tab has no digit yet)"
    if kind == "tiles" and size == tile:
        model_line = (f"These {count} tiles are exactly the words **{bundle.name}** embeds: the model calls the same "
                      f"`vit.tiling.tiles` (through `patchify`).")
    else:
        model_line = (f"**{bundle.name}** itself cuts {tile}×{tile} tiles ({(28 // tile) ** 2} words); "
                      f"choose tiles of size {tile} to see exactly its words.")
    text = (f"**{count} words + 1 CLS token = {count + 1} tokens**, cut from {what}{note}. {model_line}  \n"
            f"By hand and with einops: {'the same tensor, element for element ✓' if agree else 'they differ ✗'} "
            f"— shape `{tuple(pieces.shape)}` = (batch, words, channels, height, width).")
    by_hand_code, einops_code = CUT_CODE[kind]
    code = (f"# images: (1, 1, 28, 28)\n# by hand\n{by_hand_code.format(n=size)}\n\n# with einops\n"
            f"{einops_code.format(n=size)}\n# -> {tuple(pieces.shape)}: {count} words (+ CLS = {count + 1} tokens)")
    return figure, text, code


def confusion_view(bundle: ModelBundle, selected: tuple[int, int] | None):
    """The confusion matrix picture and the pixel box of its cells (for clicks)."""
    evaluation = bundle.evaluation
    figure = plots.confusion_figure(evaluation["confusion_matrix"], evaluation["accuracy"], bundle.model.class_names,
                                    selected)
    image, boxes = plots.render(figure, boxes=True)
    image.flags.writeable = False  # shared by every visitor through the cache
    return image, boxes[0]


def pair_images(bundle: ModelBundle, true: int, predicted: int):
    """Gallery items and a sentence for the test images with this true label and this prediction."""
    names = bundle.model.class_names
    count = int(bundle.evaluation["confusion_matrix"][true][predicted])
    tensors = bundle.tensors
    if true == predicted:
        index = (tensors["example_labels"] == true).nonzero().squeeze(1)
        items = [(digit_picture(tensors["example_images"][i]), f"true {names[true]}") for i in index.tolist()]
        text = (f"**{count:,}** test images of **{names[true]}** were read correctly; "
                f"the {len(items)} stored examples are shown.")
    else:
        pair = (tensors["gallery_labels"] == true) & (tensors["gallery_predictions"] == predicted)
        index = pair.nonzero().squeeze(1)
        items = [(digit_picture(tensors["gallery_images"][i]), f"loss {float(tensors['gallery_losses'][i]):.2f}")
                 for i in index.tolist()]
        text = (f"**{count:,}** test images of **{names[true]}** were read as **{names[predicted]}**"
                + (f"; {len(items)} of them are stored." if len(items) < count else ".")
                + (" Click one to explain it in the Predict tab." if items else ""))
    return items, text


def worst_items(bundle: ModelBundle, count: int):
    tensors, names = bundle.tensors, bundle.model.class_names
    return [(digit_picture(tensors["gallery_images"][i]),
             f"pred {names[int(tensors['gallery_predictions'][i])]} / true {names[int(tensors['gallery_labels'][i])]}"
             f" / loss {float(tensors['gallery_losses'][i]):.1f}")
            for i in range(min(count, len(tensors["gallery_labels"])))]


def positional_views(bundle: ModelBundle):
    similarity = positional_similarity(bundle.model)
    grid = plots.render(plots.positional_similarity_figure(similarity))
    raw = plots.render(plots.embedding_matrix_figure(bundle.model.pos_embedding[0].detach()))
    grid.flags.writeable = raw.flags.writeable = False
    kind = bundle.model.pos_embedding_kind
    text = {"learned": "These position vectors were **learned** from data, starting from random noise.",
            "sinusoidal": "This model uses fixed **sinusoidal** position codes: nothing here was learned.",
            "none": "This model has **no** position embedding: it cannot tell where a tile was."}[kind]
    return grid, raw, text


def label_attention_view(bundle: ModelBundle, labels: tuple[int, ...], view: str, difference: bool):
    tensors = bundle.tensors
    maps = median_attention_by_label(bundle.model, tensors["example_images"], tensors["example_labels"], list(labels))
    image = plots.render(plots.attention_by_label_figure(maps, bundle.model.class_names, view, difference))
    image.flags.writeable = False
    return image


def about_view(bundle: ModelBundle):
    curve = plots.render(plots.training_figure(bundle.evaluation.get("history", [])))
    curve.flags.writeable = False
    shown = ("tile_size", "embed_size", "num_layers", "num_heads", "mlp_size", "pos_embedding", "dropout")
    config = {key: value for key, value in bundle.model.config.items() if key in shown}
    table = ("| " + " | ".join(f"`{key}`" for key in config) + " |\n|" + " --- |" * len(config) + "\n| "
             + " | ".join(str(value) for value in config.values()) + " |")
    evaluation = bundle.evaluation
    trained = ""
    if "training_seconds" in evaluation:
        trained = (f"Trained for {plural(len(evaluation.get('history', [])), 'epoch')} in "
                   f"{evaluation['training_seconds'] / 60:.1f} minutes on {evaluation.get('device', '?')}"
                   + (f" with `{evaluation['command']}`" if evaluation.get("command") else "") + ".")
    text = f"{model_summary(bundle)}\n\n{trained}\n\n{table}\n"
    return curve, text


# --- The app ------------------------------------------------------------------------------------------------

def build_demo(models: list[ModelBundle]) -> gr.Blocks:
    """The Blocks for these models; nothing is loaded or launched here."""
    bundles = {bundle.name: bundle for bundle in models}
    first = models[0]
    names = first.model.class_names
    divisors = tiling.divisors(first.model.image_size)

    def pick(name: str | None) -> ModelBundle:
        return bundles.get(name) or first

    # The pictures that depend only on the model (and a few choices) are drawn once and shared, read-only.
    confusion_cached = lru_cache(maxsize=64)(lambda name, selected: confusion_view(pick(name), selected))
    positional_cached = lru_cache(maxsize=None)(lambda name: positional_views(pick(name)))
    label_attention_cached = lru_cache(maxsize=64)(
        lambda name, labels, view, difference: label_attention_view(pick(name), labels, view, difference))
    about_cached = lru_cache(maxsize=None)(lambda name: about_view(pick(name)))

    # ---- event functions (closures over the read-only models) ----

    def predict(image_file: str | None, model_name: str = first.name):
        """Label confidences for one picture of a handwritten digit.

        A picture without a digit (blank, or too small) gets a label without confidences; a file that is not
        a picture raises an error with a readable message.

        Args:
            image_file: a picture of one digit: PNG or JPEG, any size, dark ink on light paper or the reverse.
            model_name: which model answers; the first one in the app's model menu by default.
        Returns:
            the predicted class and the confidence of every class.
        """
        bundle = pick(model_name)
        if not image_file:
            raise gr.Error("Send a picture file (PNG or JPEG) of a digit.")
        try:
            picture = open_image(image_file)
        except ImageError as error:
            raise gr.Error(str(error)) from None
        try:
            model_input = to_model_input(picture)
        except ImageError as error:
            return str(error)  # a gr.Label heading without confidences
        with torch.no_grad():
            probabilities = bundle.model(model_input[None, None]).softmax(dim=-1)[0]
        return {bundle.model.class_names[i]: float(p) for i, p in enumerate(probabilities)}

    def from_upload(image_file: str | None, model_name: str):
        if not image_file:
            return (None, *blank_outputs("Draw a digit, upload a picture, or pick a test digit."))
        try:
            picture = open_image(image_file)
            current = {"input": to_model_input(picture).numpy(), "original": thumbnail(picture),
                       "source": "your picture"}
        except ImageError as error:
            return (None, *blank_outputs(str(error)))
        return (current, *explain_input(pick(model_name), current))

    def from_sketch(sketch: dict | None, model_name: str):
        composite = sketch.get("composite") if sketch else None
        if composite is None:
            return (None, *blank_outputs("Draw a digit on the canvas."))
        try:
            current = {"input": to_model_input(composite).numpy(), "original": thumbnail(composite),
                       "source": "your drawing"}
        except ImageError as error:
            return (None, *blank_outputs(str(error)))
        return (current, *explain_input(pick(model_name), current))

    def from_examples(model_name: str, event: gr.SelectData):
        bundle = pick(model_name)
        index = example_indices(bundle)[event.index]
        label = bundle.model.class_names[int(bundle.tensors["example_labels"][index])]
        current = {"input": bundle.tensors["example_images"][index].float().numpy() / 255, "original": None,
                   "source": f"a test {label}"}
        return (current, *explain_input(bundle, current))

    def from_stored(bundle: ModelBundle, index: int, where: str):
        """A stored gallery image (worst losses, confusion pairs) sent to the Predict tab."""
        tensors = bundle.tensors
        true = bundle.model.class_names[int(tensors["gallery_labels"][index])]
        current = {"input": tensors["gallery_images"][index].float().numpy() / 255, "original": None,
                   "source": f"{where} (true label {true})"}
        return (current, *explain_input(bundle, current), gr.Tabs(selected="predict"))

    def from_worst(model_name: str, event: gr.SelectData):
        return from_stored(pick(model_name), event.index, f"worst-loss image #{event.index + 1}")

    def from_pair(model_name: str, true: str, predicted: str, event: gr.SelectData):
        bundle = pick(model_name)
        t, p = bundle.model.class_names.index(true), bundle.model.class_names.index(predicted)
        if t == p:
            index = (bundle.tensors["example_labels"] == t).nonzero().squeeze(1)[event.index]
            current = {"input": bundle.tensors["example_images"][index].float().numpy() / 255, "original": None,
                       "source": f"a test {true}"}
            return (current, *explain_input(bundle, current), gr.Tabs(selected="predict"))
        tensors = bundle.tensors
        index = ((tensors["gallery_labels"] == t) & (tensors["gallery_predictions"] == p)).nonzero().squeeze(1)
        return from_stored(bundle, int(index[event.index]), f"a {true} read as {predicted}")

    def rerun(current: dict | None, model_name: str):
        return explain_input(pick(model_name), current)

    def show_tiling(model_name: str, source: str, cut: str, size: str, current: dict | None):
        return tiling_outputs(pick(model_name), source, cut, int(size), current)

    def size_label(cut: str):
        return gr.Radio(label="tile size (pixels)" if CUTS[cut] == "tiles" else "number of strips")

    def show_pair(model_name: str, true: str, predicted: str):
        bundle = pick(model_name)
        t, p = bundle.model.class_names.index(true), bundle.model.class_names.index(predicted)
        image, _ = confusion_cached(bundle.name, (t, p))
        items, text = pair_images(bundle, t, p)
        return image, items, text

    def click_cell(model_name: str, event: gr.SelectData):
        bundle = pick(model_name)
        _, (left, top, right, bottom) = confusion_cached(bundle.name, None)
        x, y = event.index
        classes = len(bundle.model.class_names)
        col, row = int((x - left) / (right - left) * classes), int((y - top) / (bottom - top) * classes)
        if not (0 <= row < classes and 0 <= col < classes):
            return gr.Dropdown(), gr.Dropdown()  # a click beside the matrix: keep the current pair
        return bundle.model.class_names[row], bundle.model.class_names[col]

    def show_worst(model_name: str, count: int):
        return worst_items(pick(model_name), int(count))

    def show_label_attention(model_name: str, labels: list[str], view: str, difference: bool):
        bundle = pick(model_name)
        known = bundle.model.class_names
        chosen = tuple(sorted(known.index(label) for label in labels if label in known))
        return label_attention_cached(bundle.name, chosen, LABEL_VIEWS[view], bool(difference))

    def switch_header(model_name: str):
        bundle = pick(model_name)
        return model_summary(bundle), gr.Markdown(notice_text(bundle), visible=bool(bundle.notice))

    def switch_predict_examples(model_name: str):
        bundle = pick(model_name)
        return [(digit_picture(bundle.tensors["example_images"][i]), None) for i in example_indices(bundle)]

    def switch_tiling(model_name: str, source: str, current: dict | None):
        bundle = pick(model_name)
        size = bundle.model.tile_size
        return ("tiles", gr.Radio(value=str(size), label="tile size (pixels)"),
                *tiling_outputs(bundle, source, "tiles", size, current))

    def switch_confusion(model_name: str):
        bundle = pick(model_name)
        matrix = np.asarray(bundle.evaluation["confusion_matrix"])
        off = matrix - np.diag(np.diag(matrix))
        true, predicted = np.unravel_index(off.argmax(), off.shape)  # start at the most common mistake
        names = bundle.model.class_names
        image, _ = confusion_cached(bundle.name, (int(true), int(predicted)))
        items, text = pair_images(bundle, int(true), int(predicted))
        return image, names[true], names[predicted], items, text

    def switch_worst(model_name: str, count: int):
        bundle = pick(model_name)
        total = len(bundle.tensors["gallery_labels"])
        return gr.Slider(maximum=total, value=min(int(count), total)), worst_items(bundle, int(count))

    def switch_positional(model_name: str):
        return positional_cached(pick(model_name).name)

    def switch_about(model_name: str):
        return about_cached(pick(model_name).name)

    # ---- initial values for the default model, so a page opens complete ----
    start_label = names.index("7") if "7" in names else 0
    start = {"input": example_of(first, start_label), "original": None, "source": f"a test {names[start_label]}"}
    start_predict = explain_input(first, start)
    start_tiling = tiling_outputs(first, names[start_label], "tiles", first.model.tile_size, None)
    start_confusion = switch_confusion(first.name)
    start_positional = positional_cached(first.name)
    start_labels = [name for name in ("3", "7", "8") if name in names] or names[:3]
    start_about = about_cached(first.name)

    with gr.Blocks(title="Vision Transformer explainer") as demo:
        current = gr.State(start)  # per visitor: the 28×28 input the Predict tab explains
        gr.Markdown("# How a Vision Transformer reads a digit\n"
                    "A Vision Transformer cuts a picture into tiles and reads them like the words of a sentence. "
                    "Each tab shows one step, from cutting to the model's decision. Pick a model:",
                    elem_classes="lead")
        with gr.Row(equal_height=True):
            model_choice = gr.Dropdown([bundle.name for bundle in models], value=first.name, label="model",
                                       scale=1, min_width=180, elem_id="model-choice")
            with gr.Column(scale=4):
                model_info = gr.Markdown(model_summary(first), elem_id="model-info")
                notice = gr.Markdown(notice_text(first), visible=bool(first.notice), elem_classes="notice")

        with gr.Tabs(selected="tiling") as tabs:
            with gr.Tab("1 · Tiling", id="tiling") as tiling_tab:
                gr.Markdown("A transformer reads a sequence of words. A Vision Transformer makes its words by cutting "
                            "the image into pieces and reading them left to right, top to bottom, after a learned "
                            "**CLS** token from which the answer is read. Try the cuts: strips keep only one "
                            "direction, small tiles make long sequences, big tiles make a few rich words.")
                with gr.Row():
                    tiling_source = gr.Radio(names + [YOURS], value=names[start_label],
                                             label="digit to cut: a test example, or the one in the Predict tab",
                                             scale=3,
                                             elem_id="tiling-source")
                    tiling_cut = gr.Radio(list(CUTS), value="tiles", label="cut into", scale=2, elem_id="tiling-cut")
                    tiling_size = gr.Radio([str(d) for d in divisors], value=str(first.model.tile_size),
                                           label="tile size (pixels)", scale=2, elem_id="tiling-size")
                tiling_picture = gr.Image(start_tiling[0], label="the cut", show_label=False, interactive=False,
                                          format="png", buttons=["fullscreen", "download"], elem_id="tiling-picture")
                tiling_text = gr.Markdown(start_tiling[1], elem_id="tiling-text")
                tiling_code = gr.Code(start_tiling[2], language="python", label="the same cut in code",
                                      interactive=False, elem_id="tiling-code")

            with gr.Tab("2 · Predict", id="predict") as predict_tab:
                gr.Markdown("Draw a digit (big, in the middle), upload a picture, or pick a test digit: the answer "
                            "updates with every stroke. Below it, where the CLS token looks, and three answers to "
                            "*which parts mattered?*")
                with gr.Row():
                    with gr.Column(scale=1, min_width=340):
                        sketch = gr.Sketchpad(label="draw here", type="numpy", image_mode="L",
                                              canvas_size=(336, 336), fixed_canvas=True, layers=False,
                                              transforms=(), height=420,
                                              # radius 13 on a 336 canvas: a stroke about 1/13 of the digit's
                                              # height, like MNIST's pen once the digit is fitted into 20×20
                                              brush=gr.Brush(default_size=13, colors=["#000000"], color_mode="fixed"),
                                              elem_id="sketchpad")
                        upload = gr.File(label="or upload a picture", file_types=["image"], type="filepath",
                                         height=120, elem_id="upload")
                        examples = gr.Gallery(switch_predict_examples(first.name), label="or pick a test digit",
                                              columns=5, rows=2, height=290, allow_preview=False,
                                              object_fit="contain", elem_id="examples")
                    with gr.Column(scale=1, min_width=340):
                        status = gr.Markdown(start_predict[0], elem_id="status")
                        label = gr.Label(start_predict[1], num_top_classes=3, label="prediction", elem_id="prediction")
                        seen = gr.Image(start_predict[2], label="what the model sees", interactive=False,
                                        format="png", height=360, buttons=["fullscreen"], elem_id="seen")
                gr.Markdown("**Which parts mattered?** *Rollout* follows CLS's attention back through all the layers; "
                            "*saliency* shows where a little more ink would change the answer most; *occlusion* "
                            "blanks one tile at a time and measures the answer's log-odds (red: the tile supports the answer, "
                            "blue: it argues against it). The notebook's author noticed that decisions "
                            "often hinge on **what is missing**: look for empty areas lighting up in the saliency map "
                            "— a 1 is partly a 1 because there is no bar of a 7 and no branch of a 4.")
                evidence_picture = gr.Image(start_predict[4], label="which parts mattered", show_label=False,
                                            interactive=False, format="png", buttons=["fullscreen", "download"],
                                            elem_id="evidence")
                gr.Markdown("**Where does CLS look?** In every layer each head lets the CLS token gather from the "
                            "tiles; brighter means more attention, each map on its own scale. Compare the layers: "
                            "which tiles does CLS read before it decides?")
                attention_picture = gr.Image(start_predict[3], label="CLS attention", show_label=False,
                                             interactive=False, format="png", buttons=["fullscreen", "download"],
                                             elem_id="attention")

            with gr.Tab("3 · Confusion", id="confusion"):
                gr.Markdown("Every test image counted by its true label (row) and the model's answer (column); the "
                            "diagonal is right. The colour scale is logarithmic so that rare mistakes stay visible. "
                            "Click a cell, or choose a pair, to see those images.")
                with gr.Row():
                    with gr.Column(scale=3):
                        confusion_picture = gr.Image(start_confusion[0], label="confusion matrix", show_label=False,
                                                     interactive=False, format="png", elem_id="confusion",
                                                     buttons=["download"])
                    with gr.Column(scale=2):
                        with gr.Row():
                            true_choice = gr.Dropdown(names, value=start_confusion[1], label="true label")
                            predicted_choice = gr.Dropdown(names, value=start_confusion[2], label="predicted")
                        pair_text = gr.Markdown(start_confusion[4], elem_id="pair-text")
                        pair_gallery = gr.Gallery(start_confusion[3], label="these test images", columns=4,
                                                  height=420, allow_preview=False, object_fit="contain",
                                                  elem_id="pair-gallery")

            with gr.Tab("4 · Worst losses", id="worst"):
                gr.Markdown("The test images the model was most wrong about (highest loss first). Some are the model's "
                            "fault; some are odd or mislabelled digits a person would hesitate over too. "
                            "Click one to explain it in the Predict tab.")
                total = len(first.tensors["gallery_labels"])
                worst_count = gr.Slider(1, total, value=min(32, total), step=1, label="how many")
                worst_gallery = gr.Gallery(worst_items(first, min(32, total)), label="predicted / true / loss",
                                           columns=8, height="auto", allow_preview=False, object_fit="contain",
                                           elem_id="worst")

            with gr.Tab("5 · Position embeddings", id="positions"):
                gr.Markdown("Attention alone does not know where a word came from, so each position gets a vector "
                            "added to its tile. Each small map shows how similar one position's vector is to all the "
                            "others — a bright patch around its own place means the model learned the 2-D layout by "
                            "itself (ViT paper, figure 7); on the right, the raw vectors as the notebook showed them.")
                positional_text = gr.Markdown(start_positional[2])
                with gr.Row():
                    positional_grid = gr.Image(start_positional[0], label="similarity", show_label=False,
                                               interactive=False, format="png", buttons=["fullscreen", "download"],
                                               elem_id="positions")
                    positional_raw = gr.Image(start_positional[1], label="raw embeddings", show_label=False,
                                              interactive=False, format="png", buttons=["fullscreen", "download"])

            with gr.Tab("6 · Attention by label", id="labels"):
                gr.Markdown("The median attention of every layer and head over the test images of each label stored "
                            "with the model (20 correctly read ones per label); in a full matrix, row = the token that "
                            "looks and column = the token it looks at, CLS first. The notebook's author saw few "
                            "differences between labels: tick *difference* to subtract their average and keep only "
                            "what is specific to each label.")
                with gr.Row():
                    label_choice = gr.CheckboxGroup(names, value=start_labels, label="labels", scale=3)
                    label_view = gr.Radio(list(LABEL_VIEWS), value=list(LABEL_VIEWS)[0], label="show", scale=2)
                    label_difference = gr.Checkbox(False, label="difference from the average of these labels",
                                                   scale=1)
                label_picture = gr.Image(label_attention_cached(first.name, tuple(names.index(n) for n in start_labels),
                                                                "matrix", False),
                                         label="median attention", show_label=False, interactive=False, format="png",
                                         buttons=["fullscreen", "download"], elem_id="label-attention")

            with gr.Tab("About the model", id="about"):
                gr.Markdown("How this model was built and trained, epoch by epoch. Training is measured on randomly "
                            "rotated, shifted and zoomed digits (and its loss includes label smoothing), which is why "
                            "it can look worse than the test.")
                about_curve = gr.Image(start_about[0], label="training history", show_label=False, interactive=False,
                                       format="png", elem_id="training")
                about_text = gr.Markdown(start_about[1])
                gr.Markdown("**From a program**: `/predict` takes one picture file and returns the label confidences.\n"
                            "```python\nfrom gradio_client import Client, handle_file\n"
                            "Client(\"http://127.0.0.1:7860/\")"
                            ".predict(handle_file(\"digit.png\"), api_name=\"/predict\")"
                            "\n```\nAn optional second argument names the model.")

        # ---- event wiring ----
        predict_outputs = [status, label, seen, attention_picture, evidence_picture]
        private = dict(api_visibility="private")
        model_choice.change(switch_header, model_choice, [model_info, notice], **private)
        model_choice.change(rerun, [current, model_choice], predict_outputs, **private)
        model_choice.change(switch_predict_examples, model_choice, examples, **private)
        model_choice.change(switch_tiling, [model_choice, tiling_source, current],
                            [tiling_cut, tiling_size, tiling_picture, tiling_text, tiling_code], **private)
        model_choice.change(switch_confusion, model_choice,
                            [confusion_picture, true_choice, predicted_choice, pair_gallery, pair_text], **private)
        model_choice.change(switch_worst, [model_choice, worst_count], [worst_count, worst_gallery], **private)
        model_choice.change(switch_positional, model_choice, [positional_grid, positional_raw, positional_text],
                            **private)
        model_choice.change(show_label_attention, [model_choice, label_choice, label_view, label_difference],
                            label_picture, **private)
        model_choice.change(switch_about, model_choice, [about_curve, about_text], **private)

        tiling_inputs = [model_choice, tiling_source, tiling_cut, tiling_size, current]
        tiling_cut.input(size_label, tiling_cut, tiling_size, **private)
        # One listener for the controls and the tab (whose digit may have changed on the Predict tab): always_last
        # runs it once more with the final choices, so two quick clicks cannot leave picture, text and code from
        # different calls, as separate listeners running in parallel did. It shares one concurrency group.
        gr.on([tiling_source.input, tiling_cut.input, tiling_size.input, tiling_tab.select], show_tiling,
              tiling_inputs, [tiling_picture, tiling_text, tiling_code], trigger_mode="always_last", **private)

        demo.load(None, js=PICK_BRUSH)
        predict_tab.select(None, js=PICK_BRUSH)
        # Every stroke re-predicts; always_last drops the strokes that arrive while one is being explained.
        sketch.change(from_sketch, [sketch, model_choice], [current, *predict_outputs], trigger_mode="always_last",
                      show_progress="hidden", **private)
        upload.upload(predict, [upload, model_choice], label, api_name="predict", api_visibility="public") \
              .success(from_upload, [upload, model_choice], [current, *predict_outputs], **private)
        examples.select(from_examples, model_choice, [current, *predict_outputs], **private)

        true_choice.input(show_pair, [model_choice, true_choice, predicted_choice],
                          [confusion_picture, pair_gallery, pair_text], **private)
        predicted_choice.input(show_pair, [model_choice, true_choice, predicted_choice],
                               [confusion_picture, pair_gallery, pair_text], **private)
        confusion_picture.select(click_cell, model_choice, [true_choice, predicted_choice], **private) \
                         .then(show_pair, [model_choice, true_choice, predicted_choice],
                               [confusion_picture, pair_gallery, pair_text], **private)
        pair_gallery.select(from_pair, [model_choice, true_choice, predicted_choice],
                            [current, *predict_outputs, tabs], **private)

        worst_count.release(show_worst, [model_choice, worst_count], worst_gallery, **private)
        worst_gallery.select(from_worst, model_choice, [current, *predict_outputs, tabs], **private)

        for control in (label_choice, label_view, label_difference):
            control.input(show_label_attention, [model_choice, label_choice, label_view, label_difference],
                          label_picture, **private)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Serve the Vision Transformer explainer (a Gradio app).",
        epilog="Environment: GRADIO_SERVER_NAME and GRADIO_SERVER_PORT set the defaults of --host and --port; "
               f"{WEIGHTS_DIR_VARIABLE} the default of --weights-dir; VIT_MODELS names Hub repos to load "
               "(vit/hub.py), with the folders in weights/ as the fallback. No dataset is needed.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="address to listen on (default: $GRADIO_SERVER_NAME or 127.0.0.1; 0.0.0.0 for everyone)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                        help="port (default: $GRADIO_SERVER_PORT or 7860)")
    parser.add_argument("--weights-dir", type=Path, default=None,
                        help=f"folder of model folders (default: ${WEIGHTS_DIR_VARIABLE} or weights/)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    log = logging.getLogger("vit")  # where each model came from (vit.hub logs it), without gradio's chatter
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)
    torch.set_num_threads(1)  # measured: far faster than the default on 2 shared cores for models this small
    demo = build_demo(load_models(args.weights_dir))
    demo.queue(default_concurrency_limit=CONCURRENCY)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE, css=CSS, theme=THEME)


if __name__ == "__main__":
    main()
