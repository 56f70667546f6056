"""Precision and risk scores, and the route decision built from them.

Scores combine fired features with a noisy-OR: each feature of weight w that
fires with n distinct matches contributes 1 - (1 - w)^min(n, 3), and the
axis score is 1 - prod(1 - contribution). Scores therefore stay in [0, 1],
grow with independent evidence and never exceed 1 however many cues fire.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, Field, model_validator

from tworail.records import RailName, RouteDecision, Task
from tworail.router.features import CUES, Axis, Cue, FiredFeature, fire_features

DEFAULT_WEIGHTS: dict[str, float] = {
    "error_code": 0.8,
    "version": 0.7,
    "date": 0.6,
    "money": 0.6,
    "number": 0.5,
    "identifier": 0.6,
    "quote": 0.7,
    "exact_name": 0.6,
    "legal": 0.6,
    "money_risk": 0.6,
    "security": 0.5,
    "personal_data": 0.7,
    "legal_risk": 0.5,
    "data_loss": 0.5,
    "typical": 0.6,
    "summary": 0.5,
    "anomaly": 0.5,
    "advice": 0.6,
}
"""Weight of each feature in its axis score. The weights are set by hand, not fitted to data."""


class RouterConfig(BaseModel):
    """Weights and thresholds of the router."""

    weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    """Feature name to weight in [0, 1]."""
    precision_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Precision score at or above which the reference rail answers."""
    pattern_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Pattern score at or above which the learnable rail answers."""
    risk_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    """Risk score at or above which the reference rail is always consulted."""

    @model_validator(mode="after")
    def _check_weights(self) -> RouterConfig:
        known = {cue.name for cue in CUES}
        unknown = sorted(set(self.weights) - known)
        if unknown:
            raise ValueError(f"unknown router features {unknown}; known features are {sorted(known)}")
        bad = {name: w for name, w in self.weights.items() if not 0.0 <= w <= 1.0}
        if bad:
            raise ValueError(f"router weights must lie in [0, 1]; got {bad}")
        return self


def _axis_score(fired: list[FiredFeature], axis: Axis, weights: dict[str, float]) -> float:
    keep = 1.0
    for feature in fired:
        if feature.cue.axis != axis:
            continue
        weight = weights.get(feature.cue.name, 0.0)
        contribution = 1.0 - (1.0 - weight) ** min(len(feature.matches), 3)
        keep *= 1.0 - contribution
    return 1.0 - keep


class Router:
    """Scores a task for precision, risk and pattern need, and picks rails."""

    def __init__(self, config: RouterConfig | None = None, cues: tuple[Cue, ...] = CUES) -> None:
        self.config = config or RouterConfig()
        self.cues = cues

    def route(self, task: Task) -> RouteDecision:
        """Return the rails for `task`, with scores, features and reasons."""
        fired = fire_features(task, self.cues)
        weights = self.config.weights
        precision = _axis_score(fired, "precision", weights)
        risk = _axis_score(fired, "risk", weights)
        pattern = _axis_score(fired, "pattern", weights)
        if task.candidates:
            # Candidate answers to rank are a request the learnable rail serves directly.
            pattern = max(pattern, self.config.pattern_threshold)
        rails = self._choose_rails(precision, risk, pattern)
        features = {feature.cue.name: float(len(feature.matches)) for feature in fired}
        features.update({"precision": precision, "risk": risk, "pattern": pattern})
        reasons = [f"{feature.cue.axis}: {feature.reason()}" for feature in fired]
        if task.candidates:
            reasons.append(f"pattern: {len(task.candidates)} candidate answers to rank")
        return RouteDecision(
            rails=rails,
            precision=round(precision, 4),
            risk=round(risk, 4),
            reasons=reasons,
            features=features,
            confidence=round(self._confidence(precision, pattern), 4),
        )

    def _choose_rails(self, precision: float, risk: float, pattern: float) -> list[RailName]:
        config = self.config
        wants_reference = precision >= config.precision_threshold or risk >= config.risk_threshold
        wants_learnable = pattern >= config.pattern_threshold
        if wants_reference and wants_learnable:
            # The rail whose score is higher leads; the merge puts its claims first.
            return ["reference", "learnable"] if precision >= pattern else ["learnable", "reference"]
        if wants_reference:
            return ["reference"]
        if wants_learnable:
            return ["learnable"]
        # No cue fired: ask both, and let cited evidence lead.
        return ["reference", "learnable"]

    def _confidence(self, precision: float, pattern: float) -> float:
        # NOTE: a margin squashed by a logistic, not yet calibrated on labeled tasks, so
        # 0.9 does not mean right 90% of the time.
        margin = abs(precision - pattern)
        return 1.0 / (1.0 + math.exp(-6.0 * (margin - 0.25)))
