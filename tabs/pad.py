"""The drawing pad: a canvas that sends the whole drawing with the mouse-up, in one request, and reads it in the
page while the pen moves.

gradio's Sketchpad made three component-server calls and two rounds of uploads per stroke before its change
event reached the server (the benchmark measured the delay: bench/README.md). This pad is a plain
canvas in a gr.HTML: the page keeps the strokes, paints them, and on every mouse-up, Undo or Clear sends the
canvas as a PNG data URL in the event's data (`trigger("input", {drawing: ...})`, None once it is empty).
vit.preprocess.open_data_url decodes it like any uploaded file.

While the pen moves, the page itself reads the drawing, one read at a time, with the same weights
(tabs/pad_model.py sends them, tabs/pad_model.js runs them) and shows its top answers under the pad; the server's
calibrated answer, its "not a digit" verdict and the maps still come with the mouse-up. A page that cannot load or
run the model says so in the same line, and the server's answers are all there is.
"""

import html
import itertools
import json
import threading
from collections import OrderedDict

import gradio as gr

from . import pad_model

SIDE = 336    # canvas pixels, like the Sketchpad it replaces: what the preprocessing was checked on
RADIUS = 13   # pen radius on that canvas: a stroke about 1/13 of the digit's height, like MNIST's pen once the
              # digit is fitted into 20×20

TEMPLATE = """<div class="pad">
  <div class="pad-title">{label}</div>
  <canvas width="{side}" height="{side}" aria-label="{label}: the drawing area"></canvas>
  <div class="pad-buttons">
    <button type="button" class="undo" aria-label="Undo">↶ Undo</button>
    <button type="button" class="clear" aria-label="Clear canvas">✕ Clear</button>
  </div>
  <div class="pad-live-row">
    <img class="pad-seen" hidden alt="{seen}">
    <p class="pad-live">{live}</p>
  </div>
  <p class="pad-keys">{keys}</p>
</div>"""
KEYS = ("No mouse, pen or touch screen? Upload a picture or pick a test picture below: the Tab key reaches them, "
        "Enter opens the upload or picks a picture.")

CSS = """
.pad { display: flex; flex-direction: column; gap: 6px; max-width: 420px; }
.pad-title { font-size: var(--block-label-text-size); color: var(--block-label-text-color); }
/* touch-action: none: a finger on the pad draws instead of scrolling the page */
.pad canvas { width: 100%; aspect-ratio: 1; touch-action: none; cursor: crosshair; background: #fff;
              border: 1px solid var(--border-color-primary); border-radius: var(--radius-lg); }
.pad-buttons { display: flex; gap: 8px; }
.pad-keys, .pad-live { margin: 0; font-size: var(--text-sm); color: var(--body-text-color-subdued); }
.pad-live:empty { display: none; }
.pad-live { font-variant-numeric: tabular-nums; }
.pad-live-row { display: flex; gap: 8px; align-items: center; }
.pad-seen { width: 56px; height: 56px; flex: none; image-rendering: pixelated; border-radius: 4px; }
.pad-buttons button { padding: 4px 12px; border-radius: var(--radius-md); cursor: pointer;
                      border: 1px solid var(--button-secondary-border-color);
                      background: var(--button-secondary-background-fill);
                      color: var(--button-secondary-text-color); }
"""

_WIPES = itertools.count(1)

# Strokes are kept as points in canvas pixels, so Undo can repaint without the last one.
SCRIPT = f"""
const canvas = element.querySelector('canvas');
const context = canvas.getContext('2d', {{willReadFrequently: true}});  // the page reads it back often
const strokes = [];
let stroke = null;
const paint = () => {{
  context.fillStyle = '#fff';
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.fillStyle = context.strokeStyle = '#000';
  context.lineWidth = {2 * RADIUS};
  context.lineCap = context.lineJoin = 'round';
  for (const points of strokes) {{
    if (points.length === 1) {{  // a dot: a path of one point strokes nothing
      context.beginPath();
      context.arc(points[0][0], points[0][1], {RADIUS}, 0, 2 * Math.PI);
      context.fill();
      continue;
    }}
    context.beginPath();
    context.moveTo(...points[0]);
    for (const point of points.slice(1)) context.lineTo(...point);
    context.stroke();
  }}
}};
const at = (event) => {{
  const box = canvas.getBoundingClientRect();
  return [(event.clientX - box.left) * canvas.width / box.width, (event.clientY - box.top) * canvas.height / box.height];
}};
let sent = 0;  // numbers each send, so the server can tell a later drawing from an earlier one
const send = () => trigger('input', {{drawing: strokes.length ? canvas.toDataURL('image/png') : null, number: ++sent}});
canvas.addEventListener('pointerdown', (event) => {{
  canvas.setPointerCapture(event.pointerId);
  stroke = [at(event)];
  strokes.push(stroke);
  paint();
  readSoon(event);
}});
canvas.addEventListener('pointermove', (event) => {{
  if (!stroke) return;
  stroke.push(at(event));
  paint();
  readSoon(event);
}});
const finish = () => {{
  if (!stroke) return;
  stroke = null;
  send();
}};
canvas.addEventListener('pointerup', finish);
canvas.addEventListener('pointercancel', finish);
element.querySelector('.undo').addEventListener('click', () => {{ if (strokes.length) {{ strokes.pop(); paint(); send(); readSoon(null); }} }});
element.querySelector('.clear').addEventListener('click', () => {{ strokes.length = 0; paint(); send(); readSoon(null); }});
// The server sets a new value when another picture takes the drawing's place: wipe the pad without sending.
watch('value', () => {{ strokes.length = 0; paint(); atRest(); seen.hidden = true; }});
paint();
"""

