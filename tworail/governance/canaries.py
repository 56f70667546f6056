"""Planted canaries and their exposure (Carlini et al., "The Secret Sharer", USENIX Security 2019).

A canary is a text built from a template and a random secret, for example
"my card number is {secret}". Its exposure after learning is
log2(|C|) - log2(rank), where C contains the canary's secret and random secrets
of the same format, and rank is the canary's position when all of C are
ordered by the model's total loss on the filled-in template. An unseen secret
ranks near the middle (exposure about 1); a memorized one ranks first
(exposure log2(|C|)). Ties count half, so a model that cannot tell the
secrets apart does not look as if it memorized them.
"""

from __future__ import annotations

import math
import random

from pydantic import BaseModel, Field, model_validator

from tworail.governance.probes import text_loss
from tworail.governance.protocol import FastWeightModel


def luhn_check_digit(digits: str) -> str:
    """Return the Luhn check digit that makes `digits` + it a valid number."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Return True when the digit string passes the Luhn checksum."""
    return len(number) >= 2 and number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


class Canary(BaseModel):
    """A planted secret and the format its random rivals share."""

    name: str
    """Label used in metrics, for example 'card-in-email-field'."""
    template: str
    """Text with one '{secret}' slot."""
    secret: str = Field(min_length=1)
    """The planted secret."""
    alphabet: str = "0123456789"
    """Characters random rivals are drawn from."""
    luhn: bool = False
    """Rivals (and the secret) are Luhn-valid digit strings, like card numbers."""
    rivals: int = Field(default=255, ge=1)
    """Number of random rivals; |C| = rivals + 1."""
    seed: int = 0
    """Seed of the rival generator, so exposure is reproducible."""

    @model_validator(mode="after")
    def _check_format(self) -> Canary:
        if self.template.count("{secret}") != 1:
            raise ValueError(f"template {self.template!r} must contain '{{secret}}' exactly once")
        if any(char not in self.alphabet for char in self.secret):
            raise ValueError(f"secret of canary {self.name!r} uses characters outside its alphabet")
        if self.luhn and not luhn_valid(self.secret):
            raise ValueError(f"secret of canary {self.name!r} is not Luhn-valid but luhn=True")
        if len(self.alphabet) ** len(self.secret) <= 2 * self.rivals:
            raise ValueError(f"the format of canary {self.name!r} has too few distinct secrets for "
                             f"{self.rivals} rivals; lengthen the secret or lower rivals")
        return self

    def text(self, secret: str | None = None) -> str:
        """Return the template filled with `secret` (default: the canary's own)."""
        return self.template.replace("{secret}", self.secret if secret is None else secret)

    def rival_secrets(self) -> list[str]:
        """Return the distinct random rivals of the same format, never the secret itself."""
        generator = random.Random(self.seed)
        rivals: set[str] = set()
        ordered: list[str] = []
        while len(ordered) < self.rivals:
            if self.luhn:
                body = "".join(generator.choice("0123456789") for _ in range(len(self.secret) - 1))
                candidate = body + luhn_check_digit(body)
            else:
                candidate = "".join(generator.choice(self.alphabet) for _ in range(len(self.secret)))
            if candidate != self.secret and candidate not in rivals:
                rivals.add(candidate)
                ordered.append(candidate)
        return ordered


class ExposureResult(BaseModel):
    """The rank and exposure of one canary."""

    name: str
    """The canary's name."""
    rank: float
    """1-based rank of the secret among |C| candidates (ties count half)."""
    candidates: int
    """|C|: the secret plus its rivals."""
    exposure: float
    """log2(|C|) - log2(rank), in bits; at most log2(|C|)."""


def exposure(model: FastWeightModel, canary: Canary) -> ExposureResult:
    """Measure the canary's exposure under the model's current fast weights."""
    secret_loss, _ = text_loss(model, canary.text())
    lower = equal = 0
    rivals = canary.rival_secrets()
    for rival in rivals:
        loss, _ = text_loss(model, canary.text(rival))
        if loss < secret_loss:
            lower += 1
        elif loss == secret_loss:
            equal += 1
    rank = 1 + lower + equal / 2
    size = len(rivals) + 1
    return ExposureResult(name=canary.name, rank=rank, candidates=size, exposure=math.log2(size) - math.log2(rank))
