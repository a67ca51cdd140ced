"""Figures measured in this process: time to accuracy (the seed's recipe and ours), the speed choices (before /
now), single-image latency, the Predict tab's update, evaluation of the test split and the accuracy it gives.

Each figure runs on OUR_THREADS, as app.py does, unless it says otherwise (training picks its threads as
train.py does); every call is timed after a few untimed ones, and alternatives are interleaved so that a
change of load hits both.
"""

from dataclasses import asdict
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from vit import faithfulness
from vit.pacing import choose_threads
from vit.analysis import explain, predict_split
from vit.data import Split, carve_validation
from vit.model import ViT
from vit.preprocess import data_url
from vit.augment import resample
from vit.bundle import EVALUATION_JSON, read_evaluation
from vit.evaluate import TrainingFacts, write_model_folder
from vit.optimiser import make_optimizer, update_ema
from vit.recipe import PRESETS
from vit.training import train

from . import ROOT
from .budget import MODELS, OUR_THREADS, STARTUP_THREADS, Budget
from .notebook import notebook_steps
from .report import figure, percentiles, shown

ANCHORS = {  # test accuracy in %, for the accuracy table
    "the notebook (tiny ViT, tile 7)": 96.97,
    "best pure ViT we know of": 99.5,
    "best single CNN": 99.83,
    "label-noise ceiling (about)": 99.85,
}
SKETCH_SIDE = 336  # the Predict tab's drawing pad (tabs/pad.py SIDE)


def bench_choices(train_split: Split, test_split: Split, model: ViT, name: str, budget: Budget) -> dict:
    """Each speed choice of vit.augment, vit.optimiser and vit.analysis beside what it replaced, timed in the same run."""
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


# --- Time to accuracy: the seed's recipe against ours ----------------------------------------------------------

SEED_ACCURACY, SEED_EPOCHS = 0.9697, 500  # the seed's test accuracy and the epochs it trained to reach it


def bench_seed_recipe(train_split: Split, budget: Budget) -> dict:
    """Epochs of the seed's recipe (bench.notebook: its model, Adam 3e-4, batch 128, a per-item DataLoader,
    torch's default threads) over the 60,000 training images it used; its time to 96.97 % is 500 of them."""
    torch.set_num_threads(STARTUP_THREADS)
    steps = notebook_steps(train_split, PRESETS["tiny"][0])
    per_epoch = math.ceil(len(train_split) / 128)
    timed = min(per_epoch, budget.seed_steps)  # --quick times part of an epoch and scales it up
    next(steps)  # warm-up: the DataLoader's first shuffle, first-call allocations
    epochs = []
    for _ in range(budget.seed_epochs):
        started = time.perf_counter()
        for _ in range(timed):
            next(steps)
        epochs.append((time.perf_counter() - started) * per_epoch / timed)
    epoch = statistics.median(epochs)
    return {"epoch_seconds": figure(epoch, "s", runs=[round(e, 2) for e in epochs], steps_timed=timed,
                                    steps_per_epoch=per_epoch),
            "seconds_to_accuracy": figure(epoch * SEED_EPOCHS, "s", epochs=SEED_EPOCHS, accuracy=SEED_ACCURACY),
            "threads": STARTUP_THREADS, "images": len(train_split)}


def bench_time_to_accuracy(train_split: Split, test_split: Split, workdir: Path, seed: dict | None) -> dict:
    """Train the fast preset as train.py does (the validation split carved out, threads by measurement) and
    read from its history the first epoch at 96.97 % and at 99 %; the ratio to the seed's time to 96.97 %.

    train() follows the split it is given under "val_*"; here that is the test split, only to report when
    each accuracy is reached (nothing is chosen from it)."""
    torch.manual_seed(0)
    architecture, recipe = PRESETS["fast"]
    model = ViT(**architecture)
    training, _ = carve_validation(train_split)
    threads, _ = choose_threads(model, recipe, training, torch.device("cpu"))
    _, history, seconds = train(model, training, test_split, recipe, device=torch.device("cpu"),
                                checkpoint=workdir / "fast.safetensors", progress=False)
    part = {"epochs": recipe.epochs, "threads": threads, "preset": "fast", "architecture": architecture,
            "final_accuracy": history[-1]["val_accuracy"], "total_seconds": round(seconds, 1),
            "history": [{"epoch": r["epoch"], "test_accuracy": r["val_accuracy"], "seconds": r["seconds"]}
                        for r in history]}
    for goal, name in ((0.99, "to_99"), (SEED_ACCURACY, "to_seed_accuracy")):
        record = next((record for record in history if record["val_accuracy"] >= goal), None)
        part[name] = figure(record and record["seconds"], "s", goal=180 if goal == 0.99 else None,
                            epoch=record and record["epoch"])
        if record is None:  # never reaching it misses the goal; there is no time to report
            part[name] |= {"met": False if goal == 0.99 else None, "note": f"not reached in {recipe.epochs} epochs"}
    ours = part["to_seed_accuracy"]["value"]
    theirs = seed["seconds_to_accuracy"]["value"] if seed else None
    part["ratio"] = figure(theirs / ours if ours and theirs else None, "×", goal=100, better="higher")
    return part


