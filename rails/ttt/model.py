"""The TTT-E2E Transformer (Tandon et al., "End-to-End Test-Time Training", arXiv 2512.23675).

A plain decoder-only Transformer with:

- sliding-window attention of window k, aligned to inner-loop mini-batches of b
  tokens: a query in mini-batch i sees the k keys before the mini-batch and the
  causal part of its own mini-batch, which is exactly what the suffix blocks'
  rolling KV cache holds at test time;
- "sandwich" RMSNorms before and after every sub-layer, per-head QK-norm before
  RoPE (theta 500,000), SwiGLU MLPs, no biases, embeddings tied to the LM head;
- prefix blocks (the first 3/4) and suffix blocks (the last 1/4, at least one).
  Each suffix block has a prime MLP in series before its static MLP:
  h += post(attn(pre(h))); h += post'(prime(pre'(h))); h += post''(static(pre''(h))).

The prime MLPs' matrices are the fast weights. Their trained values are W0; the
inner loop passes updated values functionally as a dict {parameter name: tensor},
optionally with a leading batch dimension (one set of fast weights per sequence),
so that autograd can differentiate through the updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tworail.rails.ttt.config import ModelConfig

FastWeights = dict[str, Tensor]
"""Fast weights by parameter name: (in, out) or, batched, (batch, in, out)."""


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """Normalize the last dimension to unit RMS and scale it (twice differentiable)."""
    return x * torch.rsqrt(x.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


class RMSNorm(nn.Module):
    """RMSNorm with a learned per-channel gain and no bias."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """Apply the norm over the last dimension."""
        return rms_norm(x, self.weight, self.eps)


def swiglu(x: Tensor, w_gate: Tensor, w_up: Tensor, w_down: Tensor) -> Tensor:
    """Return (silu(x @ w_gate) * (x @ w_up)) @ w_down; weights may carry a batch dimension."""
    return torch.matmul(F.silu(torch.matmul(x, w_gate)) * torch.matmul(x, w_up), w_down)


class SwiGLU(nn.Module):
    """A SwiGLU MLP with weights stored as (in, out) so batched fast weights fit `swiglu`."""

    MATRICES = ("w_gate", "w_up", "w_down")

    def __init__(self, d_model: int, width: int, init_std: float, out_std: float) -> None:
        super().__init__()
        self.w_gate = nn.Parameter(torch.randn(d_model, width) * init_std)
        self.w_up = nn.Parameter(torch.randn(d_model, width) * init_std)
        self.w_down = nn.Parameter(torch.randn(width, d_model) * out_std)

    def forward(self, x: Tensor, weights: tuple[Tensor, Tensor, Tensor] | None = None) -> Tensor:
        """Apply the MLP with its own weights, or with `weights` (gate, up, down) in their place."""
        w_gate, w_up, w_down = weights if weights is not None else (self.w_gate, self.w_up, self.w_down)
        return swiglu(x, w_gate, w_up, w_down)


def apply_rope(x: Tensor, positions: Tensor, inv_freq: Tensor) -> Tensor:
    """Rotate channel pairs (i, i + D/2) of x (..., T, D) by angle position * inv_freq[i]."""
    angles = positions.to(inv_freq.dtype)[:, None] * inv_freq[None, :]  # (T, D/2)
    cos = angles.cos().to(x.dtype)
    sin = angles.sin().to(x.dtype)
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1)


def window_mask(q_positions: Tensor, k_positions: Tensor, window: int, mini_batch: int) -> Tensor:
    """Return the (Tq, Tk) boolean attention mask, True where a query may see a key.

    A query at position p lies in mini-batch p // b, which starts at s = (p // b) * b.
    It sees keys at positions s - k <= key <= p: the window of k tokens before its
    mini-batch plus the causal part of the mini-batch itself.
    """
    q = q_positions[:, None]
    key = k_positions[None, :]
    block_start = torch.div(q, mini_batch, rounding_mode="floor") * mini_batch
    return (key <= q) & (key >= block_start - window)


def masked_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor, explicit: bool) -> Tensor:
    """Attention of q (B, H, Tq, D) over k, v (B, H, Tk, D) under a boolean (Tq, Tk) mask.

    The explicit softmax path is twice differentiable, which the exact meta-gradient
    needs; PyTorch's fused SDPA kernels do not implement double backward.
    """
    if not explicit:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(q.shape[-1])  # (B, H, Tq, Tk)
    scores = scores.masked_fill(~mask, float("-inf"))
    return torch.matmul(torch.softmax(scores, dim=-1), v)


@dataclass
class KVCache:
    """Keys (after QK-norm, before RoPE), values and positions one block keeps for its window."""

    keys: Tensor
    """(batch, heads, n, head_dim) keys, stored before RoPE and never recomputed."""
    values: Tensor
    """(batch, heads, n, head_dim) values."""
    positions: Tensor
    """(n,) absolute positions of the cached tokens."""

    def trimmed(self, next_position: int, window: int, mini_batch: int) -> "KVCache":
        """Drop keys that no query at or after `next_position` can see."""
        oldest_visible = (next_position // mini_batch) * mini_batch - window
        keep = self.positions >= oldest_visible
        if bool(keep.all()):
            return self
        first = int(keep.nonzero()[0, 0]) if bool(keep.any()) else self.positions.numel()
        return KVCache(self.keys[:, :, first:], self.values[:, :, first:], self.positions[first:])

    def detached(self) -> "KVCache":
        """Return the cache cut from the autograd graph."""
        return KVCache(self.keys.detach(), self.values.detach(), self.positions)


class Attention(nn.Module):
    """Multi-head sliding-window attention with QK-norm and RoPE, no biases."""

    def __init__(self, config: ModelConfig, init_std: float, out_std: float) -> None:
        super().__init__()
        self.config = config
        d, h, hd = config.d_model, config.n_heads, config.head_dim
        self.wq = nn.Parameter(torch.randn(d, h * hd) * init_std)
        self.wk = nn.Parameter(torch.randn(d, h * hd) * init_std)
        self.wv = nn.Parameter(torch.randn(d, h * hd) * init_std)
        self.wo = nn.Parameter(torch.randn(h * hd, d) * out_std)
        self.q_norm = RMSNorm(hd, config.norm_eps)
        self.k_norm = RMSNorm(hd, config.norm_eps)

    def _heads(self, x: Tensor) -> Tensor:
        batch, length, _ = x.shape
        # (B, T, H*D) -> (B, H, T, D)
        return x.view(batch, length, self.config.n_heads, self.config.head_dim).transpose(1, 2)

    def forward(
        self,
        x: Tensor,
        positions: Tensor,
        cache: KVCache | None,
        inv_freq: Tensor,
        explicit: bool,
    ) -> tuple[Tensor, KVCache]:
        """Attend from x (B, T, d) at `positions` over the cache plus x; return output and new cache."""
        batch, length, _ = x.shape
        q = self.q_norm(self._heads(x @ self.wq))
        k = self.k_norm(self._heads(x @ self.wk))
        v = self._heads(x @ self.wv)
        if cache is not None:
            k_all = torch.cat((cache.keys, k), dim=2)  # (B, H, n + T, D)
            v_all = torch.cat((cache.values, v), dim=2)
            k_positions = torch.cat((cache.positions, positions))
        else:
            k_all, v_all, k_positions = k, v, positions
        mask = window_mask(positions, k_positions, self.config.window, self.config.mini_batch)
        out = masked_attention(
            apply_rope(q, positions, inv_freq),
            apply_rope(k_all, k_positions, inv_freq),
            v_all,
            mask,
            explicit,
        )
        out = out.transpose(1, 2).reshape(batch, length, -1)  # (B, H, T, D) -> (B, T, H*D)
        next_position = int(positions[-1]) + 1
        new_cache = KVCache(k_all, v_all, k_positions).trimmed(
            next_position, self.config.window, self.config.mini_batch
        )
        return out @ self.wo, new_cache


class Block(nn.Module):
    """One Transformer block; suffix blocks add a prime MLP before the static MLP."""

    def __init__(self, config: ModelConfig, has_prime: bool) -> None:
        super().__init__()
        init_std = 0.02
        out_std = 0.02 / math.sqrt(2 * config.n_layers)
        eps = config.norm_eps
        self.attn_pre, self.attn_post = RMSNorm(config.d_model, eps), RMSNorm(config.d_model, eps)
        self.attn = Attention(config, init_std, out_std)
        self.prime: SwiGLU | None = None
        if has_prime:
            self.prime_pre, self.prime_post = RMSNorm(config.d_model, eps), RMSNorm(config.d_model, eps)
            self.prime = SwiGLU(config.d_model, config.mlp_width, init_std, out_std)
        self.mlp_pre, self.mlp_post = RMSNorm(config.d_model, eps), RMSNorm(config.d_model, eps)
        self.mlp = SwiGLU(config.d_model, config.mlp_width, init_std, out_std)

    def forward(
        self,
        h: Tensor,
        positions: Tensor,
        cache: KVCache | None,
        inv_freq: Tensor,
        prime_weights: tuple[Tensor, Tensor, Tensor] | None,
        explicit: bool,
    ) -> tuple[Tensor, KVCache]:
        """Run the block on h (B, T, d); `prime_weights` replace W0 of the prime MLP when given."""
        attn_out, cache = self.attn(self.attn_pre(h), positions, cache, inv_freq, explicit)
        h = h + self.attn_post(attn_out)
        if self.prime is not None:
            h = h + self.prime_post(self.prime(self.prime_pre(h), prime_weights))
        h = h + self.mlp_post(self.mlp(self.mlp_pre(h)))
        return h, cache


class PrefixSuffixModel(nn.Module):
    """The prefix/suffix split shared by TTT-E2E models: what the inner loop drives.

    A subclass provides `config` (with `n_prefix` and `n_layers`), `embed_tokens`,
    `run_blocks` and `lm_head`, and keeps each suffix block's prime MLP at
    `blocks.<index>.prime`. The fast-weight names, W0, the prefix and suffix passes
    and the plain forward pass follow from those.
    """

    def fast_weight_names(self) -> list[str]:
        """Return the names of the prime MLPs' matrices, the only tensors the inner loop updates."""
        return [
            f"blocks.{index}.prime.{matrix}"
            for index in range(self.config.n_prefix, self.config.n_layers)
            for matrix in SwiGLU.MATRICES
        ]

    def w0(self) -> FastWeights:
        """Return the initial fast weights W0: the live prime MLP parameters, not copies."""
        params = dict(self.named_parameters())
        return {name: params[name] for name in self.fast_weight_names()}

    def _prime_weights(self, index: int, fast: FastWeights | None) -> tuple[Tensor, Tensor, Tensor] | None:
        if fast is None:
            return None
        prefix = f"blocks.{index}.prime."
        return tuple(fast[prefix + matrix] for matrix in SwiGLU.MATRICES)  # type: ignore[return-value]

    def run_prefix(
        self, tokens: Tensor, positions: Tensor, caches: list[KVCache | None], explicit: bool = False
    ) -> tuple[Tensor, list[KVCache]]:
        """Embed tokens (B, T) and run the prefix blocks, which never see fast weights."""
        return self.run_blocks(
            self.embed_tokens(tokens), positions, range(self.config.n_prefix), caches, None, explicit
        )

    def run_suffix(
        self,
        h: Tensor,
        positions: Tensor,
        caches: list[KVCache | None],
        fast: FastWeights | None,
        explicit: bool = True,
    ) -> tuple[Tensor, list[KVCache]]:
        """Run the suffix blocks on prefix output h (B, T, d) with fast weights in the prime MLPs."""
        layers = range(self.config.n_prefix, self.config.n_layers)
        return self.run_blocks(h, positions, layers, caches, fast, explicit)

    def forward(
        self,
        tokens: Tensor,
        fast: FastWeights | None = None,
        start_position: int = 0,
        explicit: bool = False,
    ) -> Tensor:
        """Return logits (B, T, vocab) for a whole sequence without caches or updates.

        The prime MLPs use W0, or `fast` when given. This is the pretraining forward
        pass and the "no test-time training" baseline.
        """
        positions = torch.arange(start_position, start_position + tokens.shape[1], device=tokens.device)
        empty: list[KVCache | None] = [None] * self.config.n_layers
        h, _ = self.run_prefix(tokens, positions, empty[: self.config.n_prefix], explicit)
        h, _ = self.run_suffix(h, positions, empty[self.config.n_prefix :], fast, explicit)
        return self.lm_head(h)


