"""The lineage of the fast weights, folded from the audit trail.

The audit trail is the record of truth: a commit exists once its 'learn' row
is appended, and 'unlearn', 'expiry', 'evict' and 'revert' rows record which
commits left the lineage and which were replayed with new deltas. Folding the
state-changing rows in order gives the active commits, oldest first, each with
the delta it was committed with and the content id of the state after it.
`materialize` rebuilds any of those states bit for bit from the nearest
stored snapshot plus the stored deltas, and checks the result's content id.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from tworail.audit import AuditStore
from tworail.governance.errors import LineageError, SnapshotNotFound
from tworail.governance.protocol import FastWeightState
from tworail.governance.snapshots import SnapshotStore, apply_delta, state_id
from tworail.records import AuditEvent

REMOVAL_KINDS = ("unlearn", "expiry", "evict")
"""Event kinds that take commits out of the lineage by replaying without them."""

STATE_KINDS = ("init", "learn", *REMOVAL_KINDS, "revert")
"""Event kinds that change the fast weights."""


@dataclass(frozen=True)
class Commit:
    """One learning event that is part of the current fast weights."""

    event_id: int
    """Id of the original 'learn' row."""
    time: datetime
    """When it was learned; replays keep this time."""
    source: str
    """Source id of the learned document."""
    tenant: str
    """Tenant of the source."""
    actor: str
    """Principal that requested it."""
    payload_hash: str
    """SHA-256 of the text that reached the inner loop (after redaction), the key in the payload store."""
    tokens: int
    """Tokens the inner loop read."""
    update_norm: float
    """L2 norm of the committed delta."""
    delta_id: str
    """Content id of the committed delta."""
    state_id: str
    """Content id of the fast weights after the commit."""
    expires_at: datetime | None
    """When the retention period ends, or None for no expiry."""


@dataclass
class Lineage:
    """The base state (W0) and the active commits in order."""

    base_id: str = ""
    """Content id of W0, from the 'init' row."""
    commits: list[Commit] = field(default_factory=list)
    """Active commits, oldest first."""
    last_event_id: int = 0
    """Id of the last audit row folded in."""

    @property
    def head_id(self) -> str:
        """Content id of the current fast weights."""
        return self.commits[-1].state_id if self.commits else self.base_id

    def state_id_before(self, index: int) -> str:
        """Return the content id of the state just before `commits[index]`."""
        return self.commits[index - 1].state_id if index > 0 else self.base_id

    def index_of(self, event_id: int) -> int:
        """Return the position of the commit made by `event_id`."""
        for index, commit in enumerate(self.commits):
            if commit.event_id == event_id:
                return index
        raise KeyError(event_id)

    def apply(self, event: AuditEvent) -> None:
        """Fold one audit row into the lineage (rows of other kinds are skipped)."""
        if event.event_id is not None:
            self.last_event_id = max(self.last_event_id, event.event_id)
        if event.kind == "init":
            if self.base_id and self.base_id != event.snapshot_id:
                raise LineageError(f"audit event {event.event_id} records W0 {event.snapshot_id[:12]} but the "
                                   f"lineage started from {self.base_id[:12]}: the log mixes two models")
            self.base_id = event.snapshot_id
        elif event.kind == "learn":
            self.commits.append(_commit_from(event))
        elif event.kind in REMOVAL_KINDS:
            self._apply_removal(event)
        elif event.kind == "revert":
            reverted = set(event.details.get("reverted", []))
            self.commits = [commit for commit in self.commits if commit.event_id not in reverted]
        else:
            return
        if event.snapshot_id and event.snapshot_id != self.head_id:
            raise LineageError(f"audit event {event.event_id} ({event.kind}) records fast weights "
                               f"{event.snapshot_id[:12]} but the folded lineage ends at {self.head_id[:12]}")

    def _apply_removal(self, event: AuditEvent) -> None:
        gone = set(event.details.get("removed", [])) | set(event.details.get("dropped", []))
        replayed = {entry["event_id"]: entry for entry in event.details.get("replayed", [])}
        kept = []
        for commit in self.commits:
            if commit.event_id in gone:
                continue
            entry = replayed.get(commit.event_id)
            if entry is not None:
                commit = replace(commit, delta_id=entry["delta_id"], state_id=entry["snapshot_id"],
                                 update_norm=float(entry["update_norm"]), tokens=int(entry["tokens"]))
            kept.append(commit)
        self.commits = kept

    @classmethod
    def fold(cls, events: Iterable[AuditEvent]) -> Lineage:
        """Build the lineage from audit rows in append order."""
        lineage = cls()
        for event in events:
            lineage.apply(event)
        return lineage

    @classmethod
    def from_audit(cls, audit: AuditStore) -> Lineage:
        """Build the lineage from the state-changing rows of an audit store."""
        return cls.fold(audit.events(kind=STATE_KINDS))


def _commit_from(event: AuditEvent) -> Commit:
    retention = event.details.get("retention_days")
    return Commit(
        event_id=int(event.event_id or 0),
        time=event.time,
        source=event.source,
        tenant=event.tenant,
        actor=event.actor,
        payload_hash=str(event.details.get("payload_hash", "")),
        tokens=event.tokens,
        update_norm=event.update_norm,
        delta_id=event.delta_id,
        state_id=event.snapshot_id,
        expires_at=event.time + timedelta(days=retention) if retention else None,
    )


def materialize(lineage: Lineage, store: SnapshotStore, upto: int) -> FastWeightState:
    """Rebuild the state after `commits[upto]` (W0 for upto = -1) from snapshots and deltas.

    It starts from the latest stored state at or before `upto` and adds the
    stored deltas after it. The result must hash to the commit's recorded state
    id, or `LineageError` is raised.
    """
    start = upto
    while start >= 0 and not store.has(lineage.commits[start].state_id):
        start -= 1
    base = lineage.commits[start].state_id if start >= 0 else lineage.base_id
    try:
        state = store.get(base)
        for commit in lineage.commits[start + 1: upto + 1]:
            state = apply_delta(state, store.get(commit.delta_id))
    except SnapshotNotFound as error:
        raise LineageError(f"cannot rebuild the fast weights: {error}") from None
    expected = lineage.commits[upto].state_id if upto >= 0 else lineage.base_id
    if state_id(state) != expected:
        raise LineageError(f"rebuilt fast weights hash to {state_id(state)[:12]}, not the recorded "
                           f"{expected[:12]}: a stored delta or snapshot was altered")
    return state
