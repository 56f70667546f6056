"""Questions on demand about what the fast weights learned.

- `changes_between`: what changed between two times and why: every audit
  row in the window (commits, rejections, removals, alerts, freezes, policy
  changes) with its rule and reasons, and the fast weights in force at each end.
- `top_contributors`: which sources changed the fast weights most in a
  window, by summed update norm or by the change of a probe metric.
- Reverting to a time is `GovernedLearner.revert`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from tworail.audit import AuditStore
from tworail.governance.lineage import STATE_KINDS, Lineage
from tworail.records import AuditEvent


class ChangeItem(BaseModel):
    """One audit row in a change report."""

    event_id: int
    """Audit row id."""
    time: datetime
    """When it happened."""
    kind: str
    """Event kind, for example 'learn' or 'reject'."""
    actor: str
    """Principal behind it."""
    source: str
    """Source id, or '' for events without one."""
    rule: str
    """Rule that decided it."""
    reasons: list[str]
    """Why."""
    update_norm: float
    """Norm of the change to the fast weights (0 when they did not change)."""


class ChangeReport(BaseModel):
    """Changes to the fast weights between two times, with their reasons."""

    since: datetime
    """Start of the window (inclusive)."""
    until: datetime
    """End of the window (exclusive)."""
    state_before: str
    """Content id of the fast weights in force at `since`."""
    state_after: str
    """Content id of the fast weights in force at `until`."""
    changed: bool
    """True when the fast weights differ between the two times."""
    counts: dict[str, int] = Field(default_factory=dict)
    """Rows per kind in the window."""
    items: list[ChangeItem] = Field(default_factory=list)
    """Every row in the window, in order."""


class Contribution(BaseModel):
    """How much one source changed the fast weights in a window."""

    source: str
    """Source id."""
    tenant: str
    """Tenant of the source."""
    events: int
    """Commits in the window."""
    tokens: int
    """Tokens learned."""
    update_norm: float
    """Summed update norm of its commits."""
    probe_change: float
    """Summed change of the probe metric across its commits (after minus before)."""


def _head_at(events: list[AuditEvent], moment: datetime) -> str:
    return Lineage.fold(event for event in events if event.time < moment).head_id


def changes_between(audit: AuditStore, since: datetime, until: datetime) -> ChangeReport:
    """Return every audit row from `since` to `until` and the fast weights in force at both ends."""
    if until <= since:
        raise ValueError(f"until ({until.isoformat()}) must be later than since ({since.isoformat()})")
    state_events = audit.events(kind=STATE_KINDS, until=until)
    before, after = _head_at(state_events, since), _head_at(state_events, until)
    window = audit.events(since=since, until=until)
    counts: dict[str, int] = defaultdict(int)
    for event in window:
        counts[event.kind] += 1
    items = [ChangeItem(event_id=event.event_id or 0, time=event.time, kind=event.kind, actor=event.actor,
                        source=event.source, rule=event.rule, reasons=event.reasons,
                        update_norm=event.update_norm if event.kind == "learn" else 0.0) for event in window]
    return ChangeReport(since=since, until=until, state_before=before, state_after=after, changed=before != after,
                        counts=dict(counts), items=items)


def top_contributors(
    audit: AuditStore,
    since: datetime | None = None,
    until: datetime | None = None,
    *,
    by: Literal["update_norm", "probe"] = "update_norm",
    metric: str = "probe_pass_rate",
    limit: int = 10,
) -> list[Contribution]:
    """Return the sources whose commits changed the fast weights most, largest first.

    `by='probe'` ranks by the absolute summed change of `metric` (for example
    'probe_pass_rate' or 'gold_loss') between before and after each commit.
    """
    if by not in ("update_norm", "probe"):
        raise ValueError(f"by={by!r} is unknown; rank by 'update_norm' or 'probe'")
    totals: dict[tuple[str, str], Contribution] = {}
    for event in audit.events(kind="learn", since=since, until=until):
        key = (event.source, event.tenant)
        entry = totals.setdefault(key, Contribution(source=event.source, tenant=event.tenant, events=0, tokens=0,
                                                    update_norm=0.0, probe_change=0.0))
        entry.events += 1
        entry.tokens += event.tokens
        entry.update_norm += event.update_norm
        if metric in event.metrics_before and metric in event.metrics_after:
            entry.probe_change += event.metrics_after[metric] - event.metrics_before[metric]
    ranked = sorted(totals.values(), key=(lambda c: c.update_norm) if by == "update_norm"
                    else (lambda c: abs(c.probe_change)), reverse=True)
    return ranked[:limit]
