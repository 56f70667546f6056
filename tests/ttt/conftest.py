"""Shared fixtures of the learnable-rail tests: tiny models on the cpu-tiny preset and a micro model."""

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


MICRO = ModelConfig(vocab_size=7, d_model=4, n_layers=4, n_heads=1, window=2, mini_batch=2, seq_len=6)


@pytest.fixture
def micro() -> tuple[TTTModel, torch.Tensor]:
    """A float64 micro model (1 suffix block) and one sequence of 7 tokens (3 mini-batches)."""
    torch.manual_seed(0)
    model = TTTModel(MICRO).double()
    # Larger weights than the default init so that the inner steps move the loss visibly.
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() == 2:
                parameter.mul_(20.0)
    model.requires_grad_(False)
    tokens = torch.tensor([[1, 5, 2, 6, 0, 3, 4]])
    return model, tokens
