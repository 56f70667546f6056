"""A small deterministic fast-weight model for tests, benchmarks and examples.

`ToyFastWeightModel` predicts each byte of a text from the bytes before it: a
fixed random embedding of the previous `context` bytes feeds a two-layer MLP
whose matrices are the fast weights. `learn` runs one plain SGD step per
mini-batch of byte positions with a global-norm gradient clip, like the
TTT-E2E inner loop. So what it learns is real: canaries become exposed, and
later updates depend on earlier ones, which makes unlearning by subtraction
inexact. On the CPU with one thread every call is bit-for-bit reproducible.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor

from tworail.governance.protocol import FastWeightState
from tworail.records import LearnReport

_VOCAB = 256


class ToyFastWeightModel:
    """A byte-level MLP language model whose two weight matrices are fast weights."""

    def __init__(
        self,
        *,
        seed: int = 0,
        context: int = 4,
        embed_dim: int = 16,
        hidden: int = 96,
        learning_rate: float = 0.5,
        mini_batch: int = 64,
        grad_clip: float = 1.0,
    ) -> None:
        if context < 1 or embed_dim < 1 or hidden < 1 or mini_batch < 1:
            raise ValueError(
                f"context={context}, embed_dim={embed_dim}, hidden={hidden} and mini_batch={mini_batch} "
                "must all be positive integers"
            )
        generator = torch.Generator().manual_seed(seed)
        self.context = context
        self.learning_rate = learning_rate
        self.mini_batch = mini_batch
        self.grad_clip = grad_clip
        self._embedding = torch.randn(_VOCAB + 1, embed_dim, generator=generator)  # row 256 pads the start
        fan_in = context * embed_dim
        self._w0: FastWeightState = {
            "mlp.w_in": torch.randn(fan_in, hidden, generator=generator) / fan_in**0.5,
            "mlp.w_out": torch.randn(hidden, _VOCAB, generator=generator) * 0.02,
        }
        self._fast = {name: value.clone() for name, value in self._w0.items()}

    # Features

    def _features(self, text: str) -> tuple[Tensor, Tensor]:
        data = torch.tensor(list(text.encode("utf-8")), dtype=torch.long)
        padded = torch.cat((torch.full((self.context,), _VOCAB, dtype=torch.long), data))
        windows = padded.unfold(0, self.context, 1)[: data.numel()]  # (N, context): bytes before each target
        return self._embedding[windows].flatten(1), data

    def _logits(self, features: Tensor, fast: Mapping[str, Tensor]) -> Tensor:
        return torch.tanh(features @ fast["mlp.w_in"]) @ fast["mlp.w_out"]

    # FastWeightModel interface

    def score(self, text: str) -> Tensor:
        """Return the loss of every byte of `text` in nats (one per UTF-8 byte), without learning."""
        features, targets = self._features(text)
        with torch.no_grad():
            return F.cross_entropy(self._logits(features, self._fast), targets, reduction="none")

    def learn(self, text: str) -> LearnReport:
        """Take one clipped SGD step per mini-batch of bytes of `text`; the new fast weights persist."""
        features, targets = self._features(text)
        if targets.numel() == 0:
            raise ValueError("nothing to learn: the text is empty")
        before = {name: value.clone() for name, value in self._fast.items()}
        loss_before = float(self.score(text).mean())
        steps = 0
        for start in range(0, targets.numel(), self.mini_batch):
            stop = start + self.mini_batch
            fast = {name: value.detach().requires_grad_(True) for name, value in self._fast.items()}
            loss = F.cross_entropy(self._logits(features[start:stop], fast), targets[start:stop])
            grads = torch.autograd.grad(loss, list(fast.values()))
            norm = torch.sqrt(sum(g.pow(2).sum() for g in grads))
            scale = min(1.0, self.grad_clip / max(float(norm), 1e-12))
            self._fast = {name: (value - self.learning_rate * scale * g).detach()
                          for (name, value), g in zip(fast.items(), grads, strict=True)}
            steps += 1
        update_norm = float(torch.sqrt(sum((self._fast[n] - before[n]).double().pow(2).sum() for n in before)))
        return LearnReport(
            tokens=targets.numel(),
            mini_batches=steps,
            loss_before=loss_before,
            loss_after=float(self.score(text).mean()),
            update_norm=update_norm,
            parameters=sorted(self._fast),
        )

    def fast_weights(self) -> FastWeightState:
        """Return copies of the current fast weights."""
        return {name: value.clone() for name, value in self._fast.items()}

    def load_fast_weights(self, state: Mapping[str, Tensor]) -> None:
        """Replace the fast weights; names, shapes and dtypes must match W0."""
        if set(state) != set(self._w0):
            raise ValueError(f"fast weights {sorted(state)} do not match the model's {sorted(self._w0)}")
        for name, value in state.items():
            if value.shape != self._w0[name].shape or value.dtype != self._w0[name].dtype:
                raise ValueError(
                    f"fast weight {name!r} has shape {tuple(value.shape)} and dtype {value.dtype}; "
                    f"expected {tuple(self._w0[name].shape)} and {self._w0[name].dtype}"
                )
        self._fast = {name: value.detach().clone() for name, value in state.items()}

    def reset(self) -> None:
        """Restore the fast weights to W0."""
        self._fast = self.w0()

    def w0(self) -> FastWeightState:
        """Return copies of the initial fast weights W0."""
        return {name: value.clone() for name, value in self._w0.items()}
