"""The benchmark: how fast this project trains, answers and serves, against the notebook it grew from.

    python -m vit.bench              # full: about 4 minutes on 2 quiet CPU cores -> bench/results.json, bench/README.md
    python -m vit.bench --quick      # about 30 s: small samples, untrained models, no time-to-99 % run
                                     #   -> bench/results-quick.json, bench/results-quick.md

Five parts, each figure stored with its goal and whether it was met (and, beside the inference part, each speed
choice timed against the code it replaced):
1. training throughput of vit.training's step against a loop written like the notebook's (per-item Dataset,
   DataLoader, manual softmax attention, Adam, torch's default threads), interleaved in one process;
2. wall-clock time of the "fast" preset to 99 % test accuracy;
3. single-image latency (bare forward; vit.analysis.explain, everything the Predict tab shows) and the
   batched evaluation of the 10,000 test images;
4. the running app: /predict through gradio_client, one client and many at once;
5. the shipped models' test accuracy beside the published anchors.
Absolute timings move with the machine's load, so the throughput is a ratio measured in the same run and
latencies are percentiles; the load average is recorded beside them.
"""

import argparse
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import einops
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from .analysis import explain, predict_split
from .data import DATA_DIR_VARIABLE, DataError, Split, load_split
from .model import ViT
from .training import (PRESETS, ema_decay_at, learning_rate, make_optimizer, resample, train, train_step,
                       update_ema)

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"  # the team's copy, used when neither --data-dir nor the variable is set
STARTUP_THREADS = torch.get_num_threads()  # torch's default for this machine, before anyone changes it
OUR_THREADS = 1                            # what train.py and app.py use
MODELS = {"mnist": "default", "mnist-tiny": "tiny"}  # shipped model folder -> the preset it was trained with
ANCHORS = {  # test accuracy in %, for the accuracy table
    "the notebook (tiny ViT, tile 7)": 96.97,
    "best pure ViT we know of": 99.5,
    "best single CNN": 99.83,
    "label-noise ceiling (about)": 99.85,
}


@dataclass(frozen=True)
class Budget:
    """How much of each measurement to take."""
    repetitions: int         # interleaved training blocks per loop
    steps: int               # optimiser steps per block ...
    block_seconds: float     # ... unless this runs out first (an overloaded machine can make a step take seconds)
    latency_runs: int        # single-image calls per latency figure
    evaluations: int         # passes over the test split, the median is kept
    app_requests: int        # sequential /predict calls from one client
    app_clients: int         # concurrent clients ...
    app_client_requests: int  # ... and the calls each makes
    time_to_99: bool         # run the fast preset to 99 %


FULL = Budget(repetitions=5, steps=50, block_seconds=10, latency_runs=200, evaluations=3, app_requests=100,
              app_clients=16, app_client_requests=20, time_to_99=True)
QUICK = Budget(repetitions=3, steps=10, block_seconds=1.5, latency_runs=50, evaluations=1, app_requests=20,
               app_clients=4, app_client_requests=5, time_to_99=False)


# --- Figures ------------------------------------------------------------------------------------------------

def figure(value: float | None, unit: str, goal: float | None = None, better: str = "lower", **extra) -> dict:
    """One measured number with its goal (a bound; `better` says which side) and whether it was met."""
    met = None if value is None or goal is None else bool(value <= goal if better == "lower" else value >= goal)
    rounded = None if value is None else round(float(value), 3 if abs(value) < 100 else 1)
    return {"value": rounded, "unit": unit, "goal": goal, "better": better if goal is not None else None,
            "met": met, **extra}


def percentiles(milliseconds: list[float], goal_p95: float | None = None) -> dict:
    """p50 and p95 of a list of durations in ms (p95 carries the goal)."""
    ordered = sorted(milliseconds)
    p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]  # nearest-rank
    return {"p50": figure(statistics.median(ordered), "ms"), "p95": figure(p95, "ms", goal_p95), "runs": len(ordered)}