class TTTModel(PrefixSuffixModel):
    """The TTT-E2E language model: prefix blocks, suffix blocks with prime MLPs, tied LM head."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Parameter(torch.randn(config.vocab_size, config.d_model) * config.embed_init_std)
        self.blocks = nn.ModuleList(
            Block(config, has_prime=index >= config.n_prefix) for index in range(config.n_layers)
        )
        self.final_norm = RMSNorm(config.d_model, config.norm_eps)
        half = config.head_dim // 2
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(half, dtype=torch.float64) / half))
        self.register_buffer("inv_freq", inv_freq, persistent=False)

    # -- forward pieces -----------------------------------------------------

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        """Look up token embeddings: (B, T) ids -> (B, T, d)."""
        return F.embedding(tokens, self.embed)

    def run_blocks(
        self,
        h: Tensor,
        positions: Tensor,
        layers: range,
        caches: list[KVCache | None],
        fast: FastWeights | None,
        explicit: bool,
    ) -> tuple[Tensor, list[KVCache]]:
        """Run blocks `layers` in order; `caches` holds one entry per layer in `layers`."""
        new_caches: list[KVCache] = []
        for index, cache in zip(layers, caches, strict=True):
            block = self.blocks[index]
            h, cache = block(h, positions, cache, self.inv_freq, self._prime_weights(index, fast), explicit)
            new_caches.append(cache)
        return h, new_caches

    def lm_head(self, h: Tensor) -> Tensor:
        """Return next-token logits (B, T, vocab) from the final norm and the tied embeddings."""
        return self.final_norm(h) @ self.embed.t()
