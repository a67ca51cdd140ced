"""Which explanation can you trust? Two tests of the maps in vit.analysis.tile_maps, on one picture and on a model.

- Deletion and insertion (Petsiuk, Das & Saenko, "RISE", BMVC 2018; the perturbation tests of Chefer et al.
  2021): blank the tiles in the order a method ranks them, most important first, and follow the probability
  of the class; or start from a blank picture and put them back in that order. A faithful map makes the
  deletion curve fall fast (small area) and the insertion curve rise fast (large area). A random order is the
  baseline every method must beat.
- Model randomisation (Adebayo et al., "Sanity checks for saliency maps", NeurIPS 2018): re-initialise the
  weights from the top down, cascading, and measure how much each method's map still looks like the trained
  model's (Spearman rank correlation of |map| over the tiles that hold ink: on blank tiles integrated
  gradients and occlusion are 0 whatever the weights, which alone would make any two of their maps agree).
  A map that survives randomisation does not show what the model learned.

Areas are means over the fraction of tiles blanked (or put back), 0 to 1, of the class's probability.
"""

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn

from .analysis import METHODS, tile_maps
from .data import Split
from .model import ViT
from .tiling import pieces, unpieces

POINTS = 17             # curve points: 0, 1/16, …, all of the tiles
RANDOM_ORDERS = 4       # random orders per picture in the app (one per image over a test set)
COUNT = 1000            # test images for a model's scoreboard
RANDOMISED_IMAGES = 100  # test images for the randomisation test
BATCH = 512            # pictures per forward pass: one pass holds every curve of a picture in the app
BEATS_RANDOM = 0.5      # a method is "faithful" when its deletion area is at most half the random order's
SURVIVES = 0.5          # ... and "fails the sanity check" when its maps still correlate above this when random


def counts(tile_count: int, points: int = POINTS) -> list[int]:
    """How many tiles are blanked at each point of a curve: 0 … all, about evenly spaced."""
    return sorted({round(f * tile_count) for f in np.linspace(0, 1, points)})


def ranking(values: torch.Tensor) -> torch.Tensor:
    """Tile indices (reading order), most important first, of a (g, g) map."""
    return torch.argsort(values.flatten(), descending=True, stable=True)


