"""What several benchmarks share: the machine they ran on, the code they measured (and that of
another revision), and waiting for an accelerator."""
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


def source_state() -> dict:
    """The commit and the uncommitted files of the package the numbers belong to (read-only git)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    return {"commit": git("rev-parse", "HEAD") or None,
            "uncommitted": git("status", "--porcelain", "--", "src/neuronscope").splitlines()}


def synchronize(device: str) -> None:
    """Wait for the accelerator's queued work (wall times of a GPU run); nothing on a CPU."""
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


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