def shown(path: Path) -> str:
    """A path as the reader would type it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def machine() -> dict:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(), "default_threads": STARTUP_THREADS, "load_average_start": _load()}


def _load() -> list[float] | None:
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


# --- 1. Training throughput: the project's step against the notebook's loop ---------------------------------

class NotebookDataset(Dataset):
    """Per-item access as the notebook had it: one float image (1, 28, 28) in [0, 1] and one label per call."""

    def __init__(self, split: Split):
        self.images, self.labels = split.images, split.labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index].float() / 255, int(self.labels[index])


class NotebookHead(nn.Module):
    """One attention head written out: softmax(q k^T / sqrt(d)) v, no fused kernel."""

    def __init__(self, embed_size: int, head_size: int):
        super().__init__()
        self.query = nn.Linear(embed_size, head_size, bias=False)
        self.key = nn.Linear(embed_size, head_size, bias=False)
        self.value = nn.Linear(embed_size, head_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.query(x), self.key(x), self.value(x)  # (B, T, hs)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(dim=-1)  # (B, T, T)
        return weights @ v  # (B, T, hs)


class NotebookBlock(nn.Module):
    """Pre-norm block with a list of heads concatenated and projected, then the MLP."""

    def __init__(self, embed_size: int, num_heads: int, mlp_size: int):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(embed_size), nn.LayerNorm(embed_size)
        self.heads = nn.ModuleList(NotebookHead(embed_size, embed_size // num_heads) for _ in range(num_heads))
        self.proj = nn.Linear(embed_size, embed_size)
        self.mlp = nn.Sequential(nn.Linear(embed_size, mlp_size), nn.GELU(), nn.Linear(mlp_size, embed_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        normed = self.norm1(x)
        x = x + self.proj(torch.cat([head(normed) for head in self.heads], dim=-1))  # (B, T, D)
        return x + self.mlp(self.norm2(x))


class NotebookNet(nn.Module):
    """The notebook's tiny ViT, re-written as the reference: nn.Embedding positions, CLS, manual attention."""

    def __init__(self, *, tile_size: int = 7, embed_size: int = 16, num_layers: int = 2, num_heads: int = 1,
                 mlp_size: int = 32, image_size: int = 28, channels: int = 1, num_classes: int = 10):
        super().__init__()
        self.tile_size = tile_size
        context_size = (image_size // tile_size) ** 2 + 1  # tiles + CLS
        self.positional_embedding = nn.Embedding(context_size, embed_size)
        self.tile_embedding = nn.Linear(tile_size * tile_size * channels, embed_size)
        self.cls_token = nn.Parameter(torch.randn(1, 1, embed_size))
        self.blocks = nn.Sequential(*(NotebookBlock(embed_size, num_heads, mlp_size) for _ in range(num_layers)))
        self.norm = nn.LayerNorm(embed_size)
        self.head = nn.Linear(embed_size, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = einops.rearrange(x, "b c (h t1) (w t2) -> b (h w) (c t1 t2)", t1=self.tile_size, t2=self.tile_size)
        x = self.tile_embedding(x)  # (B, N, D)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)  # (B, T, D)
        x = x + self.positional_embedding(torch.arange(x.shape[1]))
        return self.head(self.norm(self.blocks(x))[:, 0])


def notebook_steps(train_split: Split, architecture: dict, batch_size: int = 128):
    """The notebook's training loop, forever; yields the images of each step."""
    torch.manual_seed(0)
    model = NotebookNet(**architecture)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    loader = DataLoader(NotebookDataset(train_split), batch_size=batch_size, shuffle=True)
    model.train()
    while True:
        for images, labels in loader:
            optimizer.zero_grad()
            loss = F.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
            loss.item()  # the notebook kept the running loss
            yield len(labels)


def project_steps(train_split: Split, preset: str = "tiny"):
    """vit.training's step, forever (train() without the epoch bookkeeping); yields images per step."""
    torch.manual_seed(0)
    architecture, recipe = PRESETS[preset]
    model, ema = ViT(**architecture), ViT(**architecture)
    ema.load_state_dict(model.state_dict())
    optimizer = make_optimizer(model, recipe)
    generator = torch.Generator().manual_seed(recipe.seed)
    steps_per_epoch = math.ceil(len(train_split) / recipe.batch_size)
    total_steps, warmup_steps = recipe.epochs * steps_per_epoch, int(recipe.warmup_epochs * steps_per_epoch)
    model.train()
    step = 0
    while True:
        order = torch.randperm(len(train_split), generator=generator)
        for position in range(steps_per_epoch):
            images, labels = train_split.batch(order[position * recipe.batch_size:(position + 1) * recipe.batch_size])
            _, right = train_step(model, ema, optimizer, recipe, images, labels, generator=generator,
                                  lr=learning_rate(step, total_steps, warmup_steps, recipe.lr),
                                  ema_decay=ema_decay_at(recipe, step))
            right.item()  # train() counts correct answers every step
            step += 1
            yield len(labels)


def samples_per_second(steps, count: int, threads: int, seconds: float) -> tuple[float, int]:
    """Run `count` steps of a step iterator (fewer if `seconds` run out) on `threads` threads: images/s, steps."""
    torch.set_num_threads(threads)  # process-global: set before every block
    started, samples, done = time.perf_counter(), 0, 0
    while done < count and (done == 0 or time.perf_counter() - started < seconds):
        samples += next(steps)
        done += 1
    return samples / (time.perf_counter() - started), done


def bench_throughput(train_split: Split, budget: Budget) -> dict:
    """Interleaved blocks (ours, notebook, notebook on 1 thread, ours, ...) of the same tiny architecture."""
    architecture = PRESETS["tiny"][0]
    loops = {"ours": (project_steps(train_split), OUR_THREADS),
             "reference": (notebook_steps(train_split, architecture), STARTUP_THREADS),
             "reference_one_thread": (notebook_steps(train_split, architecture), 1)}
    for steps, threads in loops.values():  # warm-up: first-call allocations, the DataLoader's first shuffle
        samples_per_second(steps, 1, threads, 0)
    rates, counts = {name: [] for name in loops}, {name: [] for name in loops}
    for _ in range(budget.repetitions):
        for name, (steps, threads) in loops.items():
            rate, done = samples_per_second(steps, budget.steps, threads, budget.block_seconds)
            rates[name].append(rate)
            counts[name].append(done)
    median = {name: statistics.median(values) for name, values in rates.items()}
    runs = {name: [{"images_per_second": round(rate), "steps": done} for rate, done in zip(rates[name], counts[name])]
            for name in loops}
    return {
        "architecture": architecture, "batch_size": 128, "repetitions": budget.repetitions, "steps": budget.steps,
        "ours": figure(median["ours"], "images/s", threads=OUR_THREADS, runs=runs["ours"],
                       loop="vit.training: Split.batch indexing, batch augment, fused attention, AdamW, EMA"),
        "reference": figure(median["reference"], "images/s", threads=STARTUP_THREADS, runs=runs["reference"],
                            loop="notebook: per-item Dataset (from the uint8 tensor in memory, no PIL), DataLoader(shuffle), "
                                 "manual attention, Adam 3e-4"),
        "ratio": figure(median["ours"] / median["reference"], "×", goal=10, better="higher"),
        # the same notebook loop on one thread separates what the code gains from what the thread count gains
        "reference_one_thread": figure(median["reference_one_thread"], "images/s", threads=1,
                                       runs=runs["reference_one_thread"]),
        "ratio_same_threads": figure(median["ours"] / median["reference_one_thread"], "×"),
    }


def bench_choices(train_split: Split, test_split: Split, model: ViT, name: str, budget: Budget) -> dict:
    """Each speed choice of vit.training / vit.analysis beside what it replaced, timed in the same run."""
    torch.set_num_threads(OUR_THREADS)
    architecture, recipe = PRESETS["tiny"]
    images = train_split.batch(torch.arange(128))[0]
    theta = torch.eye(2, 3) + 0.1 * torch.randn(128, 2, 3, generator=torch.Generator().manual_seed(0))
    student, ema = ViT(**architecture), ViT(**architecture)

    def per_parameter_ema():  # what update_ema did before torch._foreach_lerp_
        with torch.no_grad():
            for ema_param, param in zip(ema.parameters(), student.parameters()):
                ema_param.lerp_(param, 0.001)

    def median_ms(call, runs: int) -> float:
        return statistics.median(milliseconds(lambda _: call(), [None] * runs))

    runs = budget.latency_runs * 2
    torch_grid = median_ms(lambda: F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False),
                                                 align_corners=False), runs)
    einsum_grid = median_ms(lambda: resample(images, theta), runs)
    loop_ema = median_ms(per_parameter_ema, runs)
    fused_ema = median_ms(lambda: update_ema(ema, student, 0.999), runs)
    for param in student.parameters():
        param.grad = torch.randn_like(param)
    fused_optimizer = make_optimizer(student, recipe)
    same_groups = [{"params": group["params"], "weight_decay": group["weight_decay"]}
                   for group in fused_optimizer.param_groups]
    default_optimizer = torch.optim.AdamW(same_groups, lr=recipe.lr)
    default_adamw = median_ms(default_optimizer.step, runs)  # torch's default on a CPU: one parameter at a time
    fused_adamw = median_ms(fused_optimizer.step, runs)
    batch_seconds = {}
    for _ in range(budget.evaluations):  # interleaved
        for size in (1000, 100):
            started = time.perf_counter()
            predict_split(model, test_split, batch_size=size)
            batch_seconds.setdefault(size, []).append(time.perf_counter() - started)
    return {
        "augment_affine_grid_ms": figure(torch_grid, "ms", batch=128),
        "augment_einsum_grid_ms": figure(einsum_grid, "ms", batch=128),
        "ema_per_parameter_ms": figure(loop_ema, "ms", model="tiny"),
        "ema_fused_ms": figure(fused_ema, "ms", model="tiny"),
        "adamw_default_ms": figure(default_adamw, "ms", model="tiny"),
        "adamw_fused_ms": figure(fused_adamw, "ms", model="tiny"),
        "evaluation_batch_1000_s": figure(statistics.median(batch_seconds[1000]), "s", images=len(test_split)),
        "evaluation_batch_100_s": figure(statistics.median(batch_seconds[100]), "s", images=len(test_split)),
        "evaluation_model": name,
    }


