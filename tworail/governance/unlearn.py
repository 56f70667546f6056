"""Exact unlearning by replay.

Removing commits from the fast weights cannot be done by subtracting their
deltas: every later update was computed on weights that contained them. So
`replay_without` rebuilds the state just before the first removed commit, bit
for bit, from the nearest stored snapshot plus stored deltas. It then re-runs
the governed shadow step on the texts of the kept commits after it, in their
original order. The result equals, bit for bit on the CPU, the fast weights of
a learner that never learned the removed commits through the same path,
provided the model's `learn` is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from tworail.governance.lineage import Commit, Lineage, materialize
from tworail.governance.payloads import PayloadStore
from tworail.governance.protocol import FastWeightState
from tworail.governance.snapshots import SnapshotStore, state_id


@dataclass
class ShadowStep:
    """One batch applied to a copy of the fast weights, judged but not yet committed."""

    delta: FastWeightState
    """The stored delta: learned weights minus the starting state."""
    state: FastWeightState
    """Starting state + delta, the weights a commit would install."""
    state_id: str
    """Content id of `state`."""
    update_norm: float
    """L2 norm of the delta."""
    tokens: int
    """Tokens the inner loop read."""
    accepted: bool
    """True when the acceptance gate passed the batch."""
    reasons: list[str] = field(default_factory=list)
    """The gate's reasons for rejecting the batch (empty when accepted)."""


StepFunction = Callable[[FastWeightState, str], ShadowStep]
"""Applies one text to a copy of the given state through the acceptance gate."""


@dataclass
class ReplayResult:
    """The fast weights after replay and how each kept commit fared."""

    state: FastWeightState
    """Final fast weights."""
    state_id: str
    """Content id of `state`."""
    base_id: str
    """Content id of the state the replay started from."""
    replayed: list[dict[str, object]]
    """Per replayed commit: event_id, delta_id, snapshot_id, update_norm, tokens (for the audit row)."""
    dropped: list[int]
    """Kept commits the acceptance gate rejected on replay, so they left the lineage too."""


def replay_without(
    lineage: Lineage,
    removed: Sequence[Commit],
    *,
    store: SnapshotStore,
    payloads: PayloadStore,
    step: StepFunction,
    snapshot_every: int,
    progress: bool = False,
) -> ReplayResult:
    """Rebuild the fast weights without the `removed` commits by replaying the kept ones after them."""
    gone = {commit.event_id for commit in removed}
    first = min(lineage.index_of(event_id) for event_id in gone)
    state = materialize(lineage, store, first - 1)
    base_id = lineage.state_id_before(first)
    kept = [commit for commit in lineage.commits[first:] if commit.event_id not in gone]
    replayed: list[dict[str, object]] = []
    dropped: list[int] = []
    position = first  # active commits before this replay position
    for commit in tqdm(kept, desc="replaying", unit="event", disable=not progress):
        text = payloads.get(commit.tenant, commit.source, commit.payload_hash)
        shadow = step(state, text)
        if not shadow.accepted:
            dropped.append(commit.event_id)
            continue
        position += 1
        delta_id = store.put(shadow.delta)
        if position % snapshot_every == 0:
            store.put(shadow.state)
        replayed.append({"event_id": commit.event_id, "delta_id": delta_id, "snapshot_id": shadow.state_id,
                         "update_norm": shadow.update_norm, "tokens": shadow.tokens})
        state = shadow.state
    return ReplayResult(state=state, state_id=state_id(state), base_id=base_id, replayed=replayed, dropped=dropped)
