"""How to train: the recipe (optimiser, schedule, regularisation, augmentation) and the presets train.py offers.

Each preset's measured accuracy and time are in its model folder (weights/, docs/models.md); `python train.py
--help` lists them.
"""

from dataclasses import dataclass


@dataclass
class Recipe:
    """How to train: optimiser, schedule, regularisation and augmentation."""
    epochs: int = 80
    batch_size: int = 128
    lr: float = 1e-3              # peak learning rate of AdamW
    weight_decay: float = 0.05    # on the Linear weights only
    warmup_epochs: float = 2.0    # linear warm-up, then cosine decay to zero
    label_smoothing: float = 0.1
    rotate: float = 15.0          # degrees, random in [-rotate, rotate]
    shift: float = 2.5            # pixels, random in [-shift, shift] on each axis
    scale: float = 0.15           # random zoom in [1 - scale, 1 + scale]
    thickness: float = 0.0        # strokes thickened or thinned: up to this share of one pixel's dilation/erosion
    elastic: float = 0.0          # pixels: a smooth random displacement field (elastic distortion) up to this size
    flip: float = 0.0             # chance of a left-right mirror image: for garments, never for digits (a mirrored 7)
    flag_ones: float = 0.0        # chance a training 1 gets a flag, as writers outside the US draw it: digits only
    coarse: float = 0.0           # chance an image is seen as a coarse scan (vit.augment.coarse_scan)
    erase: float = 0.0            # chance a random rectangle of the image is replaced by noise (vit.augment.erase)
    ema_decay: float = 0.999      # the weights kept and evaluated are an exponential moving average
    outliers: float = 0.0         # outlier exposure: weight of the push toward a uniform answer on non-digits
    seed: int = 0


# Each preset: the architecture (ViT keyword arguments) and the recipe; docs/models.md says how each was chosen.
PRESETS: dict[str, tuple[dict, Recipe]] = {
    # Thickness, elastic distortion and a flag on half the 1s stand in for writers outside MNIST (without the flag
    # a flagged 1 reads as a 7); no dropout: the augmentation regularises enough, and with dropout the training
    # accuracy stayed below the validation accuracy. The epochs are what `--budget 105m` fitted on 2 threads.
    "default": (dict(tile_size=4, embed_size=64, num_layers=6, num_heads=4, mlp_size=128, dropout=0.0),
                Recipe(epochs=91, thickness=0.7, elastic=1.5, flag_ones=0.5)),
    # The cut and the recipe were chosen on the validation split among 3-minute runs; its epochs are about what
    # `--budget 3m` fits. Seven strips of 4 rows are fewer, wider words than 16 tiles of 7: more epochs fit the
    # budget and the first ones learn more (docs/models.md).
    "fast": (dict(cut="horizontal-strips", tile_size=4, embed_size=64, num_layers=4, num_heads=4, mlp_size=128),
             Recipe(epochs=24, batch_size=256, lr=3e-3, warmup_epochs=1, label_smoothing=0.05, rotate=10, shift=2.0,
                    scale=0.1, ema_decay=0.998)),
    "tiny": (dict(tile_size=7, embed_size=16, num_layers=2, num_heads=1, mlp_size=32),
             Recipe(epochs=300, batch_size=128, lr=3e-3, weight_decay=0.01, warmup_epochs=5, label_smoothing=0.0,
                    rotate=5, shift=1.0, scale=0.05, thickness=0.3, elastic=0.5, ema_decay=0.999)),  # a small model: milder
}
