"""Train it yourself: the learner chooses the data, the cut, the positions and the model's size and a time budget,
and watches a Vision Transformer learn (vit.live runs it in its own process); the model then joins their menu only,
every tab explains it, and its folder can be downloaded.

A Space is two cores shared by every visitor: one run at a time (the others wait in the queue, their place shown),
on one thread in its own process, so the other visitors' strokes are still read on the other core.
"""

import html

import gradio as gr
import numpy as np

from vit import live, pictures

from . import images
from .glossary import term
from .shared import Context, TabWiring, menu_with, unused_label, zipped

CUT_NAMES = {"tiles": "tiles", "horizontal strips": "horizontal-strips", "vertical strips": "vertical-strips"}
DATA_NAMES = {"MNIST digits": "mnist", "Fashion-MNIST garments": "fashion-mnist"}
_running: dict[str, live.Run] = {}  # by session: the run a visitor's Stop button or leaving ends


# --- Views --------------------------------------------------------------------------------------------------

def status(text: str, fraction: float | None = None) -> str:
    """The progress bar (while it trains) and a sentence."""
    bar = (f'<progress value="{fraction:.3f}" max="1" aria-label="training progress">{fraction:.0%}</progress>'
           if fraction is not None else "")
    return f'<div class="train-status">{bar}<p>{text}</p></div>'


def curve(history: list[dict], budget: float) -> dict:
    from vit import plots  # matplotlib loads with the first figure, not at start-up
    last = history[-1]
    alt = (f"Training loss and validation accuracy against seconds: after {last['seconds']:.0f} s of {budget:.0f} s "
           f"the loss is {last['train_loss']:.3f} and the validation accuracy {100 * last['val_accuracy']:.1f} %.")
    return images.described(plots.render(plots.live_figure(history, budget)), alt)


def similarity(values: list | None, grid: tuple[int, int]) -> dict:
    if values is None:
        return images.described(None, None)
    from vit import plots
    matrix = np.asarray(values)
    neighbours = _neighbour_similarity(matrix, grid)
    alt = (f"Position embedding similarity, {matrix.shape[0]} positions: neighbouring positions' vectors have a mean "
           f"cosine similarity of {neighbours:.2f}; a learned layout shows as a bright patch around each position.")
    return images.described(plots.render(plots.positional_similarity_figure(matrix, grid)), alt)


def _neighbour_similarity(matrix: np.ndarray, grid: tuple[int, int]) -> float:
    """Mean similarity of each position with the next one in its row or column: how much layout was learned."""
    rows, columns = grid
    index = np.arange(rows * columns).reshape(rows, columns)
    pairs = [*zip(index[:, :-1].ravel(), index[:, 1:].ravel()), *zip(index[:-1].ravel(), index[1:].ravel())]
    return float(np.mean([matrix[a, b] for a, b in pairs]))


def attention(values: list, picture: np.ndarray, label: str) -> dict:
    heat = pictures.heatmap(np.asarray(values), picture, "inferno", 0, 1)
    shown = pictures.stack([pictures.titled(heat, f"CLS's attention, last block (a test {label})"),
                            pictures.colour_bar("inferno", 0, 1, heat.shape[1],
                                                "share of CLS's attention, ÷ its maximum")])
    peak = np.unravel_index(int(np.argmax(values)), np.asarray(values).shape)
    alt = (f"CLS's attention in the last block on a test {label}, averaged over the heads: it looks most at the piece "
           f"in row {peak[0] + 1}, column {peak[1] + 1}.")
    return images.described(shown, alt)


def finished(event: dict, label: str) -> str:
    how = "Stopped" if event["stopped"] else "Done"
    return (f"{how} after {event['seconds']:.0f} s: it saw {event['pictures']:,} pictures ({event['epoch']:.1f} "
            f"epochs) and reads <strong>{100 * event['test_accuracy']:.2f} %</strong> of the 10,000 test pictures "
            f"right (validation {100 * event['val_accuracy']:.1f} %). It is in your model menu as "
            f"<em>{html.escape(label)}</em>, chosen now: every tab explains it. Nobody else sees it; it is kept for an "
            f"hour after you last use it.")


# --- Handlers ------------------------------------------------------------------------------------------------

def choices_from(data: str, cut: str, size: str, positions: str, blocks: float, heads: str, width: str,
                 seconds: float) -> live.Choices:
    return live.Choices(dataset=DATA_NAMES.get(data, data), cut=CUT_NAMES.get(cut, cut), tile_size=int(size),
                        positions=positions, blocks=int(blocks), heads=int(heads), width=int(width),
                        seconds=float(seconds))


def watch(data: str, cut: str, size: str, positions: str, blocks: float, heads: str, width: str, seconds: float,
          own: list, request: gr.Request):
    """Stream the run: (status, curve, similarity, attention, download, own models, menu) at each report."""
    choices = choices_from(data, cut, size, positions, blocks, heads, width, seconds)
    if problem := choices.problem():
        yield status(problem), *[gr.skip()] * 6
        return
    run = _running[request.session_hash] = live.start(choices)
    try:
        for reports in run.follow():
            yield shown_for(reports, run, own)
    finally:
        _running.pop(request.session_hash, None)


