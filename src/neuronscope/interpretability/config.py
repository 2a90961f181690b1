"""Settings of the two-choice interpretability score (``interpretability``)."""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import NeuronscopeError

SIMILARITY_MODELS = {"efficientnet_lite0": "efficientnet_lite2", "efficientnet_lite1": "efficientnet_lite2"}
"""The model whose features judge image similarity for a model under study; any other model
(Lite2, a user's model) is judged by ``FALLBACK_SIMILARITY``. Never the model itself."""
FALLBACK_SIMILARITY = "efficientnet_lite0"


@dataclass(frozen=True)
class ScoreConfig:
    """How units are scored (the Machine Interpretability Score recipe of Zimmermann, Klindt &
    Brendel, NeurIPS 2024, uncalibrated; see docs/interpretability.md).

    Attributes:
        tasks: two-choice tasks per unit. The paper analyses up to 20; here 40, because tasks
            cost nothing once a unit's pools are embedded, and at 20 two task seeds ranked the
            40 units of Lite0 blocks.2.1 with Spearman 0.77 only (docs/interpretability.md).
        references: strongly and weakly activating reference images per task (K = 9).
        pool: strongest and weakest images kept per unit by the examples pass.
        query_from: each task draws its references from the ``query_from`` strongest (weakest)
            images and its query from the rest of the pool, ranks ``query_from`` to ``pool - 1``:
            the references are the unit's extremes, as in the paper, and the query asks whether
            they predict images that drive the unit less (at the bundled source's 330 images,
            rank 20 to 39 is the 94th to 88th percentile).
        sharpness: alpha of the score's sigmoid(alpha * delta) per task. The paper fits it to
            human answers; without them it is fixed here, so scores are uncalibrated: they rank
            units, they do not predict a person's accuracy. At 10 a task's typical delta (0.1 to
            0.2 with the default similarity) maps to 0.73-0.88, and a unit's score follows its
            mean margin, which is far steadier across task seeds than the fraction of right
            answers of 20 tasks (docs/interpretability.md).
        similarity: name of the model whose pooled features compare images (None: Lite2 for
            Lite0 and Lite1, Lite0 for every other model; never the model under study).
        similarity_size: side in pixels at which every image (an example's crop, a
            visualization) is shown to the similarity model.
        crop_mass: example images are the part of the input that carries this much of the unit's
            input gradient around its peak (``examples.effective_extent``; what gallery crops show).
        constant_below: a unit whose strongest and weakest peaks differ by less than this
            fraction of the layer's largest such range (or by less than 1e-8) is flagged as
            constant (dead) and not scored.
        other_groups: a query's references come only from other groups of the source
            (``ImageSource.group``: the bundled crops' photo) than the query's own, the offline
            stand-in for the paper's distinct images: a crop is then never matched with crops of
            its own photo, which overlap it. Off by default: on the bundled 11 photos it lowers
            every score by about 0.1 and leaves deep units too few related references
            (docs/interpretability.md); for a folder of distinct images it changes nothing.
            A unit whose strongest or weakest images all come from one group is then not scored
            (``UnitScore.one_group``).
        seed: seed of the task draws (a unit's draws depend on it and on the unit's address only).
        batch: images per forward pass of the examples pass and of the similarity model.
        progress: show progress bars.
    """

    tasks: int = 40
    references: int = 9
    pool: int = 40
    query_from: int = 20
    sharpness: float = 10.0
    similarity: str | None = None
    similarity_size: int = 128
    crop_mass: float = 0.8
    constant_below: float = 1e-6
    other_groups: bool = False
    seed: int = 0
    batch: int = 32
    progress: bool = True

    def __post_init__(self) -> None:
        for name in ("tasks", "references", "batch"):
            if getattr(self, name) < 1:
                raise NeuronscopeError(f"ScoreConfig.{name} must be at least 1, got {getattr(self, name)}")
        if not self.references <= self.query_from < self.pool:
            raise NeuronscopeError(f"ScoreConfig needs references <= query_from < pool (references from the "
                                   f"query_from strongest images, queries from the rest of the pool), got "
                                   f"{self.references}, {self.query_from}, {self.pool}")
        if self.similarity_size < 32:
            raise NeuronscopeError(f"ScoreConfig.similarity_size must be at least 32 pixels, got {self.similarity_size}")
        if not 0 < self.crop_mass <= 1:
            raise NeuronscopeError(f"ScoreConfig.crop_mass must be in (0, 1], got {self.crop_mass}")


def similarity_model_name(model_name: str, config: ScoreConfig) -> str:
    """The similarity model for a model under study (``ScoreConfig.similarity``)."""
    chosen = config.similarity or SIMILARITY_MODELS.get(model_name, FALLBACK_SIMILARITY)
    if chosen == model_name:
        raise NeuronscopeError(f"{model_name} cannot judge its own units: choose another similarity model "
                               f"(ScoreConfig.similarity, --similarity), e.g. "
                               f"{'efficientnet_lite2' if model_name != 'efficientnet_lite2' else 'efficientnet_lite0'}")
    return chosen