# --- 2. Time to 99 % ----------------------------------------------------------------------------------------

def bench_time_to_99(train_split: Split, test_split: Split, workdir: Path) -> dict:
    """Train the fast preset as train.py does and read the first epoch at >= 99 % from its history."""
    torch.set_num_threads(OUR_THREADS)
    torch.manual_seed(0)
    architecture, recipe = PRESETS["fast"]
    _, history, seconds = train(ViT(**architecture), train_split, test_split, recipe, device=torch.device("cpu"),
                                checkpoint=workdir / "fast.safetensors", progress=False)
    reached = next((record for record in history if record["test_accuracy"] >= 0.99), None)
    seconds_to_99 = figure(reached and reached["seconds"], "s", goal=180)
    if reached is None:  # never reaching 99 % misses the goal; there is no time to report
        seconds_to_99 |= {"met": False, "note": f"not reached in {recipe.epochs} epochs"}
    return {"seconds": seconds_to_99, "epoch": reached and reached["epoch"], "epochs": recipe.epochs,
            "threads": OUR_THREADS, "preset": "fast", "architecture": architecture,
            "final_accuracy": history[-1]["test_accuracy"], "total_seconds": round(seconds, 1),
            "history": [{key: record[key] for key in ("epoch", "test_accuracy", "seconds")} for record in history]}


