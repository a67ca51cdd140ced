"""The benchmark (bench/, run as `python -m bench`): its reference model is the notebook's architecture, its
pieces flag goals and read drawings as the app does, and a tiny run reports every figure.

No test asserts a duration: timings depend on the machine and its load.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from bench import app as bench_app
from bench import timings
from bench.notebook import NotebookNet
from bench.report import figure, percentiles, reached_label
from conftest import ROOT, TINY
from vit.data import load_split


def copy_into_notebook(model) -> NotebookNet:
    """A NotebookNet holding exactly the weights of a ViT (whose qkv biases are still zero)."""
    notebook = NotebookNet(tile_size=TINY["tile_size"], embed_size=TINY["embed_size"], num_layers=TINY["num_layers"],
                           num_heads=TINY["num_heads"], mlp_size=TINY["mlp_size"])
    width, heads = TINY["embed_size"], TINY["num_heads"]
    head_size = width // heads
    with torch.no_grad():
        notebook.tile_embedding.load_state_dict(model.tile_embedding.state_dict())
        notebook.cls_token.copy_(model.cls_token)
        notebook.positional_embedding.weight.copy_(model.pos_embedding[0])
        for ours, theirs in zip(model.blocks, notebook.blocks):
            assert not ours.attention.qkv.bias.any()
            q, k, v = ours.attention.qkv.weight.split(width)  # rows laid out as (three h d)
            for index, head in enumerate(theirs.heads):
                rows = slice(index * head_size, (index + 1) * head_size)
                head.query.weight.copy_(q[rows]), head.key.weight.copy_(k[rows]), head.value.weight.copy_(v[rows])
            theirs.proj.load_state_dict(ours.attention.proj.state_dict())
            theirs.norm1.load_state_dict(ours.norm1.state_dict())
            theirs.norm2.load_state_dict(ours.norm2.state_dict())
            theirs.mlp[0].load_state_dict(ours.mlp.up.state_dict())
            theirs.mlp[2].load_state_dict(ours.mlp.down.state_dict())
        notebook.norm.load_state_dict(model.norm.state_dict())
        notebook.head.load_state_dict(model.head.state_dict())
    return notebook.eval()


def test_reference_model_computes_what_the_project_model_computes(tiny_model):
    # The seed's recipe is the seed's way of training the same network as the tiny preset.
    notebook = copy_into_notebook(tiny_model)
    images = torch.rand(3, 1, 28, 28)
    normalised = (images - tiny_model.pixel_mean) / tiny_model.pixel_std  # ViT normalises inside, the notebook did not
    with torch.no_grad():
        assert torch.allclose(notebook(normalised), tiny_model(images), rtol=1e-4, atol=1e-5)


def test_figure_flags_goals_on_the_right_side():
    assert figure(20, "ms", goal=30)["met"] is True
    assert figure(40, "ms", goal=30)["met"] is False
    assert figure(12, "x", goal=10, better="higher")["met"] is True
    assert figure(None, "s", goal=180)["met"] is None
    assert figure(5, "ms")["met"] is None


def test_percentiles_are_nearest_rank():
    spread = percentiles([float(ms) for ms in range(100, 0, -1)], goal_p95=96)
    assert (spread["p50"]["value"], spread["p95"]["value"], spread["p95"]["met"]) == (50.5, 95, True)


@pytest.mark.parametrize("accuracies, to_seed, to_99, ratio", [((0.95, 0.9701, 0.9901), 40.0, 60.0, 50.0),
                                                                ((0.96, 0.9899), 40.0, None, 50.0),
                                                                ((0.95, 0.96), None, None, None)])
def test_times_to_accuracy_are_the_first_epochs_reaching_them(monkeypatch, tmp_path, data_dir, accuracies, to_seed,
                                                               to_99, ratio):
    history = [{"epoch": i + 1, "val_accuracy": a, "seconds": 20.0 * (i + 1)} for i, a in enumerate(accuracies)]
    monkeypatch.setattr(timings, "train", lambda *args, **kwargs: (None, history, history[-1]["seconds"]))
    monkeypatch.setattr(timings, "choose_threads", lambda *args: (2, {1: 0.2, 2: 0.1}))
    split = load_split("mnist", "test", data_dir)
    seed = {"seconds_to_accuracy": figure(2000.0, "s")}
    result = timings.bench_time_to_accuracy(split, split, tmp_path, seed)
    assert (result["to_seed_accuracy"]["value"], result["to_99"]["value"], result["ratio"]["value"]) == (to_seed, to_99, ratio)
    assert result["to_99"]["met"] is (to_99 is not None)  # goal: within 180 s; never reaching 99 % misses it
    assert result["ratio"]["met"] is (False if ratio else None)  # goal: 100×
    assert ("not reached" in reached_label("", result, "to_99")) is (to_99 is None)


def test_percentiles_carry_a_goal_on_the_median_and_tolerate_no_runs():
    spread = percentiles([100.0, 200.0, 900.0], goal_p50=150)
    assert (spread["p50"]["value"], spread["p50"]["met"], spread["p95"]["goal"]) == (200, False, None)
    empty = percentiles([], goal_p50=150)  # a part that measured nothing reports no number, not a crash
    assert (empty["p50"]["value"], empty["p50"]["met"], empty["runs"]) == (None, None, 0)


def test_drawing_is_what_the_drawing_pad_sends():
    from vit.preprocess import open_data_url
    digit = np.zeros((28, 28), dtype=np.uint8)
    digit[4:24, 13:15] = 255  # a white "1" on black, as MNIST stores it
    composite = np.asarray(open_data_url(timings.drawing(digit)).convert("L"))
    assert open_data_url(timings.drawing(digit)).mode == "RGBA"  # as a canvas's PNG is
    assert composite.shape == (336, 336) and composite.dtype == np.uint8
    assert composite[0, 0] == 255 and composite[168, 168] == 0  # black ink on white paper


def test_the_label_prompt_is_the_apps():
    # The browser part waits for this text after clearing the canvas; a renamed prompt would stall every stroke.
    from tabs.predict import PROMPT
    assert bench_app.PROMPT == PROMPT


def test_browser_figures_are_not_measured_without_chromium(monkeypatch, tmp_path):
    monkeypatch.setattr(bench_app, "CHROMIUM", tmp_path / "no-chromium")
    result = bench_app.bench_browser("http://127.0.0.1:9/", None)
    assert "no Chromium" in result["not_measured"]
    assert result["label_ms"]["p50"]["value"] is None and result["maps_ms"]["p50"]["value"] is None


def test_nothing_in_the_library_imports_the_benchmark():
    for path in (ROOT / "vit").glob("*.py"):
        source = path.read_text()
        assert "import bench" not in source and "from bench" not in source, path


def figures(node, path=""):
    """Every {"value", "unit", ...} dict in the results, with its path."""
    if isinstance(node, dict):
        if "value" in node and "unit" in node:
            yield path, node
        for key, child in node.items():
            yield from figures(child, f"{path}/{key}")


def run_bench(tmp_path, data_dir, *options) -> dict:
    output = tmp_path / "bench" / "results.json"
    subprocess.run([sys.executable, "-m", "bench", "--quick", "--models", "mnist-tiny", "--data-dir", str(data_dir),
                    "--output", str(output), *options], cwd=ROOT, check=True, timeout=900)
    assert (output.parent / "README.md").read_text().startswith("# Benchmark (quick mode)")
    return json.loads(output.read_text())


def check_sane(results: dict, may_be_empty: set[str]) -> None:
    found = dict(figures(results))
    for path, value in found.items():
        if value["value"] is None:
            assert path in may_be_empty, f"{path} is missing"
            continue
        assert math.isfinite(value["value"]), path
        counts = value["unit"] in ("calls", "strokes", "gaps")  # counts may be 0
        assert value["value"] > 0 or counts, f"{path} = {value['value']}"
        assert value["met"] in (None, True, False), path
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch"] == torch.__version__


@pytest.fixture(scope="module")
def quick_run(request, tmp_path_factory, data_dir) -> dict:
    """One `python -m bench --quick` for the tests below, which read its parts out of the app and in it from the same
    run; with --skip-app when the app's test is not selected (-m "not slow"). --skip-app itself is tested apart."""
    with_app = any(item.originalname == "test_quick_run_measures_the_running_app" for item in request.session.items)
    return run_bench(tmp_path_factory.mktemp("quick"), data_dir, *([] if with_app else ["--skip-app"]))


