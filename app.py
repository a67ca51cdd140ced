"""The Vision Transformer explainer: a Gradio app that shows how a ViT reads MNIST digits as words.

    python app.py                      # http://127.0.0.1:7860, models from weights/ (or the Hub, VIT_MODELS)
    python app.py --help               # host, port and weights folder options

This file holds the header, the model menu, the list of tabs and main(); each tab is a module of tabs/,
the public /predict and /explain endpoints are api.py. The app is also an MCP server (its tools: the public
endpoints).
"""

import argparse
import functools
import logging
import os
import threading
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it: no calls home

import gradio as gr  # noqa: E402
import torch  # noqa: E402

import api  # noqa: E402
from tabs import build_tabs, glossary, lesson, link, pad_model, tiling  # noqa: E402
from tabs.picture import start_picture  # noqa: E402
from tabs.shared import ROOT, Context, TabWiring, model_summary  # noqa: E402
from vit import hub  # noqa: E402
from vit.bundle import ModelBundle  # noqa: E402
from vit.registry import bundle, use_models  # noqa: E402

WEIGHTS_DIR_VARIABLE = "VIT_WEIGHTS_DIR"
DEFAULT_MODEL = "mnist"
# Events running at once. 2 cores, 1 torch thread per event: 4 lets a quick event (a stroke) pass a slow one
# (a tab's first figure) while keeping at most two per core, so no visitor waits long for another.
CONCURRENCY = 4
STATUS_SECONDS = 1.0  # how often a waiting visitor hears their place in the queue
MAX_FILE_SIZE = "20mb"
FIRST_TAB = "tiling"
# System fonts: the default theme fetches web fonts, which a machine without internet waits for. Colours darker than
# the default's where text sits on them or they are the text, for a contrast of at least 4.5:1 (WCAG AA): white on
# orange-700 (5.2:1), the selected tab's orange-700 on white, subdued text zinc-600 on white (7.7:1).
THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"],
                          font_mono=["ui-monospace", "monospace"]).set(
    button_primary_background_fill="*primary_700", button_primary_background_fill_hover="*primary_800",
    button_primary_border_color="*primary_700", color_accent="*primary_700", body_text_color_subdued="*neutral_600")
