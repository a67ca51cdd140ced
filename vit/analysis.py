"""What a trained model does and what it learned, as tensors: no matplotlib, no gradio here.

Confusion matrix and worst losses (the notebook's failure views); the three panels of the ViT paper's
figure 7 (principal components of the tile-embedding filters, positional-embedding similarity, mean
attention distance); attention maps and rollout (Abnar & Zuidema 2020), input-gradient saliency and tile
occlusion.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .data import Split
from .model import ViT
from .tiling import pieces, unpieces


@torch.inference_mode()
def predict_split(model: torch.nn.Module, split: Split, batch_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Class probabilities (N, C) and per-image cross-entropy losses (N,) over a whole split, as inference-mode
    tensors (read them; clone before changing them in place).

    On a CPU, batches of 100 keep each layer's activations in cache: faster than batches of 1000
    (`python -m bench`, "before / now").
    """
    device = next(model.parameters()).device
    batch_size = batch_size or (100 if device.type == "cpu" else 1000)
    model.eval()
    probabilities, losses = [], []
    for start in range(0, len(split), batch_size):
        images, labels = split.batch(torch.arange(start, min(start + batch_size, len(split))))
        logits = model(images.to(device)).float().cpu()
        probabilities.append(logits.softmax(dim=-1))
        losses.append(F.cross_entropy(logits, labels, reduction="none"))
    return torch.cat(probabilities), torch.cat(losses)


