"""One streaming pass over an image source, feeding many accumulators.

    examples = TopExamples(model, ["blocks.2.1", "blocks.4.2"], ExamplesConfig())
    matching = LayerMoments(...)                           # comparison.accumulate
    result = stream(source, [examples, matching])          # each image decoded once
    examples.finish("blocks.4.2"); result.skipped          # [(key, reason)] of unreadable items

Each item of the source is decoded once and prepared once per input size; each model runs once
per batch, through one capture of every layer any accumulator reads; each accumulator turns the
batch into a small partial result (``summarize``, where the model runs: this process or a Ray
worker) and merges it in source order (``merge``, here). Dataset examples, the comparison's
running moments and atlas samples are accumulators; so is anything that reads a dataset once.
"""
from .accumulator import Accumulator, BatchView, Reader, Unsaved
from .run import BatchParts, PassConfig, PassPlan, PassResult, Runner, local_batches, stream

__all__ = ["Accumulator", "BatchParts", "BatchView", "PassConfig", "PassPlan", "PassResult", "Reader", "Runner", "Unsaved",
           "local_batches", "stream"]
