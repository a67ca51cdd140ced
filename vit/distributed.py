"""More than one process: data-parallel training on PyTorch's own engine (DistributedDataParallel).

`torchrun --nproc-per-node N train.py ...` starts N copies of train.py and tells each, through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT), who it is and where the others are.
Each copy holds the whole model, reads its own share of every batch, and DDP averages the gradients
during the backward pass, so all copies take the same optimiser step: one global batch of the recipe's
size, as a single process would. Only the leader (rank 0) writes checkpoints, prints and writes the model
folder. Without torchrun nothing here does anything: one process is a team of one.
"""

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class Team:
    """Who this process is among the training processes."""
    rank: int = 0          # 0 .. size-1 over all machines; rank 0 leads
    size: int = 1          # processes in all
    local_rank: int = 0    # index on this machine: which GPU it uses
    local_size: int = 1    # processes on this machine: how they share its CPU cores

    @property
    def leads(self) -> bool:
        return self.rank == 0

    @property
    def shared(self) -> bool:
        return self.size > 1


ALONE = Team()


def launched() -> bool:
    """True when torchrun (or another launcher using its variables) started this process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def join(device: torch.device) -> Team:
    """Join the process group torchrun set up: gloo between CPUs, NCCL between GPUs (each process on the GPU
    of its local rank). Returns ALONE when not launched by torchrun."""
    if not launched():
        return ALONE
    team = Team(rank=int(os.environ["RANK"]), size=int(os.environ["WORLD_SIZE"]),
                local_rank=int(os.environ.get("LOCAL_RANK", 0)),
                local_size=int(os.environ.get("LOCAL_WORLD_SIZE", os.environ["WORLD_SIZE"])))
    if device.type == "cuda":
        torch.cuda.set_device(team.local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return team


def leave(team: Team) -> None:
    if team.shared and dist.is_initialized():
        dist.destroy_process_group()


def device_for(team: Team, device: torch.device) -> torch.device:
    """A GPU process uses the GPU of its local rank; a CPU one the CPU."""
    return torch.device("cuda", team.local_rank) if device.type == "cuda" and team.shared else device


def wrap(model: torch.nn.Module, team: Team) -> torch.nn.Module:
    """The model to call in training: DDP around it when shared (it broadcasts rank 0's weights at the start
    and averages gradients in backward), the model itself otherwise. Parameters stay the model's own."""
    if not team.shared:
        return model
    device = next(model.parameters()).device
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def share(batch: torch.Tensor, team: Team) -> torch.Tensor:
    """This process's share of one global batch of indices: every size-th one, starting at its rank."""
    return batch[team.rank::team.size]


def total(values: list[float], team: Team) -> list[float]:
    """Sums over the team of a few numbers (the epoch's right answers and images seen): every process calls
    it at the same point."""
    if not team.shared:
        return values
    summed = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(summed)
    return summed.tolist()


def wait_for_all(team: Team) -> None:
    """Hold every process here until all have arrived: after the last epoch, so none goes on (to resume, say)
    before the leader's last checkpoint is on disk."""
    if team.shared:
        dist.barrier()


def steps_per_epoch(images: int, batch_size: int, team: Team) -> int:
    """Optimiser steps in one pass: full global batches, and the last partial one when every process gets at
    least one of its images (an empty share would give a NaN loss)."""
    full, left = divmod(images, batch_size)
    return full + (left >= team.size)
