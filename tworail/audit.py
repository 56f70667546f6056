"""The audit log: an append-only, hash-chained record of learning events.

Each row stores the SHA-256 of the previous row's hash and its own canonical
JSON, so editing, deleting or reordering any row breaks the chain from that
row on, and `verify` names the first broken row. Rows hold content hashes and
ids, never the learned text.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import Counter
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel

from tworail.records import AuditEvent

GENESIS_HASH = "0" * 64
"""The previous-row hash of the first row."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS audit_events (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    source TEXT NOT NULL,
    tenant TEXT NOT NULL,
    body TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    row_hash TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit_events (time);
CREATE INDEX IF NOT EXISTS audit_source ON audit_events (source);
"""


class ChainReport(BaseModel):
    """Outcome of verifying the hash chain."""

    ok: bool
    """True when every row's hash matches its content and its predecessor."""
    rows: int
    """Rows checked."""
    first_broken: int | None = None
    """Id of the first row whose hash does not verify, or None."""
    reason: str = ""
    """What is wrong with the first broken row."""


def _row_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def content_hash(text: str) -> str:
    """Return the SHA-256 hex digest of `text`, the id the audit log keeps for content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class AuditLog:
    """An audit log in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)

    def append(self, event: AuditEvent) -> AuditEvent:
        """Append `event` and return it with its assigned `event_id`."""
        body = event.model_dump_json(exclude={"event_id"})
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT row_hash FROM audit_events ORDER BY event_id DESC LIMIT 1"
                ).fetchone()
                prev_hash = row[0] if row else GENESIS_HASH
                cursor = self._db.execute(
                    "INSERT INTO audit_events (time, kind, source, tenant, body, prev_hash, row_hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (event.time.isoformat(), event.kind, event.source, event.tenant, body,
                     prev_hash, _row_hash(prev_hash, body)),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return event.model_copy(update={"event_id": cursor.lastrowid})

    def events(
        self,
        *,
        kind: str | None = None,
        source: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[AuditEvent]:
        """Return events in append order, filtered by the given fields."""
        clauses, params = [], []
        for column, value in (("kind", kind), ("source", source), ("tenant", tenant)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("time >= ?")
            params.append(since.isoformat())
        if until is not None:
            clauses.append("time < ?")
            params.append(until.isoformat())
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT event_id, body FROM audit_events{where} ORDER BY event_id", params
            ).fetchall()
        return [AuditEvent.model_validate_json(body).model_copy(update={"event_id": eid}) for eid, body in rows]

    def verify(self) -> ChainReport:
        """Check every row's hash against its content and its predecessor's hash."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, kind, source, tenant, body, prev_hash, row_hash"
                " FROM audit_events ORDER BY event_id"
            ).fetchall()
        expected_prev = GENESIS_HASH
        for event_id, kind, source, tenant, body, prev_hash, row_hash in rows:
            if prev_hash != expected_prev:
                return ChainReport(ok=False, rows=len(rows), first_broken=event_id,
                                   reason="previous-row hash does not match: a row before it was deleted, "
                                          "inserted or reordered")
            if row_hash != _row_hash(prev_hash, body):
                return ChainReport(ok=False, rows=len(rows), first_broken=event_id,
                                   reason="row hash does not match its content: the row was edited")
            parsed = json.loads(body)
            if (parsed.get("kind"), parsed.get("source"), parsed.get("tenant")) != (kind, source, tenant):
                return ChainReport(ok=False, rows=len(rows), first_broken=event_id,
                                   reason="indexed columns differ from the hashed content: the row was edited")
            expected_prev = row_hash
        return ChainReport(ok=True, rows=len(rows))

    def summary(self) -> dict[str, object]:
        """Return counts by kind, tokens learned, total update norm and chain status."""
        events = self.events()
        kinds = Counter(event.kind for event in events)
        learned = [event for event in events if event.kind == "learn"]
        return {
            "events": len(events),
            "by_kind": dict(kinds),
            "sources": len({event.source for event in learned}),
            "tokens_learned": sum(event.tokens for event in learned),
            "update_norm_total": round(sum(event.update_norm for event in learned), 6),
            "chain_ok": self.verify().ok,
        }

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
