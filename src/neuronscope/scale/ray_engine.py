"""Ray as the engine of a gallery build: the build's one pass over its image source as a Ray Data
pipeline and unit rendering as Ray tasks, with the build's driver the only writer.

    with RayEngine(RayConfig(address="auto")) as engine:       # or RayConfig() for a local cluster
        build_gallery("efficientnet_lite0", GalleryConfig(...), "gallery", engine)

The pass: candidate positions -> ``DecodeRows`` (decoder actors: each item decoded once, prepared
for every model) -> ``ExamineBatch`` (model actors: every model once per batch, then every
accumulator's summarizer; one ``BatchParts`` per batch) -> the driver merges the parts in source
order, checkpointing as the local pass does; so the results are those of the local pass (dataset
examples, unit matches, atlas samples alike). Rendering: one task per chunk
(``max_retries``: a worker that dies is replaced and its chunk run again); the driver writes each
chunk's files and manifest records as its task finishes, so a chunk is recorded once or not at all.
"""
from __future__ import annotations

import copy
import pickle
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from ..data.sources import ImageSource
from ..errors import NeuronscopeError
from ..gallery.config import GalleryConfig
from ..gallery.engine import Job
from ..gallery.unit_views import RenderedChunk
from ..models.model import Model
from ..stream import BatchParts, PassConfig, PassPlan, Reader, Runner

INSTALL_HINT = "the ray engine needs Ray: pip install 'neuronscope[ray]'"


@dataclass(frozen=True)
class RayConfig:
    """Where and how a build runs on Ray.

    Attributes:
        address: a running cluster (``"auto"``, ``"ray://host:10001"``, ``"host:6379"``); None
            starts a local one for this build and stops it after.
        num_cpus: CPUs of that local cluster (None: all of this machine's).
        workers: model actors of the examples pass (None: as many as the cluster's CPUs or GPUs
            allow, at least 1).
        cpus_per_worker: CPUs a render task or a model actor asks for.
        gpus_per_worker: GPUs each asks for; None: 1 when the cluster has GPUs, else 0.
        decoders: actors that decode and resize images for the examples pass.
        cpus_per_decoder: CPUs each decoder asks for.
        max_retries: times a render task is run again after its worker process dies.
    """

    address: str | None = None
    num_cpus: int | None = None
    workers: int | None = None
    cpus_per_worker: float = 1.0
    gpus_per_worker: float | None = None
    decoders: int = 1
    cpus_per_decoder: float = 0.5
    max_retries: int = 3


