#!/usr/bin/env bash
# Create .venv and install neuronscope into it (editable) with extras: `bash scripts/setup.sh`
# installs the test extras; `bash scripts/setup.sh test,ray` adds Ray (the tests of the ray engine).
#
# torch: a compatible torch (>= 2.1) that is already importable is kept, never replaced.
# Otherwise torch==2.13.0 is installed explicitly: on machines with a local CPU wheel it
# resolves to that, whereas an unpinned `torch` would pull a multi-GB CUDA build.
# Override with TORCH_SPEC="torch==X.Y" or point PYTHON at another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=${1:-test}
case "$extras" in *[!a-z,]*|"") echo "setup: extras are comma-separated names (test, ray), got '$extras'" >&2; exit 2;; esac
python=${PYTHON:-python3}
torch_spec=${TORCH_SPEC:-torch==2.13.0}

if [ ! -x .venv/bin/python ]; then
    # --system-site-packages lets the venv reuse a torch the user already has.
    "$python" -m venv --system-site-packages .venv
fi

if ! .venv/bin/python - <<'PY' 2>/dev/null
import sys, torch
major, minor = (int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
sys.exit(0 if (major, minor) >= (2, 1) else 1)
PY
then
    echo "setup: installing $torch_spec" >&2
    .venv/bin/python -m pip install --quiet "$torch_spec"
fi

.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