def confusion_matrix(labels: torch.Tensor, predictions: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    return torch.bincount(labels * num_classes + predictions, minlength=num_classes ** 2).view(num_classes, num_classes)


def worst_losses(losses: torch.Tensor, count: int) -> torch.Tensor:
    """Indices of the `count` highest losses, highest first."""
    return losses.topk(min(count, len(losses))).indices


@dataclass
class Explanation:
    """Everything the Predict tab shows for one image."""
    probabilities: torch.Tensor  # (C,)
    predicted: int
    attention: torch.Tensor      # (L, H, T, T) attention probabilities, T = tiles + 1, CLS first
    cls_attention: torch.Tensor  # (L, H, g, g) the CLS token's attention to each tile, in the tile layout
    rollout: torch.Tensor        # (g, g) CLS's share of each tile after attention rollout, sums to 1 (or all 0)
    saliency: torch.Tensor       # (H, W) |d logit[predicted] / d pixel|, scaled to [0, 1]
    occlusion: torch.Tensor      # (g, g) log-odds of predicted minus that with the tile blanked; > 0 = supports
    occlusion_blocks: torch.Tensor  # (g, g) the same with each 2×2 block of tiles blanked together


Grid = int | tuple[int, int]  # (rows, columns) of the model's pieces; an int is a square grid of tiles


def rows_and_columns(grid: Grid) -> tuple[int, int]:
    return (grid, grid) if isinstance(grid, int) else tuple(grid)


def tile_layout(values: torch.Tensor, grid: Grid) -> torch.Tensor:
    """Per-piece values (..., N) in reading order -> (..., rows, columns), laid out by vit.tiling like the
    model's pieces: a square for tiles, one column for horizontal strips, one row for vertical ones."""
    rows, columns = rows_and_columns(grid)
    single = values.reshape(-1, rows * columns, 1, 1, 1)  # (B, N, C=1, 1, 1): each value is a 1x1 piece
    return unpieces(single, rows, columns).reshape(*values.shape[:-1], rows, columns)


def cls_attention_maps(attention: torch.Tensor, grid: int) -> torch.Tensor:
    """The CLS token's attention to each tile, (L, H, T, T) -> (L, H, g, g)."""
    return tile_layout(attention[..., 0, 1:], grid)  # CLS row, tile columns: (L, H, N) -> (L, H, g, g)


def attention_rollout(attention: torch.Tensor) -> torch.Tensor:
    """Joint attention through all layers (Abnar & Zuidema 2020), (L, H, T, T) -> (T, T).

    Heads are averaged and the residual connection is modelled as half identity; each layer's rows are
    renormalised, then the layers are multiplied, last layer on the left.
    """
    tokens = attention.shape[-1]
    identity = torch.eye(tokens, dtype=attention.dtype, device=attention.device)
    joint = identity
    for layer in attention:  # (H, T, T)
        mixed = 0.5 * layer.mean(dim=0) + 0.5 * identity  # (T, T)
        mixed = mixed / mixed.sum(dim=-1, keepdim=True)
        joint = mixed @ joint
    return joint


def rollout_map(attention: torch.Tensor, grid: int) -> torch.Tensor:
    """CLS's share of each tile after rollout, (L, H, T, T) -> (g, g) summing to 1 (all 0 if CLS sees no tile)."""
    shares = attention_rollout(attention)[0, 1:]  # (N,)
    total = shares.sum()
    return tile_layout(shares / total if total > 0 else torch.zeros_like(shares), grid)


def _scaled_gradient(gradient: torch.Tensor) -> torch.Tensor:
    """|gradient| of one image (1, C, H, W), strongest channel, scaled so the maximum is 1 -> (H, W)."""
    magnitude = gradient[0].abs().amax(dim=0)  # (H, W)
    peak = magnitude.max()
    return magnitude / peak if peak > 0 else magnitude


def saliency(model: torch.nn.Module, images: torch.Tensor, target: int) -> torch.Tensor:
    """|d logit[target] / d pixel| of one image, (1, C, H, W) -> (H, W) scaled to [0, 1]."""
    with torch.enable_grad():
        pixels = images.detach().clone().requires_grad_(True)
        logits = model(pixels)
        (gradient,) = torch.autograd.grad(logits[0, target], pixels)  # only the input's gradient: weights untouched
    return _scaled_gradient(gradient)


@torch.no_grad()
def occlusion(model: torch.nn.Module, images: torch.Tensor, target: int, fill: float = 0.0,
              group: int = 1) -> torch.Tensor:
    """How much each tile's evidence for `target` counts: its log-odds, log p / (1 - p), minus the log-odds with
    that tile (or the group × group block of tiles holding it) set to `fill`; (1, C, H, W) -> (g, g), one
    batched forward. With group > 1 every tile of a block shows the block's drop.

    Log-odds rather than probability: for a sure answer p moves from 0.9999 to 0.999 when a stroke goes, a
    change too small to see, while its log-odds fall by 2.3.
    Blocks that already equal `fill` cannot change anything, so they are not run and score exactly 0.
    """
    return occlusions(model, images, [target], fill, (group,))[0][0]


@dataclass
class _Blanked:
    """One image's occlusion copies and how to read their answers back into a map."""
    copies: torch.Tensor   # (K+1, C, H, W): copy 0 intact, then one per block that blanking alters
    block: torch.Tensor    # (N,) each piece's block
    changed: torch.Tensor  # (K,) the blocks the copies blank, in order
    blocks: int            # G, blocks in all


def _blanked(model: torch.nn.Module, image: torch.Tensor, fill: float, group: int) -> _Blanked:
    """The copies of one image (1, C, H, W) with each group × group block of pieces set to `fill`."""
    parts = pieces(image, *model.piece)[0]  # (N, C, h, w)
    rows, columns = model.grid
    index = torch.arange(parts.shape[0])
    block = (index // columns // group) * math.ceil(columns / group) + index % columns // group  # (N,) each one's block
    members = F.one_hot(block).T.bool()  # (G, N)
    differs = (parts != fill).flatten(1).any(dim=1)  # (N,)
    changed = (members & differs).any(dim=1).nonzero().squeeze(1)  # (K,) blocks blanking would alter
    copies = parts.expand(len(changed) + 1, -1, -1, -1, -1).clone()  # (K+1, N, C, h, w); copy 0 stays intact
    copies[1:][members[changed]] = fill
    return _Blanked(unpieces(copies, image.shape[2], image.shape[3]), block, changed, members.shape[0])


@torch.no_grad()
def occlusions(model: torch.nn.Module, images: torch.Tensor, targets: list[int], fill: float = 0.0,
               groups: tuple[int, ...] = (1,)) -> list[torch.Tensor]:
    """`occlusion` of several images (B, C, H, W), each for its own target, at each group size: one (B, g, g) per
    group, the copies of every image and group sent through the model together (a server's visitors share it)."""
    plans = [(_blanked(model, image[None], fill, group), target) for group in groups
             for image, target in zip(images, targets, strict=True)]
    logits = _forward_distinct(model, torch.cat([plan.copies for plan, _ in plans])).float()  # (sum K+1, C)
    maps = []
    for (plan, target), answers in zip(plans, logits.split([len(plan.copies) for plan, _ in plans])):
        evidence = log_odds(answers, target)  # (K+1,)
        drops = torch.zeros(plan.blocks, dtype=evidence.dtype, device=evidence.device)
        drops[plan.changed] = evidence[0] - evidence[1:]
        maps.append(tile_layout(drops[plan.block], model.grid))
    return [torch.stack(maps[start:start + len(targets)]) for start in range(0, len(maps), len(targets))]


def _forward_distinct(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """model(images), each distinct image sent through once. Occlusion's copies repeat: every group size keeps an
    intact copy, and a block with one inked piece blanks the same pixels as that piece alone (on digits about one
    copy in eight)."""
    distinct, where = torch.unique(images.flatten(1), dim=0, return_inverse=True)
    if len(distinct) == len(images):
        return _forward_in_chunks(model, images)
    return _forward_in_chunks(model, distinct.view(-1, *images.shape[1:]))[where]


def _forward_in_chunks(model: torch.nn.Module, images: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """model(images) in chunks: on a CPU a chunk of about a hundred keeps each layer's activations in cache."""
    return torch.cat([model(images[start:start + chunk]) for start in range(0, len(images), chunk)])


def log_odds(logits: torch.Tensor, target: int) -> torch.Tensor:
    """log(p / (1 - p)) of class `target` from logits (B, C), computed without forming p: (B,)."""
    if not 0 <= target < logits.shape[1]:
        raise ValueError(f"target {target} is not a class index (0 to {logits.shape[1] - 1})")
    others = logits.index_fill(1, torch.tensor([target], device=logits.device), -torch.inf)  # (B, C) without target
    return logits[:, target] - others.logsumexp(dim=1)


def _as_batch(image: torch.Tensor) -> torch.Tensor:
    """(H, W) or (C, H, W) pixels, uint8 or float in [0, 1] -> (1, C, H, W) float."""
    image = image.float() / 255 if image.dtype == torch.uint8 else image.float()
    return image.reshape(1, -1, *image.shape[-2:])  # (1, C, H, W)


def explain(model: ViT, image: torch.Tensor) -> Explanation:
    """Prediction, attention, rollout, saliency and occlusion for one image (H, W) or (C, H, W) in [0, 1]."""
    return explain_many(model, [image])[0]


def explain_many(model: ViT, images: list[torch.Tensor]) -> list[Explanation]:
    """`explain` of several images, each (H, W) or (C, H, W), in one forward and backward pass and one batch of
    occlusion copies: what a server does with the pictures of visitors who ask at once."""
    batch = torch.cat([_as_batch(image) for image in images]).to(next(model.parameters()).device)  # (B, C, H, W)
    grid = model.grid
    with torch.enable_grad():  # one forward serves prediction, attention and saliency
        pixels = batch.detach().clone().requires_grad_(True)
        logits, attention = model(pixels, return_attention=True)
        predicted = logits.argmax(dim=1)  # (B,)
        # the images do not meet inside the model, so the sum's gradient is each image's own
        (gradient,) = torch.autograd.grad(logits.gather(1, predicted[:, None]).sum(), pixels)
    attention, targets = attention.detach(), predicted.tolist()  # (B, L, H, T, T)
    single, blocks = occlusions(model, batch, targets, groups=(1, 2))
    return [Explanation(probabilities=logits[i].detach().softmax(dim=-1), predicted=targets[i],
                        attention=attention[i], cls_attention=cls_attention_maps(attention[i], grid),
                        rollout=rollout_map(attention[i], grid), saliency=_scaled_gradient(gradient[i:i + 1]),
                        occlusion=single[i], occlusion_blocks=blocks[i])
            for i in range(len(images))]


def cosine_similarity_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    """Cosine similarity of every pair of rows, (N, D) -> (N, N); an all-zero row scores 0, never NaN."""
    unit = F.normalize(embeddings.float(), dim=-1)
    return (unit @ unit.T).clamp(-1.0, 1.0)


@torch.no_grad()
def positional_similarity(model: ViT) -> torch.Tensor:
    """Cosine similarity between the position embeddings of the N tiles, CLS left out (ViT paper, fig. 7)."""
    return cosine_similarity_matrix(model.pos_embedding[0, 1:])  # (N, D) -> (N, N)


@torch.no_grad()
def median_attention_by_label(model: ViT, images: torch.Tensor, labels: torch.Tensor, chosen: list[int],
                              batch_size: int = 256) -> dict[int, torch.Tensor]:
    """Label -> element-wise median attention (L, H, T, T) over that label's images (K, H, W), uint8 or float.

    A label with no image among `images` is left out. For an even count the lower median is taken.
    """
    device = next(model.parameters()).device
    pixels = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    pixels = pixels.reshape(len(pixels), -1, *pixels.shape[-2:])  # (K, C, H, W)
    medians = {}
    for label in chosen:
        selected = pixels[labels == label]
        if len(selected) == 0:
            continue
        maps = [model(selected[start:start + batch_size].to(device), return_attention=True)[1].cpu()
                for start in range(0, len(selected), batch_size)]
        medians[label] = torch.cat(maps).median(dim=0).values  # (K, L, H, T, T) -> (L, H, T, T)
    return medians


@torch.no_grad()
def filter_components(model: ViT, count: int = 28) -> tuple[torch.Tensor, torch.Tensor]:
    """The principal components of the tile-embedding filters (ViT paper, figure 7 left): (K, C, t, t), unit
    length, and each one's share of the filters' variance (K,), largest first; K ≤ count.

    Each of the D rows of the embedding matrix is a filter: a C·t·t picture the tile is compared with. Centred
    over the D filters, their singular vectors are the patterns the filters vary along.
    """
    weight = model.tile_embedding.weight.float()  # (D, C·t²)
    centred = weight - weight.mean(dim=0, keepdim=True)
    _, singular, directions = torch.linalg.svd(centred, full_matrices=False)  # directions (K, C·t²)
    variance = singular ** 2
    share = variance / variance.sum() if variance.sum() > 0 else variance
    keep = min(count, len(singular))
    shape = (model.channels, *model.piece)
    return directions[:keep].reshape(keep, *shape), share[:keep]


def tile_distances(grid: Grid, piece: int | tuple[int, int]) -> torch.Tensor:
    """Distance in pixels between the centres of every pair of pieces (h × w pixels each, `piece`) of a grid
    (rows, columns), (N, N): for horizontal strips only the vertical distance counts."""
    (rows, columns), (height, width) = rows_and_columns(grid), rows_and_columns(piece)
    r, c = torch.meshgrid(torch.arange(rows), torch.arange(columns), indexing="ij")
    centres = torch.stack([r.flatten() * height, c.flatten() * width], dim=1).float()  # (N, 2), reading order
    return torch.cdist(centres, centres)


def attention_distance(attention: torch.Tensor, grid: Grid, piece: int | tuple[int, int]) -> torch.Tensor:
    """How far, in pixels, each head gathers from: (..., T, T) attention -> (...) mean distance.

    For every query tile, the attention-weighted distance to the key tiles, averaged over the query tiles
    (ViT paper, figure 7 right, and its appendix D.7). CLS has no place in the picture, so it is left out as
    query and as key, and each row is renormalised over the tiles.
    """
    tiles_only = attention[..., 1:, 1:]  # (..., N, N)
    weights = tiles_only / tiles_only.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    distances = tile_distances(grid, piece).to(attention)
    return (weights * distances).sum(dim=-1).mean(dim=-1)


@torch.no_grad()
def mean_attention_distance(model: ViT, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Mean attention distance per layer and head, (L, H) in pixels, averaged over images (K, H, W) or
    (K, C, H, W), uint8 or float in [0, 1]."""
    pixels = images.float() / 255 if images.dtype == torch.uint8 else images.float()
    pixels = pixels.reshape(len(pixels), model.channels, *pixels.shape[-2:])
    device = next(model.parameters()).device
    total = torch.zeros(model.num_layers, model.num_heads)
    for start in range(0, len(pixels), batch_size):
        _, attention = model(pixels[start:start + batch_size].to(device), return_attention=True)  # (B, L, H, T, T)
        total += attention_distance(attention.float().cpu(), model.grid, model.piece).sum(dim=0)
    return total / len(pixels)


# --- Which tiles mattered, for any class: the methods the faithfulness tests compare (vit/faithfulness.py) ----

METHODS = ("attention", "rollout", "saliency", "integrated gradients", "occlusion", "relevance")


def _attention_with_gradients(model: ViT, images: torch.Tensor, target: int) -> tuple[list, list]:
    """Each block's attention probabilities (H, T, T) for one image and the gradient of logit[target] with
    respect to them. The model stacks its maps into a copy outside the graph, so each block's own tensor is
    caught on its way out with a forward hook."""
    caught = []
    hooks = [block.attention.register_forward_hook(lambda module, inputs, output: caught.append(output[1]))
             for block in model.blocks]
    try:
        with torch.enable_grad():  # the input asks for gradients: the app's models have frozen weights
            logits, _ = model(images.detach().clone().requires_grad_(True), return_attention=True)
            gradients = torch.autograd.grad(logits[0, target], caught)
    finally:
        for hook in hooks:
            hook.remove()
    return [a[0].detach() for a in caught], [g[0] for g in gradients]


def relevance(model: ViT, image: torch.Tensor, target: int) -> torch.Tensor:
    """Class-specific relevance of each tile, (g, g) ≥ 0: gradient-weighted attention propagated through the
    layers (Chefer, Gur & Wolf, "Generic attention-model explainability for interpreting bi-modal and
    encoder-decoder transformers", ICCV 2021, eq. 5–6, the self-attention rule; it simplifies their CVPR 2021
    "Transformer interpretability beyond attention visualization" relevance propagation).

    R starts as the identity; for every block, Ā = mean over heads of (∇A ⊙ A)⁺ with ∇A = ∂ logit[target] / ∂A,
    and R ← R + Ā R. The CLS row of R over the tiles is the map. Unlike rollout, it changes with the class.
    """
    images = _as_batch(image).to(next(model.parameters()).device)
    attention, gradients = _attention_with_gradients(model, images, target)
    tokens = attention[0].shape[-1]
    joint = torch.eye(tokens, device=images.device)
    for probabilities, gradient in zip(attention, gradients):
        weighted = (gradient * probabilities).clamp_min(0).mean(dim=0)  # (T, T)
        joint = joint + weighted @ joint
    return tile_layout(joint[0, 1:], model.grid)


def integrated_gradients(model: torch.nn.Module, image: torch.Tensor, target: int, steps: int = 64,
                         per_tile: bool = True) -> torch.Tensor:
    """Integrated gradients (Sundararajan, Taly & Yan, "Axiomatic attribution for deep networks", ICML 2017)
    from a blank picture: (x − 0) ⊙ the mean gradient of logit[target] along the straight path from blank to
    x, a midpoint Riemann sum of `steps` points in one batched pass. Summed per tile, (g, g) (per pixel with
    per_tile=False, (H, W)). Signed: positive supports the class. Completeness: the attributions add up to
    logit(x) − logit(blank), to within the integration error: 64 points keep it under 2.5 % on the shipped
    models' test digits (16 points: up to 92 % on the default model)."""
    images = _as_batch(image).to(next(model.parameters()).device)
    alphas = (torch.arange(steps, device=images.device, dtype=images.dtype) + 0.5) / steps
    with torch.enable_grad():
        path = (alphas[:, None, None, None] * images).requires_grad_(True)  # (steps, C, H, W)
        (gradient,) = torch.autograd.grad(model(path)[:, target].sum(), path)
    attribution = (images[0] * gradient.mean(dim=0)).sum(dim=0)  # (H, W), channels summed
    if not per_tile:
        return attribution
    return _per_tile(attribution, model.piece)


def _per_tile(values: torch.Tensor, piece: tuple[int, int]) -> torch.Tensor:
    """An (H, W) map summed over each piece of `piece` = (h, w) pixels: (rows, columns)."""
    (height, width), (h, w) = values.shape, piece
    return values.reshape(height // h, h, width // w, w).sum(dim=(1, 3))


def tile_maps(model: ViT, image: torch.Tensor, target: int) -> dict[str, torch.Tensor]:
    """Every method's map of one image for class `target`, per tile (g, g), larger = more important:
    attention (the last block's CLS row, heads averaged), rollout, saliency (|gradient| summed per tile),
    integrated gradients, occlusion (log-odds drop) and relevance. Attention and rollout ignore the class."""
    images = _as_batch(image).to(next(model.parameters()).device)
    grid = model.grid
    with torch.enable_grad():
        pixels = images.detach().clone().requires_grad_(True)
        logits, attention = model(pixels, return_attention=True)
        (gradient,) = torch.autograd.grad(logits[0, target], pixels)
    attention = attention[0].detach()
    return {"attention": tile_layout(attention[-1, :, 0, 1:].mean(dim=0), grid),
            "rollout": rollout_map(attention, grid),
            "saliency": _per_tile(gradient[0].abs().sum(dim=0), model.piece),
            "integrated gradients": integrated_gradients(model, images, target),
            "occlusion": occlusion(model, images, target),
            "relevance": relevance(model, images, target)}
