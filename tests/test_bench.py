"""The benchmark: its reference model is the notebook's architecture, and a tiny run reports every figure.

No test asserts a duration: timings depend on the machine and its load.
"""

import json
import math
import subprocess
import sys

import pytest
import torch

from conftest import ROOT, TINY
from vit import bench
from vit.bench import NotebookNet, figure, percentiles


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
            theirs.mlp[0].load_state_dict(ours.mlp[0].state_dict())
            theirs.mlp[2].load_state_dict(ours.mlp[3].state_dict())
        notebook.norm.load_state_dict(model.norm.state_dict())
        notebook.head.load_state_dict(model.head.state_dict())
    return notebook.eval()


def test_reference_model_computes_what_the_project_model_computes(tiny_model):
    # The throughput ratio compares training loops, so the reference must be the same network.
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


@pytest.mark.parametrize("accuracies, seconds, met", [((0.97, 0.9901, 0.992), 40.0, True),
                                                       ((0.97, 0.9899), None, False)])
def test_time_to_99_is_the_first_epoch_at_99_percent(monkeypatch, tmp_path, accuracies, seconds, met):
    history = [{"epoch": i + 1, "test_accuracy": a, "seconds": 20.0 * (i + 1)} for i, a in enumerate(accuracies)]
    monkeypatch.setattr(bench, "train", lambda *args, **kwargs: (None, history, history[-1]["seconds"]))
    result = bench.bench_time_to_99(None, None, tmp_path)
    assert (result["seconds"]["value"], result["seconds"]["met"]) == (seconds, met)
    assert ("not reached" in bench.time_to_99_label(result)) is (not met)


def figures(node, path=""):
    """Every {"value", "unit", ...} dict in the results, with its path."""
    if isinstance(node, dict):
        if "value" in node and "unit" in node:
            yield path, node
        for key, child in node.items():
            yield from figures(child, f"{path}/{key}")


def run_bench(tmp_path, data_dir, *options) -> dict:
    output = tmp_path / "bench" / "results.json"
    subprocess.run([sys.executable, "-m", "vit.bench", "--quick", "--models", "mnist-tiny", "--data-dir", str(data_dir),
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
        assert value["value"] > 0 or value["unit"] == "calls", f"{path} = {value['value']}"  # counts may be 0
        assert value["met"] in (None, True, False), path
    assert results["machine"]["cores"] >= 1 and results["machine"]["torch"] == torch.__version__


def test_quick_run_reports_every_figure(tmp_path, data_dir):
    results = run_bench(tmp_path, data_dir, "--skip-app")
    throughput = results["throughput"]
    assert {"ours", "reference", "ratio", "reference_one_thread", "ratio_same_threads"} <= set(throughput)
    assert throughput["ours"]["threads"] == 1 and throughput["reference"]["threads"] == results["machine"]["default_threads"]
    tiny = results["inference"]["mnist-tiny"]
    assert tiny["weights"] == "untrained"
    for key in ("forward_ms", "explain_ms"):
        assert tiny[key]["runs"] >= 50 and tiny[key]["p95"]["value"] >= tiny[key]["p50"]["value"]
    assert tiny["test_split_seconds"]["threads"] == 1
    assert tiny["test_split_seconds_all_cores"]["threads"] == results["machine"]["default_threads"]
    choices = results["choices"]
    assert choices["evaluation_model"] == "mnist-tiny"
    assert {"augment_affine_grid_ms", "augment_einsum_grid_ms", "ema_per_parameter_ms", "ema_fused_ms",
            "adamw_default_ms", "adamw_fused_ms", "evaluation_batch_1000_s", "evaluation_batch_100_s"} <= set(choices)
    assert results["time_to_99"]["skipped"] == "quick mode" and results["app"] == {"skipped": "--skip-app"}
    assert set(results["accuracy"]["anchors"]) and "mnist-tiny" in results["accuracy"]["shipped"]
    check_sane(results, may_be_empty={"/time_to_99/seconds", "/accuracy/shipped/mnist-tiny"})


@pytest.mark.slow
def test_quick_run_measures_the_running_app(tmp_path, data_dir):
    results = run_bench(tmp_path, data_dir)
    app = results["app"]
    for key in ("one_client", "concurrent", "one_client_default_options", "one_client_plain_http"):
        assert app[key]["errors"]["value"] == 0, app[key]["first_error"]
        assert app[key]["requests"] == app[key]["runs"] > 0
    assert app["concurrent"]["clients"] == 4
    check_sane(results, may_be_empty={"/time_to_99/seconds", "/accuracy/shipped/mnist-tiny"})
