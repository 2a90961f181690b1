"""Where a model runs: device names, autocast precision, free accelerator memory and
out-of-memory errors (render batches use them, see ``featurevis.batching``). Nothing here assumes a CPU; nothing is global (all are arguments)."""
from __future__ import annotations

import torch

from ..errors import NeuronscopeError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


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


def is_out_of_memory(error: BaseException) -> bool:
    """Whether ``error`` is an accelerator (or CPU allocator) out-of-memory error."""
    oom = getattr(torch, "OutOfMemoryError", None) or getattr(torch.cuda, "OutOfMemoryError", ())
    if oom and isinstance(error, oom):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def empty_cache(device: torch.device) -> None:
    """Return cached accelerator memory after an out-of-memory error (a no-op on CPUs)."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
    elif device.type == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()
