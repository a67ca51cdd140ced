"""About the model: how it was built and trained, epoch by epoch, and how far to trust its answers."""

from dataclasses import asdict

import gradio as gr
import numpy as np

from vit.bundle import ModelBundle
from vit.card import budget_sentence, settings_table, taught_sentence, trust_summary
from vit.registry import bundle, cached

from . import images
from .glossary import term
from .shared import Context, TabWiring, model_summary, plural

SHOWN = ("cut", "tile_size", "embed_size", "num_layers", "num_heads", "mlp_size", "pos_embedding", "dropout")


# --- Views --------------------------------------------------------------------------------------------------

def about_view(model: ModelBundle) -> tuple[np.ndarray | None, np.ndarray | None, str, np.ndarray | None]:
    """The training curves (None for a taught model), the reliability diagram (None without one), a description
    of the model and the risk-coverage curve on the proxy sets (None where not measured); see show_about for their
    alt texts."""
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    evaluation = model.evaluation
    if evaluation.taught:
        return None, None, taught_view(model), None
    curve = plots.render(plots.training_figure(model.history))
    calibration = evaluation.calibration
    diagram = (plots.render(plots.reliability_figure(asdict(calibration.before), asdict(calibration.after)))
               if calibration else None)
    config = {key: value for key, value in model.model.config.items() if key in SHOWN}
    trained = ""
    if evaluation.training_seconds is not None:
        done = "Fine-tuned for another" if evaluation.fine_tuned else "Trained for"  # the history is the fine-tune's
        trained = (f"{done} {epochs_trained(model.history)} in {evaluation.training_seconds / 60:.1f} "
                   f"minutes on {evaluation.device or '?'}." + budget_sentence(evaluation)
                   + (f" The command: `{evaluation.command}`" if evaluation.command else ""))
    trust = ("**How far to trust it**\n\n" + trust_summary(evaluation) if calibration else
             "This folder has no calibration: its confidences are the raw softmax.")
    sets = evaluation.proxies
    selective = (plots.render(plots.risk_coverage_figure(sets.coverage, sets.risk, sets.accepted, sets.risk_accepted,
                                                         sets.aurc)) if sets else None)
    return curve, diagram, "\n\n".join([model_summary(model), trained, kept_weights(model), trust,
                                         settings_table(config, "architecture", with_keys=False)]), selective


def epochs_trained(history: list[dict]) -> str:
    """"14 epochs" for a run of whole epochs; "2.35 epochs" for one trained for a time (the Train tab's), whose
    history is reported every few seconds."""
    last = history[-1]["epoch"] if history else 0
    return plural(int(last), "epoch") if float(last).is_integer() else f"{last:.2f} epochs"


def taught_view(model: ModelBundle) -> str:
    """A taught model in words: no curve to draw (its head was fitted in one go) and no calibration to show."""
    config = {key: value for key, value in model.model.config.items() if key in SHOWN}
    return "\n\n".join([model_summary(model), taught_sentence(model.evaluation),
                         "It has no training curve (its head was fitted in one go, not epoch by epoch) and no "
                         "reliability diagram (a handful of drawings cannot calibrate a confidence).",
                         settings_table(config, "architecture", with_keys=False)])


def kept_weights(model: ModelBundle) -> str:
    """Why the curve's best epoch and the header's accuracy differ."""
    if any("val_accuracy" in record for record in model.history):
        return ("The curve follows the **validation split** (5,000 training images kept out of training); the "
                "weights kept are the last epoch's, not the best one's, and the accuracy in the header is theirs "
                "on the **test split**, which training never looks at.")
    return ("This folder was trained before the validation split existed: its curve follows the test split, "
            "and the weights kept are the last epoch's.")


def training_alt(history: list[dict]) -> str:
    """The training curves in words: how long, and where the held-out accuracy ended and peaked."""
    if not history:
        return "No training history is stored with this model."
    split = "val" if any("val_accuracy" in record for record in history) else "test"
    scored = [record for record in history if f"{split}_accuracy" in record]
    said = f"Training curves, loss and error rate per epoch, training and {'validation' if split == 'val' else 'test'}"
    if not scored:
        return f"{said}: {plural(len(history), 'epoch')}."
    best = max(scored, key=lambda record: record[f"{split}_accuracy"])
    last, top = scored[-1][f"{split}_accuracy"] * 100, best[f"{split}_accuracy"] * 100
    return (f"{said}: {plural(len(history), 'epoch')}, {'validation' if split == 'val' else 'test'} accuracy "
            f"{last:.2f} % at the end (best {top:.2f} % at epoch {best['epoch']}).")


