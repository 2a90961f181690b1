"""Shared fixtures: the real pretrained models are loaded once per test session."""
import pytest
import torch

import neuronscope as ns


@pytest.fixture(scope="session", autouse=True)
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def lite0() -> ns.Model:
    return ns.load("efficientnet_lite0")