# The page's own reads (tabs/pad_model.js, in a Web Worker): the weights of the model in the menu (the `weights`
# prop, a path from the app's root; none: no reads in the page), fetched once per model; then one read at a time while
# the pen moves: a pointer event reads the drawing at once if the worker is free, else the next read starts as soon as
# it is (measured: answers follow the pen more closely than with reads every 20 or 50 ms). Each load
# is numbered, so that an answer of the model chosen before is dropped; once loaded, a model chosen in the menu reads
# what is on the pad at once, so the line under it never shows the model before's answer. `element.inPage` keeps,
# for the tests and the benchmark, each read's delay from the pointer event it answers, when it was shown and when
# the pen moved (ms), and why the page cannot read, if so.
LIVE = """
const line = element.querySelector('.pad-live');
const say = (text) => { line.textContent = text; };
const state = element.inPage = {ready: false, delays: [], times: [], moves: [], failed: null};
let worker = null, loaded = null, loads = 0, busy = false, again = false;
let latest = null, sentFor = null;
const atRest = () => say(state.ready ? READY : state.failed ? FALLBACK : '');  // what the line says with no strokes
function fail(reason) {
  state.ready = false;
  loaded = null;  // the same model chosen again tries again
  state.failed = String(reason);
  say(FALLBACK);
}
// What the model sees as the page reads it: the 28x28 input, the pieces the CLS token looks at most tinted orange
const seen = element.querySelector('.pad-seen'), frame = document.createElement('canvas');
frame.width = frame.height = 28;
function paintSeen({input, attention, grid}) {
  const image = frame.getContext('2d').createImageData(28, 28), most = Math.max(...attention);
  for (let i = 0; i < 784; i++) {
    const piece = Math.floor(Math.floor(i / 28) / (28 / grid[0])) * grid[1] + Math.floor((i % 28) / (28 / grid[1]));
    const tint = 0.65 * attention[piece] / most, grey = 255 * input[i] * (1 - tint);
    image.data.set([grey + tint * 249, grey + tint * 115, grey + tint * 22, 255], 4 * i);
  }
  frame.getContext('2d').putImageData(image, 0, 0);
  seen.src = frame.toDataURL();
  seen.hidden = false;
}
function show(data) {
  seen.hidden = !strokes.length || data.kind !== 'answers';
  if (!strokes.length) atRest();
  else if (data.kind === 'server') say(LEFT_TO_SERVER);
  else if (data.kind === 'keep') say(KEEP);
  else {
    const percent = (a) => `${a.label} (${(100 * a.probability).toFixed(0)} %)`;
    if (data.verdict === 'refused') say(WHILE + NOT_A + data.noun);  // in the server's words
    else if (data.verdict === 'unsure') say(WHILE + UNSURE + percent(data.top[0]) + ' and ' + percent(data.top[1]));
    else say(WHILE + data.top.map(percent).join(' · '));
    paintSeen(data);
  }
}
function answered({data}) {
  if (data.load !== loads) return;  // a reply about the model chosen before
  if (data.failed) { fail(data.failed); return; }
  if (data.ready) { state.ready = true; readSoon(); return; }  // the drawing on the pad, read by this model
  busy = false;
  show(data);
  const now = performance.now();
  if (sentFor !== null) state.delays.push(now - sentFor);
  state.times.push(now);
  if (again) { again = false; readNow(); }
}
async function load() {
  // an update without the prop (gradio's skip), or with the model already loaded or loading: nothing changed
  if (typeof props.weights !== 'string' || props.weights === loaded) return;
  const path = loaded = props.weights, load = ++loads;
  state.ready = busy = false;
  state.failed = null;
  seen.hidden = true;  // the model chosen before read what is on screen: none of it stays
  atRest();
  if (!path) return;
  try {
    if (!worker) {
      worker = new Worker(URL.createObjectURL(new Blob([RUNTIME + '\\ninPage.serve(self);'], {type: 'text/javascript'})));
      worker.onmessage = answered;
      worker.onerror = (event) => fail(event.message);
    }
    const root = (window.gradio_config && window.gradio_config.root) || location.href;
    const response = await fetch(new URL(path, root.endsWith('/') ? root : root + '/'));
    if (!response.ok) throw new Error(`the app answered ${response.status}`);
    const weights = await response.arrayBuffer();
    if (load === loads) worker.postMessage({load, weights}, [weights]);
  } catch (error) {
    if (load === loads) fail(error);
  }
}
function readNow() {
  if (!state.ready) return;
  if (busy) { again = true; return; }
  if (!strokes.length) { atRest(); return; }
  busy = true;
  sentFor = latest;
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  worker.postMessage({load: loads, pixels, width: canvas.width, height: canvas.height}, [pixels.buffer]);
}
function readSoon(event) {
  latest = event ? event.timeStamp : null;
  if (event) state.moves.push(event.timeStamp);
  readNow();
}
watch('weights', load);
load();
"""
SEEN = ("What the model sees, as this page reads the drawing: 28×28 pixels, the tiles the CLS token looks at most in "
        "the last block tinted orange.")