def test_skip_app_leaves_out_the_running_app_and_nothing_else(monkeypatch, tmp_path):
    """Every part stubbed: --skip-app skips the app's part alone, and without it the app's part runs."""
    import bench.__main__ as main
    from bench.budget import QUICK

    class Parts:  # bench.timings: each part returns an empty result (load_model and bench_inference a pair)
        def __getattr__(self, name):
            return lambda *args, **kwargs: ({}, "stub") if name in ("load_model", "bench_inference") else {}

    called = []
    monkeypatch.setattr(main, "timings", Parts())
    monkeypatch.setattr(main, "bench_app", lambda *args: called.append(args) or {"measured": True})
    for options, app in (["--skip-app"], {"skipped": "--skip-app"}), ([], {"measured": True}):
        args = main.parse_args(["--quick", "--models", "mnist-tiny", *options])
        results = main.run_parts(args, QUICK, None, None, tmp_path)
        assert results["app"] == app, options
        assert {"seed_recipe", "inference", "choices", "predict_update", "accuracy"} <= set(results), options
    assert len(called) == 1  # only the run without --skip-app started the app


def test_quick_run_reports_every_figure(quick_run):
    results = quick_run
    seed = results["seed_recipe"]
    assert seed["threads"] == results["machine"]["default_threads"] and seed["images"] == 60_000
    assert seed["epoch_seconds"]["steps_timed"] == 20 and seed["epoch_seconds"]["steps_per_epoch"] == 469
    assert seed["seconds_to_accuracy"]["value"] == pytest.approx(500 * seed["epoch_seconds"]["value"], rel=0.01)
    tiny = results["inference"]["mnist-tiny"]
    assert tiny["weights"] == "untrained"
    for key in ("forward_ms", "explain_ms"):
        assert tiny[key]["runs"] >= 50 and tiny[key]["p95"]["value"] >= tiny[key]["p50"]["value"]
    both = tiny["explain_and_faithfulness_ms"]
    assert both["runs"] >= 10 and both["p50"]["value"] > tiny["explain_ms"]["p50"]["value"]
    assert tiny["test_split_seconds"]["threads"] == 1
    assert tiny["test_split_seconds_all_cores"]["threads"] == results["machine"]["default_threads"]
    choices = results["choices"]
    assert choices["evaluation_model"] == "mnist-tiny"
    assert {"augment_affine_grid_ms", "augment_einsum_grid_ms", "ema_per_parameter_ms", "ema_fused_ms",
            "adamw_default_ms", "adamw_fused_ms", "evaluation_batch_1000_s", "evaluation_batch_100_s"} <= set(choices)
    assert results["time_to_accuracy"] == {"skipped": "quick mode"}
    assert set(results["accuracy"]["anchors"]) and "mnist-tiny" in results["accuracy"]["shipped"]
    update = results["predict_update"]  # in process: measured even without the running app
    assert (update["model"], update["weights"], update["runs"]) == ("mnist-tiny", "untrained", 50)
    assert update["not_read"]["value"] == 0 and update["p95"]["goal"] == 30
    check_sane({key: value for key, value in results.items() if key != "app"},  # the app's: the test below
               may_be_empty={"/accuracy/shipped/mnist-tiny"})


