"""What a trained model does and what it learned, as tensors: no matplotlib, no gradio here.

Confusion matrix and worst losses (the notebook's failure views), positional-embedding similarity
(ViT paper, figure 7), attention maps and rollout (Abnar & Zuidema 2020), input-gradient saliency
and tile occlusion.
"""

import torch
import torch.nn.functional as F

from .data import Split


@torch.no_grad()
def predict_split(model: torch.nn.Module, split: Split, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, C) and per-image cross-entropy losses (N,) over a whole split."""
    model.eval()
    probabilities, losses = [], []
    for start in range(0, len(split), batch_size):
        images, labels = split.batch(torch.arange(start, min(start + batch_size, len(split))))
        logits = model(images.to(next(model.parameters()).device)).float().cpu()
        probabilities.append(logits.softmax(dim=-1))
        losses.append(F.cross_entropy(logits, labels, reduction="none"))
    return torch.cat(probabilities), torch.cat(losses)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    return torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2).view(num_classes, num_classes)


def worst_losses(losses: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` highest losses, highest first."""
    return losses.topk(min(count, len(losses))).indices
