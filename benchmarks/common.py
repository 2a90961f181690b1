"""What several benchmarks share: the machine they ran on, and the code of another revision."""
from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name (machines of one kind differ: ratios are only comparable on one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """The facts a benchmark's JSON records about the machine."""
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "load_1min_before": round(os.getloadavg()[0], 2)}


@contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A temporary checkout of ``revision`` (removed after): run its ``src`` beside this one's."""
    folder = Path(tempfile.mkdtemp(prefix="neuronscope-before-")) / "tree"
    made = subprocess.run(["git", "worktree", "add", "--detach", str(folder), revision], capture_output=True, text=True)
    if made.returncode != 0:
        raise SystemExit(f"--before {revision}: not a revision git can check out ({made.stderr.strip()})")
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], check=False, capture_output=True)
