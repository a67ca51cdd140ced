"""Open-loop load on the running app: visitors who stroke at a fixed rate whether or not the last answer came back.

Each visitor is one gradio session over plain HTTP, as the page is: POST /gradio_api/queue/join with the event's
fn_index, its data and the session's hash, and the answers read as server-sent events from
/gradio_api/queue/data?session_hash=... A pad stroke joins the pad's `input` event (a 336×336 PNG data URL in the
event's data, as tabs/pad.py sends it) and, once that completes, the maps event the page's `.then` triggers next;
a /predict call uploads the same picture as a file and joins /predict. The strokes are sent on schedule (the
visitors staggered over each period) from a few sender threads, one reader thread per visitor: light enough to
share the server's cores. A stroke's time runs from its scheduled moment, so a late send counts against it.

Per setting: stroke -> label and stroke -> every map (/predict: -> answer) p50 and p95, errors, and whether the queue
keeps up: the label's median over the strokes sent in the last third against the first third, the strokes still
unanswered when sending stopped, and how long they took to drain. Each setting runs on an app started afresh with
batching off (VIT_MAX_BATCH=1) and on another with it on (the default), or as `--batching` says, the load average
beside each.
"""

import base64
import http.client
import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from vit.batching import MAX_BATCH_VARIABLE
from vit.data import Split

from .app import ENVIRONMENT, cpu_seconds, running_app
from .report import figure, load, percentiles
from .timings import drawing

DRAIN_SECONDS = 30  # after the last send, how long the answers still due are waited for
SENDERS = 8         # threads that post the joins and uploads: the schedule never waits on one slow post
PAD_ID = "pad"      # tabs/pad.py's elem_id: the pad whose `input` event a stroke is
SKIPPED = {"__type__": "update"}  # gr.skip() as sent: the app left that output as it was


@dataclass(frozen=True)
class Setting:
    """One load: how many visitors, each sending a stroke `rate` times a second, for `seconds`, to `target`."""
    visitors: int
    rate: float
    seconds: float
    target: str = "pad"  # "pad": the Predict tab's events, as the page sends them; "predict": /predict

    @property
    def name(self) -> str:
        event = "pad stroke → label → maps" if self.target == "pad" else "/predict"
        return f"{event}, {self.visitors} visitors × {self.rate:g}/s"

    @property
    def argument(self) -> str:
        """As `python -m bench --open-loop --settings` takes it (parse_setting)."""
        return ("" if self.target == "pad" else f"{self.target}:") + f"{self.visitors}x{self.rate:g}"


@dataclass(frozen=True)
class Events:
    """What the page sends, read from the app's /config: the events' fn_index and the values they need."""
    read: int       # the pad's input event (tabs.predict.read_drawing)
    maps: int       # the event its `.then` triggers (show_drawing_maps)
    predict: int    # /predict
    pad: int        # the pad's component id: the trigger of a stroke
    model: str      # the model menu's value: what the page sends as the model
    maps_data: tuple  # the maps event's data: the model's name, and null for each State (the server holds them)


@dataclass
class Stroke:
    """One stroke's times (ms from its scheduled moment) and its error, if any. An answer the app skipped because
    the visitor's next stroke was being read (tabs.pad.Turns) is timed when a later stroke's answer is shown."""
    scheduled: float
    visitor: int
    number: int
    label: float | None = None
    maps: float | None = None
    error: str | None = None
    read_at: float | None = None  # perf_counter when its label came: a maps event started later draws it (or newer)
    skipped: int = 0  # maps events that drew nothing: the visitor's newest picture was drawn, or a newer one is read


def find_events(url: str) -> Events:
    """The pad's events and /predict in the app's /config."""
    config = get_json(url + "config")
    by_id = {component["id"]: component for component in config["components"]}
    pad = next(c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == PAD_ID)
    dependencies = config["dependencies"]
    read = next(i for i, d in enumerate(dependencies) if [pad, "input"] in d["targets"])
    maps = next(i for i, d in enumerate(dependencies) if d.get("trigger_after") == read)
    predict = next(i for i, d in enumerate(dependencies) if d.get("api_name") == "predict")
    choice = dependencies[read]["inputs"][0]  # the model menu, the read's one input
    model = by_id[choice]["props"]["value"]
    maps_data = tuple(model if input_id == choice else None for input_id in dependencies[maps]["inputs"])
    return Events(read, maps, predict, pad, model, maps_data)


