"""The app's public API: `/predict` and `/explain`, and `/train`, for programs (gradio_client, plain HTTP) and MCP
clients alike.

One contract: a picture that can be read gets every class's calibrated confidence and a verdict on whether
it looks like a digit at all; anything else (no file, not a picture, damaged, too large, blank) raises
gr.Error with a sentence saying what to send instead, which gradio_client raises as AppError and an MCP
client receives as an error result. Nothing in between: no partial answer, no guess for an empty picture.
A picture that is readable but does not look like a digit (noise, a photo) is answered with "label": null
and the reason, not with a digit. `/train` trains a model for the caller alone (vit.live), whose name the other two
then accept.
"""

import inspect

import gradio as gr
import torch

from vit import live
from vit.registry import bundle, is_known, model_names
from vit.bundle import ModelBundle
from vit.numbers import explanation_numbers
from vit.preprocess import ImageError, open_image, to_model_input

# /predict calls running at once: cheap, and their forward passes are shared (vit.batching), so many run together
# in a group of their own, never waiting behind the Predict tab's maps or a training.
PREDICTS_AT_ONCE = 16


def refusal(message: str) -> gr.Error:
    """The error a caller receives for a request the app refuses. A refusal is an answer, not a fault of the server:
    its log keeps tracebacks for faults, so a class sending blank pictures does not fill it with them."""
    return gr.Error(message, print_exception=False)


def predict(image: str | None, model: str | None = None) -> dict:
    """Read one handwritten digit from a picture with a Vision Transformer and give every class's confidence.

    Any picture works: dark ink on light paper or the reverse, any size, with or without transparency; it is
    cropped, scaled into 20×20 and centred like an MNIST digit. A blank picture or a file that is not a
    picture is refused with an error that says why. Confidences are calibrated (temperature scaling on a
    validation split): 90 % means right about 9 times in 10.

    Args:
        image: the picture of one digit (PNG or JPEG): a file, an http(s) URL or a data:image/png;base64,... URL.
        model: which model answers, e.g. "mnist" or "mnist-tiny"; the app's default model when left out.
    Returns:
        {"answer": "sure" (a class is claimed), "unsure" (its top confidence is under 50 %: it names the two classes
         it hesitates between) or "refused" (the picture does not look like a digit),
         "sentence": what the app's Predict tab says, e.g. "reads 7 (99.2 %)" or "unsure between 4 (45 %) and 9 (38 %)",
         "label": the class claimed, or null when unsure or refused,
         "candidates": the classes the sentence names,
         "not_a_digit": null, or the sentence saying why it does not look like one,
         "scores": {"evidence", "ink_cover"}: what that verdict is based on,
         "confidences": [{"label": class, "confidence": probability}, ...] every class, most likely first}.
    """
    chosen, model_input = read_input(image, model)
    reading = chosen.read(model_input)
    ranked = sorted(zip(chosen.class_names, reading.probabilities.tolist()), key=lambda pair: -pair[1])
    verdict, said = reading.verdict, reading.answer(chosen.class_names)
    return {"answer": said.kind, "sentence": said.sentence, "label": said.label, "candidates": list(said.candidates),
            "not_a_digit": verdict.message if verdict else None,
            "scores": verdict.scores if verdict else None,
            "confidences": [{"label": name, "confidence": p} for name, p in ranked]}


def explain(image: str | None, model: str | None = None) -> dict:
    """Every number behind the app's pictures for one picture of a digit: the answer, the attention of every block
    and head, the logit lens, attention rollout, saliency, occlusion, class-specific relevance and integrated
    gradients, as JSON arrays for programs and papers.

    The picture is read as /predict reads it (and refused with the same errors). Tokens are numbered 0 = CLS,
    then the tiles in reading order; each array comes with a "shape" string naming its axes.

    Args:
        image: the picture of one digit (PNG or JPEG): a file, an http(s) URL or a data:image/png;base64,... URL.
        model: which model answers, e.g. "mnist" or "mnist-tiny"; the app's default model when left out.
    Returns:
        {"model", "class_names", "label" (null when it does not look like a digit), "not_a_digit", "scores",
         "probabilities": [classes] calibrated, equal to /predict's, "temperature", "logits": [classes],
         "input": [28][28] what the model reads, "tile_size", "cut" (tiles or strips),
         "attention": {"values": [layers][heads][tokens][tokens]}, "cls_attention": {"values": [layers][heads][g][g]},
         "logit_lens": {"logits", "probabilities": [layers + 1][classes]: CLS read out before block 1 and after each},
         "rollout": {"values": [g][g]}, "saliency": {"values": [28][28]},
         "occlusion": {"one_tile": [g][g], "two_by_two": [g][g]}, "relevance": {"values": [g][g]},
         "integrated_gradients": {"values": [g][g]}}, [g][g] = the pieces' rows and columns (7 × 7 for tiles of 4,
         14 × 1 for horizontal strips 2 rows high); maps of one class are for the most
         likely class.
    """
    chosen, model_input = read_input(image, model)
    return explanation_numbers(chosen, model_input.numpy(), "your picture")


DEFAULTS = live.Choices()  # the Train tab's choices are /train's defaults, as its signature shows them to callers


