"""The training loop, checkpoints and resume, train.py's errors and interruptions, and the shipped weights' figures."""

import json
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, TINY, train_in_process
from vit import ViT, outliers
from vit.datasets import DATASETS
from vit.data import Split, load_split
from vit.augment import ERASED_AREA, augment, coarse_scan, erase, resample
from vit.evaluate import TrainingFacts, write_model_folder
from vit.optimiser import learning_rate
from vit.recipe import PRESETS, Recipe
from vit.training import Interrupted, train
from vit.bundle import read_evaluation, read_model

QUICK = Recipe(epochs=1, batch_size=128, lr=3e-3, warmup_epochs=0.1, label_smoothing=0.0, ema_decay=0.99,
               rotate=0, shift=0, scale=0)
SMALL = dict(tile_size=7, embed_size=32, num_layers=2, num_heads=2, mlp_size=64)


@pytest.fixture(scope="module")
def mnist(data_dir):
    return load_split("mnist", "train", data_dir), load_split("mnist", "test", data_dir)


def small(split: Split, count: int) -> Split:
    return Split(split.images[:count], split.labels[:count])


def test_one_epoch_on_real_mnist_reaches_a_sane_accuracy(mnist, tmp_path):
    torch.manual_seed(0)
    model = ViT(**SMALL)
    ema, history, _ = train(model, mnist[0], small(mnist[1], 2000), QUICK, device=torch.device("cpu"),
                            checkpoint=tmp_path / "c.safetensors", progress=False)
    assert history[0]["val_accuracy"] > 0.7  # chance is 0.1; measured 0.79 (seed 0)


def test_outlier_exposure_lowers_the_confidence_on_non_digits_it_never_saw(mnist, tmp_path):
    """Fine-tuned alike from the shipped tiny model, with outlier exposure it is less sure on fresh non-digits."""
    held_out = outliers.pool(100, mnist[0].images[-500:, 0], seed=99)  # other digits and seed than the run's pool
    confidence = {}
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        model = read_model(ROOT / "weights" / "mnist-tiny")
        ema = train(model, small(mnist[0], 2048), small(mnist[1], 200), replace(QUICK, outliers=weight),
                    device=torch.device("cpu"), checkpoint=tmp_path / f"{weight}.safetensors", progress=False).model
        with torch.no_grad():
            confidence[weight] = ema(held_out[:, None]).softmax(-1).amax(-1).mean().item()
    assert confidence[0.5] < confidence[0.0] - 0.1, confidence  # measured: 0.81 -> 0.49


def test_a_garment_model_learns_that_a_drawn_digit_is_no_garment(mnist, data_dir, tmp_path):
    """The shipped tiny Fashion-MNIST model fine-tuned alike, with outlier exposure (single MNIST training digits
    among the outliers, framed as a garment drawing is) it is less sure of test digits drawn on a page."""
    garments = DATASETS["fashion-mnist"]
    split = load_split("fashion-mnist", "train", data_dir)
    source = outliers.Source(garments.outliers, garments.framing, mnist[0].images[:5000, 0])
    held_out = outliers.pool(100, mnist[1].images[:500, 0], seed=99, framing=garments.framing, kinds=("digit",))
    confidence = {}
    for weight in (0.0, 0.5):
        torch.manual_seed(0)
        model = read_model(ROOT / "weights" / "fashion" / "fashion-mnist-tiny")
        ema = train(model, small(split, 2048), small(split, 200), replace(QUICK, outliers=weight),
                    device=torch.device("cpu"), checkpoint=tmp_path / f"{weight}.safetensors", progress=False,
                    outliers=source).model
        with torch.no_grad():
            confidence[weight] = ema(held_out[:, None]).softmax(-1).amax(-1).mean().item()
    assert confidence[0.5] < confidence[0.0] - 0.1, confidence  # measured: 0.64 -> 0.37