def risk_coverage_alt(sets) -> str:
    return (f"Risk-coverage curve on the proxy sets, digits and non-digits together: answering the surest pictures "
            f"first, the share of wrong answers as more are answered; area {sets.aurc:.3f}. The app answers "
            f"{sets.accepted:.0%} of them, and {sets.risk_accepted:.0%} of those answers are wrong.")


def reliability_alt(calibration) -> str:
    return (f"Reliability diagrams, how often the model was right at each confidence, before and after dividing by "
            f"the temperature T = {calibration.temperature:.2f}: expected calibration error "
            f"{calibration.ece_before * 100:.1f} % before, {calibration.ece_after * 100:.1f} % after.")


@cached(maxsize=None)
def drawn(model_name: str):
    return about_view(bundle(model_name))


def show_about(model_name: str):
    """The three pictures, described, and the words."""
    model = bundle(model_name)
    curve, diagram, text, selective = drawn(model.name)
    calibration, sets = model.evaluation.calibration, model.evaluation.proxies
    return (images.described(curve, training_alt(model.history) if curve is not None else None),
            images.described(diagram, reliability_alt(calibration) if calibration else None), text,
            images.described(selective, risk_coverage_alt(sets) if sets else None))


LOCAL = "http://127.0.0.1:7860/"  # what `python app.py` serves, until the page says where it was opened


def program_words(address: str) -> str:
    """How a program calls this app at `address` (the server's root, ending in /): gradio_client and MCP."""
    return ("**From a program**: `/predict` takes one picture file and returns the confidence of every class.\n"
            f"```python\nfrom gradio_client import Client, handle_file\nClient(\"{address}\").predict("
            "handle_file(\"digit.png\"), api_name=\"/predict\")\n```\nAn optional second argument names the model; "
            "`/explain` takes the same and returns every number behind the pictures (attention of every block and "
            f"head, the logit lens, rollout, saliency, occlusion). The app is an {term('MCP')} server too: "
            f"`{address}gradio_api/mcp/`.")


def program_for(request: gr.Request) -> str:
    """program_words for the address the visitor opened the page at (behind a proxy such as a Space's, the one it
    forwards)."""
    headers = request.headers
    host = headers.get("x-forwarded-host") or headers.get("host")
    if not host:
        return program_words(LOCAL)
    return program_words(f"{headers.get('x-forwarded-proto') or request.request.url.scheme}://{host}/")


# --- Layout and wiring --------------------------------------------------------------------------------------

def build(context: Context, first: ModelBundle) -> TabWiring:
    with gr.Tab("About the model", id="about") as tab:
        gr.Markdown(f"How this model was built and trained, {term('epoch')} by epoch. Training is measured on "
                    f"{term('augmentation', 'randomly rotated, shifted, zoomed, thickened, bent or mirrored pictures')}"
                    f", as its recipe says (and its loss includes {term('label smoothing')}), which is why it can look "
                    f"worse than the {term('validation split')}. Under the curves: how far to trust its confidence "
                    f"({term('ECE', 'expected calibration error')}), the {term('reliability diagram')}, and how often "
                    f"it is wrong on pictures people bring as it answers more of them ({term('risk-coverage curve')}).")
        curve = images.output_image("training history", "training", wide=True, chart=True)
        text = gr.Markdown()
        diagram = images.output_image("reliability", "reliability", wide=True, chart=True)
        selective = images.output_image("risk and coverage", "risk-coverage", wide=True, chart=True)
        program = gr.Markdown(program_words(LOCAL))
    shown = [curve, diagram, text, selective]
    tab.select(show_about, context.model_choice, shown, api_visibility="private")
    tab.select(program_for, None, program, queue=False, show_progress="hidden", api_visibility="private")
    return TabWiring("about", tab, show_about, [], shown, lazy=True)
