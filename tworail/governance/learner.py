"""The governed learn path: nothing reaches the fast weights without passing every step.

`GovernedLearner.learn(text, provenance)` runs, in order:

1. authentication (a signed request when a key ring is configured) and the freeze check;
2. the per-principal and per-source rate limits (rejecting, never blocking);
3. the data contract and the learn policy;
4. field rules, sanitizing, the quarantine screens and redaction;
5. the per-period budget, the shadow update on a copy of the fast weights,
   the budget again with the real token count and update norm, and the
   acceptance gate;
6. the commit: the delta, the snapshot (every `snapshot_every` commits) and
   the encrypted text are written first, then the 'learn' audit row, which is
   the commit point, then the weights file;
7. drift monitors and eviction.

Every outcome, rejected ones included, appends one audit row that names the
rule that decided it. A crash before the audit row leaves the previous state
in force, and `collect_garbage` later removes the objects it wrote. A crash
after the row is repaired when the learner next opens, because the audit
trail, not the weights file, records which state is current.
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from safetensors.torch import load_file, save_file

from tworail.audit import AuditLog, AuditStore, InMemoryAuditStore, content_hash
from tworail.governance.acceptance import AcceptanceGate, AcceptanceReport
from tworail.governance.auth import KeyRing, RequestVerifier, SignedRequest
from tworail.governance.budgets import evictions, expired, over_budget, usage_in_period
from tworail.governance.canaries import Canary
from tworail.governance.contracts import enforce_contract
from tworail.governance.drift import DriftAlert, DriftMonitor, ReferenceChooser, freeze, freeze_event, resume
from tworail.governance.errors import (
    AuthenticationError,
    ContractViolation,
    LearnRejected,
    LineageError,
    NothingToUnlearn,
    RateLimitExceeded,
)
from tworail.governance.lineage import Commit, Lineage, materialize
from tworail.governance.payloads import PayloadStore
from tworail.governance.policy import LearnPolicy, PolicyDecision, default_policy
from tworail.governance.prepare import PreparedText, TextPreparer
from tworail.governance.probes import Probe
from tworail.governance.protocol import FastWeightModel, FastWeightState
from tworail.governance.ratelimit import RateLimiter
from tworail.governance.snapshots import (
    InMemorySnapshotStore,
    LocalFolderSnapshotStore,
    SnapshotStore,
    apply_delta,
    changed_parameters,
    compute_delta,
    delta_norm,
    state_id,
)
from tworail.governance.unlearn import ShadowStep, replay_without
from tworail.records import AuditEvent, LearnReport, Provenance, utc_now

logger = logging.getLogger(__name__)

OutcomeStatus = Literal["committed", "rejected", "quarantined"]
"""Final status of a governed learn."""


class LearnOutcome(BaseModel):
    """Result of one learn request: its status, audit row and the results of each step that ran."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    status: OutcomeStatus
    """'committed' when the fast weights changed, else 'rejected' or 'quarantined'."""
    event: AuditEvent
    """The audit row of the outcome."""
    rule: str = ""
    """Rule that decided the outcome, for example 'auth.signature' or 'rules[0]'."""
    reason: str = ""
    """Readable reason; for a commit, a one-line summary."""
    decision: PolicyDecision | None = None
    """The policy's decision, when the request got that far."""
    prepared: PreparedText | None = None
    """Redaction and sanitizing results, when the request got that far."""
    report: LearnReport | None = None
    """The inner loop's report of the shadow update, when one ran."""
    acceptance: AcceptanceReport | None = None
    """The acceptance gate's verdict, when it ran."""
    alerts: list[DriftAlert] = Field(default_factory=list)
    """Drift alerts raised after the commit."""

    @property
    def committed(self) -> bool:
        """True when the batch changed the fast weights."""
        return self.status == "committed"

    def raise_for_status(self) -> LearnOutcome:
        """Return self when committed, else raise `LearnRejected` carrying this outcome."""
        if not self.committed:
            raise LearnRejected(self)
        return self


class RemovalReport(BaseModel):
    """Outcome of an unlearn, expiry, eviction or revert."""

    event: AuditEvent
    """The audit row of the removal."""
    removed: list[int]
    """Event ids of the commits taken out."""
    replayed: int = 0
    """Kept commits re-learned during the replay."""
    dropped: list[int] = Field(default_factory=list)
    """Kept commits the acceptance gate rejected on replay."""