def test_resume_continues_exactly(mnist, tmp_path):
    """Two epochs in one go == two epochs interrupted after the first, then resumed."""
    train_split, test_split = small(mnist[0], 1024), small(mnist[1], 256)
    recipe = replace(QUICK, epochs=2)

    def interrupt_after_first(record):
        if record["epoch"] == 1:
            raise Interrupted("test")

    def run(name, interrupted):
        torch.manual_seed(0)
        model = ViT(**TINY)
        options = dict(device=torch.device("cpu"), checkpoint=tmp_path / f"{name}.safetensors", progress=False)
        if interrupted:
            with pytest.raises(Interrupted):
                train(model, train_split, test_split, recipe, on_epoch=interrupt_after_first, **options)
            torch.manual_seed(1)  # a fresh process: nothing but the checkpoint carries over
            model = ViT(**TINY)
        return train(model, train_split, test_split, recipe, resume=interrupted, **options)

    straight, resumed = run("straight", False), run("resumed", True)
    images = test_split.batch(torch.arange(16))[0]
    assert torch.equal(straight[0](images), resumed[0](images))
    assert straight[1] == [dict(r, seconds=s["seconds"]) for r, s in zip(resumed[1], straight[1])]


def test_augmentation_keeps_shape_and_range():
    images = torch.rand(8, 1, 28, 28)
    out = augment(images, Recipe(), torch.Generator().manual_seed(0))
    assert out.shape == images.shape and 0 <= out.min() and out.max() <= 1.0001
    assert not torch.equal(out, images)


def test_coarse_scan_softens_only_the_chosen_images():
    images = torch.zeros(4, 1, 28, 28)
    images[:, :, 4:24, 13:15] = 1.0  # a 1, two pixels wide: a coarse scan smears it over its neighbours
    chosen = torch.tensor([True, False, True, False])
    before = images.clone()
    out = coarse_scan(images, chosen, torch.Generator().manual_seed(0))
    assert torch.equal(out[~chosen], images[~chosen]) and torch.equal(images, before)  # the batch left as it was
    for i in (0, 2):
        assert 0 <= out[i].min() and out[i].max() <= 1
        assert (out[i] - images[i]).abs().sum() > 5  # the stroke's edges moved
        assert 0.5 < out[i].sum() / images[i].sum() < 3  # its ink spread, not lost
    unchanged = augment(images, Recipe(coarse=0.0, rotate=0, shift=0, scale=0), torch.Generator())
    assert torch.allclose(unchanged, images, atol=1e-5)  # coarse=0: no image is a coarse scan


def test_erasing_puts_noise_in_one_rectangle_of_each_chosen_image_only():
    images = torch.full((64, 1, 28, 28), 0.5)
    chosen = torch.arange(64) % 2 == 0
    out = erase(images, chosen, torch.Generator().manual_seed(0))
    assert torch.equal(out[~chosen], images[~chosen]) and torch.equal(images, torch.full_like(images, 0.5))
    changed = out[chosen, 0] != 0.5  # (32, 28, 28): noise never lands exactly on 0.5
    rows, columns = changed.any(2), changed.any(1)
    # the changed pixels fill the box that bounds them: one rectangle, 2-40 % of the picture
    assert torch.equal(changed.sum((1, 2)), rows.sum(1) * columns.sum(1))
    share = changed.sum((1, 2)) / (28 * 28)
    assert (share >= ERASED_AREA[0] * 0.5).all() and (share <= ERASED_AREA[1] * 1.3).all()
    assert 0 <= out.min() and out.max() <= 1
    again = augment(images, Recipe(erase=0.0, rotate=0, shift=0, scale=0), torch.Generator())
    assert torch.allclose(again, images, atol=1e-5)  # erase=0: nothing erased
    every = augment(images, Recipe(erase=1.0, rotate=0, shift=0, scale=0), torch.Generator().manual_seed(1))
    assert ((every - images).abs().flatten(1).amax(1) > 0.01).all()  # erase=1: every image has its rectangle


