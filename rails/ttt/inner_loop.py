"""The TTT-E2E inner loop: read a sequence in mini-batches, one SGD step on the fast weights each.

For mini-batch i of b tokens the suffix blocks run with fast weights W_{i-1}; the
mean next-token cross-entropy CE_i over the mini-batch is both the score of those
tokens and the inner loss. Its gradient with respect to all fast weights is clipped
by global L2 norm (per sequence) and one plain SGD step gives W_i. Every token is
therefore scored with weights from earlier mini-batches only.

The prefix blocks do not depend on the fast weights and run once over the whole
sequence. The suffix blocks keep a rolling KV cache: a mini-batch attends to the
cached last k keys plus its own keys, and cached keys are never recomputed after
an update.

Modes:
- "inference": no outer gradient; fast weights are detached after every step.
- "exact": `create_graph=True`, so the outer loss differentiates through every
  step (gradients of gradients).
- "first_order": first-order MAML; the inner gradients are treated as constants.

Rematerialization (`rematerialize=True`, exact mode): each inner step runs under
activation checkpointing, so autograd keeps only the step's inputs and outputs
(the fast weights, the KV cache and the mini-batch losses) and recomputes the
step's activations, its inner gradient included, during the outer backward pass.
Memory held per mini-batch is then about one set of fast weights plus one cache,
at the cost of running each step's forward pass and inner gradient twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.checkpoint import checkpoint

from tworail.rails.ttt.config import ConfigError, InnerLoopConfig
from tworail.rails.ttt.model import FastWeights, KVCache, TTTModel

InnerMode = Literal["inference", "exact", "first_order"]
"""Autograd behaviour of the inner loop; see the module docstring."""

INNER_MODES = ("inference", "exact", "first_order")


@dataclass
class InnerLoopResult:
    """Outcome of one pass of the inner loop over a batch of sequences."""

    token_losses: Tensor
    """(B, N) next-token cross-entropy in nats, each scored before its own mini-batch's update."""
    mini_batch_losses: Tensor
    """(B, n_chunks) mean cross-entropy per mini-batch before its update (one chunk when update=False)."""
    fast_weights: FastWeights
    """Fast weights after the last update, batched (B, in, out)."""
    caches: list[KVCache | None]
    """Per-layer KV caches at the end of the sequence, to continue the stream."""
    next_position: int
    """Absolute position of the token after the last input."""


def batch_fast_weights(fast: FastWeights, batch: int) -> FastWeights:
    """Give unbatched fast weights (in, out) a leading batch dimension (B, in, out)."""
    return {name: value.unsqueeze(0).expand(batch, *value.shape) for name, value in fast.items()}


def clip_by_global_norm(grads: list[Tensor], max_norm: float) -> list[Tensor]:
    """Scale each sequence's gradients (leading batch dimension) to global L2 norm <= max_norm."""
    squared = sum(g.pow(2).flatten(1).sum(dim=1) for g in grads)  # (B,)
    norm = squared.clamp_min(1e-20).sqrt()
    scale = (max_norm / norm).clamp(max=1.0)  # (B,)
    return [g * scale.view(-1, *([1] * (g.dim() - 1))) for g in grads]


def sgd_step(
    fast: FastWeights,
    inner_loss: Tensor,
    inner: InnerLoopConfig,
    lr_multiplier: float,
    mode: InnerMode,
) -> FastWeights:
    """Return W_i = W_{i-1} - lr * clip(grad of inner_loss) for every fast-weight tensor."""
    names = list(fast)
    grads = torch.autograd.grad(
        inner_loss,
        [fast[name] for name in names],
        create_graph=mode == "exact",
        retain_graph=mode != "inference",
    )
    if mode == "first_order":
        grads = tuple(g.detach() for g in grads)
    clipped = clip_by_global_norm(list(grads), inner.grad_clip)
    lr = inner.learning_rate * lr_multiplier
    updated = {name: fast[name] - lr * g for name, g in zip(names, clipped, strict=True)}
    if mode == "inference":
        updated = {name: value.detach() for name, value in updated.items()}
    return updated


def _as_differentiable(fast: FastWeights, mode: InnerMode) -> FastWeights:
    """Make every fast weight a tensor the inner gradient can be taken with respect to.

    In inference mode each step starts from fresh leaves. Otherwise only constants
    (tensors that do not require grad) become leaves, so that the graph from W0
    through earlier steps stays intact for the outer gradient.
    """
    return {
        name: value.detach().requires_grad_(True) if mode == "inference" or not value.requires_grad else value
        for name, value in fast.items()
    }


