"""A Hugging Face Llama-style causal LM wrapped as a TTT-E2E model.

`HFTTTModel` gives a pretrained decoder the interface of `TTTModel` that the
inner loop, `meta_loss`, decoding and `LearnableRail` call (`config`,
`embed_tokens`, `run_prefix`, `run_suffix`, `lm_head`, `fast_weight_names`,
`w0`, `forward`), so the project's own TTT-E2E code drives it unchanged:

- prefix: the first 3/4 of the decoder layers, run once over the sequence with the
  mini-batch-aligned sliding-window mask of TTT-E2E;
- suffix: the last quarter (at least one layer). Each suffix layer gets a prime
  SwiGLU MLP with its own pre- and post-RMSNorm, in series before the layer's MLP:
  h += attn(in_norm(h)); h += post'(prime(pre'(h))); h += mlp(post_attn_norm(h)).

The decoder layers keep their own modules and weights. Attention uses the
layer's projections, q/k norms and scaling, and RoPE comes from the model's own
rotary embedding module, so the checkpoint's RoPE theta and any RoPE scaling in
its config apply. The LM head is tied or untied as the checkpoint has it.

The prime MLP's post-norm gain starts at zero, so a freshly converted model
computes exactly what the original computes under the same attention mask.
A zero down projection would do the same, but the post-RMSNorm would then
normalize a near-zero vector, whose gradient scales with 1/sqrt(eps), and the
first inner step would jump the prime output to unit RMS. With a zero gain the
inner-loop gradient of the prime matrices is zero until the bridge stage
(`bridge_meta_train`) moves the gains away from zero.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn

from tworail.rails.ttt.config import ConfigError
from tworail.rails.ttt.hf_attention import RotaryFunction, window_attention
from tworail.rails.ttt.model import FastWeights, KVCache, PrefixSuffixModel, RMSNorm, SwiGLU


@dataclass(frozen=True)
class HFTTTConfig:
    """TTT-E2E settings of a converted checkpoint, with the field names `TTTModel.config` uses."""

    vocab_size: int
    """Number of token ids of the checkpoint's embedding matrix."""
    n_layers: int
    """Number of decoder layers; the last quarter (at least one) become suffix layers."""
    window: int
    """Sliding-window size k: keys visible before the current mini-batch."""
    mini_batch: int
    """Inner-loop mini-batch size b in tokens; the window must be at least b."""
    seq_len: int
    """Segment length in tokens that `LearnableRail` reads at once; segmenting does not change results."""
    prime_width: int
    """Hidden width of every prime SwiGLU MLP."""

    def __post_init__(self) -> None:
        """Validate the settings and raise `ConfigError` naming the value and the fix."""
        for name in ("vocab_size", "n_layers", "window", "mini_batch", "seq_len", "prime_width"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name}={value!r} is invalid; set a positive integer")
        if self.window < self.mini_batch:
            raise ConfigError(
                f"window k={self.window} is smaller than mini_batch b={self.mini_batch}; "
                "TTT-E2E needs k >= b: raise window or lower mini_batch"
            )
        if self.seq_len % self.mini_batch:
            raise ConfigError(
                f"seq_len={self.seq_len} is not a multiple of mini_batch={self.mini_batch}; "
                "pick seq_len = n * mini_batch"
            )

    @property
    def n_suffix(self) -> int:
        """Number of suffix layers (the last quarter, at least one), which carry prime MLPs."""
        return max(1, self.n_layers // 4)

    @property
    def n_prefix(self) -> int:
        """Number of prefix layers, which never depend on the fast weights."""
        return self.n_layers - self.n_suffix

    def to_dict(self) -> dict[str, int]:
        """Return the fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "HFTTTConfig":
        """Build a config from `to_dict` output, rejecting unknown keys."""
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown TTT config keys {unknown}; expected {sorted(cls.__dataclass_fields__)}")
        return cls(**data)  # type: ignore[arg-type]


def default_seq_len(window: int, mini_batch: int) -> int:
    """Return the smallest multiple of `mini_batch` that is at least `window`."""
    return math.ceil(window / mini_batch) * mini_batch


class PrimeMLP(nn.Module):
    """A suffix layer's prime SwiGLU MLP between its own pre- and post-RMSNorm (post gain zero at init)."""

    def __init__(self, hidden_size: int, width: int, eps: float, init_std: float, out_std: float) -> None:
        super().__init__()
        self.prime_pre = RMSNorm(hidden_size, eps)
        self.prime = SwiGLU(hidden_size, width, init_std, out_std)
        self.prime_post = RMSNorm(hidden_size, eps)
        nn.init.zeros_(self.prime_post.weight)

    def forward(self, h: Tensor, weights: tuple[Tensor, Tensor, Tensor] | None) -> Tensor:
        """Return the prime branch output for h (B, T, d); `weights` replace W0 when given."""
        return self.prime_post(self.prime(self.prime_pre(h), weights))


def _rotary_function(causal_lm: nn.Module) -> RotaryFunction:
    """Return `apply_rotary_pos_emb` from the modeling module of the checkpoint's attention class."""
    attention = causal_lm.model.layers[0].self_attn
    module = importlib.import_module(type(attention).__module__)
    return module.apply_rotary_pos_emb


class HFTTTModel(PrefixSuffixModel):
    """A Hugging Face causal LM as a TTT-E2E model: windowed prefix layers, suffix layers with prime MLPs."""

    def __init__(self, causal_lm: nn.Module, config: HFTTTConfig, prime_seed: int = 0) -> None:
        super().__init__()
        hf_config = causal_lm.config
        if config.n_layers != hf_config.num_hidden_layers:
            raise ConfigError(
                f"n_layers={config.n_layers} differs from the checkpoint's "
                f"num_hidden_layers={hf_config.num_hidden_layers}; build the config from the checkpoint"
            )
        self.config = config
        self.hf = causal_lm
        init_std = float(getattr(hf_config, "initializer_range", 0.02))
        out_std = init_std / math.sqrt(2 * config.n_layers)
        # A fixed seed makes two conversions of one checkpoint identical, without touching the global RNG.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(prime_seed)
            self.blocks = nn.ModuleDict(
                {
                    str(index): PrimeMLP(
                        hf_config.hidden_size, config.prime_width, hf_config.rms_norm_eps, init_std, out_std
                    )
                    for index in range(config.n_prefix, config.n_layers)
                }
            )
        self.blocks.to(dtype=causal_lm.dtype, device=causal_lm.device)
        self._apply_rotary = _rotary_function(causal_lm)

    @property
    def tied_embeddings(self) -> bool:
        """Whether the LM head shares its weight with the token embeddings."""
        return self.hf.get_output_embeddings().weight is self.hf.get_input_embeddings().weight

    # -- forward pieces -----------------------------------------------------

    def embed_tokens(self, tokens: Tensor) -> Tensor:
        """Look up token embeddings: (B, T) ids -> (B, T, d)."""
        return self.hf.get_input_embeddings()(tokens)

    def _run_layer(
        self,
        index: int,
        h: Tensor,
        positions: Tensor,
        cache: KVCache | None,
        rope: tuple[Tensor, Tensor],
        fast: FastWeights | None,
        explicit: bool,
    ) -> tuple[Tensor, KVCache]:
        layer = self.hf.model.layers[index]
        attn_out, cache = window_attention(
            layer.self_attn,
            layer.input_layernorm(h),
            positions,
            cache,
            rope,
            apply_rotary=self._apply_rotary,
            window=self.config.window,
            mini_batch=self.config.mini_batch,
            explicit=explicit,
        )
        h = h + attn_out
        key = str(index)
        if key in self.blocks:
            h = h + self.blocks[key](h, self._prime_weights(index, fast))
        return h + layer.mlp(layer.post_attention_layernorm(h)), cache

    def run_blocks(
        self,
        h: Tensor,
        positions: Tensor,
        layers: range,
        caches: list[KVCache | None],
        fast: FastWeights | None,
        explicit: bool,
    ) -> tuple[Tensor, list[KVCache]]:
        """Run decoder layers `layers` in order; `caches` contains one entry per layer in `layers`."""
        rope = self.hf.model.rotary_emb(h, positions.unsqueeze(0))  # cos, sin: (1, T, head_dim)
        new_caches: list[KVCache] = []
        for index, cache in zip(layers, caches, strict=True):
            h, cache = self._run_layer(index, h, positions, cache, rope, fast, explicit)
            new_caches.append(cache)
        return h, new_caches

    def lm_head(self, h: Tensor) -> Tensor:
        """Return next-token logits (B, T, vocab) from the final norm and the checkpoint's LM head."""
        return self.hf.get_output_embeddings()(self.hf.model.norm(h))