def test_resample_matches_torch_affine_grid():
    images = torch.rand(6, 1, 28, 20)
    theta = torch.eye(2, 3) + 0.2 * torch.randn(6, 2, 3, generator=torch.Generator().manual_seed(1))
    expected = F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), align_corners=False)
    assert torch.allclose(resample(images, theta), expected, atol=1e-5)
    assert torch.allclose(resample(images, torch.eye(2, 3).expand(6, 2, 3)), images, atol=1e-5)  # identity keeps pixels


def test_writability_probe_leaves_nothing_behind(tmp_path):
    from train import _writable
    assert _writable(tmp_path / "a" / ".." / "b" / "c")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("in the way")
    assert not _writable(tmp_path / "file" / "model")
    assert [path.name for path in tmp_path.iterdir()] == ["file"]


def test_learning_rate_schedule():
    assert learning_rate(0, 100, 10, 1.0) == pytest.approx(0.1)
    assert learning_rate(9, 100, 10, 1.0) == pytest.approx(1.0)
    assert learning_rate(100, 100, 10, 1.0) == pytest.approx(0.0)


def test_model_folder_has_everything_the_app_needs(mnist, tmp_path):
    model = ViT(**TINY, class_names=list("0123456789")).eval()
    facts = TrainingFacts("mnist", [], 1.0, "python train.py", "cpu", asdict(QUICK))
    summary = write_model_folder(tmp_path, model, small(mnist[1], 500), facts).to_json()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md", "config.json", "evaluation.json",
                                                         "evaluation.safetensors", "model.onnx", "model.safetensors"]
    assert sum(map(sum, summary["confusion_matrix"])) == 500
    card = (tmp_path / "README.md").read_text()
    assert "model-index" in card and f"value: {round(summary['accuracy'], 4)}" in card
    assert "(`flag_ones`) | 0.0 |" in card  # a digits-only setting, listed for digits (a garment card omits it)