def train(dataset: str = DEFAULTS.dataset, cut: str = DEFAULTS.cut, tile_size: int = DEFAULTS.tile_size,
          positions: str = DEFAULTS.positions, blocks: int = DEFAULTS.blocks, heads: int = DEFAULTS.heads,
          width: int = DEFAULTS.width, seconds: float = DEFAULTS.seconds) -> dict:
    """Train a small Vision Transformer for a time budget and keep it for you: pass the returned model name to /predict
    and /explain. One training runs at a time (others wait their turn), on one CPU thread.

    Args:
        dataset: "mnist" (digits) or "fashion-mnist" (garments).
        cut: "tiles", "horizontal-strips" or "vertical-strips": what one word of the picture is.
        tile_size: a tile's side, or a strip's height or width, in pixels: 2, 4, 7 or 14 (a divisor of 28).
        positions: "learned", "sinusoidal" or "none": how each word is told where it came from.
        blocks: transformer blocks, 1 to 6.
        heads: attention heads per block, 1 to 8; they must divide the width.
        width: each token's size, 16 to 128 (the MLP is twice as wide).
        seconds: the training time, 10 to 120 (reading the data and measuring the model add a few seconds).
    Returns:
        {"model": the name to pass as /predict's and /explain's model: kept for an hour after its last use, known
         only to whoever holds it, "test_accuracy": on the 10,000 test pictures, "val_accuracy": on the 5,000
         validation pictures kept out of training, "seconds", "pictures": pictures seen, "epochs", "parameters",
         "stopped": false, "curve": [{"seconds", "pictures", "epoch", "train_loss", "val_accuracy"}, ...] every few
         seconds, the last at the end}. A choice that cannot train is refused with an error saying why.
    """
    choices = live.Choices(dataset=dataset, cut=cut, tile_size=int(tile_size), positions=positions, blocks=int(blocks),
                           heads=int(heads), width=int(width), seconds=float(seconds))
    if problem := choices.problem():
        raise refusal(problem)
    run = live.start(choices)
    reports = run.ended()
    if reports.failed:
        raise gr.Error(reports.last["message"])  # a run that failed: a fault, its traceback kept
    try:
        model = live.keep(run)
    except ValueError as error:
        raise refusal(str(error)) from None
    done = reports.last
    return {"model": model.name, "test_accuracy": done["test_accuracy"], "val_accuracy": done["val_accuracy"],
            "seconds": done["seconds"], "pictures": done["pictures"], "epochs": done["epoch"],
            "parameters": reports.started.get("parameters"), "stopped": done["stopped"],
            "curve": [{k: report[k] for k in ("seconds", "pictures", "epoch", "train_loss", "val_accuracy")}
                      for report in reports.curve()]}


def described(fn) -> str:
    """An endpoint's description for the API page and MCP clients: its docstring's opening and its Returns section,
    lines joined by spaces. Left to gradio, the Returns lines are joined by commas: a sentence wrapped in the middle
    reads "known, only to"."""
    text = inspect.getdoc(fn)
    opening, _, rest = text.partition("\nArgs:")
    returns = rest.partition("Returns:")[2]
    return " ".join(opening.split()) + " Returns: " + " ".join(returns.split())


def read_input(image: str | None, model: str | None) -> tuple[ModelBundle, torch.Tensor]:
    """The model asked for and the picture as its 28×28 input, or gr.Error saying what to send instead."""
    if not image:
        raise refusal("Send a picture file (PNG or JPEG) of a digit.")
    if model and not is_known(model):
        raise refusal(f"There is no model {model!r}; choose one of {', '.join(model_names())}.")
    try:
        chosen = bundle(model)
        return chosen, to_model_input(open_image(image), chosen.framing)
    except ImageError as error:
        raise refusal(str(error)) from None


def build(default_model: str) -> None:
    """The endpoints, inside the app's Blocks: hidden components and a button no visitor sees, so the endpoint
    runs only when a program calls it (gradio checks and stores the uploaded file as for any File input)."""
    with gr.Group(visible=False):
        image = gr.File(file_types=["image"], type="filepath", label="image")
        # free text, not the menu's names: a model one caller trained (/train) is theirs alone, and a dropdown's
        # choices become the MCP schema's enum, which would refuse that name before read_input sees it
        model = gr.Textbox(default_model, label="model")
        # each endpoint's result named for what it holds (the API page and view_api show these names)
        answer, numbers, trained = gr.JSON(label="answer"), gr.JSON(label="numbers"), gr.JSON(label="trained model")
        call, call_explain, call_train = gr.Button("predict"), gr.Button("explain"), gr.Button("train")
        training = training_inputs()
    call.click(predict, [image, model], answer, api_name="predict", api_visibility="public", show_progress="hidden",
               concurrency_limit=PREDICTS_AT_ONCE, concurrency_id="predict", api_description=described(predict))
    call_explain.click(explain, [image, model], numbers, api_name="explain", api_visibility="public",
                       show_progress="hidden", api_description=described(explain))
    call_train.click(train, training, trained, api_name="train", api_visibility="public", show_progress="hidden",
                     concurrency_limit=live.RUNS_AT_ONCE, concurrency_id="training", api_description=described(train))


def training_inputs() -> list:
    """/train's parameters, with vit.live's default choices."""
    return [gr.Textbox(DEFAULTS.dataset, label="dataset"), gr.Textbox(DEFAULTS.cut, label="cut"),
            gr.Number(DEFAULTS.tile_size, label="tile_size", precision=0),
            gr.Textbox(DEFAULTS.positions, label="positions"),
            gr.Number(DEFAULTS.blocks, label="blocks", precision=0),
            gr.Number(DEFAULTS.heads, label="heads", precision=0),
            gr.Number(DEFAULTS.width, label="width", precision=0),
            gr.Number(DEFAULTS.seconds, label="seconds")]