@torch.no_grad()
def curves(model: ViT, image: torch.Tensor, target: int, orders: torch.Tensor, temperature: float = 1.0,
           fill: float = 0.0) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Deletion and insertion curves, each (M, P): p(target) with the first k tiles of each of the M orders
    (M, N) blanked, or with only those kept; all M × P × 2 pictures go through the model in a few batches."""
    images = image.float().reshape(1, model.channels, model.image_size, model.image_size)
    parts = pieces(images.to(next(model.parameters()).device), *model.piece)[0]  # (N, C, h, w)
    steps = counts(parts.shape[0])
    rank = torch.empty_like(orders)
    rank.scatter_(1, orders, torch.arange(orders.shape[1]).expand_as(orders))  # rank[m, tile]: its place in order m
    first = rank[:, None, :] < torch.tensor(steps)[None, :, None]  # (M, P, N): among the first k
    keep = torch.cat([~first, first]).flatten(0, 1)  # deletion keeps the rest; insertion keeps only those
    pictures = torch.where(keep[:, :, None, None, None].to(parts.device), parts, torch.full_like(parts, fill))
    probabilities = []
    for start in range(0, len(pictures), BATCH):
        logits = model(unpieces(pictures[start:start + BATCH], model.image_size, model.image_size)).float()
        probabilities.append((logits / temperature).softmax(dim=-1)[:, target].cpu())
    deletion, insertion = torch.cat(probabilities).reshape(2, len(orders), len(steps))
    return deletion, insertion, steps


def area(curve: torch.Tensor, steps: list[int]) -> torch.Tensor:
    """The area under a curve (..., P) over the fraction of tiles, 0 to 1 (trapezoids)."""
    x = torch.tensor(steps, dtype=curve.dtype) / steps[-1]
    return torch.trapezoid(curve, x, dim=-1)


def random_orders(count: int, tile_count: int, seed: int) -> torch.Tensor:
    """(count, tile_count) random orders of the tiles, the same for the same seed."""
    generator = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(tile_count, generator=generator) for _ in range(count)])


def picture_test(model: ViT, image: torch.Tensor, target: int, temperature: float = 1.0,
                 random_count: int = RANDOM_ORDERS, seed: int = 0) -> dict:
    """Every method's map of one picture for one class, its deletion and insertion curves and areas, and the
    same for random orders (their mean curve; "random" in the areas)."""
    maps = tile_maps(model, image, target)
    orders = torch.cat([torch.stack([ranking(maps[name]) for name in METHODS]),
                        random_orders(random_count, model.num_tiles, seed)])
    deletion, insertion, steps = curves(model, image, target, orders, temperature)
    # one curve per method, then the random orders' mean
    mean = lambda curve: torch.cat([curve[:len(METHODS)], curve[len(METHODS):].mean(dim=0, keepdim=True)])  # noqa: E731
    deletion, insertion, names = mean(deletion), mean(insertion), [*METHODS, "random"]
    return {"maps": maps, "steps": steps, "names": names,
            "deletion": dict(zip(names, deletion)), "insertion": dict(zip(names, insertion)),
            "areas": {name: (float(area(d, steps)), float(area(i, steps)))
                      for name, d, i in zip(names, deletion, insertion)}}


def most_faithful(areas: dict) -> str:
    """The method whose deletion curve falls fastest (ties: whose insertion curve rises fastest)."""
    return min(METHODS, key=lambda name: (round(areas[name][0], 4), -areas[name][1]))


# --- On a model: over many test images ---------------------------------------------------------------------

def _summary(values: list[float]) -> dict:
    array = np.asarray(values, dtype=np.float64)
    spread = float(array.std(ddof=1)) if len(array) > 1 else 0.0
    return {"mean": float(array.mean()), "sd": spread, "se": spread / math.sqrt(len(array))}


def sample(count: int, size: int) -> list[int]:
    """`count` image indices spread evenly over the first max(count, COUNT) of a split of `size`: all of the
    first COUNT for the full scoreboard, an even sample of them for a quicker recomputation."""
    span = min(max(count, COUNT), size)
    count = min(count, span)
    return [index * span // count for index in range(count)]


def scoreboard(model: ViT, split: Split, count: int = COUNT, temperature: float = 1.0) -> dict:
    """Deletion and insertion areas of every method and of a random order over `count` test images (vit.
    faithfulness.sample), each explained for the class the model predicts: mean, standard deviation over
    images and the standard error of the mean ("se", the spread a recomputation stays within)."""
    model.eval()
    indices = sample(count, len(split))
    areas = {name: ([], []) for name in (*METHODS, "random")}
    for index in indices:
        image = split.images[index].float() / 255
        with torch.no_grad():
            target = int(model(image[None].to(next(model.parameters()).device)).argmax())
        result = picture_test(model, image, target, temperature, random_count=1, seed=index)
        for name, (deleted, inserted) in result["areas"].items():
            areas[name][0].append(deleted)
            areas[name][1].append(inserted)
    return {"count": len(indices), "points": POINTS,
            "methods": {name: {"deletion": _summary(d), "insertion": _summary(i)} for name, (d, i) in areas.items()}}


def stages(model: ViT) -> list[tuple[str, list[nn.Module | str]]]:
    """The cascade of the randomisation test, top down: the head, each block from the last, then the tile
    embedding with CLS and the positions. Each stage names what it re-initialises."""
    return [("head", [model.norm, model.head]),
            *((f"block {number}", [model.blocks[number - 1]]) for number in range(len(model.blocks), 0, -1)),
            ("embedding", [model.tile_embedding, "cls_token", "pos_embedding"])]


def _reinitialise(model: ViT, parts: list) -> None:
    """Fresh weights for these parts, drawn as the model's own constructor draws them."""
    for part in parts:
        if isinstance(part, str):
            parameter = getattr(model, part)
            if isinstance(parameter, nn.Parameter):
                nn.init.trunc_normal_(parameter, std=0.02)
            continue
        for module in part.modules():
            if isinstance(module, nn.Linear):
                model._init_linear(module)
            elif isinstance(module, nn.LayerNorm):
                module.reset_parameters()


def rank_correlation(first: torch.Tensor, second: torch.Tensor) -> float:
    """Spearman's rank correlation of two maps, ties given their average rank; 0 when either is constant."""
    def ranks(values: np.ndarray) -> np.ndarray:
        order = values.argsort(kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values))
        for value in np.unique(values):  # ties share the mean of their ranks
            tied = values == value
            ranked[tied] = ranked[tied].mean()
        return ranked
    a, b = (ranks(m.detach().flatten().cpu().numpy().astype(np.float64)) for m in (first, second))
    if a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def inked_tiles(model: ViT, image: torch.Tensor) -> torch.Tensor:
    """(rows, columns) bool: the pieces holding any ink."""
    parts = pieces(image.float().reshape(1, model.channels, model.image_size, model.image_size), *model.piece)[0]
    return (parts != 0).flatten(1).any(dim=1).reshape(model.grid)


def randomisation(model: ViT, split: Split, count: int = RANDOMISED_IMAGES, seed: int = 0) -> dict:
    """The cascading model randomisation test: per stage, each method's mean rank correlation of |map| with the
    trained model's, over the first `count` images, explained for the class the trained model predicts."""
    model.eval()
    images = [split.images[index].float() / 255 for index in range(min(count, len(split)))]
    with torch.no_grad():
        targets = [int(model(image[None]).argmax()) for image in images]
    trained = [tile_maps(model, image, target) for image, target in zip(images, targets)]
    inked = [inked_tiles(model, image) for image in images]
    randomised = copy.deepcopy(model).requires_grad_(False)
    torch.manual_seed(seed)
    correlations = {name: [] for name in METHODS}
    names = []
    for stage, parts in stages(randomised):
        _reinitialise(randomised, parts)
        names.append(stage)
        maps = [tile_maps(randomised, image, target) for image, target in zip(images, targets)]
        for name in METHODS:
            values = [rank_correlation(before[name].abs()[ink], after[name].abs()[ink])
                      for before, after, ink in zip(trained, maps, inked)]
            correlations[name].append(float(np.mean(values)))
    return {"count": len(images), "stages": names, "methods": correlations}


