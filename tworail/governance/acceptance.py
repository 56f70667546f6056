"""The acceptance gate: a learning batch commits only if its shadow copy passes offline replay.

The learner applies each batch to a copy of the fast weights, loads the copy
and has the gate measure it: loss per token on gold documents, compared
with the same loss under W0; the pass rate of behavioral probes, compared with
the rate before the batch; the exposure of planted canaries; and the norm of
the update. Any threshold that fails rejects the batch, and the report names
the failing metric.

Metric names: 'gold_loss', 'gold_loss_increase' (over W0, nats per token),
'probe_pass_rate', 'canary_exposure_max' and 'exposure:<canary name>' (bits),
'update_norm'.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from tworail.governance.canaries import Canary, exposure
from tworail.governance.probes import Probe, gold_loss, probe_pass_rate
from tworail.governance.protocol import FastWeightModel


class AcceptanceThresholds(BaseModel):
    """Limits a batch must respect, the `[acceptance]` table of a learn policy; None disables one."""

    model_config = {"extra": "forbid"}

    max_gold_loss_increase: float | None = Field(default=0.5, ge=0)
    """Largest rise of the gold loss over its W0 value, in nats per token."""
    min_probe_pass_rate: float | None = Field(default=None, ge=0, le=1)
    """Lowest probe pass rate after the batch."""
    max_probe_pass_rate_drop: float | None = Field(default=0.25, ge=0, le=1)
    """Largest fall of the probe pass rate caused by one batch."""
    max_canary_exposure: float | None = Field(default=None, ge=0)
    """Highest exposure, in bits, of any planted canary after the batch."""
    max_update_norm: float | None = Field(default=None, gt=0)
    """Largest L2 norm of one batch's change to the fast weights."""


class AcceptanceReport(BaseModel):
    """The gate's verdict on one batch."""

    accepted: bool
    """True when every threshold holds."""
    metrics_before: dict[str, float] = Field(default_factory=dict)
    """Metrics under the fast weights before the batch."""
    metrics_after: dict[str, float] = Field(default_factory=dict)
    """Metrics under the shadow copy with the batch applied."""
    failures: list[str] = Field(default_factory=list)
    """Rule names of failing thresholds, for example 'acceptance.gold_loss'."""
    reasons: list[str] = Field(default_factory=list)
    """One readable line per failing threshold, with the values."""


class AcceptanceGate:
    """Measures fast weights by offline replay and judges a batch against thresholds."""

    def __init__(
        self,
        thresholds: AcceptanceThresholds | None = None,
        *,
        gold_texts: Sequence[str] = (),
        probes: Sequence[Probe] = (),
        canaries: Sequence[Canary] = (),
    ) -> None:
        self.thresholds = thresholds or AcceptanceThresholds()
        self.gold_texts = [text for text in gold_texts if text]
        self.probes = list(probes)
        self.canaries = list(canaries)
        self.w0_gold_loss: float | None = None
        """Gold loss under W0, set by `calibrate`."""

    def calibrate(self, model: FastWeightModel) -> None:
        """Record the gold loss of `model` as the W0 reference; call it with W0 loaded."""
        self.w0_gold_loss = gold_loss(model, self.gold_texts) if self.gold_texts else None

    def measure(self, model: FastWeightModel) -> dict[str, float]:
        """Return every metric under the model's current fast weights."""
        metrics: dict[str, float] = {}
        if self.gold_texts:
            metrics["gold_loss"] = gold_loss(model, self.gold_texts)
            if self.w0_gold_loss is not None:
                metrics["gold_loss_increase"] = metrics["gold_loss"] - self.w0_gold_loss
        if self.probes:
            metrics["probe_pass_rate"] = probe_pass_rate(model, self.probes)
        if self.canaries:
            results = [exposure(model, canary) for canary in self.canaries]
            for result in results:
                metrics[f"exposure:{result.name}"] = result.exposure
            metrics["canary_exposure_max"] = max(result.exposure for result in results)
        return metrics

    def judge(self, before: dict[str, float], after: dict[str, float], update_norm: float) -> AcceptanceReport:
        """Compare metrics before and after a batch with the thresholds."""
        after = {**after, "update_norm": update_norm}
        failures = [*self._loss_failures(after), *self._probe_failures(before, after),
                    *self._exposure_failures(after)]
        limit = self.thresholds.max_update_norm
        if limit is not None and update_norm > limit:
            failures.append(("acceptance.update_norm", f"update norm {update_norm:.4f} exceeds the limit {limit}"))
        return AcceptanceReport(
            accepted=not failures,
            metrics_before=before,
            metrics_after=after,
            failures=[rule for rule, _ in failures],
            reasons=[reason for _, reason in failures],
        )

    def _loss_failures(self, after: dict[str, float]) -> list[tuple[str, str]]:
        limit = self.thresholds.max_gold_loss_increase
        increase = after.get("gold_loss_increase")
        if limit is None or increase is None or increase <= limit:
            return []
        return [("acceptance.gold_loss", f"gold loss rose {increase:.4f} nats/token over W0, above the limit {limit}")]

    def _probe_failures(self, before: dict[str, float], after: dict[str, float]) -> list[tuple[str, str]]:
        rate = after.get("probe_pass_rate")
        if rate is None:
            return []
        failures = []
        minimum = self.thresholds.min_probe_pass_rate
        if minimum is not None and rate < minimum:
            failures.append(("acceptance.probe_pass_rate", f"probe pass rate {rate:.3f} is below the minimum {minimum}"))
        max_drop = self.thresholds.max_probe_pass_rate_drop
        if max_drop is not None and "probe_pass_rate" in before and before["probe_pass_rate"] - rate > max_drop:
            drop = before["probe_pass_rate"] - rate
            failures.append(("acceptance.probe_pass_rate_drop", f"probe pass rate fell {drop:.3f}, above the limit "
                                                               f"{max_drop}"))
        return failures

    def _exposure_failures(self, after: dict[str, float]) -> list[tuple[str, str]]:
        limit = self.thresholds.max_canary_exposure
        worst = after.get("canary_exposure_max")
        if limit is None or worst is None or worst <= limit:
            return []
        return [("acceptance.canary_exposure", f"a planted canary reached exposure {worst:.2f} bits, above the "
                                               f"limit {limit}")]
