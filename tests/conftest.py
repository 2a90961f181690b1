"""Shared fixtures: the real pretrained models are loaded once per test session."""
import pytest
import torch

import neuronscope as ns
from neuronscope.models.spec import ModelSpec


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def lite0() -> ns.Model:
    return ns.load("efficientnet_lite0")


@pytest.fixture(scope="module")
def zoo_loaded_once(lite0):
    """For a module of CLI tests: every command loads its model from a spec (``ModelSpec.load``), so
    here a zoo spec without a weights file gives the model loaded the first time (Lite0: the
    session's), as a long-running process would; other specs load as they always do."""
    load = ModelSpec.load
    loaded = {ModelSpec("efficientnet_lite0"): lite0}

    def once(spec: ModelSpec) -> ns.Model:
        if spec.kind != "zoo" or spec.weights is not None:
            return load(spec)
        if spec not in loaded:
            loaded[spec] = load(spec)
        return loaded[spec]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ModelSpec, "load", once)
        yield loaded
