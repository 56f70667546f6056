"""Typed records that cross component boundaries.

Every record here is a small pydantic model. The router, both rails, the merge
step, the agent graph, the CLI and the audit log exchange these and nothing
else, so a record's fields are the contract between those parts.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RailName = Literal["learnable", "reference"]
"""Name of a rail: the test-time-training model or frozen model plus retrieval."""

ClaimProvenance = Literal["cited", "learned"]
"""Origin of a claim: verified quotes, or the learned weights (uncited)."""


def utc_now() -> datetime:
    """Return the current time as a timezone-aware UTC datetime."""
    return datetime.now(timezone.utc)


class Provenance(BaseModel):
    """Origin of a document and how long it may be kept."""

    model_config = ConfigDict(frozen=True)

    source_id: str
    """Stable id of the source, for example the path relative to the ingested folder."""
    uri: str
    """Location of the original, for example a file URI."""
    owner: str = "unknown"
    """Person or team accountable for the source."""
    tenant: str = "default"
    """Tenant the document belongs to; searches and learning are scoped by it."""
    content_type: str = "text/plain"
    """MIME type of the original document."""
    ingested_at: datetime = Field(default_factory=utc_now)
    """Time the document entered tworail."""
    retention_days: int | None = None
    """Days the document may be kept; None keeps it until removed."""


class Task(BaseModel):
    """A question put to the agent, with optional routing metadata."""

    question: str
    """The question text, as the user wrote it."""
    metadata: dict[str, str] = Field(default_factory=dict)
    """Optional hints such as channel, customer tier or requested format."""
    candidates: list[str] = Field(default_factory=list)
    """Candidate answers for the learnable rail to rank by likelihood, if any."""
    tenant: str = "default"
    """Tenant whose documents and fast weights answer the task."""


class RouteDecision(BaseModel):
    """The router's choice of rails for a task, with its reasons."""

    rails: list[RailName]
    """Rails that answer the task, in order of precedence."""
    precision: float = Field(ge=0.0, le=1.0)
    """How much the task needs exact values and verbatim sources, from 0 to 1."""
    risk: float = Field(ge=0.0, le=1.0)
    """Cost of a wrong answer, from 0 to 1."""
    reasons: list[str] = Field(default_factory=list)
    """One line per signal that fired, readable by a person."""
    features: dict[str, float] = Field(default_factory=dict)
    """Numeric value of every feature the scorer computed."""
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    """Confidence that the chosen rails are right for the task."""

    def explain(self) -> str:
        """Return the decision as one line, for logs and the CLI."""
        why = "; ".join(self.reasons) if self.reasons else "no signal fired"
        return (
            f"{'+'.join(self.rails)} (precision {self.precision:.2f}, "
            f"risk {self.risk:.2f}): {why}"
        )


class Citation(BaseModel):
    """A verbatim quote with its position in a stored document."""

    source: str
    """Path of the document relative to the ingested folder."""
    anchor: str = ""
    """Section anchor inside the document, for example '#perm', or '' if none."""
    start: int = Field(ge=0)
    """Character offset of the quote's first character in the stored text."""
    end: int = Field(ge=0)
    """Character offset one past the quote's last character in the stored text."""
    quote: str
    """The cited text, equal to stored_text[start:end]."""
    doc_id: str = ""
    """Id of the stored document the offsets refer to."""
    score: float = 0.0
    """Retrieval score of the passage the quote came from."""


class Claim(BaseModel):
    """One statement of an answer, with where it came from."""

    text: str
    """The statement."""
    provenance: ClaimProvenance
    """'cited' when backed by verified quotes, 'learned' when from the learned weights."""
    rail: RailName
    """Rail that produced the claim."""
    citations: list[Citation] = Field(default_factory=list)
    """Verified quotes that back the claim; empty for learned claims without support."""
    confidence: float | None = None
    """Rail-specific confidence, for example a softmax over candidate likelihoods."""


class RailAnswer(BaseModel):
    """One rail's answer to a task."""

    rail: RailName
    """Rail that produced the answer."""
    answer: str
    """The answer text; empty when the rail found nothing."""
    claims: list[Claim] = Field(default_factory=list)
    """The answer split into claims with provenance."""
    details: dict[str, object] = Field(default_factory=dict)
    """Rail-specific diagnostics such as candidate scores or retrieval hits."""