def get_json(url: str) -> dict:
    """GET a JSON document on localhost (directly: never through a proxy)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request("GET", parts.path)
        return json.loads(connection.getresponse().read())
    finally:
        connection.close()


class Visitor:
    """One gradio session: joins events over plain HTTP and reads their answers from one event stream."""

    def __init__(self, host: str, port: int):
        self.host, self.port, self.session = host, port, uuid.uuid4().hex[:11]
        self._waiting: dict[str, Callable[[dict], None]] = {}  # event_id -> what to do with its completion
        self._early: dict[str, dict] = {}  # completions read before their join's reply
        self._started: dict[str, float] = {}  # event_id -> perf_counter when the server began it
        self._in_flight, self._closed = 0, False
        self._condition = threading.Condition()
        self._posts = threading.local()
        self._reader = threading.Thread(target=self._listen, daemon=True)
        self._reader.start()

    def post(self, path: str, body: bytes, content_type: str) -> dict | list:
        """POST on this thread's own connection (kept open), the reply parsed as JSON; once more on a new connection
        when the server had closed the kept one."""
        for attempt in range(2):
            connection = getattr(self._posts, "connection", None)
            kept = connection is not None
            if connection is None:
                connection = self._posts.connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
            try:
                connection.request("POST", path, body, {"Content-Type": content_type})
                response = connection.getresponse()
                reply = response.read()
                break
            except (OSError, http.client.HTTPException):
                self._posts.connection = None
                connection.close()
                if not kept or attempt:
                    raise
        if response.status != 200:
            raise RuntimeError(f"{path}: HTTP {response.status} {reply[:200]!r}")
        return json.loads(reply)

    def join(self, fn_index: int, data: list, event_data: dict | None, trigger: int | None,
             done: Callable[[dict], None]) -> None:
        """Join an event; `done(message)` runs on the reader thread with its process_completed message (or
        {"success": False, "error": ...} when the join itself failed)."""
        with self._condition:
            self._in_flight += 1
            self._condition.notify_all()
        body = json.dumps({"data": data, "event_data": event_data, "fn_index": fn_index, "trigger_id": trigger,
                           "session_hash": self.session}).encode()
        try:
            event_id = self.post("/gradio_api/queue/join", body, "application/json")["event_id"]
        except Exception as error:  # any failure to join is what is being counted
            with self._condition:
                self._in_flight -= 1
            done({"success": False, "error": f"join: {type(error).__name__}: {error}"[:200]})
            return
        with self._condition:
            early = self._early.pop(event_id, None)
            if early is None:
                self._waiting[event_id] = done
        if early is not None:
            done(early)

    def upload(self, name: str, content: bytes) -> str:
        """Upload a PNG as gradio's File input expects it; returns the server's path for it."""
        boundary = uuid.uuid4().hex
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                f"Content-Type: image/png\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
        return self.post("/gradio_api/upload", body, f"multipart/form-data; boundary={boundary}")[0]

    def close(self) -> None:
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def _listen(self) -> None:
        """Open the session's stream whenever an answer is due; the server closes it when none is."""
        while True:
            with self._condition:
                while not self._in_flight and not self._closed:
                    self._condition.wait()
                if self._closed:
                    return
            try:
                if not self._read_stream():
                    time.sleep(0.005)  # closed before anything came: the join is not registered yet
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)

    def _read_stream(self) -> bool:
        """Read one stream until the server closes it; whether any answer came."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=120)
        answered = False
        try:
            connection.request("GET", f"/gradio_api/queue/data?session_hash={self.session}")
            for line in connection.getresponse():
                if not line.startswith(b"data:"):
                    continue
                message = json.loads(line[5:])
                if message.get("msg") == "process_starts":
                    with self._condition:
                        self._started[message["event_id"]] = time.perf_counter()
                elif message.get("msg") == "process_completed":
                    answered = True
                    self._completed(message)
                elif message.get("msg") == "close_stream":
                    break
        finally:
            connection.close()
        return answered

    def _completed(self, message: dict) -> None:
        with self._condition:
            message["started_at"] = self._started.pop(message["event_id"], None)
            self._in_flight -= 1
            done = self._waiting.pop(message["event_id"], None)
            if done is None:
                self._early[message["event_id"]] = message
        if done is not None:
            done(message)


def failure(message: dict) -> str | None:
    """Why a completed event failed, or None."""
    if message.get("success"):
        return None
    return str(message.get("error") or message.get("output", {}).get("error") or message)[:200]


@dataclass
class Load:
    """A setting's visitors, pictures and senders while it runs, and every stroke sent."""
    setting: Setting
    events: Events
    visitors: list[Visitor]
    pictures: list[str]  # PNG data URLs, as the pad sends them
    senders: ThreadPoolExecutor
    strokes: list[Stroke] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    over: bool = False  # the wait for answers ended: what comes later is not followed up
    drawn: dict[int, float] = field(default_factory=dict)  # visitor -> perf_counter when their last maps came

    def elapsed(self, stroke: Stroke) -> float:
        return (time.perf_counter() - stroke.scheduled) * 1000

    def send(self, visitor: Visitor, number: int, stroke: Stroke) -> None:
        picture = self.pictures[number % len(self.pictures)]
        if self.setting.target == "pad":
            visitor.join(self.events.read, [self.events.model], {"drawing": picture, "number": number},
                         self.events.pad, lambda message: self.labelled(visitor, stroke, message))
            return
        try:
            path = visitor.upload(f"stroke-{number}.png", base64.b64decode(picture.split(",", 1)[1]))
        except Exception as error:  # any failure of the call is what is being counted
            stroke.error = f"upload: {type(error).__name__}: {error}"[:200]
            return
        data = [{"path": path, "meta": {"_type": "gradio.FileData"}}, self.events.model]
        visitor.join(self.events.predict, data, None, None, lambda message: self.answered(stroke, message))

    def labelled(self, visitor: Visitor, stroke: Stroke, message: dict) -> None:
        self.shown(stroke, "label", message)
        if stroke.error is None and not self.over:  # the page's `.then`: the maps of what was just read
            self.senders.submit(visitor.join, self.events.maps, list(self.events.maps_data), None, None,
                                lambda answer: self.shown(stroke, "maps", answer))

    def shown(self, stroke: Stroke, part: str, message: dict) -> None:
        """An answer came. A label is this stroke's (or, skipped, a later one's that is on its way). Maps are of the
        newest picture read when their event started: every stroke of the visitor read by then is answered. Maps
        the app skipped as drawn already were drawn by the visitor's last maps, if those came after its label."""
        stroke.error = failure(message)
        if part == "label" or stroke.error is not None:
            stroke.label, stroke.read_at = self.elapsed(stroke), time.perf_counter()
            return
        if all(value == SKIPPED for value in message["output"].get("data", [])):
            stroke.skipped += 1
            with self.lock:  # drawn already: by maps that were still running when its label came
                drawn = self.drawn.get(stroke.visitor)
                if stroke.maps is None and drawn is not None and drawn >= stroke.read_at:
                    stroke.maps = (drawn - stroke.scheduled) * 1000
            return
        started = message.get("started_at") or time.perf_counter()
        with self.lock:
            self.drawn[stroke.visitor] = time.perf_counter()
            for earlier in self.strokes:
                if (earlier.visitor == stroke.visitor and earlier.maps is None and earlier.read_at is not None
                        and earlier.read_at <= started):
                    earlier.maps = self.elapsed(earlier)

    def answered(self, stroke: Stroke, message: dict) -> None:
        stroke.label, stroke.error = self.elapsed(stroke), failure(message)

    def done(self, stroke: Stroke) -> bool:
        last = stroke.maps if self.setting.target == "pad" else stroke.label
        return last is not None or stroke.error is not None