# --- 3. Inference -------------------------------------------------------------------------------------------

def load_model(name: str, weights_dir: Path, trained: bool) -> tuple[ViT, str]:
    """The shipped model folder when asked for and present, else a freshly initialised model of its preset."""
    folder = weights_dir / name
    if trained and (folder / "config.json").is_file() and (folder / "model.safetensors").is_file():
        return ViT.from_pretrained(folder).eval(), shown(folder)
    torch.manual_seed(0)
    return ViT(**PRESETS[MODELS[name]][0]).eval(), "untrained"


def milliseconds(call, inputs: list, warmup: int = 5) -> list[float]:
    """Duration of call(x) for each x, in ms, after a few untimed calls."""
    for x in inputs[:warmup]:
        call(x)
    durations = []
    for x in inputs:
        started = time.perf_counter()
        call(x)
        durations.append((time.perf_counter() - started) * 1000)
    return durations


def bench_inference(model: ViT, source: str, test_split: Split, budget: Budget) -> tuple[dict, torch.Tensor]:
    """Latency of one image (forward; explain) and time of the whole test split; returns the probabilities too."""
    torch.set_num_threads(OUR_THREADS)
    images = [test_split.images[i, 0].float() / 255 for i in range(budget.latency_runs)]  # (28, 28) each

    def forward(image):
        with torch.no_grad():
            model(image[None, None]).softmax(dim=-1)

    evaluations = {OUR_THREADS: [], STARTUP_THREADS: []}  # one thread (as train.py) and all cores, interleaved
    for _ in range(budget.evaluations):
        for threads, seconds in evaluations.items():
            torch.set_num_threads(threads)
            started = time.perf_counter()
            probabilities, _ = predict_split(model, test_split)
            seconds.append(time.perf_counter() - started)
    torch.set_num_threads(OUR_THREADS)
    result = {"weights": source, "config": {key: getattr(model, key) for key in ("tile_size", "num_layers", "num_heads")},
              "parameters": sum(p.numel() for p in model.parameters()), "threads": OUR_THREADS,
              "forward_ms": percentiles(milliseconds(forward, images)),
              "explain_ms": percentiles(milliseconds(lambda image: explain(model, image), images), goal_p95=30),
              "test_split_seconds": figure(statistics.median(evaluations[OUR_THREADS]), "s", images=len(test_split),
                                           runs=len(evaluations[OUR_THREADS]), threads=OUR_THREADS),
              "test_split_seconds_all_cores": figure(statistics.median(evaluations[STARTUP_THREADS]), "s", goal=3,
                                                     images=len(test_split), runs=len(evaluations[STARTUP_THREADS]),
                                                     threads=STARTUP_THREADS)}
    return result, probabilities


