"""The learnable rail: a TTT-E2E model whose fast weights learn from the text it reads.

Texts are tokenized with the model's byte-level BPE and prefixed with the
end-of-text token, which separates documents in training, so that the first
real token is scored too. A text longer than the training sequence length is
read in segments of `seq_len` tokens. The KV cache and positions carry across
the segments of one text, so segmenting does not change any result. Each new
text (each `learn`, `score` or `rank` input) starts with an empty cache.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch
from tokenizers import Tokenizer

from tworail.rails.ttt.checkpoint import CheckpointError, load_pretrained, save_pretrained
from tworail.rails.ttt.config import InnerLoopConfig, ModelConfig
from tworail.rails.ttt.decode import feed_token, maybe_inner_step, sample, start_decode
from tworail.rails.ttt.inner_loop import InnerLoopResult, batch_fast_weights, run_inner_loop
from tworail.rails.ttt.model import FastWeights, KVCache, TTTModel
from tworail.rails.ttt.tokenizer import end_of_text_id, train_tokenizer
from tworail.records import Claim, LearnReport, RailAnswer, Task

logger = logging.getLogger(__name__)

BYTE_VOCAB_SIZE = 257
"""Ids of a byte-level tokenizer without merges: 256 bytes plus end-of-text."""


def bundled_model_dir() -> Path:
    """Return the folder of the checkpoint shipped in `tworail/data/model/`."""
    return Path(str(resources.files("tworail.data") / "model"))


class LearnableRail:
    """TTT-E2E rail: learn from text at run time, then score, rank and generate with the fast weights."""

    name = "learnable"

    persistent_learning_rate: float = 0.1
    """Inner SGD learning rate of `learn` (persistent mode); per-request reading uses `inner`.

    The checkpoint is meta-trained for the inner rate of 1.0 of TTT-E2E (Tandon et al., arXiv 2512.23675) within one sequence. Carried
    over from document to document at 1.0, the fast weights drift. On the checkpoint bundled
    before the Debian documentation joined its corpus, learning the 123 bundled threads raised
    the loss on 52 held-out threads from 4.75 to 4.86 nats per token at 1.0, and to 4.79 at
    0.1; on the current one it goes from 4.84 to 4.85 at 0.1.
    """

    def __init__(self, model: TTTModel, tokenizer: Tokenizer) -> None:
        if tokenizer.get_vocab_size() > model.config.vocab_size:
            raise ValueError(
                f"tokenizer has {tokenizer.get_vocab_size()} ids but the model only "
                f"{model.config.vocab_size}; load the tokenizer saved with the model"
            )
        model.eval()
        model.requires_grad_(False)  # only the fast weights ever receive gradients here
        self.model = model
        self.tokenizer = tokenizer
        self.inner = InnerLoopConfig.for_model(model.config)
        self._eot = end_of_text_id(tokenizer)
        self._w0 = {name: value.detach().clone() for name, value in model.w0().items()}
        self._fast = {name: value.clone() for name, value in self._w0.items()}

    # -- construction -------------------------------------------------------

    @classmethod
    def from_pretrained(cls, path: Path | None = None) -> "LearnableRail":
        """Load a model folder, or the bundled checkpoint when `path` is None."""
        model_dir = Path(path) if path is not None else bundled_model_dir()
        if not model_dir.is_dir():
            raise CheckpointError(
                f"model folder {model_dir} not found; pass the folder written by train_from_config "
                "or reinstall tworail with its bundled checkpoint"
            )
        model, tokenizer = load_pretrained(model_dir)
        logger.info("loaded learnable rail from %s", model_dir)
        return cls(model, tokenizer)

    @classmethod
    def from_config(cls, config: ModelConfig, seed: int = 0) -> "LearnableRail":
        """Return a randomly initialized rail with a byte-level tokenizer (for tests and doubles)."""
        if config.vocab_size < BYTE_VOCAB_SIZE:
            raise ValueError(
                f"vocab_size={config.vocab_size} cannot hold the {BYTE_VOCAB_SIZE} ids of a byte-level "
                f"tokenizer; set vocab_size >= {BYTE_VOCAB_SIZE}"
            )
        torch.manual_seed(seed)
        return cls(TTTModel(config), train_tokenizer([], BYTE_VOCAB_SIZE))

    def save_pretrained(self, path: Path) -> None:
        """Write the model with W0 (not the current fast weights) and the tokenizer to `path`."""
        save_pretrained(self.model, self.tokenizer, Path(path))

    # -- fast weights -------------------------------------------------------

    def w0(self) -> dict[str, torch.Tensor]:
        """Return copies of the meta-learned initial fast weights W0."""
        return {name: value.clone() for name, value in self._w0.items()}

    def fast_weights(self) -> dict[str, torch.Tensor]:
        """Return copies of the current fast weights."""
        return {name: value.clone() for name, value in self._fast.items()}

    def load_fast_weights(self, state: dict[str, torch.Tensor]) -> None:
        """Replace the current fast weights; names and shapes must match W0."""
        for name, value in self._w0.items():
            if name not in state:
                raise KeyError(f"fast weight {name!r} missing from state; expected keys {sorted(self._w0)}")
            if tuple(state[name].shape) != tuple(value.shape):
                raise ValueError(
                    f"fast weight {name!r} has shape {tuple(state[name].shape)}, expected {tuple(value.shape)}"
                )
        extra = sorted(set(state) - set(self._w0))
        if extra:
            raise KeyError(f"unknown fast weights {extra}; expected keys {sorted(self._w0)}")
        self._fast = {name: state[name].detach().to(torch.float32).clone() for name in self._w0}

    def reset(self) -> None:
        """Restore the fast weights to W0."""
        self._fast = self.w0()

    # -- reading text -------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """Return the token ids of text preceded by the end-of-text token."""
        return [self._eot, *self.tokenizer.encode(text).ids]

    def _read(
        self, ids: list[int], fast: FastWeights, update: bool, inner: InnerLoopConfig | None = None
    ) -> tuple[torch.Tensor, FastWeights]:
        """Run the inner loop over one text's ids in `seq_len` segments; return losses (N,) and weights."""
        seq_len = self.model.config.seq_len
        inputs = torch.tensor([ids[:-1]])
        targets = torch.tensor([ids[1:]])
        batched = batch_fast_weights(fast, 1)
        caches: list[KVCache | None] | None = None
        losses: list[torch.Tensor] = []
        for start in range(0, inputs.shape[1], seq_len):
            result: InnerLoopResult = run_inner_loop(
                self.model,
                inputs[:, start : start + seq_len],
                targets[:, start : start + seq_len],
                batched,
                inner or self.inner,
                update=update,
                caches=caches,
                start_position=start,
            )
            batched, caches = result.fast_weights, result.caches
            losses.append(result.token_losses[0])
        return torch.cat(losses), {name: value[0].detach() for name, value in batched.items()}

    def _check_text(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"text must be str, got {type(text).__name__}")
        ids = self.encode(text)
        if len(ids) < 2:
            raise ValueError("text is empty; pass at least one character to read")
        return ids

    def learn(self, text: str) -> LearnReport:
        """Read text with the inner loop and keep the updated fast weights (persistent mode)."""
        return self.learn_many([text])

    def learn_many(self, texts: Sequence[str]) -> LearnReport:
        """Read several texts in order, each with a fresh KV cache, keeping the fast weights across them.

        The result equals calling `learn` on each text in turn; the report covers all of them.
        """
        if isinstance(texts, str) or not texts:
            raise ValueError("texts must be a non-empty sequence of strings; use learn() for one text")
        documents = [self._check_text(text) for text in texts]
        persistent = InnerLoopConfig(
            self.inner.mini_batch, learning_rate=self.persistent_learning_rate, grad_clip=self.inner.grad_clip
        )
        before = self._fast
        fast = before
        losses_before: list[torch.Tensor] = []
        for ids in documents:
            losses, fast = self._read(ids, fast, update=True, inner=persistent)
            losses_before.append(losses)
        losses_after = [self._read(ids, fast, update=False)[0] for ids in documents]
        self._fast = fast
        deltas = {name: fast[name] - before[name] for name in fast}
        changed = [name for name, delta in deltas.items() if bool(delta.abs().max() > 0)]
        report = LearnReport(
            tokens=sum(len(ids) - 1 for ids in documents),
            mini_batches=sum(math.ceil((len(ids) - 1) / self.inner.mini_batch) for ids in documents),
            loss_before=float(torch.cat(losses_before).mean()),
            loss_after=float(torch.cat(losses_after).mean()),
            update_norm=float(torch.sqrt(sum(delta.pow(2).sum() for delta in deltas.values()))),
            parameters=changed,
        )
        logger.info(
            "learned %d tokens: loss %.3f -> %.3f, update norm %.3f",
            report.tokens,
            report.loss_before,
            report.loss_after,
            report.update_norm,
        )
        return report

    def score(self, text: str, test_time_training: bool = False) -> torch.Tensor:
        """Return per-token next-token losses in nats (one per token of text) with the current fast weights.

        With `test_time_training=True` the text is read with inner-loop updates
        (per-request mode: each token is scored before its own mini-batch's update)
        and the updates are then discarded.
        """
        losses, _ = self._read(self._check_text(text), self._fast, update=test_time_training)
        return losses

    def rank(self, prompt: str, candidates: Sequence[str], separator: str = " ") -> list[tuple[str, float]]:
        """Return (candidate, mean log-likelihood per token given prompt + separator), best first."""
        return sorted(self._candidate_scores(prompt, candidates, separator, self._fast), key=lambda x: -x[1])

    def _candidate_scores(
        self, prompt: str, candidates: Sequence[str], separator: str, fast: FastWeights
    ) -> list[tuple[str, float]]:
        if isinstance(candidates, str) or not candidates:
            raise ValueError("candidates must be a non-empty list of strings")
        context = self.encode(prompt)
        scores: list[tuple[str, float]] = []
        for candidate in candidates:
            continuation = self.tokenizer.encode(separator + candidate).ids
            if not continuation:
                raise ValueError(f"candidate {candidate!r} has no tokens; pass non-empty candidates")
            losses, _ = self._read(context + continuation, fast, update=False)
            scores.append((candidate, -float(losses[-len(continuation) :].mean())))
        return scores

    def generate(self, prompt: str, max_new_tokens: int = 64, temperature: float = 0.0, seed: int = 0) -> str:
        """Continue prompt by sliding-window decoding with inner steps (per request, not kept).

        The prompt's complete mini-batches are read with inner-loop updates. After that,
        every b processed tokens (prompt tail plus generated ones) get one inner step,
        as in TTT-E2E decoding. The rail's own fast weights are left unchanged. Decoding stops
        at the end-of-text token.
        """
        if max_new_tokens < 0:
            raise ValueError(f"max_new_tokens={max_new_tokens} is negative; pass 0 or more")
        ids = self.encode(prompt)
        b = self.inner.mini_batch
        boundary = ((len(ids) - 1) // b) * b  # prefill whole mini-batches whose targets are all known
        fast = batch_fast_weights(self._fast, 1)
        caches: list[KVCache | None] = [None] * self.model.config.n_layers
        if boundary:
            inputs = torch.tensor([ids[:boundary]])
            result = run_inner_loop(
                self.model, inputs, torch.tensor([ids[1 : boundary + 1]]), fast, self.inner, update=True
            )
            fast, caches = result.fast_weights, result.caches
        state = start_decode(self.model, caches, fast, boundary)
        generator = torch.Generator().manual_seed(seed)
        new_tokens: list[int] = []
        with torch.no_grad():
            for token in ids[boundary:-1]:
                feed_token(self.model, state, token)
                maybe_inner_step(self.model, state, ids[state.position], self.inner)
            logits = feed_token(self.model, state, ids[-1])
            for _ in range(max_new_tokens):
                token = sample(logits, temperature, generator)
                if token == self._eot:
                    break
                new_tokens.append(token)
                maybe_inner_step(self.model, state, token, self.inner)
                logits = feed_token(self.model, state, token)
        return self.tokenizer.decode(new_tokens)

    # -- rail interface -----------------------------------------------------

    def answer(self, task: Task) -> RailAnswer:
        """Rank the task's candidates (each scored as a new line after the question) and return the best.

        Without candidates, return a short greedy continuation marked as unranked generation.
        """
        # NOTE: the rail keeps one set of fast weights; it does not switch them by task.tenant.
        if not task.candidates:
            text = self.generate(task.question, max_new_tokens=48).strip()
            claims = [Claim(text=text, provenance="learned", rail="learnable")] if text else []
            return RailAnswer(
                rail="learnable",
                answer=text,
                claims=claims,
                details={"mode": "unranked_generation", "note": "greedy continuation of the question; no candidates to rank"},
            )
        learned = self._candidate_scores(task.question, task.candidates, "\n", self._fast)
        baseline = dict(self._candidate_scores(task.question, task.candidates, "\n", self._w0))
        probabilities = torch.softmax(torch.tensor([score for _, score in learned]), dim=0).tolist()
        table = [
            {
                "candidate": candidate,
                "mean_log_likelihood": score,
                "change_vs_w0": score - baseline[candidate],
                "probability": probability,
            }
            for (candidate, score), probability in zip(learned, probabilities, strict=True)
        ]
        table.sort(key=lambda row: -row["mean_log_likelihood"])
        best = table[0]
        claim = Claim(text=best["candidate"], provenance="learned", rail="learnable", confidence=best["probability"])
        return RailAnswer(
            rail="learnable", answer=best["candidate"], claims=[claim], details={"mode": "ranked", "candidates": table}
        )
