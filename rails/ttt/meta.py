"""Outer-loop losses: plain next-token pretraining and TTT-E2E meta-learning.

Meta-learning trains W0 (and every other weight) so that the inner loop's SGD
steps help: the outer loss is the mean of the pre-update mini-batch losses,
L(W0) = mean_i CE_i(W_{i-1}), differentiated exactly through every inner step
("exact", gradients of gradients) or with first-order MAML ("first_order").
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from tworail.rails.ttt.config import InnerLoopConfig
from tworail.rails.ttt.inner_loop import InnerMode, batch_fast_weights, run_inner_loop
from tworail.rails.ttt.model import TTTModel

INNER_LR_START = 0.1
"""Inner learning-rate multiplier at the start of meta-learning."""
INNER_LR_WARMUP_FRACTION = 0.1
"""Fraction of meta-learning steps over which the multiplier rises linearly to 1."""


def inner_lr_multiplier(step: int, total_steps: int) -> float:
    """Return the inner learning-rate multiplier at meta step `step` (1.0 after the warm-up)."""
    warmup = max(1, int(INNER_LR_WARMUP_FRACTION * total_steps))
    if step >= warmup:
        return 1.0
    return INNER_LR_START + (1.0 - INNER_LR_START) * step / warmup


def pretrain_loss(model: TTTModel, tokens: Tensor) -> Tensor:
    """Return the mean next-token loss of tokens (B, T + 1), prime MLPs used as ordinary weights."""
    logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten())


def meta_loss(
    model: TTTModel,
    tokens: Tensor,
    inner: InnerLoopConfig,
    mode: InnerMode,
    lr_multiplier: float,
    rematerialize: bool = False,
) -> Tensor:
    """Return L(W0) = mean over sequences and mini-batches of CE_i(W_{i-1}) for tokens (B, T + 1).

    Each sequence starts from W0 and runs its own inner loop. In "exact" mode the
    returned loss carries second-order terms through every SGD step; with
    `rematerialize` each step is recomputed in the backward pass instead of kept.
    """
    if mode == "inference":
        raise ValueError("meta_loss needs mode 'exact' or 'first_order'; 'inference' has no outer gradient")
    fast = batch_fast_weights(model.w0(), tokens.shape[0])
    result = run_inner_loop(
        model,
        tokens[:, :-1],
        tokens[:, 1:],
        fast,
        inner,
        mode=mode,
        lr_multiplier=lr_multiplier,
        rematerialize=rematerialize,
    )
    return result.mini_batch_losses.mean()