def run_train(*args: str, cwd: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """train.py as a user runs it, from `cwd` (a temporary folder where it may write checkpoints/ or a model)."""
    return subprocess.run(["nice", "-n", "5", sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def assert_usage_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """Exit status 2 with argparse's "train.py: error:" and these words, no traceback, and nothing trained."""
    assert result.returncode == 2, result.stderr[-2000:]
    assert "train.py: error:" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert all(word in result.stderr for word in words), result.stderr[-2000:]
    assert not re.search(r"epoch +\d+/", result.stderr)  # nothing was trained


@pytest.mark.parametrize("args, message", [
    (["--tile-size", "5"], "does not divide 28"),
    (["--epochs", "0"], "at least 1"),
    (["--epochs", "-1"], "at least 1"),
    (["--faithfulness", "-1"], "at least 0"),
    (["--batch-size", "-3"], "at least 1"),
    (["--batch-size", "0"], "at least 1"),
    (["--embed-size", "30", "--num-heads", "4"], "not a multiple"),
    (["--data-dir", "/nonexistent/folder"], "does not exist"),
    (["--output", "/proc/not-writable"], "cannot write"),
    (["--resume", "/nonexistent/checkpoint.safetensors"], "no checkpoint"),
    (["--dropout", "1.5"], "between 0 and 1"),
    (["--flag-ones", "0.5", "--dataset", "fashion-mnist"], "has no digits"),
    (["--start-from", str(ROOT / "weights" / "mnist-tiny"), "--tile-size", "7"], "keeps its folder's architecture"),
    (["--start-from", str(ROOT / "weights" / "mnist-tiny"), "--cut", "tiles"], "leave out --cut"),
    (["--start-from", str(ROOT / "weights" / "fashion" / "fashion-mnist")], "learned fashion-mnist, not mnist"),
    (["--start-from", "/nonexistent/folder"], "--start-from"),
])
def test_cli_rejects_bad_arguments_before_any_work(args, message, tmp_path, monkeypatch, capsys, torch_threads):
    assert_usage_error(train_in_process("--preset", "tiny", "--output", str(tmp_path / "out"), *args, cwd=tmp_path,
                                         monkeypatch=monkeypatch, capsys=capsys), message)


def flipped(data: bytes) -> bytes:
    """The deflate stream damaged a little after the gzip header, as a bad disk or download does."""
    return data[:40] + bytes(byte ^ 0xFF for byte in data[40:200]) + data[200:]


DAMAGED_DATA = {
    "garbage": lambda data: b"these are not the MNIST images\n" * 10,
    "truncated": lambda data: data[:5000],
    "empty": lambda data: b"",
    "bytes flipped": lambda data: flipped(data),
}


@pytest.mark.parametrize("damage", list(DAMAGED_DATA.values()), ids=list(DAMAGED_DATA))
def test_cli_damaged_data_file_is_a_usage_error_naming_it(data_dir, tmp_path, damage):
    folder = tmp_path / "data" / "mnist"
    folder.mkdir(parents=True)
    for source in (data_dir / "mnist").glob("*.gz"):
        (folder / source.name).symlink_to(source)
    damaged = folder / "train-images-idx3-ubyte.gz"  # read first: the run fails in a second
    content = damaged.read_bytes()
    damaged.unlink()
    damaged.write_bytes(damage(content))
    result = run_train("--preset", "tiny", "--epochs", "1", "--data-dir", str(tmp_path / "data"), "--output", "model",
                       "--no-progress", cwd=tmp_path)
    assert_usage_error(result, "train-images-idx3-ubyte.gz")
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "model").exists()  # nothing left behind


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_cli_unreadable_resume_checkpoint_is_a_usage_error(tmp_path, damage):
    from vit.optimiser import make_optimizer, save_checkpoint
    architecture, recipe = PRESETS["tiny"]
    model, ema = ViT(**architecture), ViT(**architecture)
    checkpoint = tmp_path / "checkpoints" / "run.safetensors"
    save_checkpoint(checkpoint, model, ema, make_optimizer(model, recipe), {"epoch": 1})
    content = checkpoint.read_bytes()
    checkpoint.write_bytes(b"\x00garbage" * 64 if damage == "garbage" else content[:len(content) * 2 // 3])
    result = run_train("--preset", "tiny", "--name", "run", "--output", "model", "--resume", cwd=tmp_path)
    assert_usage_error(result, "--resume", "run.safetensors", "not a readable checkpoint")


def test_output_folder_names_the_checkpoint(tmp_path):
    from train import parse_args
    assert parse_args(["--output", str(tmp_path / "my-run")]).checkpoint == Path("checkpoints/my-run.safetensors")
    assert parse_args(["--preset", "tiny"]).checkpoint == Path("checkpoints/mnist-tiny.safetensors")


def test_model_options_reach_the_model_and_unset_ones_keep_the_presets():
    from train import build, parse_args
    model, _ = build(parse_args(["--dropout", "0", "--mlp-size", "96"]))
    assert model.config["dropout"] == 0 and model.config["mlp_size"] == 96
    _, recipe = build(parse_args(["--flag-ones", "0.25"]))
    assert recipe.flag_ones == 0.25
    preset, preset_recipe = build(parse_args([]))
    assert preset_recipe.flag_ones == PRESETS["default"][1].flag_ones
    assert preset.config["dropout"] == PRESETS["default"][0]["dropout"]
    assert preset.config["mlp_size"] == PRESETS["default"][0]["mlp_size"]


def test_a_preset_names_its_cut_and_cut_or_tile_size_change_only_their_own_part():
    from train import build, parse_args
    fast, _ = build(parse_args(["--preset", "fast"]))
    assert (fast.cut, fast.tile_size) == (PRESETS["fast"][0]["cut"], PRESETS["fast"][0]["tile_size"])
    tiles, _ = build(parse_args(["--preset", "fast", "--cut", "tiles", "--tile-size", "7"]))
    assert (tiles.cut, tiles.tile_size, tiles.grid) == ("tiles", 7, (4, 4))
    default, _ = build(parse_args(["--tile-size", "7"]))  # a preset without a cut cuts tiles
    assert (default.cut, default.tile_size) == ("tiles", 7)


def test_help_documents_every_option(tmp_path):
    result = run_train("--help", cwd=tmp_path)
    for option in ("--dataset", "--data-dir", "--preset", "--tile-size", "--num-layers", "--num-heads", "--embed-size",
                   "--mlp-size", "--epochs", "--batch-size", "--lr", "--seed", "--threads", "--device", "--output",
                   "--resume", "--faithfulness", "--cut", "--dropout", "--rotate", "--thickness", "--elastic", "--flip",
                   "--flag-ones"):
        assert option in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mnist", "mnist-tiny", "mnist-fast", "zoo/tiles-4", "zoo/tiles-7-sinusoidal",
                                  "zoo/tiles-7-no-positions", "zoo/horizontal-strips-2", "zoo/vertical-strips-2",
                                  "fashion/fashion-mnist-tiny", "fashion/fashion-mnist"])
def test_shipped_weights_reach_their_model_card_figure(name, data_dir, capsys, torch_threads):
    # `python -m vit.evaluate FOLDER --json`'s main in this process: ten models need no ten interpreters and torches
    # (the command itself runs as a process in the refit test below and in test_faithfulness.py)
    from vit.evaluate import main
    folder = ROOT / "weights" / name
    evaluation = read_evaluation(folder)
    claimed = evaluation.accuracy
    assert main([str(folder), "--data-dir", str(data_dir), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["n"] == 10_000 and measured["dataset"] == evaluation.dataset  # its own test split
    assert abs(measured["accuracy"] - claimed) <= 0.0005  # within 0.05 points of the card
    card = (folder / "README.md").read_text()
    assert f"{claimed * 100:.2f} %" in card
    ece = evaluation.calibration
    assert measured["ece_after"] == pytest.approx(ece.ece_after, abs=1e-4) and measured["ece_after"] <= 0.015
    assert f"{ece.ece_before * 100:.2f} % before, {ece.ece_after * 100:.2f} % after" in card


@pytest.mark.slow
def test_a_fashion_folders_limits_are_fitted_on_pictures_framed_as_the_app_frames_them(data_dir, tmp_path):
    # refitting the shipped folder (python -m vit.evaluate --refit) rewrites exactly what is committed
    shipped = ROOT / "weights" / "fashion" / "fashion-mnist-tiny"
    copy = tmp_path / "fashion-mnist-tiny"
    shutil.copytree(shipped, copy)
    result = subprocess.run([sys.executable, "-m", "vit.evaluate", str(copy), "--data-dir", str(data_dir), "--refit"],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    # Another CPU may round a fitted figure's last digit apart
    refitted, committed = ({"calibration": json.loads((folder / "calibration.json").read_text()),
                            "not_a_digit": json.loads((folder / "evaluation.json").read_text())["not_a_digit"]}
                           for folder in (copy, shipped))
    assert_same_record(refitted, committed, "fitted")
    digits = re.compile(r"\d")
    assert digits.sub("#", (copy / "README.md").read_text()) == digits.sub("#", (shipped / "README.md").read_text())
    assert "Not a fashion item" in (copy / "README.md").read_text()


def assert_same_record(got, expected, where: str):
    """The same record, its fractions within 2e-3 (absolute or relative) and everything else equal."""
    if isinstance(expected, dict):
        assert sorted(got) == sorted(expected), where
        for key in expected:
            assert_same_record(got[key], expected[key], f"{where}/{key}")
    elif isinstance(expected, float):
        assert got == pytest.approx(expected, rel=2e-3, abs=2e-3), where
    else:
        assert got == expected, where


# -- interrupted and resumed -----------------------------------------------------------------------------------

def run_args(data_dir: Path, output: str = "model") -> list[str]:
    return ["--preset", "tiny", "--epochs", "2", "--data-dir", str(data_dir), "--output", output, "--name",
            "stopped-run", "--no-progress", "--faithfulness", "20",  # 20 test images keep the scoreboard quick
            "--threads", "1"]  # measured threads could differ between the runs compared, and so could the numbers


def comparable(evaluation: dict) -> dict:
    """evaluation.json without the wall-clock figures."""
    history = [{k: v for k, v in record.items() if k != "seconds"} for record in evaluation["history"]]
    pacing = {k: v for k, v in evaluation.get("pacing", {}).items() if k != "run_seconds"}
    return ({k: v for k, v in evaluation.items() if k != "training_seconds"} | {"history": history}
            | {"pacing": pacing})


@pytest.fixture(scope="module")
def straight_run(data_dir, tmp_path_factory) -> dict:
    """The uninterrupted run every interrupted one must end up equal to: its evaluation.json."""
    workdir = tmp_path_factory.mktemp("straight")
    result = run_train(*run_args(data_dir), cwd=workdir)
    assert result.returncode == 0, result.stderr[-2000:]
    return read_evaluation(workdir / "model").to_json()


def interrupt_after_first_checkpoint(args: list[str], cwd: Path, sig: signal.Signals) -> subprocess.CompletedProcess:
    """Start train.py, send `sig` once checkpoints/stopped-run.safetensors exists, wait for it to end."""
    checkpoint = cwd / "checkpoints" / "stopped-run.safetensors"
    process = subprocess.Popen(["nice", "-n", "5", sys.executable, str(ROOT / "train.py"), *args], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                stderr = process.communicate()[1]
                pytest.fail(f"train.py ended or stalled before its first checkpoint:\n{stderr[-2000:]}")
            time.sleep(0.05)
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.slow
@pytest.mark.parametrize("sig, output", [(signal.SIGINT, "my models/tiny"), (signal.SIGTERM, "model")],
                         ids=["SIGINT", "SIGTERM"])
def test_interrupted_training_keeps_its_checkpoint_and_the_printed_resume_ends_like_a_straight_run(
        data_dir, tmp_path, straight_run, sig, output):
    """SIGINT's run writes to a path with a space, which the printed resume command must survive (quoted)."""
    from vit.optimiser import read_checkpoint_state
    args = run_args(data_dir, output=output)
    result = interrupt_after_first_checkpoint(args, tmp_path, sig)
    assert result.returncode == 130, result.stderr[-2000:]
    assert f"interrupted by {sig.name}" in result.stderr and "Traceback" not in result.stderr, result.stderr[-2000:]
    checkpoint = tmp_path / "checkpoints" / "stopped-run.safetensors"
    assert read_checkpoint_state(checkpoint)["epoch"] == 1  # complete, and not the end (of 2)
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob("*.part"))
    assert not [p for p in (tmp_path / output).rglob("*") if p.is_file()]  # no half a model folder

    command = re.search(r"Continue with: (.+)", result.stderr).group(1)
    resume = shlex.split(command)
    assert resume[:2] == ["python", "train.py"] and resume[2:] == args + ["--resume"], command
    if sig == signal.SIGINT:
        return  # the resumed run is the same for both signals: SIGTERM's is run to the end (CI time)
    resumed = run_train(*resume[2:], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert comparable(read_evaluation(tmp_path / "model").to_json()) == comparable(straight_run)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")
def test_asking_for_a_gpu_that_is_not_there_is_a_usage_error(tmp_path):
    result = run_train("--preset", "tiny", "--device", "cuda", "--output", str(tmp_path / "out"), cwd=tmp_path)
    assert result.returncode == 2 and "--device cuda: this machine has no such device" in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_training_on_a_gpu_runs_in_bfloat16_and_learns(mnist, tmp_path):
    torch.manual_seed(0)
    model = ViT(**SMALL)
    dtypes = set()
    model.tile_embedding.register_forward_hook(lambda module, args, output: dtypes.add(output.dtype))
    ema, history, _ = train(model, small(mnist[0], 8192), small(mnist[1], 1000), replace(QUICK, epochs=2),
                            device=torch.device("cuda"), checkpoint=tmp_path / "c.safetensors", progress=False)
    assert dtypes == {torch.bfloat16}  # the training steps ran under autocast; the EMA is evaluated as float32
    assert next(ema.parameters()).device.type == "cuda" and next(ema.parameters()).dtype == torch.float32
    assert history[-1]["val_accuracy"] > 0.5