def run_setting(url: str, events: Events, pictures: list[str], setting: Setting, server_pid: int | None = None) -> dict:
    """Send the setting's strokes on schedule, wait for the answers still due, and summarise."""
    parts = urlsplit(url)
    visitors = [Visitor(parts.hostname, parts.port) for _ in range(setting.visitors)]
    period, ticks = 1 / setting.rate, max(1, round(setting.seconds * setting.rate))
    load_start, cpu_start = load(), cpu_seconds(server_pid) if server_pid else None
    with ThreadPoolExecutor(SENDERS) as senders:
        run = Load(setting, events, visitors, pictures, senders)
        start = time.perf_counter() + 0.1
        for tick in range(ticks):
            for index, visitor in enumerate(visitors):  # staggered: one visitor after another over the period
                scheduled = start + (tick + index / len(visitors)) * period
                time.sleep(max(0.0, scheduled - time.perf_counter()))
                stroke = Stroke(scheduled, index, tick + 1)
                with run.lock:
                    run.strokes.append(stroke)
                senders.submit(run.send, visitor, tick + 1, stroke)
        stopped = time.perf_counter()
        backlog = sum(not run.done(stroke) for stroke in run.strokes)
        deadline = stopped + DRAIN_SECONDS
        while time.perf_counter() < deadline and not all(run.done(stroke) for stroke in run.strokes):
            time.sleep(0.02)
        drained = time.perf_counter() - stopped
        run.over = True
    for visitor in visitors:
        visitor.close()
    cpu_end = cpu_seconds(server_pid) if server_pid else None
    server_cpu = None if cpu_start is None or cpu_end is None else (cpu_end - cpu_start) * 1000 / len(run.strokes)
    return summarise(run, backlog, drained, server_cpu, [load_start, load()])