class Conflict(BaseModel):
    """A learned claim that the cited evidence does not support."""

    claim: str
    """Text of the learned claim."""
    reason: str
    """Reason for the conflict, for example the value that no cited span contains."""


class MergedAnswer(BaseModel):
    """The agent's answer: claims from both rails with per-claim provenance."""

    question: str
    """The question as asked."""
    route: RouteDecision
    """The router's decision for the question."""
    answer: str
    """The answer text built from the kept claims."""
    claims: list[Claim] = Field(default_factory=list)
    """Kept claims, the leading rail's first."""
    conflicts: list[Conflict] = Field(default_factory=list)
    """Learned claims dropped or flagged because cited evidence contradicts them."""

    def to_public_dict(self) -> dict[str, object]:
        """Return the JSON shape of `tworail ask --json`."""
        return {
            "question": self.question,
            "route": {
                "rails": list(self.route.rails),
                "precision": self.route.precision,
                "risk": self.route.risk,
                "reasons": list(self.route.reasons),
            },
            "answer": self.answer,
            "claims": [
                {
                    "text": claim.text,
                    "provenance": claim.provenance,
                    "citations": [
                        {
                            "source": c.source,
                            "anchor": c.anchor,
                            "start": c.start,
                            "end": c.end,
                            "quote": c.quote,
                        }
                        for c in claim.citations
                    ],
                }
                for claim in self.claims
            ],
            "conflicts": [conflict.model_dump() for conflict in self.conflicts],
        }


class LearnReport(BaseModel):
    """Outcome of one learning event on the learnable rail."""

    tokens: int
    """Tokens read by the inner loop."""
    mini_batches: int
    """Inner-loop steps taken, one per mini-batch."""
    loss_before: float
    """Mean next-token loss on the text under the fast weights before the event."""
    loss_after: float
    """Mean next-token loss on the same text under the fast weights after the event."""
    update_norm: float
    """L2 norm of the change to all fast weights."""
    parameters: list[str]
    """Names of the fast-weight tensors that changed."""


class AuditEvent(BaseModel):
    """One row of the audit log."""

    event_id: int | None = None
    """Row id assigned by the store."""
    time: datetime = Field(default_factory=utc_now)
    """When the event happened, UTC."""
    kind: str
    """Kind of event, for example 'learn'."""
    actor: str = "local"
    """Principal that caused the event."""
    source: str = ""
    """Source id of the learned document."""
    tenant: str = "default"
    """Tenant of the source."""
    content_hash: str = ""
    """SHA-256 of the learned text; the text itself is never stored."""
    parameters: list[str] = Field(default_factory=list)
    """Fast-weight tensors the event touched."""
    update_norm: float = 0.0
    """L2 norm of the change to the fast weights."""
    loss_before: float | None = None
    """Mean next-token loss on the text before the event."""
    loss_after: float | None = None
    """Mean next-token loss on the text after the event."""
    tokens: int = 0
    """Tokens read."""
    request_id: str = ""
    """Id of the learn request or governance action the row belongs to."""
    rule: str = ""
    """Policy, gate or monitor rule that made the decision, for example 'acceptance.gold_loss'."""
    reasons: list[str] = Field(default_factory=list)
    """Reasons for the decision, one line each, readable by a person."""
    snapshot_id: str = ""
    """Content id (SHA-256) of the fast weights after the event, for events that change them."""
    parent_snapshot_id: str = ""
    """Content id of the fast weights the event started from."""
    delta_id: str = ""
    """Content id of the stored delta committed as W := W + delta."""
    metrics_before: dict[str, float] = Field(default_factory=dict)
    """Acceptance or drift metrics before the event, by name."""
    metrics_after: dict[str, float] = Field(default_factory=dict)
    """The same metrics after the event (for a rejected batch: on the shadow copy)."""
    details: dict[str, Any] = Field(default_factory=dict)
    """JSON-ready extra facts of the event, such as redaction counts or removed event ids."""