def shown_for(reports: live.Reports, run: live.Run, own: list) -> tuple:
    """The tab's outputs for what the run has reported so far: the newest progress is drawn, on the whole curve."""
    skip, budget = [gr.skip()] * 6, run.choices.seconds
    if reports.failed:
        return status(reports.last["message"]), *skip
    if reports.done:
        return done(reports, run, own)
    if not reports.progress:
        return status(f"Training a model of {reports.started['parameters']:,} parameters…", 0.0), *skip
    newest = reports.progress[-1]
    return status(progress_words(newest, budget), newest["seconds"] / budget), *drawn(reports, budget), *skip[:3]


def drawn(reports: live.Reports, budget: float) -> tuple:
    """The curve so far and the maps of its newest point (a progress report, or the end once the run is done)."""
    points, started = reports.curve(), reports.started
    newest = points[-1]
    return (curve(points, budget), similarity(newest["similarity"], tuple(started["grid"])),
            attention(newest["attention"], np.asarray(started["picture"]), started["label"]))


def progress_words(event: dict, budget: float) -> str:
    return (f"Training: {event['seconds']:.0f} s of {budget:.0f} s · {event['pictures']:,} pictures seen "
            f"({event['epoch']:.1f} epochs) · validation accuracy {100 * event['val_accuracy']:.1f} %")


def done(reports: live.Reports, run: live.Run, own: list) -> tuple:
    """The run's model joins the visitor's menu (chosen), its folder is offered as a zip, and the curve and the maps
    are drawn once more for the model as kept, so they agree with the sentence above them."""
    try:
        model = live.keep(run)
    except ValueError as error:
        return status(str(error)), *[gr.skip()] * 6
    event = reports.last
    label = unused_label(f"{run.choices.label()} · {100 * event['test_accuracy']:.1f} %", own)
    own, menu = menu_with(own, label, model.name)
    return (status(finished(event, label)), *drawn(reports, run.choices.seconds),
            gr.DownloadButton(value=zipped(run.folder), visible=True), own, menu)


def stop(request: gr.Request):
    """Stop: the visitor's run ends now and keeps what it learned; the sentence says so at once, since measuring
    the model on the test pictures takes a few seconds more."""
    run = _running.get(request.session_hash)
    if run is None:
        return gr.skip()
    run.stop()
    return status("Stopping: the model is measured on the test pictures, then it joins your menu…")


def leave(request: gr.Request) -> None:
    """The visitor left: their run, if any, is ended (nothing is kept)."""
    run = _running.pop(request.session_hash, None)
    if run is not None:
        run.kill()


# --- Layout ------------------------------------------------------------------------------------------------------

def build(context: Context, first) -> TabWiring:
    defaults = live.Choices()
    with gr.Tab("10 · Train it yourself", id="train") as tab:
        gr.Markdown(f"Choose the pictures ({term('MNIST')} digits or {term('Fashion-MNIST')} garments), how to cut "
                    "them and how big a model to build, press **Train**, and watch it learn: "
                    f"the {term('loss')} falling, the validation accuracy rising, the "
                    f"{term('positional embedding', 'position vectors')} "
                    "finding the layout and CLS learning where to look. The model then joins *your* model menu (nobody "
                    "else's) and every tab explains it. Runs wait their turn: one trains at a time.")
        with gr.Row():
            with gr.Column(scale=1, min_width=260):
                data = gr.Radio(list(DATA_NAMES), value="MNIST digits", label="data", elem_id="train-data")
                cut = gr.Radio(list(CUT_NAMES), value="tiles", label="cut into", elem_id="train-cut")
                size = gr.Radio(["2", "4", "7", "14"], value=str(defaults.tile_size), elem_id="train-size",
                                label="tile side or strip height/width (pixels)")
                positions = gr.Radio(["learned", "sinusoidal", "none"], value=defaults.positions, label="positions",
                                     elem_id="train-positions")
                blocks = gr.Slider(*live.BLOCKS, value=defaults.blocks, step=1, label="blocks", elem_id="train-blocks")
                heads = gr.Radio(["1", "2", "4", "8"], value=str(defaults.heads), label="heads per block",
                                 elem_id="train-heads")
                width = gr.Radio(["16", "32", "64", "128"], value=str(defaults.width), elem_id="train-width",
                                 label="width (each token's size)")
                seconds = gr.Slider(*live.SECONDS, value=defaults.seconds, step=5, label="seconds of training",
                                    elem_id="train-seconds")
            with gr.Column(scale=2):
                # the buttons and the progress head the curves' column: beside the choices on a wide screen, right
                # under them on a phone, and in sight with the curves on both
                with gr.Row():
                    start = gr.Button("Train", variant="primary", elem_id="train-start")
                    halt = gr.Button("Stop", elem_id="train-stop")
                state = gr.HTML(status("Choose, then press Train."), elem_id="train-status")
                chart = images.output_image("training curves", "train-curve", wide=True, chart=True)
                with gr.Row():
                    layout = images.output_image("position similarity", "train-positions", wide=True)
                    looks = images.output_image("CLS attention", "train-attention")
                download = gr.DownloadButton("Download the model folder", visible=False, elem_id="train-download")
    inputs = [data, cut, size, positions, blocks, heads, width, seconds, context.own]
    outputs = [state, chart, layout, looks, download, context.own, context.model_choice]
    start.click(lambda: gr.DownloadButton(visible=False), None, download, queue=False, api_visibility="private")
    start.click(watch, inputs, outputs, concurrency_limit=live.RUNS_AT_ONCE, concurrency_id="training",
                show_progress="minimal", show_progress_on=[state], api_visibility="private")
    halt.click(stop, None, state, queue=False, api_visibility="private")
    context.demo.unload(leave)
    return TabWiring("train", tab, lambda model_name: (), [], [])