@pytest.mark.slow
def test_quick_run_measures_the_running_app(quick_run):
    results = quick_run
    app = results["app"]
    for key in ("one_client", "concurrent", "one_client_default_options", "one_client_plain_http"):
        assert app[key]["errors"]["value"] == 0, app[key]["first_error"]
        assert app[key]["requests"] == app[key]["runs"] > 0
    assert app["concurrent"]["clients"] == 4
    startup = app["startup"]
    assert startup["launches"] == 1 and len(startup["app_seconds"]["runs"]) == len(startup["bare_seconds"]["runs"]) == 1
    assert startup["ratio"]["goal"] == 1.5
    browser = app["browser"]
    if bench_app.browser_missing():
        assert browser["not_measured"] == bench_app.browser_missing()
        may_be_empty = {f"/app/browser/{key}/{p}" for key in ("label_ms", "maps_ms") for p in ("p50", "p95")}
    else:
        assert "not_measured" not in browser, browser.get("not_measured")
        assert browser["failed"]["value"] == 0, browser["first_failure"]
        assert browser["label_ms"]["runs"] == browser["maps_ms"]["runs"] == 3
        assert browser["maps"] == list(bench_app.MAPS)
        may_be_empty = set()
    in_page = app["in_page"]  # the pad's answers in the page while the pen moves
    if bench_app.browser_missing():
        assert in_page == {"not_measured": bench_app.browser_missing()}
    else:
        assert in_page["answer_ms"]["runs"] > 3 and in_page["answer_ms"]["p95"]["goal"] == 50
        assert in_page["strokes"] == 3 and 0 < in_page["weights_mb"]["value"] < in_page["downloaded_mb"]["value"]
    during = app["browser_while_training"]  # the same strokes while another caller trains through /train
    if bench_app.browser_missing():
        may_be_empty |= {f"/app/browser_while_training/{key}/{p}" for key in ("label_ms", "maps_ms")
                         for p in ("p50", "p95")}
    else:
        assert during["failed"]["value"] == 0 and during["label_ms"]["runs"] == 3 and during["training_throughout"]
        assert during["label_ms"]["p50"]["goal"] == 300 and during["training"]["test_accuracy"] > 0.3
    check_sane(results, may_be_empty={"/accuracy/shipped/mnist-tiny", *may_be_empty})


