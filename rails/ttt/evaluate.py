"""Validation losses with and without test-time training."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from tworail.rails.ttt.config import InnerLoopConfig
from tworail.rails.ttt.inner_loop import batch_fast_weights, run_inner_loop
from tworail.rails.ttt.model import TTTModel
from tworail.rails.ttt.token_stream import TokenStream


@contextlib.contextmanager
def frozen(model: TTTModel) -> Iterator[None]:
    """Turn off gradients of every model parameter for the block, then restore them."""
    saved = [p.requires_grad for p in model.parameters()]
    model.requires_grad_(False)
    try:
        yield
    finally:
        for parameter, flag in zip(model.parameters(), saved, strict=True):
            parameter.requires_grad_(flag)


def ttt_losses(model: TTTModel, tokens: torch.Tensor, update: bool) -> torch.Tensor:
    """Return (B, T) per-token losses of tokens (B, T + 1), with or without inner-loop updates."""
    inner = InnerLoopConfig.for_model(model.config)
    fast = batch_fast_weights(model.w0(), tokens.shape[0])
    with frozen(model):
        result = run_inner_loop(model, tokens[:, :-1], tokens[:, 1:], fast, inner, update=update)
    return result.token_losses


def validation_losses(model: TTTModel, stream: TokenStream, count: int) -> dict[str, float]:
    """Return mean validation loss in nats/token without TTT and with TTT-E2E updates."""
    tokens = stream.validation_batch(count, model.config.seq_len + 1)
    plain = ttt_losses(model, tokens, update=False).mean().item()
    learned = ttt_losses(model, tokens, update=True).mean().item()
    return {"val_loss_no_ttt": round(plain, 5), "val_loss_ttt": round(learned, 5)}