CSS = """
.lead { font-size: 1.02rem; }
.notice { border-left: 4px solid #f59e0b; padding-left: 0.6rem; }
#model-info p { margin: 0.15rem 0; }
/* Code colours (light mode) with a contrast of at least 4.5:1 on the code block's grey; the defaults are pastel */
body:not(.dark) .prose :is(.token.comment, .token.prolog, .token.doctype, .token.cdata) { color: #4b5563; }
body:not(.dark) .prose .token.punctuation { color: #52525b; }
body:not(.dark) .prose :is(.token.string, .token.char, .token.builtin, .token.selector, .token.attr-name,
                           .token.inserted) { color: #3f6212; }
body:not(.dark) .prose :is(.token.keyword, .token.atrule, .token.attr-value) { color: #075985; }
body:not(.dark) .prose :is(.token.function, .token.class-name) { color: #be123c; }
body:not(.dark) .prose :is(.token.regex, .token.important, .token.variable) { color: #9a3412; }
/* A picture's fullscreen and download buttons sit under it, never over its title or its top row */
.picture .image-container { display: flex; flex-direction: column; }
.picture .image-container > .icon-button-wrapper { position: static; order: 1; align-self: flex-end; margin-top: 4px; }
.gallery-container .grid-wrap > .icon-button-wrapper { position: static; justify-content: flex-end; background: none;
                                                        border: none; box-shadow: none; }
/* Dark mode: a chart (lines and bars on white, tabs.images chart=True) turns its lightness over and keeps its hues;
   maps, whose colours are a scale, keep their light ground */
.dark .chart img { filter: invert(0.88) hue-rotate(180deg); }
/* How it decides' step names are centred under their numbers: room at both ends, so the first and last are whole */
.stepper-container { padding: 0 3.5rem; }
/* A gallery's captions are its pictures' alt text; the words a sighted reader needs are drawn in the pictures */
.gallery-item .caption-label { display: none; }
/* Phone width: a figure keeps a legible size and scrolls sideways instead of shrinking to the screen; the box that
   scrolls holds the picture's buttons, so a keyboard reaches it */
@media (max-width: 640px) {
  .figure .image-container { overflow-x: auto; }
  .figure .image-container > button { justify-content: flex-start; }
  .figure .image-frame { justify-content: flex-start; }
  .figure img { min-width: 620px; max-width: none !important; }
  /* tables (the zoo, the walk's numbers) scroll sideways too, instead of wrapping a word per line */
  .prose table { display: block; overflow-x: auto; }
  .prose th, .prose td { white-space: nowrap; }
  /* code wraps instead (a line break in code is easier to follow than a sideways scroll) */
  .prose pre, .prose pre code { white-space: pre-wrap; overflow-wrap: anywhere; }
  /* galleries wrap onto more rows instead of hiding the columns that do not fit; the test pictures under the pad:
     all ten in two rows of five */
  .gallery-container .grid-container { grid-template-columns: repeat(auto-fill, minmax(72px, 1fr)) !important; }
  #examples .grid-container { grid-template-columns: repeat(5, minmax(0, 1fr)) !important; }
  /* a compact page (narrow margins: HEAD), header and tab bar, so that the Predict tab's pad is on the first screen */
  .column, .row { gap: 10px; }
  .lead h1 { font-size: 0.95rem; line-height: 1.25; margin: 0 0 0.2rem; }
  .lead p, #model-info p { font-size: 0.8rem; line-height: 1.3; }
  #model-choice { padding: 4px 8px !important; }
  #model-choice .wrap-inner { padding-top: 0; padding-bottom: 0; }
  [role="tablist"] { --size-8: 26px; }  /* the height of a row of tabs (and of the lines between the rows) */
  .tab-wrapper { padding-bottom: 0; margin-bottom: 4px; }
  [role="tab"] { padding: 0 6px !important; font-size: 0.8rem; }
  #pad .pad { max-width: 300px; margin: 0 auto; }
}
"""
# Rules for the page around the app, which gradio's CSS (prefixed with the app's own container) cannot reach.
HEAD = """<style>
@media (max-width: 640px) { .gradio-container .main.app { padding: 8px 10px; } }  /* phone: narrow margins */
</style>"""
# After every change to the page (once a frame): a table that scrolls sideways (CSS above, on a phone) takes focus,
# so that a keyboard can scroll it; a gallery's thumbnail is named by its picture's alt text (the item's caption)
# instead of gradio's "Thumbnail 3 of 10"; a step of How it decides that a phone shows as a bare tick is named.
JS = """() => {
  let queued = false;
  const tidy = () => {
    queued = false;
    for (const table of document.querySelectorAll('.prose table')) {
      if (table.scrollWidth > table.clientWidth + 1) table.tabIndex = 0;
      else table.removeAttribute('tabindex');
    }
    for (const thumbnail of document.querySelectorAll('.thumbnail-item')) {
      const alt = thumbnail.querySelector('img')?.alt;
      if (alt && thumbnail.getAttribute('aria-label') !== alt) thumbnail.setAttribute('aria-label', alt);
    }
    for (const step of document.querySelectorAll('.step-button')) {
      if (step.textContent.trim()) step.removeAttribute('aria-label');
      else step.setAttribute('aria-label', `step ${Number(step.dataset.tabId) + 1}, done`);
    }
  };
  const queue = () => { if (!queued) { queued = true; requestAnimationFrame(tidy); } };
  new MutationObserver(queue).observe(document.body, {childList: true, subtree: true});
  addEventListener('resize', queue);
}"""


def load_models(weights_dir: str | Path | None = None) -> list[ModelBundle]:
    """Every model the app can show: Hub repos named in VIT_MODELS, falling back to the folders in weights_dir."""
    weights_dir = Path(weights_dir or os.environ.get(WEIGHTS_DIR_VARIABLE) or ROOT / "weights")
    bundles = hub.load_models(weights_dir=weights_dir)
    if not bundles:
        named = f"{hub.MODELS_VARIABLE} names none that loads and " if os.environ.get(hub.MODELS_VARIABLE) else ""
        raise SystemExit(f"no model to show: {named}{weights_dir} holds no model folder that loads (the log above says "
                         f"why each was left out); train one with `python train.py` or point --weights-dir at a "
                         f"folder of them")
    bundles.sort(key=lambda loaded: (loaded.name != DEFAULT_MODEL, loaded.name))
    for loaded in bundles:
        loaded.model.eval().requires_grad_(False)  # read-only and shared by every visitor
    return bundles


def header(bundle: ModelBundle) -> tuple[str, str]:
    """The model line and the notice (why a Hub copy was not used, or nothing), for a model."""
    return model_summary(bundle), f"⚠️ {bundle.notice}" if bundle.notice else ""


