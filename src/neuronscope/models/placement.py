"""Where a model runs: device names, autocast precision, memory-aware batch sizes with an
out-of-memory back-off. Nothing here assumes a CPU; nothing is global (all are arguments)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

from ..errors import NeuronscopeError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}

T = TypeVar("T")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """``auto`` (cuda if available, then mps, else cpu), ``cpu``, ``cuda``, ``cuda:N`` or ``mps``;
    a device this machine lacks is a one-line error."""
    if isinstance(name, torch.device):
        return name
    text = (name or "auto").strip().lower()
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind, _, index = text.partition(":")
    if kind not in DEVICES[1:] or (index and not index.isdigit()):
        raise NeuronscopeError(f"unknown device '{name}': choose {', '.join(DEVICES)} (or cuda:N)")
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise NeuronscopeError(f"device '{name}' is not available here (torch {torch.__version__} sees no CUDA GPU); use cpu or auto")
        if index and int(index) >= torch.cuda.device_count():
            raise NeuronscopeError(f"device '{name}' does not exist: this machine has {torch.cuda.device_count()} CUDA devices")
    if kind == "mps" and not _mps_available():
        raise NeuronscopeError(f"device '{name}' is not available here (no Apple GPU); use cpu or auto")
    return torch.device(text)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_precision(name: str | None, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``--precision`` (None: full float32). fp16 needs an accelerator;
    bf16 also runs on CPUs (slowly on most), which is how it is tested."""
    if name is None or name in ("", "fp32", "float32"):
        return None
    dtype = PRECISIONS.get(name.lower())
    if dtype is None:
        raise NeuronscopeError(f"unknown precision '{name}': choose {', '.join(PRECISIONS)} (default: float32)")
    if dtype is torch.float16 and device.type == "cpu":
        raise NeuronscopeError("--precision fp16 needs a cuda or mps device; on cpu use bf16 or the default float32")
    return dtype


def free_memory(device: torch.device) -> int | None:
    """Free bytes on an accelerator, None where the device cannot say (cpu, mps)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return None


def batch_for_memory(device: torch.device, bytes_per_item: int, default: int, cap: int = 256) -> int:
    """How many items fit in half the free memory of ``device`` (``default`` where it cannot say)."""
    free = free_memory(device)
    if free is None or bytes_per_item <= 0:
        return default
    return max(1, min(cap, int(free * 0.5) // bytes_per_item))


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an accelerator (or CPU allocator) out-of-memory error."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    if oom and isinstance(error, oom):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def run_batched(items: Sequence[T], batch: int, run: Callable[[Sequence[T]], list], *,
                empty_cache: Callable[[], None] | None = None) -> tuple[list, int]:
    """``run`` over ``items`` in chunks of ``batch``; a chunk that runs out of memory is retried
    at half the size (down to 1, then the error is raised as a one-line error). Returns the
    concatenated results and the batch size that worked."""
    results: list = []
    start = 0
    while start < len(items):
        chunk = items[start:start + batch]
        try:
            results.extend(run(chunk))
        except Exception as error:  # noqa: BLE001 - only out-of-memory errors are handled
            if not is_out_of_memory(error):
                raise
            if batch == 1:
                raise NeuronscopeError("out of memory with a batch of 1: use a smaller --size, or another device") from None
            batch = max(1, batch // 2)
            (empty_cache or _empty_all)()
            continue
        start += len(chunk)
    return results, batch


def empty_cache(device: torch.device) -> None:
    """Return cached accelerator memory after an out-of-memory error (a no-op on CPUs)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def _empty_all() -> None:
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
