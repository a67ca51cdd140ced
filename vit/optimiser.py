"""The optimiser and its schedule, the weight average (EMA) that is kept and evaluated, and checkpoints that
hold all three so a stopped run resumes exactly where it was.
"""

import json
import math
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from .model import ViT
from .recipe import Recipe


def learning_rate(step: int, total_steps: int, warmup_steps: int, peak: float) -> float:
    """Linear warm-up to `peak`, then cosine decay to zero."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return peak * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def make_optimizer(model: ViT, recipe: Recipe) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms, biases, CLS or positions).

    The fused kernel updates every parameter in one call, faster on a CPU than torch's default per-parameter
    loop (`python -m bench`, "before / now").
    """
    decay = [p for p in model.parameters() if p.ndim == 2]
    no_decay = [p for p in model.parameters() if p.ndim != 2]
    fused = next(model.parameters()).device.type in ("cpu", "cuda")
    return torch.optim.AdamW([{"params": decay, "weight_decay": recipe.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=recipe.lr, fused=fused)


@torch.no_grad()
def update_ema(ema: ViT, model: ViT, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model, all parameters in one fused call."""
    # torch._foreach_lerp_ is what torch's own swa_utils and timm's ModelEmaV3 use; no public spelling yet
    torch._foreach_lerp_(list(ema.parameters()), list(model.parameters()), 1 - decay)


def ema_decay_at(recipe: Recipe, step: int) -> float:
    """The recipe's decay, lower in the first steps so the average does not hold on to the initial weights."""
    return min(recipe.ema_decay, (1 + step) / (10 + step))


def save_checkpoint(path: Path, model: ViT, ema: ViT, optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Write everything needed to resume, atomically: a crash leaves the previous checkpoint intact."""
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in ema.state_dict().items()}
    for index, param_state in optimizer.state_dict()["state"].items():
        tensors |= {f"optimizer.{index}.{key}": torch.as_tensor(value) for key, value in param_state.items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        save_file({k: v.contiguous() for k, v in tensors.items()}, temporary, metadata={"state": json.dumps(state)})
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def read_checkpoint_state(path: Path) -> dict:
    """The JSON part of a checkpoint (epoch, history, config, recipe), without loading tensors."""
    try:
        with safe_open(str(path), framework="pt") as file:
            return json.loads(file.metadata()["state"])
    except Exception as error:  # safetensors raises several types for a bad file
        raise ValueError(f"{path} is not a readable checkpoint: {error}") from error


def load_checkpoint(path: Path, model: ViT, ema: ViT, optimizer: torch.optim.Optimizer) -> dict:
    """Restore model, EMA and optimizer from a checkpoint written by save_checkpoint; return its state."""
    state = read_checkpoint_state(path)
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    ema.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")}, strict=True)
    optimizer_state = optimizer.state_dict()
    for key, value in tensors.items():
        if key.startswith("optimizer."):
            _, index, name = key.split(".", 2)
            optimizer_state["state"].setdefault(int(index), {})[name] = value
    optimizer.load_state_dict(optimizer_state)
    return state
