"""Offline replay metrics: loss on gold documents and behavioral probes.

Both read the model through `score` only, so measuring never changes the fast
weights. A candidate answer's loss is its conditional loss per token after the
prompt: (total loss of prompt + candidate - total loss of prompt) divided by
the extra tokens, so candidates of different lengths compare fairly.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field, model_validator

from tworail.governance.protocol import FastWeightModel


class Probe(BaseModel):
    """A prompt with candidate answers and the answer (or ranking) the model should prefer."""

    prompt: str
    """Text before the candidate continuation."""
    candidates: list[str] = Field(min_length=2)
    """Candidate continuations of the prompt."""
    expected: str | None = None
    """The candidate that should have the lowest loss."""
    expected_ranking: list[str] | None = None
    """Candidates in the order they should rank, best first (a subset of `candidates`)."""
    name: str = ""
    """Label used in logs and metrics."""

    @model_validator(mode="after")
    def _check_expectation(self) -> Probe:
        if (self.expected is None) == (self.expected_ranking is None):
            raise ValueError("set exactly one of expected and expected_ranking")
        wanted = [self.expected] if self.expected is not None else list(self.expected_ranking or [])
        unknown = [item for item in wanted if item not in self.candidates]
        if unknown:
            raise ValueError(f"expected candidates {unknown} are not among the candidates {self.candidates}; "
                             "list each expected one in candidates")
        return self


def text_loss(model: FastWeightModel, text: str) -> tuple[float, int]:
    """Return the total loss of `text` in nats and the number of scored tokens."""
    losses = model.score(text)
    return float(losses.double().sum()), int(losses.numel())


def conditional_loss(model: FastWeightModel, prompt: str, continuation: str) -> float:
    """Return the mean loss per token of `continuation` after `prompt`."""
    full, full_tokens = text_loss(model, prompt + continuation)
    if not prompt:
        return full / max(1, full_tokens)
    head, head_tokens = text_loss(model, prompt)
    return (full - head) / max(1, full_tokens - head_tokens)


def rank_candidates(model: FastWeightModel, prompt: str, candidates: Sequence[str]) -> list[str]:
    """Return the candidates ordered by conditional loss, lowest (most likely) first."""
    losses = {candidate: conditional_loss(model, prompt, candidate) for candidate in candidates}
    return sorted(candidates, key=lambda candidate: losses[candidate])


def probe_passes(model: FastWeightModel, probe: Probe) -> bool:
    """Return True when the model prefers the probe's expected candidate or ranking."""
    ranking = rank_candidates(model, probe.prompt, probe.candidates)
    if probe.expected is not None:
        return ranking[0] == probe.expected
    wanted = list(probe.expected_ranking or [])
    return [candidate for candidate in ranking if candidate in wanted] == wanted


def probe_pass_rate(model: FastWeightModel, probes: Sequence[Probe]) -> float:
    """Return the fraction of probes the model passes (1.0 for no probes)."""
    if not probes:
        return 1.0
    return sum(probe_passes(model, probe) for probe in probes) / len(probes)


def gold_loss(model: FastWeightModel, texts: Sequence[str]) -> float:
    """Return the mean loss per token over the gold texts, weighting each text by its tokens."""
    total, tokens = 0.0, 0
    for text in texts:
        loss, count = text_loss(model, text)
        total += loss
        tokens += count
    if tokens == 0:
        raise ValueError("the gold texts hold no tokens; pass at least one non-empty gold document")
    return total / tokens