class RayEngine:
    """A gallery ``Engine`` on a Ray cluster; use it as a context manager (or call ``close``)."""

    name = "ray"

    def __init__(self, config: RayConfig = RayConfig()) -> None:
        ray = _ray()
        self.config = config
        self._started = not ray.is_initialized()
        if self._started:
            if config.address not in (None, "auto"):
                _check_reachable(config.address)
            try:
                ray.init(address=config.address, num_cpus=config.num_cpus if config.address is None else None,
                         include_dashboard=False, log_to_driver=False, configure_logging=False)
            except ConnectionError as error:
                raise NeuronscopeError(f"cannot reach the Ray cluster at '{config.address}': {error}") from None
        resources = ray.cluster_resources()
        self.cpus, self.gpus = float(resources.get("CPU", 0)), float(resources.get("GPU", 0))
        self.gpus_per_worker = config.gpus_per_worker if config.gpus_per_worker is not None else (1.0 if self.gpus else 0.0)
        self._model_refs: dict[int, object] = {}

    def __enter__(self) -> RayEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop the local cluster this engine started (a cluster given by address keeps running)."""
        ray = _ray()
        if self._started and ray.is_initialized():
            ray.shutdown()
        self._started = False

    @property
    def workers(self) -> int:
        """Model actors / render tasks that run at once."""
        if self.config.workers is not None:
            return max(1, self.config.workers)
        if self.gpus_per_worker > 0:
            return max(1, int(self.gpus // self.gpus_per_worker))
        spare = self.cpus - self.config.decoders * self.config.cpus_per_decoder
        return max(1, int(spare // self.config.cpus_per_worker))

    # --- rendering ----------------------------------------------------------------------

    def render(self, model: Model, jobs: Sequence[Job], config: GalleryConfig) -> Iterator[RenderedChunk]:
        ray = _ray()
        from .workers import render_task

        if not jobs:
            return
        task = ray.remote(render_task).options(num_cpus=self.config.cpus_per_worker, num_gpus=self.gpus_per_worker,
                                               max_retries=self.config.max_retries, retry_exceptions=False)
        shipped = self._model_ref(model)
        waiting = list(jobs)
        running: list = []
        limit = self.workers  # tasks submitted at once; the others wait here, not in Ray's queue
        try:
            while waiting or running:
                while waiting and len(running) < limit:
                    layer, channels = waiting.pop(0)
                    running.append(task.remote(shipped, layer, list(channels), config, self.gpus_per_worker))
                done, running = ray.wait(running, num_returns=1)
                yield _result(ray, done[0])
        finally:
            for ref in running:  # a build stopped early (Ctrl-C, an error): drop the rest
                ray.cancel(ref, force=True)

    # --- the pass -----------------------------------------------------------------------

    def pass_runner(self) -> Runner:
        return self._batches

    def _batches(self, plan: PassPlan, source: ImageSource, config: PassConfig, start: int) -> Iterator[BatchParts]:
        ray = _ray()
        from .workers import DecodeRows, ExamineBatch

        remaining = len(source) - start
        if remaining <= 0:
            return
        context = ray.data.DataContext.get_current()
        context.execution_options.preserve_order = True  # parts in source order: ties as locally
        context.enable_progress_bars = False
        context.print_on_execution_start = False
        blocks = max(1, min(-(-remaining // config.batch), 8 * self.workers))
        # the candidates' positions, as blocks put from here: no read tasks to find CPUs for
        data = ray.data.from_numpy(np.array_split(np.arange(start, len(source), dtype=np.int64), blocks))
        data = data.map_batches(DecodeRows, fn_constructor_args=(source, plan.preparers),
                                batch_size=config.batch, compute=ray.data.ActorPoolStrategy(size=self.config.decoders),
                                num_cpus=self.config.cpus_per_decoder)
        data = data.map_batches(ExamineBatch, fn_constructor_args=(_cpu_plan(plan), self.gpus_per_worker),
                                batch_size=config.batch, compute=ray.data.ActorPoolStrategy(size=min(self.workers, blocks)),
                                num_cpus=self.config.cpus_per_worker, num_gpus=self.gpus_per_worker)
        for row in data.iter_rows():
            yield pickle.loads(row["parts"])

    def _model_ref(self, model: Model):
        """The model in Ray's object store (put once), for tasks."""
        ref = self._model_refs.get(id(model))
        if ref is None:
            ref = self._model_refs[id(model)] = _ray().put(_cpu(model))
        return ref


def _cpu(model: Model) -> Model:
    """The model as shipped to workers: on the CPU (each moves it to its GPU)."""
    return model if model.device.type == "cpu" else copy.deepcopy(model).to("cpu")


def _cpu_plan(plan: PassPlan) -> PassPlan:
    """The plan as shipped to workers: its models on the CPU (one copy per model)."""
    moved: dict[int, Model] = {}
    readers = {}
    for key, reader in plan.readers.items():
        model = moved.setdefault(id(reader.model), _cpu(reader.model))
        readers[key] = Reader(model, reader.size)
    return PassPlan(readers, plan.layers, plan.summarizers)


def _result(ray, ref) -> RenderedChunk:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as error:
        cause = error.as_instanceof_cause() if hasattr(error, "as_instanceof_cause") else error
        if isinstance(cause, NeuronscopeError):
            raise NeuronscopeError(str(cause).split("\n")[-1]) from None
        raise
    except ray.exceptions.WorkerCrashedError:
        raise NeuronscopeError("a Ray worker died more often than RayConfig.max_retries allows; run the same "
                               "command again to resume (finished units are kept)") from None


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a cluster address nothing listens at (Ray itself would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise NeuronscopeError(f"a Ray address is 'auto', 'HOST:PORT' or 'ray://HOST:PORT', got '{address}'")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as error:
        raise NeuronscopeError(f"cannot reach the Ray cluster at '{address}' ({error.strerror or error}); start one "
                               "with `ray start --head`, or leave out the address for a local cluster") from None


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401 - the examples pass
    except ImportError:
        raise NeuronscopeError(INSTALL_HINT) from None
    return ray