class _Rejected(Exception):
    def __init__(self, status: OutcomeStatus, rule: str, reasons: list[str], step: str, **extra) -> None:
        super().__init__(reasons[0] if reasons else rule)
        self.status, self.rule, self.reasons, self.step, self.extra = status, rule, reasons, step, extra


def default_gold_texts(count: int = 4) -> list[str]:
    """Return the first `count` held-out bundled support threads, the default gold documents."""
    from tworail.datasets import support_threads

    return [thread.text for thread in support_threads("heldout")[:count]]


class GovernedLearner:
    """The governance control plane around one learnable model.

    Arguments:
        rail: the model whose fast weights are governed (`FastWeightModel`).
        data_dir: folder for the audit log (`audit.sqlite`), the current fast
            weights (`learnable/fast_weights.safetensors`, the file `TwoRail`
            loads) and `governance/` (snapshots, encrypted texts). None keeps
            everything in memory.
        policy: the learn policy; default `<data_dir>/governance/policy.toml`
            when it exists, else `default_policy()`.
        audit, snapshots, payloads: stores replacing the defaults under data_dir.
        keyring: principals' keys; when set, every learn needs a `SignedRequest`.
        gold_texts: gold documents for the acceptance gate and drift monitor;
            None uses four held-out bundled support threads.
        probes, canaries: behavioral probes and planted canaries for the gate.
        reference, reference_probes: the reference rail's chooser and the fixed
            probes on which the drift monitor measures disagreement with it.
        on_alert: called with every `DriftAlert`.
        clock: source of event times (timezone-aware).
        snapshot_every: store a full snapshot every this many commits (deltas always).
        actor: principal recorded for unsigned requests and for policy changes.
    """

    def __init__(
        self,
        rail: FastWeightModel,
        data_dir: Path | str | None = None,
        policy: LearnPolicy | None = None,
        *,
        audit: AuditStore | None = None,
        snapshots: SnapshotStore | None = None,
        payloads: PayloadStore | None = None,
        keyring: KeyRing | None = None,
        gold_texts: Sequence[str] | None = None,
        probes: Sequence[Probe] = (),
        canaries: Sequence[Canary] = (),
        reference: ReferenceChooser | None = None,
        reference_probes: Sequence[Probe] = (),
        on_alert: Callable[[DriftAlert], None] | None = None,
        clock: Callable[[], datetime] = utc_now,
        snapshot_every: int = 8,
        actor: str = "local",
        preparer: TextPreparer | None = None,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError(f"snapshot_every={snapshot_every} is invalid; store a snapshot every 1 or more commits")
        self.rail = rail
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.policy = policy or self._default_policy()
        self.audit = audit or (AuditLog(self.data_dir / "audit.sqlite") if self.data_dir else InMemoryAuditStore())
        governance_dir = self.data_dir / "governance" if self.data_dir else None
        self.snapshots = snapshots or (LocalFolderSnapshotStore(governance_dir / "snapshots") if governance_dir
                                       else InMemorySnapshotStore())
        self.payloads = payloads or PayloadStore(governance_dir / "payloads.sqlite" if governance_dir else ":memory:")
        self.verifier = RequestVerifier(keyring) if keyring is not None else None
        self.gate = AcceptanceGate(self.policy.acceptance,
                                   gold_texts=default_gold_texts() if gold_texts is None else gold_texts,
                                   probes=probes, canaries=canaries)
        self.drift = DriftMonitor(self.policy.drift, reference_probes=reference_probes, reference=reference,
                                  on_alert=on_alert)
        self.rate_limiter = RateLimiter(self.policy.rate_limits)
        self.preparer = preparer or TextPreparer()
        self.clock = clock
        self.snapshot_every = snapshot_every
        self.actor = actor
        self.weights_path = self.data_dir / "learnable" / "fast_weights.safetensors" if self.data_dir else None
        self._lock = threading.RLock()
        self._open()

    # Opening and recovery

    def _default_policy(self) -> LearnPolicy:
        from tworail.governance.policy import load_policy

        path = self.data_dir / "governance" / "policy.toml" if self.data_dir else None
        return load_policy(path) if path is not None and path.exists() else default_policy()

    def _open(self) -> None:
        self.lineage = Lineage.from_audit(self.audit)
        w0 = self.rail.w0()
        w0_id = state_id(w0)
        if not self.lineage.base_id:
            self.snapshots.put(w0)
            event = self.audit.append(AuditEvent(kind="init", actor="system", time=self.clock(), snapshot_id=w0_id,
                                                 reasons=["fast weights W0 of the governed model"]))
            self.lineage.apply(event)
        elif self.lineage.base_id != w0_id:
            raise LineageError(
                f"the audit trail was written for a model whose W0 is {self.lineage.base_id[:12]}, but this model's "
                f"W0 is {w0_id[:12]}; open the learner with the original model or use a new data directory"
            )
        self._record_policy(self.actor)
        self._reload_nonces()
        self.rail.load_fast_weights(w0)
        self.gate.calibrate(self.rail)
        self._install(materialize(self.lineage, self.snapshots, len(self.lineage.commits) - 1))
        self.collect_garbage()

    def _reload_nonces(self) -> None:
        # Rows whose request passed authentication used their nonce (the request id).
        if self.verifier is None:
            return
        since = self.clock() - 2 * self.verifier.window
        for event in self.audit.events(kind=("learn", "reject", "quarantine"), since=since):
            if event.request_id and "auth" in event.details.get("steps", []):
                self.verifier.remember(event.actor, event.request_id, event.time)

    def _record_policy(self, actor: str) -> None:
        last = self.audit.last(kind="policy_change")
        digest = self.policy.policy_hash()
        if last is not None and last.details.get("policy_hash") == digest:
            return
        self.audit.append(AuditEvent(
            kind="policy_change", actor=actor, time=self.clock(), rule="policy",
            reasons=[f"policy version {self.policy.version} of {self.policy.owner} in force"],
            details={"policy_hash": digest, "owner": self.policy.owner, "version": self.policy.version,
                     "previous_hash": last.details.get("policy_hash") if last else None},
        ))

    def _install(self, state: FastWeightState) -> None:
        """Make `state` (the audited head) the rail's weights and the weights file, and measure it."""
        self._head = state
        self._head_id = state_id(state)
        self.rail.load_fast_weights(state)
        self._head_metrics = self.gate.measure(self.rail)
        self._save_weights(state)

    def _save_weights(self, state: FastWeightState) -> None:
        if self.weights_path is None:
            return
        if self.weights_path.exists() and state_id(load_file(self.weights_path)) == self._head_id:
            return
        self.weights_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.weights_path.with_name(f"{self.weights_path.name}.{os.getpid()}.tmp")
        save_file({name: value.contiguous() for name, value in state.items()}, tmp)
        os.replace(tmp, self.weights_path)

    def set_policy(self, policy: LearnPolicy, *, actor: str) -> None:
        """Put a new policy in force and record the change in the audit trail."""
        with self._lock:
            self.policy = policy
            self.gate.thresholds = policy.acceptance
            self.drift.thresholds = policy.drift
            self.rate_limiter = RateLimiter(policy.rate_limits)
            self._record_policy(actor)

    # State

    @property
    def head_id(self) -> str:
        """Content id of the fast weights in force."""
        return self._head_id

    def fast_weights(self) -> FastWeightState:
        """Return a copy of the fast weights in force."""
        return {name: value.clone() for name, value in self._head.items()}

    @property
    def frozen(self) -> bool:
        """True while learning is frozen by a drift alert or a person."""
        return freeze_event(self.audit) is not None

    def state_at(self, time: datetime) -> FastWeightState:
        """Return the fast weights of the current lineage as of `time` (only commits learned by then)."""
        index = sum(1 for commit in self.lineage.commits if commit.time <= time) - 1
        return materialize(self.lineage, self.snapshots, index)

    # The governed learn path

    def learn(self, text: str, provenance: Provenance, *, request: SignedRequest | None = None,
              actor: str | None = None) -> LearnOutcome:
        """Run `text` through every governance step and commit it only if all pass; see the module docstring."""
        if not text.strip():
            raise ValueError(f"nothing to learn from source {provenance.source_id!r}: the text is empty")
        base = {"source": provenance.source_id, "tenant": provenance.tenant, "content_hash": content_hash(text),
                "request_id": request.nonce if request is not None else uuid.uuid4().hex}
        principal = actor or self.actor
        steps: list[str] = []
        decision: PolicyDecision | None = None
        prepared: PreparedText | None = None
        try:
            principal = self._authenticate(text, provenance, request, actor)
            steps.append("auth")
            self._check_frozen()
            self._rate_limit(principal, provenance.source_id)
            steps.append("rate_limit")
            decision, retention = self._admit(provenance)
            steps.extend(["contract", "policy"])
            prepared = self._prepare(text, provenance, decision)
            steps.append("prepare")
            with self._lock:
                self._check_frozen()
                return self._learn_locked(prepared, provenance, decision, retention, principal, base, steps)
        except _Rejected as rejection:
            return self._reject(rejection, principal, base, steps, decision, prepared)

    def _authenticate(self, text: str, provenance: Provenance, request: SignedRequest | None,
                      actor: str | None) -> str:
        if self.verifier is None:
            if request is not None:
                raise _Rejected("rejected", "auth.no_keyring",
                                ["the request is signed but this learner has no key ring to verify it; "
                                 "configure keyring= or send the request unsigned"], "auth")
            return actor or self.actor
        if request is None:
            raise _Rejected("rejected", "auth.missing",
                            ["learning requires a signed request; sign it with tworail.governance.sign_request"],
                            "auth")
        try:
            return self.verifier.verify(request, text, provenance, now=self.clock())
        except AuthenticationError as error:
            raise _Rejected("rejected", error.rule, [str(error)], "auth", principal=request.principal) from None

    def _check_frozen(self) -> None:
        event = freeze_event(self.audit)
        if event is not None:
            raise _Rejected("rejected", "drift.frozen",
                            [f"learning is frozen since audit event {event.event_id} ({'; '.join(event.reasons)}); "
                             "a person must review it and resume learning (`tworail resume` or GovernedLearner.resume)"], "freeze")

    def _rate_limit(self, principal: str, source: str) -> None:
        try:
            self.rate_limiter.acquire(principal=principal, source=source)
        except RateLimitExceeded as error:
            rule = "ratelimit.principal" if error.key.startswith("principal:") else "ratelimit.source"
            raise _Rejected("rejected", rule, [str(error)], "rate_limit", retry_after=error.retry_after) from None

    def _admit(self, provenance: Provenance) -> tuple[PolicyDecision, int | None]:
        try:
            contract = enforce_contract(provenance, self.policy.contract,
                                        default_retention_days=self.policy.retention_default(provenance),
                                        now=self.clock())
        except ContractViolation as error:
            rule = "contract." + ",".join(error.missing)
            raise _Rejected("rejected", rule, [str(error)], "contract", missing=error.missing) from None
        decision = self.policy.decide(provenance)
        if decision.action == "never":
            raise _Rejected("rejected", f"policy.{decision.rule}", decision.reasons, "policy")
        return decision, contract.retention_days

    def _prepare(self, text: str, provenance: Provenance, decision: PolicyDecision) -> PreparedText:
        try:
            prepared = self.preparer.prepare(text, provenance.content_type,
                                             redact_pii=decision.action == "learn-after-redaction",
                                             field_rules=self.policy.fields)
        except ContractViolation as error:
            raise _Rejected("rejected", "contract.content_type", [str(error)], "prepare") from None
        if prepared.quarantined:
            raise _Rejected("quarantined", "quarantine." + ",".join(prepared.findings),
                            [f"the text looks like {', '.join(prepared.findings)}; it is kept out of the weights"],
                            "prepare", findings=prepared.findings)
        if not prepared.text.strip():
            raise _Rejected("rejected", "prepare.empty", ["nothing is left to learn after sanitizing and redaction"],
                            "prepare")
        return prepared

    def _check_budget(self, provenance: Provenance, tokens: int, update_norm: float) -> None:
        usage = usage_in_period(self.audit, source=provenance.source_id, tenant=provenance.tenant,
                                now=self.clock(), period_seconds=self.policy.budget.period_seconds)
        failures = over_budget(self.policy.budget, usage, tokens=tokens, update_norm=update_norm)
        if failures:
            raise _Rejected("rejected", failures[0][0], [reason for _, reason in failures], "budget")

    def shadow_step(self, state: FastWeightState, text: str, before: dict[str, float]) -> tuple[ShadowStep, LearnReport,
                                                                                               AcceptanceReport]:
        """Apply `text` to a copy of `state`, judge it with the gate and restore the rail to `state`."""
        self.rail.load_fast_weights(state)
        try:
            report = self.rail.learn(text)
            delta = compute_delta(state, self.rail.fast_weights())
            candidate = apply_delta(state, delta)
            norm = delta_norm(delta)
            self.rail.load_fast_weights(candidate)
            verdict = self.gate.judge(before, self.gate.measure(self.rail), norm)
        finally:
            # After the gate, the rail is back on `state`, so a shadow copy is never left installed.
            self.rail.load_fast_weights(state)
        shadow = ShadowStep(delta=delta, state=candidate, state_id=state_id(candidate), update_norm=norm,
                            tokens=report.tokens, accepted=verdict.accepted, reasons=verdict.reasons)
        return shadow, report, verdict

    def _learn_locked(self, prepared: PreparedText, provenance: Provenance, decision: PolicyDecision,
                      retention: int | None, principal: str, base: dict, steps: list[str]) -> LearnOutcome:
        self._check_budget(provenance, 0, 0.0)
        shadow, report, verdict = self.shadow_step(self._head, prepared.text, self._head_metrics)
        steps.append("shadow_update")
        self._check_budget(provenance, report.tokens, shadow.update_norm)
        steps.append("budget")
        if not verdict.accepted:
            raise _Rejected("rejected", verdict.failures[0], verdict.reasons, "acceptance",
                            report=report, acceptance=verdict)
        steps.append("acceptance")
        event = self._commit(shadow, report, verdict, prepared, provenance, decision, retention, principal, base, steps)
        alerts = self._after_commit(event, verdict)
        return LearnOutcome(status="committed", event=event, rule=decision.rule, decision=decision, prepared=prepared,
                            report=report, acceptance=verdict, alerts=alerts,
                            reason=f"learned {report.tokens} tokens, update norm {shadow.update_norm:.4f}")

    def _commit(self, shadow: ShadowStep, report: LearnReport, verdict: AcceptanceReport, prepared: PreparedText,
                provenance: Provenance, decision: PolicyDecision, retention: int | None, principal: str,
                base: dict, steps: list[str]) -> AuditEvent:
        # Objects first, audit row second: until the row exists the previous state stays in force.
        delta_id = self.snapshots.put(shadow.delta)
        if (len(self.lineage.commits) + 1) % self.snapshot_every == 0:
            self.snapshots.put(shadow.state)
        payload_hash = self.payloads.put(provenance.tenant, provenance.source_id, prepared.text)
        event = self.audit.append(AuditEvent(
            kind="learn", actor=principal, time=self.clock(), **base,
            parameters=changed_parameters(shadow.delta), update_norm=shadow.update_norm,
            loss_before=report.loss_before, loss_after=report.loss_after, tokens=report.tokens,
            rule=decision.rule, reasons=decision.reasons, snapshot_id=shadow.state_id,
            parent_snapshot_id=self._head_id, delta_id=delta_id,
            metrics_before=verdict.metrics_before, metrics_after=verdict.metrics_after,
            details={"payload_hash": payload_hash, "retention_days": retention, "action": decision.action,
                     "redactions": prepared.redactions, "sanitized": prepared.sanitized,
                     "removed_fields": prepared.removed_fields, "steps": [*steps, "commit"]},
        ))
        self.lineage.apply(event)
        self._head, self._head_id = shadow.state, shadow.state_id
        self._head_metrics = {k: v for k, v in verdict.metrics_after.items() if k != "update_norm"}
        self.rail.load_fast_weights(shadow.state)
        self._save_weights(shadow.state)
        logger.info("committed %s from %s: %d tokens, update norm %.4f (audit event %s)", shadow.state_id[:12],
                    provenance.source_id, report.tokens, shadow.update_norm, event.event_id)
        return event

    def _after_commit(self, event: AuditEvent, verdict: AcceptanceReport) -> list[DriftAlert]:
        metrics, alerts = self.drift.check(self.rail, verdict.metrics_after, verdict.metrics_before)
        for alert in alerts:
            self.audit.append(AuditEvent(
                kind="drift_alert", actor="system:drift", time=self.clock(), source=event.source,
                tenant=event.tenant, rule=f"drift.{alert.metric}", reasons=[alert.message],
                snapshot_id=event.snapshot_id, metrics_after=metrics,
                details={"after_event": event.event_id, "threshold": alert.threshold, "value": alert.value},
            ))
        if alerts and self.drift.thresholds.freeze_on_alert:
            freeze(self.audit, actor="system:drift", time=self.clock(),
                   reason=f"drift alert after event {event.event_id}: " + "; ".join(a.message for a in alerts))
        to_evict = evictions(self.policy.budget, self.lineage)
        if to_evict:
            self._remove(to_evict, kind="evict", actor="system:budget", rule="budget.max_active_tokens",
                         reason=f"active commits exceed {self.policy.budget.max_active_tokens} tokens")
        return alerts

    def _reject(self, rejection: _Rejected, principal: str, base: dict, steps: list[str],
                decision: PolicyDecision | None, prepared: PreparedText | None) -> LearnOutcome:
        acceptance: AcceptanceReport | None = rejection.extra.get("acceptance")
        report: LearnReport | None = rejection.extra.get("report")
        details = {"step": rejection.step, "steps": steps}
        for key in ("missing", "retry_after", "findings"):
            if key in rejection.extra:
                details[key] = rejection.extra[key]
        if prepared is not None:
            details.update(redactions=prepared.redactions, findings=prepared.findings)
        event = self.audit.append(AuditEvent(
            kind="quarantine" if rejection.status == "quarantined" else "reject",
            actor=rejection.extra.get("principal", principal), time=self.clock(), **base,
            rule=rejection.rule, reasons=rejection.reasons, parent_snapshot_id=self._head_id,
            tokens=report.tokens if report else 0, update_norm=acceptance.metrics_after.get("update_norm", 0.0)
            if acceptance else 0.0,
            metrics_before=acceptance.metrics_before if acceptance else {},
            metrics_after=acceptance.metrics_after if acceptance else {},
            details=details,
        ))
        logger.info("%s %s: %s (audit event %s)", event.kind, base["source"], rejection.rule, event.event_id)
        return LearnOutcome(status=rejection.status, event=event, rule=rejection.rule,
                            reason="; ".join(rejection.reasons), decision=decision, prepared=prepared,
                            report=report, acceptance=acceptance)

    # Unlearning, expiry and revert

    def unlearn(self, *, source: str | None = None, event_id: int | None = None, tenant: str | None = None,
                actor: str, reason: str = "", progress: bool = False) -> RemovalReport:
        """Remove every commit of a source, one event or a tenant by exact replay, and erase their texts."""
        if source is None and event_id is None and tenant is None:
            raise ValueError("say what to unlearn: pass source=, event_id= or tenant=")
        with self._lock:
            chosen = [commit for commit in self.lineage.commits
                      if (source is None or commit.source == source)
                      and (event_id is None or commit.event_id == event_id)
                      and (tenant is None or commit.tenant == tenant)]
            selector = {"source": source, "event_id": event_id, "tenant": tenant}
            selector = {key: value for key, value in selector.items() if value is not None}
            if not chosen:
                self._erase_selected(source, tenant)
                raise NothingToUnlearn(f"no committed learning event matches {selector}; nothing was unlearned")
            report = self._remove(chosen, kind="unlearn", actor=actor, rule="unlearn",
                                  reason=reason or f"unlearn {selector}", selector=selector, progress=progress)
            if event_id is None:
                self._erase_selected(source, tenant)
            return report

    def _erase_selected(self, source: str | None, tenant: str | None) -> None:
        if source is not None:
            tenants = {tenant} if tenant is not None else {e.tenant for e in self.audit.events(kind="learn", source=source)}
            for owner in tenants:
                self.payloads.erase_source(owner, source)

    def sweep_expired(self, now: datetime | None = None, *, actor: str = "system:expiry") -> RemovalReport | None:
        """Unlearn every commit whose retention period has ended; return None when none has."""
        now = now or self.clock()
        with self._lock:
            due = expired(self.lineage, now)
            if not due:
                return None
            return self._remove(due, kind="expiry", actor=actor, rule="budget.retention",
                                reason=f"retention ended for {len(due)} commit(s) by {now.isoformat()}")

    def _remove(self, removed: Sequence[Commit], *, kind: str, actor: str, rule: str, reason: str,
                selector: dict | None = None, progress: bool = False) -> RemovalReport:
        cache: dict[str, dict[str, float]] = {}

        def step(state: FastWeightState, text: str) -> ShadowStep:
            key = state_id(state)
            if key not in cache:
                self.rail.load_fast_weights(state)
                cache[key] = self.gate.measure(self.rail)
            shadow, _, verdict = self.shadow_step(state, text, cache[key])
            cache[shadow.state_id] = {k: v for k, v in verdict.metrics_after.items() if k != "update_norm"}
            return shadow

        result = replay_without(self.lineage, removed, store=self.snapshots, payloads=self.payloads, step=step,
                                snapshot_every=self.snapshot_every, progress=progress)
        sources = {commit.source for commit in removed}
        tenants = {commit.tenant for commit in removed}
        event = self.audit.append(AuditEvent(
            kind=kind, actor=actor, time=self.clock(), rule=rule, reasons=[reason],
            source=sources.pop() if len(sources) == 1 else "", tenant=tenants.pop() if len(tenants) == 1 else "*",
            tokens=sum(commit.tokens for commit in removed), snapshot_id=result.state_id,
            parent_snapshot_id=self._head_id, metrics_before=self._head_metrics,
            details={"removed": sorted(commit.event_id for commit in removed), "replayed": result.replayed,
                     "dropped": result.dropped, "replay_from": result.base_id, "selector": selector or {}},
        ))
        self.lineage.apply(event)
        self._install(result.state)
        self.collect_garbage()
        logger.info("%s removed %d commit(s), replayed %d (audit event %s)", kind, len(removed),
                    len(result.replayed), event.event_id)
        return RemovalReport(event=event, removed=sorted(commit.event_id for commit in removed),
                             replayed=len(result.replayed), dropped=result.dropped)

    def revert(self, to: datetime, *, actor: str, reason: str = "") -> RemovalReport:
        """Restore the fast weights as of `to`: commits learned later leave the lineage; unlearned ones stay out."""
        if to.tzinfo is None:
            raise ValueError(f"revert time {to.isoformat()} has no time zone; pass a timezone-aware datetime")
        with self._lock:
            later = [commit for commit in self.lineage.commits if commit.time > to]
            if not later:
                raise NothingToUnlearn(f"nothing was learned after {to.isoformat()}; the fast weights already are "
                                       "as of that time")
            index = len(self.lineage.commits) - len(later) - 1
            state = materialize(self.lineage, self.snapshots, index)
            event = self.audit.append(AuditEvent(
                kind="revert", actor=actor, time=self.clock(), rule="revert",
                reasons=[reason or f"revert to {to.isoformat()}"], snapshot_id=state_id(state),
                parent_snapshot_id=self._head_id, metrics_before=self._head_metrics,
                details={"to": to.isoformat(), "reverted": [commit.event_id for commit in later]},
            ))
            self.lineage.apply(event)
            self._install(state)
            self.collect_garbage()
            return RemovalReport(event=event, removed=[commit.event_id for commit in later])

    # Freezing

    def freeze(self, *, actor: str, reason: str) -> AuditEvent:
        """Freeze learning by hand until `resume`."""
        return freeze(self.audit, actor=actor, reason=reason, time=self.clock(), rule="freeze.manual")

    def resume(self, *, actor: str, reason: str) -> AuditEvent:
        """Resume learning after a freeze; the person and reason go into the audit trail."""
        if not self.frozen:
            raise NothingToUnlearn("learning is not frozen; there is nothing to resume")
        return resume(self.audit, actor=actor, reason=reason, time=self.clock())

    # Housekeeping

    def collect_garbage(self) -> dict[str, int]:
        """Delete snapshots, deltas and texts that no active commit needs; return the counts.

        Objects of unlearned, expired, evicted and reverted commits (and orphans
        of a crashed commit) go, so no removed content can be restored later.
        """
        with self._lock:
            keep = {self.lineage.base_id}
            for commit in self.lineage.commits:
                keep.update((commit.delta_id, commit.state_id))
            objects = [object_id for object_id in self.snapshots.ids() if object_id not in keep]
            for object_id in objects:
                self.snapshots.delete(object_id)
            wanted = {(commit.tenant, commit.source, commit.payload_hash) for commit in self.lineage.commits}
            texts = [item for item in self.payloads.entries() if item not in wanted]
            for tenant, source, payload_hash in texts:
                self.payloads.erase_payload(tenant, source, payload_hash)
        return {"snapshots": len(objects), "texts": len(texts)}

    def close(self) -> None:
        """Close the stores this learner opened."""
        self.audit.close()
        self.payloads.close()

    def __enter__(self) -> GovernedLearner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