# --- 4. The running app -------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    """Poll the app's page until it answers; fail with the app's own output if it exits or never answers."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost: never through a proxy
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"app.py exited with status {process.returncode}:\n{log.read_text()[-2000:]}")
        try:
            with opener.open(url + "gradio_api/info", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"app.py did not answer at {url} within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


@contextmanager
def running_app(weights_dir: Path, log: Path, env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()):
    """`python app.py --weights-dir weights_dir` on a free port until the block ends; yields (url, process).

    `prefix` runs it through another command (e.g. nice). The tests launch the app through this too.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log, "w") as output:
        process = subprocess.Popen([*prefix, sys.executable, str(ROOT / "app.py"), "--port", str(port),
                                    "--weights-dir", str(weights_dir)], cwd=ROOT, env=env, stdout=output,
                                   stderr=subprocess.STDOUT)
    try:
        wait_until_up(url, process, log)
        yield url, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def untrained_weights_dir(name: str, test_split: Split, workdir: Path) -> Path:
    """A folder holding one freshly initialised model folder `name`, in the layout the app loads."""
    from .training import write_model_folder  # writes the evaluation files the app needs
    torch.manual_seed(0)
    architecture, recipe = PRESETS[MODELS[name]]
    folder = workdir / "weights" / name
    write_model_folder(folder, ViT(**architecture).eval(), recipe, test_split, dataset="mnist", history=[],
                       seconds=0.0, command="untrained (vit.bench)", device="cpu")
    return folder.parent


def save_digits(test_split: Split, folder: Path, count: int = 64) -> list[tuple[Path, str]]:
    """The first `count` test digits as 28x28 PNG files, with their labels."""
    from PIL import Image
    folder.mkdir(parents=True, exist_ok=True)
    digits = []
    for index in range(count):
        path = folder / f"digit-{index:03d}.png"
        Image.fromarray(test_split.images[index, 0].numpy()).save(path)
        digits.append((path, str(int(test_split.labels[index]))))
    return digits


def predict_calls(url: str, digits: list[tuple[Path, str]], count: int, offset: int = 0, *, fast_client: bool = True,
                  start: threading.Barrier | None = None) -> list[tuple[float, str]]:
    """`count` calls of /predict from one new client: (ms, "ok" | "wrong" | "error: ...") each.

    fast_client: ssl_verify=False. The URL is plain HTTP, so nothing is left unverified; it only stops
    gradio_client from building a TLS context (loading the whole CA bundle) for each of its three requests.
    """
    from gradio_client import Client, handle_file
    options = {"ssl_verify": False} if fast_client else {}
    client = Client(url, verbose=False, analytics_enabled=False, download_files=False, **options)
    if start is not None:
        start.wait()  # every client is connected before the first call: they really overlap
    outcomes = []
    for call in range(count):
        path, label = digits[(offset + call) % len(digits)]
        started = time.perf_counter()
        try:
            answer = client.predict(handle_file(str(path)), api_name="/predict")
            outcome = "ok" if isinstance(answer, dict) and answer.get("label") == label else "wrong"
        except Exception as error:  # any failure of the call is what is being counted
            outcome = f"error: {type(error).__name__}: {error}"[:200]
        outcomes.append(((time.perf_counter() - started) * 1000, outcome))
    return outcomes


def http_calls(url: str, digits: list[tuple[Path, str]], count: int) -> list[tuple[float, str]]:
    """The same /predict through Gradio's REST API on one plain HTTP connection: upload, call, read the result.

    gradio_client waits for server messages by polling every 50 ms; this shows what the server itself takes.
    """
    import httpx  # gradio's own HTTP client
    with httpx.Client(base_url=url, trust_env=False, timeout=60) as http:
        parameters = http.get("gradio_api/info").json()["named_endpoints"]["/predict"]["parameters"]
        defaults = [parameter.get("parameter_default") for parameter in parameters[1:]]  # e.g. the model name
        outcomes = []
        for call in range(count):
            path, label = digits[call % len(digits)]
            started = time.perf_counter()
            try:
                upload = http.post("gradio_api/upload", files={"files": (path.name, path.read_bytes(), "image/png")})
                data = [{"path": upload.raise_for_status().json()[0], "meta": {"_type": "gradio.FileData"}}, *defaults]
                event = http.post("gradio_api/call/predict", json={"data": data}).raise_for_status().json()["event_id"]
                stream = http.get(f"gradio_api/call/predict/{event}").raise_for_status().text
                kind = [line[7:] for line in stream.splitlines() if line.startswith("event: ")][-1]
                payload = [line[6:] for line in stream.splitlines() if line.startswith("data: ")][-1]
                if kind != "complete":
                    raise RuntimeError(f"{kind}: {payload}")
                answer = json.loads(payload)[0]
                outcome = "ok" if isinstance(answer, dict) and answer.get("label") == label else "wrong"
            except Exception as error:  # any failure of the call is what is being counted
                outcome = f"error: {type(error).__name__}: {error}"[:200]
            outcomes.append(((time.perf_counter() - started) * 1000, outcome))
    return outcomes


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a process has used so far (Linux /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()  # fields from the 3rd on
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


def measured_calls(server_pid: int, calls):
    """Run calls() -> outcomes; also return the CPU ms per call spent by the server and by this process."""
    server, clients = cpu_seconds(server_pid), time.process_time()
    outcomes = calls()
    server_after, clients_after = cpu_seconds(server_pid), time.process_time()
    per_call = lambda before, after: None if before is None or after is None else round(  # noqa: E731
        (after - before) * 1000 / len(outcomes), 1)
    return outcomes, {"server": per_call(server, server_after), "clients": per_call(clients, clients_after)}


def summarise_calls(outcomes: list[tuple[float, str]], goal_p95: float | None, **extra) -> dict:
    errors = [outcome for _, outcome in outcomes if outcome.startswith("error")]
    return {**percentiles([ms for ms, _ in outcomes], goal_p95), **extra,
            "errors": figure(len(errors), "calls", goal=0), "first_error": errors[0] if errors else None,
            "wrong_labels": figure(sum(outcome == "wrong" for _, outcome in outcomes), "calls")}


def bench_app(weights_dir: Path, source: str, test_split: Split, budget: Budget, workdir: Path) -> dict:
    """Start `python app.py` on a free port, call /predict with one client, then many at once, and stop it."""
    started = time.perf_counter()
    env = os.environ | {"NO_PROXY": "127.0.0.1,localhost"}
    with running_app(weights_dir, workdir / "app.log", env) as (url, process):
        startup = time.perf_counter() - started
        digits = save_digits(test_split, workdir / "digits")
        predict_calls(url, digits, 2)  # warm-up: the server's first call loads what it loads lazily
        default_client, default_cpu = measured_calls(process.pid, lambda: predict_calls(
            url, digits, max(3, budget.app_requests // 10), fast_client=False))
        single, single_cpu = measured_calls(process.pid, lambda: predict_calls(url, digits, budget.app_requests))
        plain, plain_cpu = measured_calls(process.pid, lambda: http_calls(url, digits, budget.app_requests))
        start = threading.Barrier(budget.app_clients)

        def many():
            with ThreadPoolExecutor(budget.app_clients) as pool:
                batches = pool.map(lambda client: predict_calls(url, digits, budget.app_client_requests,
                                                                offset=client * 7, start=start),
                                   range(budget.app_clients))
                return [outcome for batch in batches for outcome in batch]

        concurrent, concurrent_cpu = measured_calls(process.pid, many)
    return {"weights": source, "startup_seconds": figure(startup, "s"),
            "client": "gradio_client Client(url, ssl_verify=False), one Client per thread",
            "one_client": summarise_calls(single, 150, clients=1, requests=len(single), cpu_ms_per_call=single_cpu),
            "concurrent": summarise_calls(concurrent, 1000, clients=budget.app_clients, requests=len(concurrent),
                                          cpu_ms_per_call=concurrent_cpu),
            # the same calls with gradio_client's defaults: what a script that does not know the above pays
            "one_client_default_options": summarise_calls(default_client, None, clients=1, requests=len(default_client),
                                                          cpu_ms_per_call=default_cpu),
            # and without gradio_client: the server's own time plus one HTTP round trip per step
            "one_client_plain_http": summarise_calls(plain, None, clients=1, requests=len(plain),
                                                     cpu_ms_per_call=plain_cpu)}


# --- 5. Accuracy --------------------------------------------------------------------------------------------

def bench_accuracy(measured: dict[str, torch.Tensor | None], test_split: Split, weights_dir: Path) -> dict:
    """Measured test accuracy of each shipped model (or its evaluation.json in --quick), beside the anchors."""
    shipped = {}
    for name, probabilities in measured.items():
        goal = ANCHORS["the notebook (tiny ViT, tile 7)"] if name == "mnist-tiny" else None  # same model: match it
        summary = weights_dir / name / "evaluation.json"
        if probabilities is not None:
            accuracy = (probabilities.argmax(-1) == test_split.labels).float().mean().item() * 100
            shipped[name] = figure(accuracy, "%", goal, "higher", source="measured on the test split")
        elif summary.is_file():
            accuracy = json.loads(summary.read_text())["accuracy"] * 100
            shipped[name] = figure(accuracy, "%", goal, "higher", source=shown(summary))
        else:
            shipped[name] = figure(None, "%", goal, "higher", source=f"absent: no {shown(weights_dir / name)}")
    return {"shipped": shipped, "anchors": {name: figure(value, "%") for name, value in ANCHORS.items()}}


# --- Report -------------------------------------------------------------------------------------------------

def rows(results: dict) -> list[tuple[str, dict]]:
    """Every reported figure as (name, figure), in reading order."""
    table = []
    throughput = results["throughput"]
    table += [(f"training, ours ({throughput['ours']['threads']} thread)", throughput["ours"]),
              (f"training, notebook loop ({throughput['reference']['threads']} threads)", throughput["reference"]),
              ("training speed-up", throughput["ratio"]),
              ("training, notebook loop (1 thread)", throughput["reference_one_thread"]),
              ("training speed-up, both on 1 thread", throughput["ratio_same_threads"]),
              (time_to_99_label(results["time_to_99"]), results["time_to_99"]["seconds"])]
    for name, part in results["inference"].items():
        weights = "untrained" if part["weights"] == "untrained" else "trained"
        for key, label in (("forward_ms", "forward"), ("explain_ms", "predict + explain")):
            table += [(f"{name} ({weights}): {label} p50", part[key]["p50"]),
                      (f"{name} ({weights}): {label} p95", part[key]["p95"])]
        for key in ("test_split_seconds", "test_split_seconds_all_cores"):
            threads = part[key]["threads"]
            table.append((f"{name} ({weights}): 10k test images, {threads} thread{'s' if threads > 1 else ''}", part[key]))
    choices = results.get("choices")  # results files from before these rows have none
    if choices:
        model = choices["evaluation_model"]
        table += [("augmenting 128 images, F.affine_grid + grid_sample (before)", choices["augment_affine_grid_ms"]),
                  ("augmenting 128 images, einsum grid + grid_sample (now)", choices["augment_einsum_grid_ms"]),
                  ("EMA update, tiny model, one lerp_ per parameter (before)", choices["ema_per_parameter_ms"]),
                  ("EMA update, tiny model, one fused _foreach_lerp_ (now)", choices["ema_fused_ms"]),
                  ("AdamW step, tiny model, torch's default on a CPU (before)", choices["adamw_default_ms"]),
                  ("AdamW step, tiny model, fused=True (now)", choices["adamw_fused_ms"]),
                  (f"{model}: 10k test images in batches of 1000 (before)", choices["evaluation_batch_1000_s"]),
                  (f"{model}: 10k test images in batches of 100 (now)", choices["evaluation_batch_100_s"])]
    app = results["app"]
    if app.get("skipped"):
        table.append((f"app: skipped ({app['skipped']})", figure(None, "")))
    else:
        table.append(("app: start-up", app["startup_seconds"]))
        for key in ("one_client", "concurrent"):
            part = app[key]
            label = f"app /predict, {part['clients']} client{'s' if part['clients'] > 1 else ''}"
            table += [(f"{label} p50", part["p50"]), (f"{label} p95", part["p95"]), (f"{label} errors", part["errors"]),
                      (f"{label} wrong labels", part["wrong_labels"])]
        table += [("app /predict, 1 client, gradio_client defaults, p50", app["one_client_default_options"]["p50"]),
                  ("app /predict, 1 client, plain HTTP (REST API), p50", app["one_client_plain_http"]["p50"]),
                  ("app /predict, 1 client, plain HTTP (REST API), p95", app["one_client_plain_http"]["p95"])]
    for name, value in results["accuracy"]["shipped"].items():
        table.append((f"accuracy: {name}", value))
    for name, value in results["accuracy"]["anchors"].items():
        table.append((f"accuracy: {name}", value))
    return table


def time_to_99_label(part: dict) -> str:
    if part.get("skipped"):
        return f"fast preset: time to 99 % (skipped: {part['skipped']})"
    if part["epoch"] is None:
        return (f"fast preset: time to 99 % (not reached: {part['final_accuracy'] * 100:.2f} % after "
                f"{part['epochs']} epochs, {part['total_seconds']:.0f} s)")
    return f"fast preset: time to 99 % (epoch {part['epoch']} of {part['epochs']})"


def format_value(value: dict) -> str:
    number = value["value"]
    if number is None:
        return "—"
    if value["unit"] == "%":
        text = f"{number:.2f}"
    elif abs(number) >= 100:
        text = f"{number:,.0f}".replace(",", " ")
    else:
        text = f"{number:.3g}"
    return f"{text} {value['unit']}".rstrip()


def format_goal(value: dict) -> str:
    return "" if value["goal"] is None else f"{'≤' if value['better'] == 'lower' else '≥'} {value['goal']:g} {value['unit']}"


def format_met(value: dict) -> str:
    return {True: "met", False: "MISSED", None: ""}[value["met"]]


def text_table(results: dict) -> str:
    table = [(name, format_value(value), format_goal(value), format_met(value)) for name, value in rows(results)]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in table)


def markdown(results: dict) -> str:
    """The table for the README: date, machine, then every figure with its goal."""
    info = results["machine"]
    lines = [f"# Benchmark ({results['mode']} mode)", "",
             f"Measured {results['date']} on {info['cpu']}, {info['cores']} cores, torch {info['torch']}, "
             f"Python {info['python']}; load average {info['load_average_start']} at the start. "
             f"Command: `{results['command']}`. Figures and details: `results.json`.", "",
             "| figure | value | goal | |", "| --- | ---: | --- | --- |"]
    lines += [f"| {name} | {format_value(value)} | {format_goal(value)} | {format_met(value)} |"
              for name, value in rows(results)]
    throughput, app = results["throughput"], results["app"]
    notes = [f"- Training: the tiny architecture, batch 128, {throughput['repetitions']} interleaved blocks of up to "
             f"{throughput['steps']} steps per loop; ours on {throughput['ours']['threads']} thread, the notebook's "
             f"loop on torch's default ({throughput['reference']['threads']}) and, to separate the two effects, on 1.",
             "- Time to 99 %: `PRESETS[\"fast\"]` through `vit.training.train` on 1 thread; the seconds include each "
             "epoch's test evaluation.",
             *(f"- {name}: weights `{part['weights']}`, {part['parameters']:,} parameters, "
               f"{part['threads']} thread (the 10k evaluation also on all cores)"
               for name, part in results["inference"].items()),
             "- Before / now: each speed choice in `vit.training` and `vit.analysis` timed beside the code it "
             "replaced, medians on 1 thread in the same run."]
    if not app.get("skipped"):
        notes.append(f"- App: `python app.py` with weights `{app['weights']}`, called through {app['client']}.")
    return "\n".join(lines + ["", *notes, ""])


# --- Command line -------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vit.bench", description=__doc__.split("\n")[0],
                                     epilog="Run it on a quiet machine: other processes' load slows every figure.")
    parser.add_argument("--quick", action="store_true",
                        help="under a minute: small samples, untrained models, accuracy read from evaluation.json, "
                             "no time-to-99 %% run")
    parser.add_argument("--output", type=Path, default=None,
                        help="JSON to write (default: bench/results.json, with --quick bench/results-quick.json); "
                             "the markdown table goes beside it: README.md for results.json, else NAME.md")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"folder holding the MNIST IDX files (default: ${DATA_DIR_VARIABLE}, else ../shared/data, "
                             "else the download cache)")
    parser.add_argument("--weights-dir", type=Path, default=ROOT / "weights",
                        help="folder of shipped model folders: mnist, mnist-tiny (default: weights/)")
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=list(MODELS),
                        help="models for the inference, app and accuracy parts (default: all)")
    parser.add_argument("--skip-app", action="store_true", help="leave out the running-app part")
    args = parser.parse_args(argv)
    args.output = args.output or ROOT / "bench" / ("results-quick.json" if args.quick else "results.json")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    budget = QUICK if args.quick else FULL
    command = "python -m vit.bench" + (" --quick" if args.quick else "")
    results = {"mode": "quick" if args.quick else "full", "command": command,
               "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine()}
    data_dir = args.data_dir or os.environ.get(DATA_DIR_VARIABLE) or (SHARED_DATA if SHARED_DATA.is_dir() else None)
    try:
        train_split = load_split("mnist", "train", data_dir)
        test_split = load_split("mnist", "test", data_dir)
    except DataError as error:
        print(f"python -m vit.bench: {error}", file=sys.stderr)
        return 2
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="vit-bench-") as temporary:
        workdir = Path(temporary)
        log("1/5 training throughput")
        results["throughput"] = bench_throughput(train_split, budget)
        log("2/5 time to 99 %" + ("" if budget.time_to_99 else ": skipped in --quick"))
        results["time_to_99"] = (bench_time_to_99(train_split, test_split, workdir) if budget.time_to_99 else
                                 {"seconds": figure(None, "s", goal=180), "skipped": "quick mode"})
        log("3/5 inference")
        results["inference"], measured = {}, {}
        for name in args.models:
            model, source = load_model(name, args.weights_dir, trained=not args.quick)
            results["inference"][name], probabilities = bench_inference(model, source, test_split, budget)
            measured[name] = probabilities if source != "untrained" else None
            if "choices" not in results:  # the first model (by default mnist, the larger) times the choices
                results["choices"] = bench_choices(train_split, test_split, model, name, budget)
        log("4/5 the running app" + (": skipped" if args.skip_app else ""))
        if args.skip_app:
            results["app"] = {"skipped": "--skip-app"}
        else:
            shipped = not args.quick and any((args.weights_dir / name / "evaluation.json").is_file()
                                             for name in args.models)
            weights_dir = args.weights_dir if shipped else untrained_weights_dir(args.models[0], test_split, workdir)
            results["app"] = bench_app(weights_dir, shown(weights_dir) if shipped else "untrained", test_split,
                                       budget, workdir)
        log("5/5 accuracy")
        results["accuracy"] = bench_accuracy(measured, test_split, args.weights_dir)
    results["machine"]["load_average_end"] = _load()
    flagged = [(name, value) for name, value in rows(results) if value["met"] is not None]
    results["summary"] = {"met": sum(value["met"] for _, value in flagged),
                          "missed": [name for name, value in flagged if not value["met"]]}
    table = args.output.with_name("README.md") if args.output.name == "results.json" else args.output.with_suffix(".md")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=1) + "\n")
    table.write_text(markdown(results))
    print(text_table(results))
    print(f"\n{results['summary']['met']} goals met, {len(results['summary']['missed'])} missed; "
          f"-> {shown(args.output)}, {shown(table)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
