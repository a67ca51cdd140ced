"""Training in more than one process (vit.distributed): two CPU processes over gloo take the same steps as one
process on the whole batch, and resume alike; `torchrun --nproc-per-node 2 train.py` trains and writes one folder."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file, save_file

from conftest import ROOT, TINY, train_in_process
from vit import ViT
from vit.data import Split, load_split
from vit.distributed import ALONE, Team, share, steps_per_epoch
from vit.recipe import Recipe
from vit.training import train
from vit.bundle import read_evaluation

# No augmentation, smoothing or dropout: the step is then a function of the batch alone, and the gradient of the
# mean loss over a batch is the mean of the gradients over its two halves.
PLAIN = Recipe(epochs=1, batch_size=64, lr=3e-3, warmup_epochs=0.5, label_smoothing=0.0, ema_decay=0.9,
               rotate=0, shift=0, scale=0)


def test_shares_of_a_batch_cover_it_once():
    batch = torch.arange(11)
    shares = [share(batch, Team(rank=rank, size=3, local_size=3)) for rank in range(3)]
    assert sorted(torch.cat(shares).tolist()) == batch.tolist() and [len(s) for s in shares] == [4, 4, 3]


@pytest.mark.parametrize("images, batch, size, steps", [(640, 64, 1, 10), (641, 64, 1, 11), (641, 64, 2, 10),
                                                       (642, 64, 2, 11)])
def test_a_last_batch_too_small_to_share_is_left_out(images, batch, size, steps):
    assert steps_per_epoch(images, batch, Team(size=size, local_size=size)) == steps


def test_the_launcher_names_machines_and_processes():
    from train import launcher
    assert launcher(Team()) == "python train.py"
    assert launcher(Team(rank=1, size=2, local_size=2)) == "torchrun --nproc-per-node 2 train.py"
    assert launcher(Team(rank=3, size=8, local_size=4)) == "torchrun --nnodes 2 --nproc-per-node 4 train.py"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def first_test_images(data_dir: Path) -> Split:
    return load_split("mnist", "test", data_dir).subset(torch.arange(256))  # 4 steps of 64 an epoch, 32 per process


def one_epoch_then_resume_a_second(model: ViT, split: Split, checkpoint: Path, team: Team = ALONE) -> list[dict]:
    """Train one epoch, then resume from its checkpoint for a second one; the history of the second leg."""
    train(model, split, split, PLAIN, device=torch.device("cpu"), progress=False, checkpoint=checkpoint, team=team)
    return train(model, split, split, replace(PLAIN, epochs=2), device=torch.device("cpu"), progress=False,
                 checkpoint=checkpoint, resume=True, team=team)[1]


def _one_process_of_two(rank: int, port: int, data_dir: str, folder: str) -> None:
    """Worker for mp.spawn: join a gloo group of two, train and resume; rank 0 saves its weights."""
    os.environ |= {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        split = first_test_images(Path(data_dir))
        torch.manual_seed(0)
        model = ViT(**TINY)
        history = one_epoch_then_resume_a_second(model, split, Path(folder) / "shared-checkpoint.safetensors",
                                                 Team(rank, 2, rank, 2))
        assert len(history) == (2 if rank == 0 else 0)  # the leader alone keeps the history
        if rank == 0:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, Path(folder) / "shared.safetensors")
    finally:
        dist.destroy_process_group()


def test_two_processes_take_the_steps_one_process_takes_on_the_whole_batch_and_resume_alike(data_dir, tmp_path):
    mp.spawn(_one_process_of_two, args=(_free_port(), str(data_dir), str(tmp_path)), nprocs=2, join=True)
    shared = load_file(tmp_path / "shared.safetensors")
    split = first_test_images(data_dir)
    torch.manual_seed(0)
    alone, untrained = ViT(**TINY), ViT(**TINY)
    untrained.load_state_dict(alone.state_dict())
    one_epoch_then_resume_a_second(alone, split, tmp_path / "alone.safetensors")
    for name, value in alone.state_dict().items():
        torch.testing.assert_close(shared[name], value, atol=2e-5, rtol=1e-4, msg=name)
    assert not torch.allclose(untrained.head.weight, alone.head.weight, atol=1e-3)  # it did train


def torchrun(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(ROOT / "train.py"), *args]
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=os.environ | {"OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_torchrun_with_two_processes_trains_and_writes_one_folder(data_dir, tmp_path):
    result = torchrun("--preset", "tiny", "--epochs", "2", "--data-dir", str(data_dir), "--output", "model",
                      "--faithfulness", "0", "--no-progress", "--threads", "1", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("training model: 5,738 parameters") == 1  # the leader alone speaks and writes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoints", "model"]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["model.safetensors"]
    evaluation = read_evaluation(tmp_path / "model")
    first_epoch, second_epoch = evaluation.history
    assert second_epoch["val_loss"] < first_epoch["val_loss"] and second_epoch["val_accuracy"] > 0.5
    assert evaluation.device == "2 processes, each cpu, 1 thread(s)"
    assert evaluation.command.startswith("torchrun --nproc-per-node 2 train.py --preset tiny")
    # the model a single process builds, and that the shipped single-process tiny model has
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config == json.loads((ROOT / "weights" / "mnist-tiny" / "config.json").read_text())
    from train import build, parse_args
    assert config == build(parse_args(["--preset", "tiny"]))[0].config


def test_a_budget_under_torchrun_is_a_usage_error_before_anything_starts(tmp_path, monkeypatch, capsys, torch_threads):
    # torchrun's variables, without torchrun: the refusal must come before the process group is joined (joining
    # would wait for a second process that never comes)
    for name, value in {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}.items():
        monkeypatch.setenv(name, value)
    result = train_in_process("--preset", "tiny", "--budget", "1m", "--output", str(tmp_path / "out"), cwd=tmp_path,
                              monkeypatch=monkeypatch, capsys=capsys)
    assert result.returncode == 2 and "--budget times one process; under torchrun give --epochs" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()
