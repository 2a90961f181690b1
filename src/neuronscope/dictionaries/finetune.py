"""End-to-end fine-tuning of a TopK dictionary on the training images themselves.

After the training on activation vectors (``train``), the dictionary's parameters (encoder, its
bias, decoder, the decoder's offset; the network frozen, the centring and scale kept) are tuned
with the layer replaced by its reconstruction in the forward pass, to minimize

    KL(original class distribution || spliced class distribution)
        + finetune_mse_weight x normalized squared error of the reconstruction

over the training images (Braun et al. 2024, "Identifying functionally important features with
end-to-end sparse dictionary learning"; the KL fine-tuning of sparse autoencoders): what the
rest of the network reads of the layer is what is kept, while the squared error keeps the
features faithful to the layer. Adam, the learning rate decayed to 0 along a cosine, batches of
``image_batch`` images, decoder rows kept at unit length as in ``train``. Like the training, it
uses the encoder's values as codes; the dictionary keeps its ``refit`` setting.

Memory: the training images prepared once and kept as bytes (images x channels x H x W, 150 kB
a Lite0 crop: 81 MB for the 540 training crops of the bundled and extra images) beside their
original class log-probabilities; at most ``finetune_images`` images (a seeded subsample).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..capture import capture
from ..data.loading import Preparer
from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..featurevis.loop import adam
from ..models.model import Model
from ..names import LOGITS
from .config import DictionaryConfig
from .dictionary import Dictionary
from .train import unit_rows_step


class FineTuning:
    """The training images of a dictionary, prepared once with the original model's class
    log-probabilities, and ``__call__`` that fine-tunes a dictionary on them (see the module).
    One instance serves both seeds of a quality report."""

    def __init__(self, model: Model, sources: Sequence[tuple[ImageSource, Sequence[str]]],
                 config: DictionaryConfig) -> None:
        """``sources``: (source, the keys of its training images) pairs."""
        self.model, self.config = model, config
        items = [(source, key) for source, keys in sources for key in keys]
        if len(items) > config.finetune_images:  # a seeded subsample, in the sources' order
            keep = np.sort(np.random.default_rng([config.seed, 13]).choice(len(items), config.finetune_images, replace=False))
            items = [items[i] for i in keep]
        prepare = Preparer.of(model)
        images, teacher = [], []
        bar = tqdm(total=len(items), desc="fine-tuning images", unit="image", disable=not config.progress, leave=False)
        for start in range(0, len(items), config.image_batch):
            batch = []
            for source, key in items[start:start + config.image_batch]:
                try:
                    batch.append(prepare(source.load(key)))
                except NeuronscopeError:  # unreadable: skipped, as a pass skips it
                    pass
                bar.update()
            if not batch:
                continue
            stored = (torch.stack(batch).clamp(0, 1) * 255).round().to(torch.uint8)
            with torch.no_grad(), capture(model, [LOGITS]) as cap:
                logits = cap(self._inputs(stored))[LOGITS]
            images.append(stored)
            teacher.append(logits.double().log_softmax(1).float().cpu())
        bar.close()
        if not images:
            raise NeuronscopeError("no readable training image to fine-tune the dictionary on")
        self.images = torch.cat(images)
        """(N, C, H, W) uint8: the prepared training images."""
        self.teacher = torch.cat(teacher)
        """(N, classes) the original model's log-probabilities of each image."""

    def _inputs(self, stored: torch.Tensor) -> torch.Tensor:
        return (stored.float() / 255).to(self.model.device, self.model.dtype)

    def __call__(self, dictionary: Dictionary, seed: int) -> Dictionary:
        """``dictionary`` (TopK) fine-tuned end to end, batches drawn with ``seed``."""
        config, model = self.config, self.model
        if dictionary.kind != "topk":
            raise NeuronscopeError("only TopK dictionaries are fine-tuned end to end")
        device = model.device
        mean, scale = dictionary.mean.to(device), dictionary.scale
        encoder, encoder_bias, decoder, decoder_bias = (t.detach().clone().to(device).requires_grad_(True) for t in
                                                        (dictionary.encoder, dictionary.encoder_bias,
                                                         dictionary.decoder, dictionary.decoder_bias))
        tuned = Dictionary(dictionary.layer, "topk", dictionary.k, mean, scale, encoder, encoder_bias, decoder, decoder_bias)
        optimizer = adam([encoder, encoder_bias, decoder, decoder_bias], config.finetune_lr)
        count = len(self.images)
        total = max(1, math.ceil(count / config.image_batch)) * config.finetune_epochs
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
        generator = torch.Generator().manual_seed(seed)
        seen: dict[str, torch.Tensor] = {}

        def spliced(activations: torch.Tensor) -> torch.Tensor:
            seen["original"] = activations
            seen["reconstruction"] = tuned.reconstruct(activations)
            return seen["reconstruction"]

        bar = tqdm(total=total, desc=f"fine-tuning {dictionary.layer}"[:60], unit="step", disable=not config.progress,
                   leave=False)
        with capture(model, [dictionary.layer, LOGITS], replace={dictionary.layer: spliced}) as cap:
            for _ in range(config.finetune_epochs):
                order = torch.randperm(count, generator=generator)
                for start in range(0, count, config.image_batch):
                    index = order[start:start + config.image_batch]
                    log_q = cap(self._inputs(self.images[index]))[LOGITS].log_softmax(1)
                    log_p = self.teacher[index].to(log_q)
                    kl = (log_p.exp() * (log_p - log_q)).sum(1).mean()
                    loss = kl + config.finetune_mse_weight * _normalized_error(seen["original"], seen["reconstruction"], scale)
                    unit_rows_step(loss, optimizer, schedule, decoder)  # decoder rows stay at unit length
                    seen.clear()
                    bar.update()
        bar.close()
        return Dictionary(dictionary.layer, "topk", dictionary.k, dictionary.mean, scale,
                          *(t.detach().cpu() for t in (encoder, encoder_bias, decoder, decoder_bias)),
                          refit=dictionary.refit, manifest=dictionary.manifest)


def _normalized_error(original: torch.Tensor, reconstruction: torch.Tensor, scale: float) -> torch.Tensor:
    """``train``'s reconstruction loss on a layer's output (B, C, H, W): the squared error of the
    scaled vectors over their variance around the batch's mean."""
    rows = original.detach().permute(0, 2, 3, 1).reshape(-1, original.shape[1]) / scale
    made = reconstruction.permute(0, 2, 3, 1).reshape(-1, original.shape[1]) / scale
    variance = (rows - rows.mean(0)).pow(2).sum(1).mean().clamp_min(1e-12)
    return (rows - made).pow(2).sum(1).mean() / variance
