"""About the model: how it was built and trained, epoch by epoch, and how far to trust its answers."""

import gradio as gr
import numpy as np

from vit.bundle import SETTING_NAMES, ModelBundle
from vit.training import budget_sentence

from .shared import Context, TabWiring, bundle, cached, figure, model_summary, plural

SHOWN = ("cut", "tile_size", "embed_size", "num_layers", "num_heads", "mlp_size", "pos_embedding", "dropout")


# --- Views --------------------------------------------------------------------------------------------------

def about_view(model: ModelBundle) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The training curves, the reliability diagram (None without one) and a description of the model."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    curve = plots.render(plots.training_figure(model.history))
    calibration = model.evaluation.get("calibration")
    diagram = plots.render(plots.reliability_figure(calibration["before"], calibration["after"])) if calibration else None
    config = {key: value for key, value in model.model.config.items() if key in SHOWN}
    # one setting a row, as in the model card: eight columns broke their headings mid-word at desktop width
    table = "| architecture | value |\n| --- | --- |\n" + "\n".join(
        f"| {SETTING_NAMES.get(key, key)} | {value} |" for key, value in config.items())
    evaluation, trained = model.evaluation, ""
    if "training_seconds" in evaluation:
        trained = (f"Trained for {plural(len(model.history), 'epoch')} in "
                   f"{evaluation['training_seconds'] / 60:.1f} minutes on {evaluation.get('device', '?')}"
                   + (f" with `{evaluation['command']}`" if evaluation.get("command") else "") + "."
                   + budget_sentence(evaluation.get("pacing")))
    return curve, diagram, "\n\n".join([model_summary(model), trained, kept_weights(model), trust(model), table])


def kept_weights(model: ModelBundle) -> str:
    """Why the curve's best epoch and the header's accuracy differ."""
    if any("val_accuracy" in record for record in model.history):
        return ("The curve follows the **validation split** (5,000 training images kept out of training); the "
                "weights kept are the last epoch's, not the best one's, and the accuracy in the header is theirs "
                "on the **test split**, which training never looks at.")
    return ("This folder was trained before the validation split existed: its curve follows the test split, "
            "and the weights kept are the last epoch's.")


def trust(model: ModelBundle) -> str:
    """Calibration error, refusals and the out-of-MNIST figures, in words."""
    evaluation = model.evaluation
    calibration, refusals = evaluation.get("calibration"), evaluation.get("not_a_digit")
    if not calibration:
        return "This folder has no calibration: its confidences are the raw softmax."
    lines = [f"**Calibration.** Logits are divided by T = {calibration['temperature']:.3f}, fitted on the "
             f"validation split. Expected calibration error on the test set: **{calibration['ece_before'] * 100:.2f} % "
             f"before, {calibration['ece_after'] * 100:.2f} % after** (15 bins; the diagram below)."]
    kinds = ", ".join(f"{kind} {share:.0%}" for kind, share in refusals["others_refused"].items())
    lines.append(f"**Not a {model.noun}.** Refused: {refusals['test_refused'] * 100:.2f} % of test {model.noun}s, "
                 f"{refusals['drawn_test_refused'] * 100:.2f} % of test {model.noun}s drawn on a large page, and of "
                 f"pictures that are not {model.noun}s: {kinds}.")
    others = evaluation.get("other_writers")
    if others:
        lines.append(f"**{model.noun.capitalize()}s from outside MNIST.** {others['typed'] * 100:.1f} % of "
                     f"{others['typed_count']} typed in {len(others['fonts'])} fonts, {others['drawn'] * 100:.1f} % of "
                     f"{others['drawn_count']} drawn in pen styles MNIST rarely has (flagged 1s, barred 7s), thin "
                     f"to thick.")
    return "\n\n".join(lines)


@cached(maxsize=None)
def show_about(model_name: str):
    return about_view(bundle(model_name))


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    with gr.Tab("About the model", id="about") as tab:
        gr.Markdown("How this model was built and trained, epoch by epoch. Training is measured on randomly "
                    "rotated, shifted, zoomed, thickened, bent or mirrored pictures, as its recipe says (and its loss "
                    "includes label smoothing), "
                    "which is why it can look worse than the validation split.")
        curve = figure("training history", "training")
        text = gr.Markdown()
        diagram = figure("reliability", "reliability")
        gr.Markdown("**From a program**: `/predict` takes one picture file and returns the confidence of every "
                    "class.\n```python\nfrom gradio_client import Client, handle_file\n"
                    "Client(\"http://127.0.0.1:7860/\").predict(handle_file(\"digit.png\"), api_name=\"/predict\")"
                    "\n```\nAn optional second argument names the model; `/explain` takes the same and returns every number "
                    "behind the pictures (attention of every layer and head, the logit lens, rollout, saliency, "
                    "occlusion). The app is an MCP server too: "
                    "`http://127.0.0.1:7860/gradio_api/mcp/`.")
    tab.select(show_about, context.model_choice, [curve, diagram, text], api_visibility="private")
    return TabWiring("about", tab, show_about, [], [curve, diagram, text], lazy=True)