def switch_model(wirings: list[TabWiring], header_outputs: tuple, model_name: str, open_tab: str, *values) -> dict:
    """The one model-switch listener: {component: new value} for the header (`header_outputs`: the model line and
    the notice), every tab's refresh and every tab's class menus; a lazy tab that is not open is left as it is
    (drawn when it opens). `values` are the tabs' inputs, in the order of `wirings`."""
    summary, notice = header(bundle(model_name))
    updates, start = dict(zip(header_outputs, (summary, gr.Markdown(notice, visible=bool(notice))))), 0
    for wiring in wirings:
        inputs = values[start:start + len(wiring.inputs)]
        start += len(wiring.inputs)
        if not wiring.lazy or wiring.id == open_tab:
            result = wiring.refresh(model_name, *inputs)
            updates.update(zip(wiring.outputs, result if len(wiring.outputs) > 1 else (result,)))
    for wiring in wirings:
        updates.update(zip(wiring.control_outputs, wiring.controls(model_name) if wiring.controls else ()))
    return updates


def build_demo(models: list[ModelBundle]) -> gr.Blocks:
    """The Blocks for these models; nothing is loaded or launched here."""
    use_models(models)
    first = models[0]
    with gr.Blocks(title="Vision Transformer explainer") as demo:
        term = glossary.term
        gr.Markdown("# How a Vision Transformer reads a picture\n"
                    f"A {term('Vision Transformer (ViT)', 'Vision Transformer')} cuts a picture into "
                    f"{term('tile', 'tiles')} and reads them like the {term('word', 'words')} of a sentence. Each tab "
                    "shows one step, from cutting to the model's decision. Pick a model:", elem_classes="lead")
        with gr.Row(equal_height=True):
            model_choice = gr.Dropdown([bundle.name for bundle in models], value=first.name, label="model",
                                       scale=2, min_width=180, elem_id="model-choice")
            with gr.Column(scale=0, min_width=150):  # beside the menu, also on a phone: no line of their own
                copy_link = gr.Button("Copy a link", size="sm", elem_id="copy-link")
                path = lesson.button()
            with gr.Column(scale=4):
                summary, notice_text = header(first)
                model_info = gr.Markdown(summary, elem_id="model-info")
                notice = gr.Markdown(notice_text, visible=bool(notice_text), elem_classes="notice")
        shared = link.share_boxes()
        lesson.panel(path)
        # Per visitor: the picture the Predict tab explains (it opens on a stored 7) and which tab is open.
        # and the models they trained or taught in the app, which only their menu lists.
        current, open_tab, own = gr.State(start_picture(first)), gr.State(FIRST_TAB), gr.State([])
        with gr.Tabs(selected=FIRST_TAB, overflow_behavior="wrap") as layout:  # every tab in sight on a phone
            wirings = build_tabs(Context(demo, model_choice, current, layout, own), first)
        for wiring in wirings:
            wiring.tab.select(functools.partial(str, wiring.id), None, open_tab, api_visibility="private", queue=False)
        switch = functools.partial(switch_model, wirings, (model_info, notice))
        switched = [model_info, notice, *(o for w in wirings for o in w.outputs),
                    *(c for w in wirings for c in w.control_outputs)]
        gr.on([model_choice.change], switch, [model_choice, open_tab, *(i for w in wirings for i in w.inputs)],
              switched, api_visibility="private")
        glossary.section(demo)
        link.wire(link.Page(demo, model_choice, current, layout, wirings, switch, switched), copy_link, shared)
        api.build(first.name)
    return demo


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Serve the Vision Transformer explainer (a Gradio app and MCP server).",
        epilog="Environment: GRADIO_SERVER_NAME and GRADIO_SERVER_PORT set the defaults of --host and --port; "
               f"{WEIGHTS_DIR_VARIABLE} the default of --weights-dir; VIT_MODELS names Hub repos to load "
               "(vit/hub.py), with the folders in weights/ as the fallback; VIT_MAX_BATCH the most concurrent "
               "requests whose pictures share one forward pass (default 32, 1: none share). No dataset is needed.")
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
    models = load_models(args.weights_dir)
    demo = build_demo(models)
    # Queue positions are sent once a second, not to every waiting visitor each time an event starts: with many
    # visitors drawing at once those messages alone would keep the event loop busy.
    demo.queue(default_concurrency_limit=CONCURRENCY, status_update_rate=STATUS_SECONDS)
    demo.launch(server_name=args.host, server_port=args.port, max_file_size=MAX_FILE_SIZE, css=CSS, js=JS,
                head=HEAD, theme=THEME, mcp_server=True, prevent_thread_lock=True,
                app_kwargs={"routes": pad_model.routes()})  # the pad's weights for the page (tabs/pad_model.py)
    # once the server listens, so that start-up does not wait for it
    threading.Thread(target=tiling.warm, args=(models[0],), name="warm-up", daemon=True).start()
    demo.block_thread()


if __name__ == "__main__":
    main()
