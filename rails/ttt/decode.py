"""Sliding-window decoding with TTT-E2E inner steps.

Decoding keeps a KV cache per block (the window plus the current mini-batch).
Generated tokens join the current mini-batch. Once a mini-batch of b tokens is
complete and the token after it is known, one inner SGD step on that mini-batch
gives the fast weights for the next one, as during prefill.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

from tworail.rails.ttt.config import InnerLoopConfig
from tworail.rails.ttt.inner_loop import sgd_step
from tworail.rails.ttt.model import FastWeights, KVCache, TTTModel


@dataclass
class DecodeState:
    """Everything a decoder carries between tokens (batch size 1)."""

    caches: list[KVCache | None]
    """Per-layer KV caches up to the last processed token."""
    fast: FastWeights
    """Batched (1, in, out) fast weights of the current mini-batch."""
    position: int
    """Absolute position of the next token to process."""
    block_caches: list[KVCache | None]
    """Suffix caches as they were when the current mini-batch started."""
    block_hidden: list[Tensor] = field(default_factory=list)
    """Prefix outputs (1, 1, d) of the current mini-batch's tokens so far."""
    block_tokens: list[int] = field(default_factory=list)
    """Input tokens of the current mini-batch so far."""


def start_decode(model: TTTModel, caches: list[KVCache | None], fast: FastWeights, position: int) -> DecodeState:
    """Return a decode state continuing after a prefill that ended on a mini-batch boundary."""
    if position % model.config.mini_batch:
        raise ValueError(f"position={position} is not on a mini-batch boundary of {model.config.mini_batch}")
    return DecodeState(list(caches), fast, position, list(caches[model.config.n_prefix :]))


def feed_token(model: TTTModel, state: DecodeState, token: int) -> Tensor:
    """Process one token at `state.position` and return the next-token logits (vocab,)."""
    config = model.config
    positions = torch.tensor([state.position])
    inputs = torch.tensor([[token]])
    h, prefix_caches = model.run_prefix(inputs, positions, state.caches[: config.n_prefix])
    h_out, suffix_caches = model.run_suffix(h, positions, state.caches[config.n_prefix :], state.fast)
    state.caches = [*prefix_caches, *suffix_caches]
    state.block_hidden.append(h)
    state.block_tokens.append(token)
    state.position += 1
    return model.lm_head(h_out)[0, -1]


def maybe_inner_step(model: TTTModel, state: DecodeState, next_token: int, inner: InnerLoopConfig) -> bool:
    """Take the inner step once the current mini-batch is full; `next_token` is its last target.

    The mini-batch is run again through the suffix from the caches it started
    with, so the loss and its gradient use the same W_{i-1} as the decode did.
    Returns whether a step was taken.
    """
    if len(state.block_tokens) < inner.mini_batch:
        return False
    targets = torch.tensor([[*state.block_tokens[1:], next_token]])  # (1, b)
    start = state.position - inner.mini_batch
    positions = torch.arange(start, state.position)
    fast = {name: value.detach().requires_grad_(True) for name, value in state.fast.items()}
    with torch.enable_grad():
        h, _ = model.run_suffix(torch.cat(state.block_hidden, dim=1), positions, state.block_caches, fast)
        loss = F.cross_entropy(model.lm_head(h)[0], targets[0])
        state.fast = sgd_step(fast, loss, inner, 1.0, "inference")
    state.block_caches = list(state.caches[model.config.n_prefix :])
    state.block_hidden, state.block_tokens = [], []
    return True


def sample(logits: Tensor, temperature: float, generator: torch.Generator) -> int:
    """Return the argmax for temperature 0, else a draw from softmax(logits / temperature)."""
    if temperature <= 0:
        return int(torch.argmax(logits))
    probabilities = torch.softmax(logits.double() / temperature, dim=-1)
    return int(torch.multinomial(probabilities, 1, generator=generator))
