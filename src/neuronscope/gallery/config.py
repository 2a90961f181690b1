"""What a gallery build shows and how: one small frozen dataclass with documented defaults."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..dictionaries.config import DictionaryConfig
from ..errors import NeuronscopeError
from ..featurevis.render import DEFAULT_DIVERSITY_WEIGHT, RenderConfig
from ..interpretability.config import ScoreConfig
from ..models.digest import weights_digest

if TYPE_CHECKING:
    from ..models.model import Model

DEFAULT_UNITS = 6
"""Units per layer in a default build: the first channels of each layer (``--all`` for every one)."""

DEFAULT_STEPS = 96
"""Steps per feature visualization in a gallery (the photo pages' thumbnails take at most
``THUMBNAIL_STEPS``). Measured on Lite0's 6 default layers x 6 units x 3 samples against 128
steps (the default before; ``benchmarks/gallery_steps.py``): the unit's activation reaches
0.93-0.96 of 128 steps' (median per layer), crop/rescale robustness 0.787 vs 0.779 (median), the
visualization-based interpretability score 0.721 vs 0.724 (mean); the same patterns from the same
seeds; rendering takes a fifth less time. 64 steps: activation 0.83-0.89, score 0.715. A cosine
learning-rate schedule did worse at equal steps. ``--steps`` sets more."""

THUMBNAIL_STEPS = 64
"""Most steps of the photo pages' small renders: the semantic dictionary's 64-px channel icons and
the neuron groups' 96-px pictures (fewer when the gallery's own steps are fewer). Measured on
chelsea, coffee and rocket (``benchmarks/gallery_steps.py --part photo_pictures``): against 96
steps the objective reaches a median 0.90 (icons) and 0.89 (groups), the thumbnails look the
same, and they take 13.5 s instead of 23.9 s (icons) and 11.6 s instead of 17.5 s (groups)."""

DEFAULT_PHOTOS = ("chelsea", "coffee", "rocket")
"""Photos that get a page of their own when the image source is the bundled set."""


@dataclass(frozen=True)
class GalleryConfig:
    """How a gallery is built (the models are given to ``build_gallery`` / ``build_galleries``).
    Settings that change pictures (``render`` with its seed, ``samples``,
    ``diversity``, ``examples``) are pinned by the first build into a folder; later builds into the same
    folder may add layers, units and photos but not change those."""

    layers: tuple[str, ...] | None = None
    """Layers to show; None: a representative set (the last layer of each of the deepest stages)."""
    units: int | None = DEFAULT_UNITS
    """The first ``units`` channels of each layer; None: every channel."""
    samples: int = 3
    """Feature visualizations per unit, pushed apart by a diversity term."""
    diversity: float = DEFAULT_DIVERSITY_WEIGHT
    render: RenderConfig = field(default_factory=lambda: RenderConfig(steps=DEFAULT_STEPS, progress=False))
    """How units are rendered (``DEFAULT_STEPS`` at 128 px)."""
    examples: int = 9
    """Dataset examples kept per unit (top-k, and bottom-k where activations go negative)."""
    source: str | None = None
    """Image source for dataset examples: None (the bundled photo crops), a folder or a .txt list."""
    photos: tuple[str, ...] | None = None
    """Images with a page of their own; None: ``DEFAULT_PHOTOS`` for the bundled source, else the
    source's first three images; ``("all",)``: every bundled photo, or every image of the source."""
    classes: tuple[str, ...] = ()
    """Classes (names or indices) that get a unit page under ``logits``: class visualizations at
    the model's input size, the images that score the class highest, and how other models
    classify the pictures."""
    judges: tuple[str, ...] | None = None
    """Models (zoo names or specs) that classify the class pictures on their pages; None: the other
    zoo models with the same classes (for EfficientNet-Lite0: Lite1 and Lite2)."""
    mechanics: bool = False
    """Also show each unit's decomposed feature visualization from the layer before it, and sort
    layer pages by how polysemantic their units' firing looks (on Lite0's default build: 0.8x the
    rendering time more, `benchmarks/mechanics.py`)."""
    atlas: bool = False
    """Also an activation atlas page per layer (``atlas.activation_atlas`` over the gallery's image
    source, the gallery's render steps for its icons)."""
    features: DictionaryConfig | None = None
    """Also a dictionary of features at each layer shown (``learn_dictionary`` over the gallery's
    image source with these settings; ``microscope --features``: ``DictionaryConfig()``): a
    features section after each layer, its most frequent features rendered like units, a feature's
    page listing the neurons it is made of and a neuron's page the features it takes part in."""
    scores: ScoreConfig | None = None
    """Also score every channel of each layer shown (``interpretability``, one examples pass per
    layer over the gallery's image source, judged by another model's features; ``microscope
    --scores``: ``ScoreConfig()``), with ``RANDOM_SCORED`` random directions of the layer as the
    baseline and the shown dictionary features beside them; rendered units get a score from their
    visualizations too. Unit pages show the verdict, layer pages sort by it, the model page lists
    the means per layer. Not pinned: a later build without it keeps the scores, one with it
    scores again only what changed (other settings, more rendered units)."""
    caricature_steps: int = 48
    """Steps of the photo pages' caricatures. Measured on chelsea, coffee and rocket through the 6
    default layers (``benchmarks/gallery_steps.py --part caricatures``): the cosine to the photo's
    activations is within 0.017 of 64 steps' at every layer (mean per layer; 64 steps were within
    0.02 of 128 steps' before) and the pictures look the same; 32 steps lose up to 0.05, and a
    cosine learning-rate schedule washes them out."""
    progress: bool = True

    def __post_init__(self) -> None:
        if self.units is not None and self.units < 1:
            raise NeuronscopeError(f"units must be at least 1 (or all), got {self.units}")
        if self.samples < 1:
            raise NeuronscopeError(f"samples must be at least 1, got {self.samples}")
        if self.examples < 1:
            raise NeuronscopeError(f"examples must be at least 1, got {self.examples}")
        if self.caricature_steps < 1:
            raise NeuronscopeError(f"caricature_steps must be at least 1, got {self.caricature_steps}")

    def pinned(self, model: Model) -> dict:
        """The settings a folder's existing pictures were made with (compared on every resume):
        the render settings, the model's weights (retrained weights never mix with old pictures)
        and ``RenderConfig.fingerprint``, which covers both."""
        return {"render": self.render.pixel_settings(), "weights": weights_digest(model),
                "fingerprint": self.render.fingerprint(model), "samples": self.samples, "diversity": self.diversity,
                "examples": self.examples, "caricature_steps": self.caricature_steps}
