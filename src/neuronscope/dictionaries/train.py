"""Training a dictionary on activation vectors: the TopK sparse autoencoder and NMF.

TopK (Gao et al. 2024, "Scaling and evaluating sparse autoencoders"): vectors are centred on their
mean and divided by their RMS distance to it (centring is what keeps features alive, arXiv
2605.31518); the encoder starts as the decoder's transpose, decoder rows are kept at unit length,
the loss is the normalized squared error plus AuxK (the ``aux_k`` features that have not fired for
``dead_after`` batches reconstruct the residual), Adam with a cosine-decayed learning rate. The
training uses the encoder's values; ``config.refit`` decides the codes of the finished dictionary.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from tqdm.auto import tqdm

from ..factorization import ChannelReducer
from ..featurevis.loop import adam
from .config import DictionaryConfig
from .dictionary import Dictionary, topk_codes


def train(vectors: torch.Tensor, layer: str, config: DictionaryConfig, seed: int) -> Dictionary:
    """A dictionary of ``vectors`` (N, C) as ``config`` says, seeded by ``seed``."""
    if config.kind == "nmf":
        return _train_nmf(vectors, layer, config, seed)
    return _train_topk(vectors, layer, config, seed)


def unit_rows_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer, schedule, decoder: torch.Tensor) -> None:
    """One optimizer step on ``loss`` that keeps the decoder's rows at unit length: the gradient
    along each row is dropped before the step, and the rows are normalized after it."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    with torch.no_grad():
        decoder.grad -= (decoder.grad * decoder).sum(1, keepdim=True) * decoder
    optimizer.step()
    schedule.step()
    with torch.no_grad():
        decoder /= decoder.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _train_topk(vectors: torch.Tensor, layer: str, config: DictionaryConfig, seed: int) -> Dictionary:
    data = vectors.double()
    mean = data.mean(0)
    scale = float((data - mean).pow(2).sum(1).mean().sqrt().clamp_min(1e-12))
    x = ((data - mean) / scale).float()
    count, channels = x.shape
    features = config.feature_count(channels)
    k = config.active(channels)
    generator = torch.Generator().manual_seed(seed)
    decoder = torch.randn(features, channels, generator=generator)
    decoder = decoder / decoder.norm(dim=1, keepdim=True)
    decoder.requires_grad_(True)
    encoder = decoder.detach().clone().requires_grad_(True)
    encoder_bias = torch.zeros(features, requires_grad=True)
    decoder_bias = torch.zeros(channels, requires_grad=True)
    parameters = [encoder, encoder_bias, decoder, decoder_bias]
    optimizer = adam(parameters, config.lr)
    per_epoch = max(1, math.ceil(count / config.batch))
    total = per_epoch * config.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / total)))
    aux_k = channels // 2 if config.aux_k is None else config.aux_k
    idle = torch.zeros(features, dtype=torch.long)
    bar = tqdm(total=total, desc=f"TopK dictionary {layer}"[:60], unit="step", disable=not config.progress, leave=False)
    for _ in range(config.epochs):
        order = torch.randperm(count, generator=generator)
        for start in range(0, count, config.batch):
            batch = x[order[start:start + config.batch]]
            pre = (batch - decoder_bias) @ encoder.T + encoder_bias
            codes = topk_codes(pre, k)
            reconstruction = codes @ decoder + decoder_bias
            residual = batch - reconstruction
            variance = (batch - batch.mean(0)).pow(2).sum(1).mean().clamp_min(1e-12)
            loss = residual.pow(2).sum(1).mean() / variance
            fired = (codes > 0).any(0)
            idle = torch.where(fired, torch.zeros_like(idle), idle + 1)
            dead = idle >= config.dead_after
            if aux_k and config.aux_weight and bool(dead.any()):
                dead_pre = pre.masked_fill(~dead, float("-inf"))
                aux_codes = topk_codes(dead_pre, min(aux_k, int(dead.sum())))
                aux = aux_codes @ decoder
                target = residual.detach()
                loss = loss + config.aux_weight * (target - aux).pow(2).sum(1).mean() / target.pow(2).sum(1).mean().clamp_min(1e-12)
            unit_rows_step(loss, optimizer, schedule, decoder)
            bar.update()
    bar.close()
    return Dictionary(layer, "topk", k, mean.float(), scale, encoder.detach(), encoder_bias.detach(),
                      decoder.detach(), decoder_bias.detach(), refit=config.refit)


def _train_nmf(vectors: torch.Tensor, layer: str, config: DictionaryConfig, seed: int) -> Dictionary:
    channels = vectors.shape[1]
    features = config.feature_count(channels)
    reducer = ChannelReducer(features, "NMF", negatives="clip", seed=seed)
    reducer.fit_transform(vectors)
    decoder = torch.from_numpy(np.asarray(reducer.components, dtype=np.float32))
    encoder = torch.linalg.pinv(decoder.double()).T.float()  # (F, C): the least-squares code
    return Dictionary(layer, "nmf", None, torch.zeros(channels), 1.0, encoder, torch.zeros(features), decoder,
                      torch.zeros(channels))