def test_open_loop_loads_given_on_the_command_line_are_measured_and_named_as_given(capsys):
    import bench.__main__ as main
    args = main.parse_args(["--open-loop", "--settings", "20x0.5", "predict:10x1", "--batching", "on",
                            "--output", "/tmp/class-sizes.json"])
    assert [(s.visitors, s.rate, s.target) for s in args.settings] == [(20, 0.5, "pad"), (10, 1.0, "predict")]
    assert main.open_loop_command(args) == ("python -m bench --open-loop --settings 20x0.5 predict:10x1 "
                                            "--batching on --output /tmp/class-sizes.json")
    assert main.open_loop_command(main.parse_args(["--open-loop"])) == "python -m bench --open-loop"
    for wrong, says in ((["--open-loop", "--settings", "20"], "write VISITORSxRATE"),
                        (["--open-loop", "--settings", "maps:2x1"], "the target is pad or predict"),
                        (["--open-loop", "--settings", "0x1"], "at least 1 visitor"),
                        (["--settings", "2x1"], "go with --open-loop")):
        with pytest.raises(SystemExit):
            main.parse_args(wrong)
        assert says in capsys.readouterr().err, wrong


@pytest.mark.slow
def test_open_loop_load_reports_every_stroke_of_a_few_visitors(tmp_path, data_dir):
    from bench import open_loop
    from server import running_app
    pictures = open_loop.stroke_pictures(load_split("mnist", "test", data_dir), count=4)
    weights = tmp_path / "weights"
    weights.mkdir()
    (weights / "mnist-tiny").symlink_to(ROOT / "weights" / "mnist-tiny")
    with running_app(weights, tmp_path / "app.log") as (url, process):
        events = open_loop.find_events(url)
        assert events.model == "mnist-tiny" and events.maps_data.count("mnist-tiny") == 1
        settings = [open_loop.run_setting(url, events, pictures, open_loop.Setting(3, 2, 1.5, target), process.pid)
                    for target in ("pad", "predict")]
    for setting in settings:
        assert setting["strokes"] == 9 and setting["errors"]["value"] == 0, setting["first_error"]
        assert setting["unanswered"]["value"] == 0 and setting["label_ms"]["runs"] == 9
        assert setting["label_p50_first_third"]["value"] and setting["label_p50_last_third"]["value"]
    pad, predict = settings
    assert pad["maps_ms"]["runs"] == 9 and "maps_ms" not in predict  # every stroke's maps came (or a later one's)
    from bench.report import machine
    result = {"command": "test", "date": "now", "method": "test", "machine": machine() | {"load_average_end": None},
              "runs": {"batching on": {"settings": settings}}}
    check_sane(result, may_be_empty=set())
    table = open_loop.markdown(result)
    assert "pad stroke → label → maps, 3 visitors × 2/s" in table and "/predict, 3 visitors × 2/s" in table
