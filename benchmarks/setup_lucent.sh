#!/usr/bin/env bash
# Create benchmarks/.venv-lucent: a separate environment with torch-lucent 0.1.8 (Lucent, the
# PyTorch port of Lucid) next to neuronscope, for benchmarks/render.py's side-by-side baseline.
#
#     bash benchmarks/setup_lucent.sh          # builds it (about a minute); a second run only checks
#
# What Lucent 0.1.8 needs to run on this stack (see ../shared/docs/lucent-baseline.md):
#   * torch-lucent itself with --no-deps: its metadata asks for torchvision, kornia<=0.4.1 and
#     test tools (pytest, coveralls, ...);
#   * kornia 0.4.1, the newest its pin allows (0.6+ dropped kornia.get_rotation_matrix2d and
#     kornia.warp_affine, which Lucent's random_rotate calls), installed with --no-deps;
#   * IPython (lucent.optvis.render imports lucent.misc.io.showing, which imports IPython.display),
#     tqdm and decorator;
#   * a stand-in `torchvision` package providing only transforms.Normalize, written below.
# torch is pinned: an unpinned torch would pull a multi-GB CUDA build. Override with TORCH_SPEC.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
venv="$root/benchmarks/.venv-lucent"
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

check() {
    "$venv/bin/python" - "$root" <<'PY'
import sys
import torch, kornia, IPython, torchvision  # noqa: F401
import lucent
from importlib.metadata import version
from lucent.optvis import render, param, transform, objectives  # noqa: F401
import neuronscope
assert version("torch-lucent") == "0.1.8", version("torch-lucent")
assert kornia.__version__ == "0.4.1", kornia.__version__
assert getattr(torchvision, "NEURONSCOPE_STANDIN", False), "a real torchvision is installed"
assert neuronscope.__file__.startswith(sys.argv[1]), neuronscope.__file__
print(f"lucent venv ok: torch {torch.__version__}, torch-lucent 0.1.8, kornia {kornia.__version__}, "
      f"IPython {IPython.__version__}, neuronscope from {neuronscope.__file__}")
PY
}

if [ -x "$venv/bin/python" ] && check 2>/dev/null; then
    exit 0
fi

echo "setup_lucent: building $venv" >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip() {  # quiet; drops pip's warnings about index locations a machine's config may list but lack
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
pip "$torch_spec"
pip -e "$root"
# Lucent's own runtime imports (besides torch, numpy, pillow, which neuronscope already brought).
pip ipython tqdm decorator
pip --no-deps torch-lucent==0.1.8 kornia==0.4.1

site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
mkdir -p "$site/torchvision"
cat > "$site/torchvision/__init__.py" <<'PY'
"""STAND-IN, not torchvision. Written by benchmarks/setup_lucent.sh.

No torchvision build imports beside the CPU torch 2.13 of this machine, and Lucent 0.1.8 imports
exactly one thing from it: ``torchvision.transforms.Normalize`` (used only by its default
ImageNet preprocessing, which the benchmark turns off with preprocess=False). This package
provides only that.
"""
from . import transforms  # noqa: F401

NEURONSCOPE_STANDIN = True
__version__ = "0.0.0+neuronscope-standin"
PY
cat > "$site/torchvision/transforms.py" <<'PY'
"""STAND-IN for torchvision.transforms: only Normalize (see __init__.py)."""
import torch


class Normalize(torch.nn.Module):
    """(x - mean) / std per channel, on a (..., C, H, W) tensor, like torchvision's."""

    def __init__(self, mean, std, inplace=False):
        super().__init__()
        self.mean, self.std, self.inplace = mean, std, inplace

    def forward(self, tensor):
        mean = torch.as_tensor(self.mean, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        std = torch.as_tensor(self.std, dtype=tensor.dtype, device=tensor.device).view(-1, 1, 1)
        return tensor.sub_(mean).div_(std) if self.inplace else (tensor - mean) / std
PY

check