def summarise(run: Load, backlog: int, drained: float, server_cpu_ms: float | None, loads: list) -> dict:
    """The setting's figures: label and maps percentiles, errors, and whether the queue kept up."""
    setting, strokes = run.setting, run.strokes
    pad = setting.target == "pad"
    third = max(1, len(strokes) // 3)
    first, last = ([s.label for s in part if s.label is not None and s.error is None]
                   for part in (strokes[:third], strokes[-third:]))
    unanswered = [s for s in strokes if not run.done(s)]
    skipped = sum(s.skipped for s in strokes)
    errors = [s.error for s in strokes if s.error is not None]
    label_goal, maps_goal = (300, 1000) if setting.rate <= 1 else (None, None)
    result = {"setting": setting.name, "visitors": setting.visitors, "rate": setting.rate, "seconds": setting.seconds,
              "strokes": len(strokes),
              "label_ms": percentiles([s.label for s in strokes if s.label is not None and s.error is None],
                                      goal_p95=label_goal if pad else None),
              "errors": figure(len(errors), "calls", goal=0), "first_error": errors[0] if errors else None,
              "label_p50_first_third": percentiles(first)["p50"], "label_p50_last_third": percentiles(last)["p50"],
              "backlog_when_sending_stopped": figure(backlog, "strokes"),
              "drain_ms": figure(drained * 1000, "ms"),
              "unanswered": figure(len(unanswered), "strokes", goal=0),
              "server_cpu_ms_per_stroke": figure(server_cpu_ms, "ms"), "load_average": loads}
    if pad:
        result["maps_ms"] = percentiles([s.maps for s in strokes if s.maps is not None and s.error is None],
                                        goal_p95=maps_goal)
        result["maps_events_skipped"] = figure(skipped, "calls")  # drawn already, or the visitor drew again
    result["keeps_up"] = keeps_up(result)
    return result


def keeps_up(result: dict) -> bool:
    """The queue kept up: every stroke answered within the drain, at most a second's strokes still unanswered when
    sending stopped, and the last third's median label within twice the first third's (a queue that falls behind
    grows without end: its latency climbs through the run)."""
    first, last = result["label_p50_first_third"]["value"], result["label_p50_last_third"]["value"]
    second = result["visitors"] * result["rate"]
    return (result["unanswered"]["value"] == 0 and result["backlog_when_sending_stopped"]["value"] <= second
            and first is not None and last is not None and last <= 2 * max(first, 50.0))


def stroke_pictures(split: Split, count: int = 64) -> list[str]:
    """The first `count` test digits drawn as the pad sends a stroke: 336×336 PNG data URLs."""
    return [drawing(split.images[index, 0].numpy()) for index in range(count)]


SETTINGS = (Setting(20, 1, 25), Setting(20, 2, 25), Setting(20, 1, 25, "predict"), Setting(20, 2, 25, "predict"))
BATCHING = {"off": "1", "on": ""}  # VIT_MAX_BATCH for the app: 1 turns the sharing of passes off; unset, the default


def parse_setting(text: str, seconds: float = 25) -> Setting:
    """`20x0.5` (20 visitors, a pad stroke every 2 s each) or `predict:20x1` (/predict) -> a Setting;
    ValueError says what is wrong."""
    target, _, load = text.rpartition(":")
    visitors, _, rate = load.partition("x")
    try:
        setting = Setting(int(visitors), float(rate), seconds, target or "pad")
    except ValueError:
        raise ValueError(f"{text!r}: write VISITORSxRATE, e.g. 20x0.5, or predict:20x1") from None
    if setting.target not in ("pad", "predict") or setting.visitors < 1 or not 0 < setting.rate <= 10:
        raise ValueError(f"{text!r}: the target is pad or predict, at least 1 visitor, a rate above 0 and at most 10/s")
    return setting


def bench_open_loop(weights_dir: Path, test_split: Split, workdir: Path,
                    settings: tuple[Setting, ...] = SETTINGS, batching: tuple[str, ...] = tuple(BATCHING)) -> dict:
    """Every setting on the app with batching off (VIT_MAX_BATCH=1), then on (the default), or as `batching` says, in
    one run; the app is started afresh for each setting, so that no backlog of one setting runs into the next."""
    pictures = stroke_pictures(test_split)
    result = {"method": __doc__.split("\n\n", 1)[1].replace("\n", " "), "runs": {}}
    for name, batch in ((f"batching {state}", BATCHING[state]) for state in batching):
        env = os.environ | ENVIRONMENT | {MAX_BATCH_VARIABLE: batch}
        measured = []
        for index, setting in enumerate(settings):
            with running_app(weights_dir, workdir / f"open-loop-{batch or 'on'}-{index}.log", env) as (url, process):
                events = find_events(url)
                for target in ("pad", "predict"):  # warm-up: each event's first call
                    run_setting(url, events, pictures, Setting(2, 2, 1.5, target))
                measured.append(run_setting(url, events, pictures, setting, process.pid))
        result["runs"][name] = {"model": events.model, "settings": measured}
    return result


# --- The report: rows of figures, and its own table ---------------------------------------------------------------

def rows(result: dict) -> list[tuple[str, dict]]:
    """Every figure of the part as (name, figure), batching off then on, setting by setting."""
    table = []
    for run, part in result["runs"].items():
        for setting in part["settings"]:
            name = f"{run}: {setting['setting']}"
            load_start = setting["load_average"][0][0] if setting["load_average"][0] else "?"
            answer = "label" if "maps_ms" in setting else "answer"
            table += [(f"{name}: stroke → {answer} p50 (load {load_start})", setting["label_ms"]["p50"]),
                      (f"{name}: stroke → {answer} p95", setting["label_ms"]["p95"])]
            if "maps_ms" in setting:
                table += [(f"{name}: stroke → every map p50", setting["maps_ms"]["p50"]),
                          (f"{name}: stroke → every map p95", setting["maps_ms"]["p95"])]
            table += [(f"{name}: errors", setting["errors"]),
                      (f"{name}: {answer} p50, first third of the run", setting["label_p50_first_third"]),
                      (f"{name}: {answer} p50, last third of the run", setting["label_p50_last_third"]),
                      (f"{name}: unanswered when sending stopped", setting["backlog_when_sending_stopped"]),
                      (f"{name}: unanswered {DRAIN_SECONDS} s later", setting["unanswered"]),
                      (f"{name}: server CPU per stroke", setting["server_cpu_ms_per_stroke"])]
    return table


def markdown(result: dict, details: str = "open-loop.json") -> str:
    """The part's table: when, where and how, then every figure with its goal, and whether each queue kept up."""
    from .report import figure_table
    info = result["machine"]
    lines = [f"# Open-loop load on the app ({result['date']})", "",
             f"{info['cpu']}, {info['cores']} cores, torch {info['torch']}; load average "
             f"{info['load_average_start']} at the start, {info['load_average_end']} at the end. "
             f"Command: `{result['command']}`. Details: `{details}`.", "", *figure_table(rows(result))]
    lines += ["", *(f"- {run}: {setting['setting']}: the queue {'kept up' if setting['keeps_up'] else 'fell behind'}"
                    for run, part in result["runs"].items() for setting in part["settings"])]
    return "\n".join(lines + ["", f"How: {result['method']}", ""])
