"""Shared fixtures of the learnable-rail tests: tiny models on the cpu-tiny preset."""

from __future__ import annotations

import pytest
import torch

from tworail.rails.ttt.config import ModelConfig, preset
from tworail.rails.ttt.model import TTTModel


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture
def tiny_config() -> ModelConfig:
    """The cpu-tiny preset: 4 blocks (1 suffix), window 8, mini-batch 4, seq_len 32."""
    return preset("cpu-tiny")


@pytest.fixture
def tiny_model(tiny_config: ModelConfig) -> TTTModel:
    """A float64 cpu-tiny model with frozen parameters and a fixed seed."""
    torch.manual_seed(0)
    model = TTTModel(tiny_config).double()
    model.requires_grad_(False)
    return model