def inner_step(
    model: TTTModel,
    h: Tensor,
    positions: Tensor,
    targets: Tensor,
    caches: list[KVCache | None],
    fast: FastWeights,
    inner: InnerLoopConfig,
    lr_multiplier: float,
    mode: InnerMode,
    update: bool,
) -> tuple[Tensor, Tensor, FastWeights, list[KVCache | None]]:
    """Score one mini-batch with W_{i-1}, then take its SGD step.

    `h` (B, n, d) is the prefix output of the mini-batch and `targets` (B, n) its next
    tokens. Returns the token losses (B, n), the mini-batch loss per sequence (B,),
    W_i (`fast` itself when `update` is False) and the suffix caches with the
    mini-batch's keys appended.
    """
    batch, n = targets.shape
    if update:
        fast = _as_differentiable(fast, mode)
    h, caches = model.run_suffix(h, positions, caches, fast)
    logits = model.lm_head(h)  # (B, n, vocab)
    losses = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none").view(batch, n)
    per_sequence = losses.mean(dim=1)  # (B,)
    if update:
        # Summing over sequences keeps each sequence's gradient its own.
        fast = sgd_step(fast, per_sequence.sum(), inner, lr_multiplier, mode)
    return losses, per_sequence, fast, caches


def run_inner_loop(
    model: TTTModel,
    inputs: Tensor,
    targets: Tensor,
    fast: FastWeights,
    inner: InnerLoopConfig,
    *,
    mode: InnerMode = "inference",
    update: bool = True,
    lr_multiplier: float = 1.0,
    caches: list[KVCache | None] | None = None,
    start_position: int = 0,
    explicit_prefix: bool = False,
    rematerialize: bool = False,
) -> InnerLoopResult:
    """Prefill `inputs` (B, N) in mini-batches, scoring `targets` (B, N) and updating fast weights.

    `fast` contains batched fast weights (B, in, out), for example `batch_fast_weights(model.w0(), B)`.
    With `update=False` every mini-batch is scored with `fast` and nothing is learned.
    `caches` and `start_position` continue an earlier call on the same stream; the
    start must be a multiple of the mini-batch so that mini-batches stay aligned.
    `rematerialize` recomputes each inner step in the outer backward pass instead of
    keeping its activations (exact mode only; the gradients are the same).
    """
    config = model.config
    batch, length = inputs.shape
    b = inner.mini_batch
    if mode not in INNER_MODES:
        raise ConfigError(f"inner-loop mode {mode!r} is unknown; choose one of {INNER_MODES}")
    if b != config.mini_batch:
        raise ConfigError(
            f"inner mini_batch={b} differs from the model's mini_batch={config.mini_batch}, "
            "which fixes the attention mask; use InnerLoopConfig.for_model(config)"
        )
    if start_position % b:
        raise ConfigError(f"start_position={start_position} is not a multiple of mini_batch={b}")
    if targets.shape != inputs.shape:
        raise ValueError(f"targets shape {tuple(targets.shape)} differs from inputs {tuple(inputs.shape)}")
    if rematerialize and mode != "exact":
        raise ConfigError(f"rematerialize=True needs mode 'exact', not {mode!r}; other modes keep no second-order graph")
    if caches is None:
        caches = [None] * config.n_layers

    positions = torch.arange(start_position, start_position + length, device=inputs.device)
    # The prefix runs once over the whole sequence: it never depends on fast weights.
    h_prefix, prefix_caches = model.run_prefix(inputs, positions, caches[: config.n_prefix], explicit_prefix)
    suffix_caches: list[KVCache | None] = list(caches[config.n_prefix :])

    token_losses: list[Tensor] = []
    mini_batch_losses: list[Tensor] = []
    # Without updates every mini-batch sees the same weights, so one chunk gives the same result faster.
    chunk = b if update else length
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        step_args = (model, h_prefix[:, start:stop], positions[start:stop], targets[:, start:stop], suffix_caches,
                     fast, inner, lr_multiplier, mode, update)
        if rematerialize:
            losses, per_sequence, fast, suffix_caches = checkpoint(inner_step, *step_args, use_reentrant=False)
        else:
            losses, per_sequence, fast, suffix_caches = inner_step(*step_args)
        if mode == "inference":
            losses, per_sequence = losses.detach(), per_sequence.detach()
            suffix_caches = [cache.detached() if cache is not None else None for cache in suffix_caches]
        token_losses.append(losses)
        mini_batch_losses.append(per_sequence)

    return InnerLoopResult(
        token_losses=torch.cat(token_losses, dim=1),
        mini_batch_losses=torch.stack(mini_batch_losses, dim=1),
        fast_weights=fast,
        caches=[*prefix_caches, *suffix_caches],
        next_position=start_position + length,
    )
