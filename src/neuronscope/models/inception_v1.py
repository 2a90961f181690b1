"""InceptionV1 (GoogLeNet, Szegedy et al. 2014) with Lucid's layer names: our own definition.

Two weight families share one definition and one naming:

* ``inceptionv1``: Lucid's ``inception5h`` (the TF graph of the DeepDream and Lucid papers):
  1008 classes, convolutions with biases, local response norm after the stem, TF "SAME"
  geometry (stride-2 layers pad one pixel more on the bottom/right), mixed4a 508 and mixed5a's
  5x5 bottleneck 48 wide. Weights: Lucent's ``inception5h.pth`` (ProGamerGov's conversion).
* ``googlenet``: torchvision's GoogLeNet (weights ported from TF-slim): BatchNorm after every
  convolution, no LRN, 1000 ImageNet classes, the paper's channel table, and torchvision's known
  3x3 kernel in every "5x5" branch (pytorch/vision#906), kept so that its weights fit.

Every Lucid layer is a module that runs exactly once per forward pass: ``conv2d0_pre_relu``
(the convolution, before its ReLU) and ``conv2d0`` (the ReLU); per mixed block the branch
convolutions ``mixed4a_1x1_pre_relu``, ``mixed4a_3x3_bottleneck_pre_relu``, ... and their ReLUs
``mixed4a_1x1``, ``mixed4a_3x3_bottleneck``, ...; ``mixed4a_pre_relu`` (the concatenated branch
outputs before their ReLUs, as Lucid adds it to the graph) and ``mixed4a`` (after them). Both
concatenations lie on the forward path: the block ReLUs read slices of ``mixed4a_pre_relu``, so
gradients and replacements at either reach the rest of the network. ``softmax2_pre_activation``
is the logits. The auxiliary heads (``softmax0``, ``softmax1``) only train and are not included.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import partial
from importlib import resources
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .weights import StateDict, load_weights_file

LRN = {"size": 9, "alpha": 9.99999974738e-05, "beta": 0.5, "k": 1.0}
"""inception5h's local response norm, with the parameters of Lucent's port (which its weights
were checked with): PyTorch divides ``alpha`` by ``size``."""
BN_EPS = 1e-3
"""torchvision's (and TF-slim's) BatchNorm epsilon for GoogLeNet."""
BRANCHES = ("1x1", "3x3", "5x5", "pool_reduce")
"""The four towers of a mixed block, in the order they are concatenated."""


@dataclass(frozen=True)
class Mixed:
    """One mixed (Inception) block: its input width and the width of every convolution."""

    name: str
    in_ch: int
    c1x1: int
    c3x3_bottleneck: int
    c3x3: int
    c5x5_bottleneck: int
    c5x5: int
    pool_reduce: int
    pool_before: str | None = None
    """The stride-2 max-pool that runs before the block (Lucid's ``maxpool4``, ``maxpool10``)."""

    @property
    def widths(self) -> tuple[int, int, int, int]:
        return (self.c1x1, self.c3x3, self.c5x5, self.pool_reduce)

    @property
    def out_ch(self) -> int:
        return sum(self.widths)


def _table(rows: list[tuple]) -> tuple[Mixed, ...]:
    pools = {"mixed4a": "maxpool4", "mixed5a": "maxpool10"}
    return tuple(Mixed(*row, pool_before=pools.get(row[0])) for row in rows)


# (name, in, 1x1, 3x3 bottleneck, 3x3, 5x5 bottleneck, 5x5, pool reduce)
INCEPTION5H = _table([
    ("mixed3a", 192, 64, 96, 128, 16, 32, 32), ("mixed3b", 256, 128, 128, 192, 32, 96, 64),
    ("mixed4a", 480, 192, 96, 204, 16, 48, 64), ("mixed4b", 508, 160, 112, 224, 24, 64, 64),
    ("mixed4c", 512, 128, 128, 256, 24, 64, 64), ("mixed4d", 512, 112, 144, 288, 32, 64, 64),
    ("mixed4e", 528, 256, 160, 320, 32, 128, 128), ("mixed5a", 832, 256, 160, 320, 48, 128, 128),
    ("mixed5b", 832, 384, 192, 384, 48, 128, 128),
])
GOOGLENET = _table([
    ("mixed3a", 192, 64, 96, 128, 16, 32, 32), ("mixed3b", 256, 128, 128, 192, 32, 96, 64),
    ("mixed4a", 480, 192, 96, 208, 16, 48, 64), ("mixed4b", 512, 160, 112, 224, 24, 64, 64),
    ("mixed4c", 512, 128, 128, 256, 24, 64, 64), ("mixed4d", 512, 112, 144, 288, 32, 64, 64),
    ("mixed4e", 528, 256, 160, 320, 32, 128, 128), ("mixed5a", 832, 256, 160, 320, 32, 128, 128),
    ("mixed5b", 832, 384, 192, 384, 48, 128, 128),
])


@dataclass(frozen=True)
class Variant:
    """One weight family of the architecture and where its weights come from."""

    name: str
    mixed: tuple[Mixed, ...]
    num_classes: int
    batchnorm: bool
    five_kernel: int
    lrn: bool
    last_pool_kernel: int
    url: str
    sha256_prefix: str | None
    """The start of the published file's sha256 (torchvision names its files by it); None: none known."""
    expected: str
    """The weights layouts a file may have, for error messages."""
    source: str
    """The file that gives the pretrained weights, in one phrase."""


VARIANTS = {
    "inceptionv1": Variant(
        "inceptionv1", INCEPTION5H, 1008, batchnorm=False, five_kernel=5, lrn=True, last_pool_kernel=3,
        url="https://github.com/ProGamerGov/pytorch-old-tensorflow-models/raw/master/inception5h.pth",
        sha256_prefix=None,
        expected="Lucent's inception5h.pth (keys like 'mixed4a_3x3_pre_relu_conv.weight', 1008 classes) "
                 "or a state dict of neuronscope's inceptionv1",
        source="Lucent's inception5h.pth"),
    "googlenet": Variant(
        "googlenet", GOOGLENET, 1000, batchnorm=True, five_kernel=3, lrn=False, last_pool_kernel=2,
        url="https://download.pytorch.org/models/googlenet-1378be20.pth",
        sha256_prefix="1378be20",
        expected="torchvision's googlenet state dict (googlenet-1378be20.pth, keys like "
                 "'inception4a.branch2.1.conv.weight') or a state dict of neuronscope's googlenet",
        source="torchvision's googlenet-1378be20.pth"),
}


class ConvBN(nn.Module):
    """Convolution (no bias) then BatchNorm: torchvision's ``BasicConv2d`` without its ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(out_ch, eps=BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class PaddedConv2d(nn.Conv2d):
    """A Conv2d with fixed (left, right, top, bottom) zero padding, for TF's asymmetric "SAME"."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, stride: int, pad: tuple[int, int, int, int]) -> None:
        super().__init__(in_ch, out_ch, kernel, stride=stride)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


class Concat(nn.Module):
    """Concatenation of its inputs along the channels (a module, so that it can be captured)."""

    def forward(self, *parts: torch.Tensor) -> torch.Tensor:
        return torch.cat(parts, dim=1)


class InceptionV1(nn.Module):
    """InceptionV1 with Lucid's flat layer names (see the module docstring)."""

    def __init__(self, variant: Variant) -> None:
        super().__init__()
        self.variant = variant.name
        self.blocks = variant.mixed
        self.lrn = variant.lrn
        unit = partial(_unit, variant.batchnorm)
        if variant.batchnorm:
            self.conv2d0_pre_relu = ConvBN(3, 64, 7, stride=2, padding=3)
        else:
            self.conv2d0_pre_relu = PaddedConv2d(3, 64, 7, stride=2, pad=(2, 3, 2, 3))
        self.conv2d0 = nn.ReLU()
        self.maxpool0 = _stride2_pool(3)
        if variant.lrn:
            self.localresponsenorm0 = nn.LocalResponseNorm(**LRN)
        self.conv2d1_pre_relu = unit(64, 64, 1)
        self.conv2d1 = nn.ReLU()
        self.conv2d2_pre_relu = unit(64, 192, 3)
        self.conv2d2 = nn.ReLU()
        if variant.lrn:
            self.localresponsenorm1 = nn.LocalResponseNorm(**LRN)
        self.maxpool1 = _stride2_pool(3)
        for block in variant.mixed:
            if block.pool_before:
                kernel = variant.last_pool_kernel if block.pool_before == "maxpool10" else 3
                self.add_module(block.pool_before, _stride2_pool(kernel))
            self._add_mixed(block, unit, variant.five_kernel)
        self.avgpool0 = nn.AdaptiveAvgPool2d(1)
        self.softmax2_pre_activation = nn.Linear(variant.mixed[-1].out_ch, variant.num_classes)

    def _add_mixed(self, block: Mixed, unit, five_kernel: int) -> None:
        name, cin = block.name, block.in_ch
        convs = {
            "1x1": (cin, block.c1x1, 1), "3x3_bottleneck": (cin, block.c3x3_bottleneck, 1),
            "3x3": (block.c3x3_bottleneck, block.c3x3, 3), "5x5_bottleneck": (cin, block.c5x5_bottleneck, 1),
            "5x5": (block.c5x5_bottleneck, block.c5x5, five_kernel), "pool_reduce": (cin, block.pool_reduce, 1),
        }
        for tower, (c_in, c_out, kernel) in convs.items():
            if tower == "pool_reduce":
                self.add_module(f"{name}_pool", nn.MaxPool2d(3, stride=1, padding=1))
            self.add_module(f"{name}_{tower}_pre_relu", unit(c_in, c_out, kernel))
            if tower.endswith("bottleneck"):
                self.add_module(f"{name}_{tower}", nn.ReLU())
        self.add_module(f"{name}_pre_relu", Concat())
        for tower in BRANCHES:
            self.add_module(f"{name}_{tower}", nn.ReLU())
        self.add_module(name, Concat())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self._modules
        x = self.maxpool0(self.conv2d0(self.conv2d0_pre_relu(x)))
        if self.lrn:
            x = m["localresponsenorm0"](x)
        x = self.conv2d2(self.conv2d2_pre_relu(self.conv2d1(self.conv2d1_pre_relu(x))))
        if self.lrn:
            x = m["localresponsenorm1"](x)
        x = self.maxpool1(x)
        for block in self.blocks:
            if block.pool_before:
                x = m[block.pool_before](x)
            x = self._mixed(block, x)
        return self.softmax2_pre_activation(torch.flatten(self.avgpool0(x), 1))

    def _mixed(self, block: Mixed, x: torch.Tensor) -> torch.Tensor:
        m, name = self._modules, block.name
        pre = [
            m[f"{name}_1x1_pre_relu"](x),
            m[f"{name}_3x3_pre_relu"](m[f"{name}_3x3_bottleneck"](m[f"{name}_3x3_bottleneck_pre_relu"](x))),
            m[f"{name}_5x5_pre_relu"](m[f"{name}_5x5_bottleneck"](m[f"{name}_5x5_bottleneck_pre_relu"](x))),
            m[f"{name}_pool_reduce_pre_relu"](m[f"{name}_pool"](x)),
        ]
        joined = m[f"{name}_pre_relu"](*pre)
        parts = torch.split(joined, list(block.widths), dim=1)
        return m[name](*(m[f"{name}_{tower}"](part) for tower, part in zip(BRANCHES, parts)))


def _unit(batchnorm: bool, in_ch: int, out_ch: int, kernel: int) -> nn.Module:
    """A stride-1 convolution that keeps the spatial size, with BatchNorm (googlenet) or a bias."""
    if batchnorm:
        return ConvBN(in_ch, out_ch, kernel, padding=kernel // 2)
    return nn.Conv2d(in_ch, out_ch, kernel, padding=kernel // 2)


def _stride2_pool(kernel: int) -> nn.MaxPool2d:
    """A stride-2 max-pool whose last window may hang over the bottom/right edge: torchvision's
    ``ceil_mode=True``, and for 3x3 pools the same windows as inception5h's "SAME" padding at even
    sizes (and as Lucent's one-pixel pad at every size)."""
    return nn.MaxPool2d(kernel, stride=2, ceil_mode=True)


# --- weights -----------------------------------------------------------------------------

_TORCHVISION_TOP = {"conv1": "conv2d0", "conv2": "conv2d1", "conv3": "conv2d2"}
_TORCHVISION_BRANCH = {"branch1": "1x1", "branch2.0": "3x3_bottleneck", "branch2.1": "3x3",
                       "branch3.0": "5x5_bottleneck", "branch3.1": "5x5", "branch4.1": "pool_reduce"}
_TORCHVISION_KEY = re.compile(r"^inception(\d[a-e])\.(branch1|branch[234]\.[01])\.(.+)$")


def from_lucent(state: StateDict) -> dict[str, torch.Tensor]:
    """Rename Lucent's keys (``mixed4a_1x1_pre_relu_conv.weight``, ``softmax2_pre_activation_matmul.bias``)
    to ours (``mixed4a_1x1_pre_relu.weight``, ``softmax2_pre_activation.bias``); others are kept."""
    renamed = {}
    for key, tensor in state.items():
        key = re.sub(r"_pre_relu_conv\.(weight|bias)$", r"_pre_relu.\1", key)
        renamed[key.replace("softmax2_pre_activation_matmul.", "softmax2_pre_activation.")] = tensor
    return renamed


def from_torchvision(state: StateDict) -> dict[str, torch.Tensor]:
    """Rename torchvision's GoogLeNet keys (``inception4a.branch2.1.conv.weight``, ``fc.bias``) to
    ours (``mixed4a_3x3_pre_relu.conv.weight``, ``softmax2_pre_activation.bias``) and drop the
    auxiliary heads ``aux1``/``aux2``, which torchvision's file carries untrained."""
    renamed = {}
    for key, tensor in state.items():
        head, _, rest = key.partition(".")
        if head in ("aux1", "aux2"):
            continue
        match = _TORCHVISION_KEY.match(key)
        if match:
            block, branch, rest = match.groups()
            key = f"mixed{block}_{_TORCHVISION_BRANCH[branch]}_pre_relu.{rest}"
        elif head in _TORCHVISION_TOP:
            key = f"{_TORCHVISION_TOP[head]}_pre_relu.{rest}"
        elif head == "fc":
            key = f"softmax2_pre_activation.{rest}"
        renamed[key] = tensor
    return renamed


def convert_state_dict(state: StateDict, variant: Variant) -> dict[str, torch.Tensor]:
    """A state dict in our layout from one in ours, Lucent's (inceptionv1) or torchvision's (googlenet)."""
    return from_torchvision(state) if variant.batchnorm else from_lucent(state)


def build(name: str, weights: str | Path | None = None) -> InceptionV1:
    """The network of variant ``name`` in eval mode with frozen parameters: ``weights`` (a file in
    one of the variant's layouts) loaded strict, or PyTorch's random initialization when None."""
    variant = VARIANTS[name]
    network = InceptionV1(variant)
    if weights is not None:
        load_weights_file(network, weights, variant.expected, convert=partial(convert_state_dict, variant=variant))
    network.requires_grad_(False)
    return network.eval()


def curated_layers(network: InceptionV1) -> list[str]:
    """Lucid's layer list: the three stem convolutions, the nine mixed blocks, then the logits."""
    return ["conv2d0", "conv2d1", "conv2d2", *(block.name for block in network.blocks), "logits"]


def inception5h_labels(num_classes: int = 1008) -> tuple[str, ...]:
    """inception5h's class names by output index (0 is 'dummy'; the file names 1001 of the 1008
    outputs, the last seven are never trained and are called 'unused 1001' ... 'unused 1007')."""
    text = (resources.files("neuronscope") / "assets" / "inception5h_labels.txt").read_text()
    names = [line.strip() for line in text.splitlines() if line.strip()]
    return tuple(names + [f"unused {i}" for i in range(len(names), num_classes)])


def missing_message(name: str) -> str:
    """What to do when variant ``name`` has no weights on this machine, in one line."""
    return (f"{name} has no weights here: pass --weights FILE ({VARIANTS[name].source}) "
            f"or run `neuronscope fetch {name}`")
