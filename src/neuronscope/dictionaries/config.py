"""`DictionaryConfig`: how a dictionary of features is learned, with defaults measured on Lite0."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import NeuronscopeError

KINDS = ("topk", "nmf")
DEFAULT_K = 32
"""Active features per vector when ``DictionaryConfig.k`` is None (and the layer has 64 channels or more)."""
DENSE = 0.1
"""Features active at more than this fraction of positions are dense: broad directions that fire
on a large part of every image (with the defaults, 115 of Lite0 blocks.4.2's 448 features, whose
top examples and visualizations show generic edges and textures); overviews and galleries show
the most frequent of the others first."""


@dataclass(frozen=True)
class DictionaryConfig:
    """How to learn a dictionary at one layer. The defaults (a TopK sparse autoencoder, 4x
    expansion, k = 32, 60 epochs of Adam at 4e-3 with a cosine decay, AuxK for dead features,
    codes refitted by least squares; no end-to-end fine-tuning, which is an option:
    ``finetune_epochs``) are
    those of ``docs/dictionaries.md``'s table for Lite0 over the bundled photos: measured there
    against 8x and 16x expansion, learning rates 1e-3 and 1e-2, and 120 epochs."""

    kind: str = "topk"
    """``topk``: a TopK sparse autoencoder (Gao et al. 2024) on centred activations; ``nmf``:
    non-negative matrix factorization (CRAFT), for layers whose outputs are non-negative."""
    expansion: int = 4
    """Features per channel of the layer (TopK). NMF learns ``features`` or as many as channels."""
    features: int | None = None
    """The number of features; None: ``expansion`` x channels (NMF: channels)."""
    k: int | None = None
    """Active features per activation vector (TopK); None: ``DEFAULT_K`` (32), at most half the
    layer's channels (``active``): as many active features as channels reconstruct any vector
    exactly and learn nothing sparse (Lite0 blocks.1.1, 24 channels, at k = 32: explained variance
    1.00 and a third of the features dead)."""
    epochs: int = 60
    """Passes over the training vectors (TopK)."""
    batch: int = 1024
    """Activation vectors per optimizer step (TopK)."""
    lr: float = 4e-3
    """Adam's learning rate, decayed to 0 along a cosine over the training."""
    refit: bool = True
    """TopK: a vector's code keeps the k features the encoder picks, their values refitted by least
    squares to the vector (``dictionary.refit_codes``), instead of the encoder's values. At Lite0
    blocks.4.2, k = 32, every bundled photo held out once: explained variance 0.815 -> 0.829,
    spliced KL 0.172 -> 0.142 and top-1 64 % -> 68 %, for an encoding about 6x slower (still far
    below the model's forward pass); docs/dictionaries.md. Training uses the encoder's values."""
    aux_k: int | None = None
    """Dead features that reconstruct the residual in the auxiliary loss (AuxK); None: half the
    layer's channels; 0: no auxiliary loss."""
    aux_weight: float = 1 / 32
    """Weight of the auxiliary loss."""
    dead_after: int = 1000
    """A feature is dead for AuxK once it has not fired on this many consecutive batches."""
    positions: int | None = None
    """Positions sampled per image (seeded, without repetition); None: every position. Memory:
    images x positions x channels x 4 bytes (Lite0 blocks.4.2 over 330 images: 29 MB)."""
    max_vectors: int = 200_000
    """Training vectors kept at most (a seeded subsample beyond it), so memory and time stay
    bounded: early layers have many positions (Lite0 blocks.1.1: 56 x 56 per image, 1.9 million
    vectors over the bundled and extra crops, whose first training had not finished after 10
    minutes on a 2-core CPU)."""
    holdout: float = 0.2
    """Fraction of the source's groups (the bundled photos; otherwise images) held out of
    training for the quality report."""
    report: bool = True
    """Make the quality report (``quality.QualityReport``): a second dictionary from the next seed
    for stability, and the spliced model on the held-out images; it needs ``holdout`` > 0."""
    seed: int = 0
    """Seeds the split, the positions, the initialization and the batches."""
    image_batch: int = 16
    """Images per forward pass while collecting, and per step of the fine-tuning."""
    finetune_epochs: int = 0
    """Passes of end-to-end fine-tuning over the training images after the training on vectors
    (TopK; ``finetune.FineTuning``): the layer replaced by its reconstruction, the dictionary tuned
    to keep the model's class distribution (KL) and the layer (``finetune_mse_weight``); 0: none.
    At Lite0 blocks.4.2, k = 32, one epoch took the held-out spliced top-1 from 72 % to 75 % and
    the KL from 0.176 to 0.136 at the same explained variance (0.79), for minutes more training
    per layer (docs/dictionaries.md); off by default for that cost."""
    finetune_lr: float = 3e-4
    """Adam's learning rate for the fine-tuning, decayed to 0 along a cosine."""
    finetune_mse_weight: float = 1.0
    """Weight of the normalized squared error of the reconstruction beside the KL in the fine-tuning."""
    finetune_images: int = 1000
    """Training images fine-tuned on at most (a seeded subsample): they are kept in memory as
    bytes (150 kB a Lite0 crop) with their class log-probabilities, and each costs a forward and
    backward pass per epoch."""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise NeuronscopeError(f"unknown dictionary kind '{self.kind}': choose one of {', '.join(KINDS)}")
        for name in ("expansion", "epochs", "batch", "dead_after", "max_vectors", "image_batch", "finetune_images"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise NeuronscopeError(f"{name} must be a positive integer, got {value!r}")
        for name in ("features", "positions", "k"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise NeuronscopeError(f"{name} must be a positive integer or None, got {value!r}")
        if self.aux_k is not None and (not isinstance(self.aux_k, int) or self.aux_k < 0):
            raise NeuronscopeError(f"aux_k must be a non-negative integer or None, got {self.aux_k!r}")
        if not 0 <= self.holdout < 1:
            raise NeuronscopeError(f"holdout must be in [0, 1), got {self.holdout!r}")
        if self.report and self.holdout == 0:
            raise NeuronscopeError("the quality report needs held-out images: use holdout > 0 or report=False")
        if self.lr <= 0 or self.aux_weight < 0:
            raise NeuronscopeError("lr must be positive and aux_weight non-negative")
        if not isinstance(self.finetune_epochs, int) or self.finetune_epochs < 0:
            raise NeuronscopeError(f"finetune_epochs must be a non-negative integer, got {self.finetune_epochs!r}")
        if self.finetune_lr <= 0 or self.finetune_mse_weight < 0:
            raise NeuronscopeError("finetune_lr must be positive and finetune_mse_weight non-negative")

    def active(self, channels: int) -> int:
        """The k of a layer with ``channels`` channels (see ``k``)."""
        return self.k if self.k is not None else max(1, min(DEFAULT_K, channels // 2))

    def feature_count(self, channels: int) -> int:
        if self.features is not None:
            return self.features
        return channels if self.kind == "nmf" else self.expansion * channels

    def settings(self) -> dict:
        """What decides the dictionary (for its fingerprint): everything but ``progress``."""
        return {k: v for k, v in asdict(self).items() if k != "progress"}
