"""Sliding-window attention that drives a Hugging Face attention module over a rolling KV cache.

The module's own projections (with their biases, as in Qwen2), its per-head q/k
norms where present (Qwen3), its softmax scaling and its rotary embedding
function are used unchanged. Only the mask differs from the original model: a
query in mini-batch i attends to the k keys before the mini-batch and the causal part
of its own mini-batch (`window_mask`), which is what the rolling cache holds.

Grouped-query attention is handled by repeating each key/value head for its
group of query heads, as the Hugging Face eager path does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tworail.rails.ttt.model import KVCache, window_mask

RotaryFunction = Callable[[Tensor, Tensor, Tensor, Tensor], tuple[Tensor, Tensor]]
"""`apply_rotary_pos_emb(q, k, cos, sin)` of the checkpoint's modeling module."""


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scaling: float, explicit: bool) -> Tensor:
    """Attention of q (B, H, Tq, D) over k, v (B, H, Tk, D) under a boolean (Tq, Tk) mask.

    The explicit path computes the softmax in float32 like the Hugging Face eager
    path, and it is twice differentiable, which the exact meta-gradient needs.
    PyTorch's fused SDPA kernels do not implement double backward.
    """
    if not explicit:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scaling)
    scores = torch.matmul(q, k.transpose(-1, -2)) * scaling  # (B, H, Tq, Tk)
    scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(weights, v)


def _project_heads(attention: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Return q (B, H, T, D) and k, v (B, H_kv, T, D), with q/k norms applied where the module has them."""
    batch, length, _ = x.shape
    shape = (batch, length, -1, attention.head_dim)
    q = attention.q_proj(x).view(shape)
    k = attention.k_proj(x).view(shape)
    v = attention.v_proj(x).view(shape)
    q_norm = getattr(attention, "q_norm", None)
    if q_norm is not None:
        q = q_norm(q)
        k = attention.k_norm(k)
    return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)


def window_attention(
    attention: nn.Module,
    x: Tensor,
    positions: Tensor,
    cache: KVCache | None,
    rope: tuple[Tensor, Tensor],
    *,
    apply_rotary: RotaryFunction,
    window: int,
    mini_batch: int,
    explicit: bool,
) -> tuple[Tensor, KVCache]:
    """Attend from normed hidden states x (B, T, d) at `positions` over the cache plus x.

    `rope` is the (cos, sin) pair the model's rotary embedding module returns for
    `positions`. Returns the output projection (B, T, d) and the trimmed new cache.
    Unlike `TTTModel`, the cache stores keys after RoPE, because the Hugging Face
    rotary module computes cos and sin for query positions only.
    """
    batch, length, _ = x.shape
    q, k, v = _project_heads(attention, x)
    cos, sin = rope
    q, k = apply_rotary(q, k, cos, sin)
    if cache is not None:
        k_all = torch.cat((cache.keys, k), dim=2)  # (B, H_kv, n + T, D)
        v_all = torch.cat((cache.values, v), dim=2)
        k_positions = torch.cat((cache.positions, positions))
    else:
        k_all, v_all, k_positions = k, v, positions

    mask = window_mask(positions, k_positions, window, mini_batch)
    groups = q.shape[1] // k_all.shape[1]
    out = attend(
        q,
        k_all.repeat_interleave(groups, dim=1),
        v_all.repeat_interleave(groups, dim=1),
        mask,
        attention.scaling,
        explicit,
    )
    out = out.transpose(1, 2).reshape(batch, length, -1)  # (B, H, T, D) -> (B, T, H*D)
    new_cache = KVCache(k_all, v_all, k_positions).trimmed(int(positions[-1]) + 1, window, mini_batch)
    return attention.o_proj(out), new_cache