# --- Models and single-image latency --------------------------------------------------------------------------

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
    config = {key: getattr(model, key) for key in ("tile_size", "num_layers", "num_heads")}
    result = {"weights": source, "config": config,
              "parameters": model.parameter_count, "threads": OUR_THREADS,
              "forward_ms": percentiles(milliseconds(forward, images)),
              "explain_ms": percentiles(milliseconds(lambda image: explain(model, image), images), goal_p95=30),
              # the Predict tab's maps and the picture test of "Which map to trust?" (six maps, their curves)
              "explain_and_faithfulness_ms": percentiles(milliseconds(lambda image: explain_and_test(model, image),
                                                                      images[:max(10, len(images) // 4)]), goal_p95=30),
              "test_split_seconds": figure(statistics.median(evaluations[OUR_THREADS]), "s", images=len(test_split),
                                           runs=len(evaluations[OUR_THREADS]), threads=OUR_THREADS),
              "test_split_seconds_all_cores": figure(statistics.median(evaluations[STARTUP_THREADS]), "s", goal=3,
                                                     images=len(test_split), runs=len(evaluations[STARTUP_THREADS]),
                                                     threads=STARTUP_THREADS)}
    return result, probabilities


def explain_and_test(model: ViT, image: torch.Tensor) -> None:
    explained = explain(model, image)
    faithfulness.picture_test(model, image, explained.predicted)


def untrained_weights_dir(name: str, test_split: Split, workdir: Path) -> Path:
    """A folder holding one freshly initialised model folder `name`, in the layout the app loads."""
    torch.manual_seed(0)
    architecture, recipe = PRESETS[MODELS[name]]
    folder = workdir / "weights" / name
    facts = TrainingFacts("mnist", [], 0.0, "untrained (python -m bench)", "cpu", asdict(recipe))
    write_model_folder(folder, ViT(**architecture).eval(), test_split, facts)
    return folder.parent


# --- The Predict tab's update, in process ---------------------------------------------------------------------

def predict_handlers():
    """The app's model loader and the Predict tab's registry and handlers (imported here: they bring gradio)."""
    if str(ROOT) not in sys.path:  # app.py and tabs/ sit at the top of the repository, not in a package
        sys.path.insert(0, str(ROOT))
    import app
    import tabs.pad
    import tabs.predict
    import vit.registry

    def read_stroke(model_name: str, drawing: str):
        return tabs.predict.read_drawing(model_name, tabs.pad.event(drawing))
    return app.load_models, vit.registry.use_models, read_stroke, tabs.predict.show_maps


def drawing(digit: np.ndarray) -> str:
    """A uint8 (28, 28) MNIST digit as the drawing pad sends a stroke: its 336×336 canvas, black ink on white,
    as a PNG data URL."""
    picture = Image.fromarray(255 - digit).resize((SKETCH_SIDE, SKETCH_SIDE), Image.Resampling.BILINEAR)
    return data_url(picture.convert("RGBA"))  # the canvas's PNG is RGBA


def bench_predict_update(weights_dir: Path, source: str, test_split: Split, budget: Budget) -> dict:
    """One stroke's work on the server, without HTTP: read_drawing (the PNG decoded and read: the label), then
    show_maps (every map)."""
    try:
        load_models, use_models, read_stroke, show_maps = predict_handlers()
    except (ImportError, AttributeError) as error:  # the app's side of the contract is missing
        return {"not_measured": f"{type(error).__name__}: {error}"[:200], **percentiles([], goal_p95=30)}
    torch.set_num_threads(OUR_THREADS)
    bundles = load_models(weights_dir)
    use_models(bundles)
    name = bundles[0].name  # the model a visitor draws for
    strokes = [drawing(test_split.images[i, 0].numpy()) for i in range(budget.latency_runs)]
    unread = set()

    def update(index: int) -> None:
        current, *_ = read_stroke(name, strokes[index])
        maps = show_maps(current, name)
        if current is None or any(shown.get("value") is None for shown in maps[:-1]):  # a prompt: nothing timed
            unread.add(index)

    durations = milliseconds(update, list(range(len(strokes))))
    return {"model": name, "weights": source, "threads": OUR_THREADS, **percentiles(durations, goal_p95=30),
            "not_read": figure(len(unread), "calls", goal=0)}


# --- Accuracy on the test split -------------------------------------------------------------------------------

def bench_accuracy(measured: dict[str, torch.Tensor | None], test_split: Split, weights_dir: Path) -> dict:
    """Measured test accuracy of each shipped model (or its evaluation.json in --quick), beside the anchors."""
    shipped = {}
    for name, probabilities in measured.items():
        goal = ANCHORS["the notebook (tiny ViT, tile 7)"] if name == "mnist-tiny" else None  # same model: match it
        folder = weights_dir / name
        if probabilities is not None:
            accuracy = (probabilities.argmax(-1) == test_split.labels).float().mean().item() * 100
            shipped[name] = figure(accuracy, "%", goal, "higher", source="measured on the test split")
        elif (folder / "config.json").is_file():
            accuracy = read_evaluation(folder).accuracy * 100
            shipped[name] = figure(accuracy, "%", goal, "higher", source=shown(folder / EVALUATION_JSON))
        else:
            shipped[name] = figure(None, "%", goal, "higher", source=f"absent: no {shown(weights_dir / name)}")
    return {"shipped": shipped, "anchors": {name: figure(value, "%") for name, value in ANCHORS.items()}}


