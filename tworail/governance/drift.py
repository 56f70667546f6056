"""Drift monitors: alerts after a commit, and the freeze that stops learning until a person resumes it.

After each commit the learner passes the new metrics to `DriftMonitor.check`:
gold loss over W0 and its rise in this commit, probe pass rate, disagreement with the reference rail on
fixed probes and the update norm. A crossed threshold becomes a `DriftAlert`;
the learner writes it to the audit trail as a 'drift_alert' event, logs it,
calls the optional callback and, when `freeze_on_alert` is set, appends a
'freeze' event. Learning stays frozen until `resume` appends a 'resume' event,
so the freeze survives restarts: it is read back from the audit trail.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime

from pydantic import BaseModel, Field

from tworail.audit import AuditStore
from tworail.governance.probes import Probe, rank_candidates
from tworail.governance.protocol import FastWeightModel
from tworail.records import AuditEvent, utc_now

logger = logging.getLogger(__name__)

ReferenceChooser = Callable[[str, list[str]], str]
"""The reference rail's choice among candidates for a prompt: (prompt, candidates) -> chosen candidate."""


class DriftThresholds(BaseModel):
    """Alert levels, the `[drift]` table of a learn policy; None disables one."""

    model_config = {"extra": "forbid"}

    max_gold_loss_increase: float | None = Field(default=0.25, ge=0)
    """Gold loss over its W0 value, in nats per token, that raises an alert."""
    max_gold_loss_rise: float | None = Field(default=None, ge=0)
    """Rise of the gold loss caused by one commit, in nats per token, that raises an alert."""
    min_probe_pass_rate: float | None = Field(default=None, ge=0, le=1)
    """Probe pass rate below which an alert is raised."""
    max_reference_disagreement: float | None = Field(default=None, ge=0, le=1)
    """Fraction of fixed probes on which the learnable rail may disagree with the reference rail."""
    max_update_norm: float | None = Field(default=None, gt=0)
    """Update norm of one commit that raises an alert."""
    freeze_on_alert: bool = True
    """Freeze learning on any alert until a person resumes it."""


class DriftAlert(BaseModel):
    """One crossed threshold."""

    metric: str
    """Metric name, for example 'gold_loss_increase'."""
    value: float
    """Measured value."""
    threshold: float
    """The threshold it crossed."""
    message: str
    """Readable description with both values."""


class DriftMonitor:
    """Checks post-commit metrics against drift thresholds."""

    def __init__(
        self,
        thresholds: DriftThresholds | None = None,
        *,
        reference_probes: Sequence[Probe] = (),
        reference: ReferenceChooser | None = None,
        on_alert: Callable[[DriftAlert], None] | None = None,
    ) -> None:
        self.thresholds = thresholds or DriftThresholds()
        self.reference_probes = list(reference_probes)
        self.reference = reference
        self.on_alert = on_alert

    def reference_disagreement(self, model: FastWeightModel) -> float | None:
        """Return the fraction of reference probes where the model's top candidate differs from the reference's."""
        if self.reference is None or not self.reference_probes:
            return None
        differ = 0
        for probe in self.reference_probes:
            ours = rank_candidates(model, probe.prompt, probe.candidates)[0]
            differ += ours != self.reference(probe.prompt, list(probe.candidates))
        return differ / len(self.reference_probes)

    def check(self, model: FastWeightModel, metrics: dict[str, float],
              before: dict[str, float] | None = None) -> tuple[dict[str, float], list[DriftAlert]]:
        """Return the drift metrics and the alerts they raise.

        `metrics` are the post-commit metrics, `before` the metrics before the
        commit; added here are 'gold_loss_rise' (after minus before) and the
        reference disagreement.
        """
        metrics = dict(metrics)
        if before and "gold_loss" in before and "gold_loss" in metrics:
            metrics["gold_loss_rise"] = metrics["gold_loss"] - before["gold_loss"]
        disagreement = self.reference_disagreement(model)
        if disagreement is not None:
            metrics["reference_disagreement"] = disagreement
        limits = self.thresholds
        checks = (
            ("gold_loss_increase", limits.max_gold_loss_increase, True),
            ("gold_loss_rise", limits.max_gold_loss_rise, True),
            ("probe_pass_rate", limits.min_probe_pass_rate, False),
            ("reference_disagreement", limits.max_reference_disagreement, True),
            ("update_norm", limits.max_update_norm, True),
        )
        alerts = []
        for metric, threshold, upper in checks:
            value = metrics.get(metric)
            if threshold is None or value is None:
                continue
            if (value > threshold) if upper else (value < threshold):
                side = "above the maximum" if upper else "below the minimum"
                alerts.append(DriftAlert(metric=metric, value=value, threshold=threshold,
                                         message=f"drift: {metric} = {value:.4f} is {side} {threshold}"))
        for alert in alerts:
            logger.warning("%s", alert.message)
            if self.on_alert is not None:
                self.on_alert(alert)
        return metrics, alerts


def freeze_event(audit: AuditStore) -> AuditEvent | None:
    """Return the 'freeze' event in force, or None when learning is not frozen."""
    last = audit.last(kind=("freeze", "resume"))
    return last if last is not None and last.kind == "freeze" else None


def freeze(audit: AuditStore, *, actor: str, reason: str, time: datetime | None = None,
           rule: str = "drift.freeze") -> AuditEvent:
    """Freeze learning and record who did it and why."""
    event = AuditEvent(kind="freeze", actor=actor, rule=rule, reasons=[reason], time=time or utc_now())
    logger.warning("learning frozen by %s: %s", actor, reason)
    return audit.append(event)


def resume(audit: AuditStore, *, actor: str, reason: str, time: datetime | None = None) -> AuditEvent:
    """Resume learning after a freeze, recording who resumed it and why."""
    if not actor.strip():
        raise ValueError("resuming learning needs the name of the person who resumes it; pass actor")
    event = AuditEvent(kind="resume", actor=actor, rule="drift.resume", reasons=[reason], time=time or utc_now())
    logger.info("learning resumed by %s: %s", actor, reason)
    return audit.append(event)