LIVE_WORDS = {"READY": "Draw: the page reads your drawing while the pen moves.",
              "WHILE": "In this page, while you draw: ",
              "KEEP": "In this page, while you draw: keep drawing…",
              "NOT_A": "this does not look like a ", "UNSURE": "unsure between ",
              "LEFT_TO_SERVER": "In this page: this drawing is left to the server.",
              "FALLBACK": "This page could not run the model: the answers come from the server when you lift the pen."}


def drawing_pad(label: str = "draw here", elem_id: str = "pad", keys: str = KEYS, model: str | None = None) -> gr.HTML:
    """The pad; its `input` event carries {"drawing": a PNG data URL, or None when the pad is empty}. `keys`: what
    to do instead without a mouse, pen or touch screen; `model`: the menu name of the model the page reads the
    drawing with while the pen moves (none: only the server reads it)."""
    template = TEMPLATE.format(label=html.escape(label), side=SIDE, keys=html.escape(keys), seen=html.escape(SEEN),
                               live=html.escape(LIVE_WORDS["READY"]) if model else "")
    return gr.HTML(html_template=template, css_template=CSS, js_on_load=_script(), label=label, elem_id=elem_id,
                   apply_default_css=False, weights=pad_model.weights_url(model))


def follow(model: str) -> gr.HTML:
    """An update that has the page read the drawing with another model (a model switch)."""
    return gr.HTML(weights=pad_model.weights_url(model))


def _script() -> str:
    words = "".join(f"const {name} = {json.dumps(text)};\n" for name, text in LIVE_WORDS.items())
    return f"const RUNTIME = {json.dumps(pad_model.SCRIPT)};\n{words}{SCRIPT}{LIVE}"


def wiped() -> str:
    """A value for the pad that wipes it, without a read: another picture (an example, an upload, a picture sent
    from another tab) is now the one explained. Each call's value is new, so the page sees a change every time."""
    return f"wiped {next(_WIPES)}"


def event(drawing: object, number: int | None = None) -> gr.EventData:
    """The event a stroke, Undo or Clear sends, as its handler receives it: what the tests and the bench send
    in place of a page (`number`: which of the page's sends it is)."""
    return gr.EventData(None, {"drawing": drawing} | ({"number": number} if number is not None else {}))


def drawing(event: gr.EventData | None) -> str | None:
    """The data URL an `input` event of the pad carries, or None (an empty pad, or an event without one)."""
    data = getattr(event, "_data", None)
    return data.get("drawing") if isinstance(data, dict) else None


def number(event: gr.EventData | None) -> int | None:
    """Which of its page's sends an `input` event of the pad is (1, 2, ...), or None for an event without one."""
    data = getattr(event, "_data", None)
    value = data.get("number") if isinstance(data, dict) else None
    return value if isinstance(value, int) else None


class Turns:
    """Which of each visitor's pad reads is of the newest drawing.

    The queue runs several events at once, so a slow read of an earlier drawing (the first read after start-up,
    or one behind other visitors) can finish after a quick read of a later one and overwrite its answer. Reads
    are told apart by the number the page gives each send, not by when they start: the slow one may even start
    last. A read that finishes once a later drawing's read has begun hands back nothing, and so do the maps that
    follow it. Visitors are told apart by their session; the oldest are forgotten past `sessions`.
    """

    def __init__(self, sessions: int = 10_000):
        self._newest: OrderedDict[str, int] = OrderedDict()
        self._sessions, self._lock = sessions, threading.Lock()

    def start(self, session: str | None, number: int | None) -> int | None:
        """A read of this visitor's drawing `number` begins; returns that number, its turn."""
        if session is None or number is None:
            return number
        with self._lock:
            self._newest[session] = max(self._newest.get(session, number), number)
            self._newest.move_to_end(session)
            while len(self._newest) > self._sessions:
                self._newest.popitem(last=False)
        return number

    def overtaken(self, session: str | None, turn: int | None) -> bool:
        """True when a read of a later drawing than `turn` has begun for this visitor (never without a session or
        a number)."""
        if session is None or turn is None:
            return False
        with self._lock:
            return self._newest.get(session, turn) > turn