@dataclass(frozen=True)
class Judgement:
    """One method's two tests over many pictures: does it find the tiles the answer needs, and does it show the
    decision rather than the picture?"""
    deletion: float       # mean deletion area
    ratio: float          # of a random order's deletion area
    faithful: bool        # ratio at most BEATS_RANDOM
    correlation: float    # rank correlation with the trained model's maps, head and top half re-drawn
    sane: bool            # that correlation at most SURVIVES: it passes the sanity check
    blind: bool           # re-drawing the head leaves its maps as they were: it shows one map for every class


def judge(board: dict, randomised: dict) -> dict[str, Judgement]:
    """Each method's Judgement from the stored scoreboard and randomisation test."""
    random_deletion = board["methods"]["random"]["deletion"]["mean"]
    half = _half(randomised)
    judged = {}
    for name in METHODS:
        deletion = board["methods"][name]["deletion"]["mean"]
        ratio = deletion / random_deletion if random_deletion > 0 else float("inf")
        cascade = randomised["methods"][name]
        judged[name] = Judgement(deletion, ratio, ratio <= BEATS_RANDOM, cascade[half], cascade[half] <= SURVIVES,
                                 cascade[0] > 0.999)
    return judged


def to_believe(judged: dict[str, Judgement]) -> str | None:
    """The method to believe (of `judge`'s judgements): faithful and sane, the fastest deletion among those; None
    when none is both."""
    both = [name for name, judgement in judged.items() if judgement.faithful and judgement.sane]
    return min(both, key=lambda name: judged[name].deletion) if both else None


def verdict(noun: str, board: dict, randomised: dict, fastest: str) -> str:
    """Which map to believe for a model, in a sentence, from both tests over its scoreboard's pictures: the most
    faithful of the maps that pass the sanity check, and why the fastest deletion (`fastest`) is not it."""
    judged = judge(board, randomised)
    believe = to_believe(judged)
    if believe is None:
        return f"no map is both faithful and sane on its {board['count']:,} test {noun}s; treat every map as a hint."
    said = (f"believe **{believe}**. On {board['count']:,} test {noun}s it finds the tiles the answer needs "
            f"({judged[believe].ratio:.0%} of a random order's deletion area) and passes the sanity check.")
    if fastest != believe:
        why = ("fails the sanity check: it shows the picture more than the decision" if not judged[fastest].sane
               else "is not faithful enough")
        said += f" {fastest.capitalize()} finds them faster but {why}."
    return said


def _half(randomised: dict) -> int:
    """The randomisation stage with the head and the top half of the blocks re-drawn (stage k: the top k)."""
    return math.ceil((len(randomised["stages"]) - 2) / 2)


def verdicts(board: dict, randomised: dict) -> dict[str, str]:
    """Per method, in plain words: does it beat a random order, and does it pass the sanity check? A map that
    still looks like the trained model's once the head and the top half of the blocks are re-drawn at random
    (rank correlation above SURVIVES) fails it: it shows the picture and the lower layers, not the decision."""
    half, blocks = _half(randomised), len(randomised["stages"]) - 2
    words = {}
    for name, judged in judge(board, randomised).items():
        faithful = (f"faithful: blanking its top tiles first removes the answer fast (deletion area "
                    f"{judged.deletion:.3f}, {judged.ratio:.0%} of a random order's)" if judged.faithful else
                    f"weak at finding the tiles the answer needs (deletion area {judged.deletion:.3f}, "
                    f"{judged.ratio:.0%} of a random order's)")
        sane = (f"it passes the sanity check: with the head and the top {half} blocks re-drawn at random its maps "
                f"correlate {judged.correlation:.2f} with the trained model's (all weights re-drawn: "
                f"{randomised['methods'][name][-1]:.2f})" if judged.sane else
                f"it fails the sanity check: with the head and the top {half} of {blocks} blocks re-drawn at random "
                f"its maps still correlate {judged.correlation:.2f} with the trained model's")
        blind = (" Re-drawing the classifier head leaves its maps exactly as they were: it shows the same map "
                 "whichever class is asked about." if judged.blind else "")
        words[name] = f"{name.capitalize()} is {faithful}; {sane}.{blind}"
    return words


def evaluate(model: ViT, split: Split, temperature: float = 1.0, count: int = COUNT,
             randomised_count: int = RANDOMISED_IMAGES) -> dict:
    """evaluation.json's "faithfulness": the scoreboard, the randomisation test (on the first
    `randomised_count` images, at most `count`) and the verdicts."""
    board = scoreboard(model, split, count, temperature)
    randomised = randomisation(model, split, max(1, min(randomised_count, count)))
    return {"scoreboard": board, "randomisation": randomised, "verdicts": verdicts(board, randomised),
            "best": min(METHODS, key=lambda name: board["methods"][name]["deletion"]["mean"])}
