"""The audit log: an append-only, hash-chained record of learning and governance events.

Each row stores the previous row's hash and the SHA-256 of that hash plus its
own canonical JSON, so editing, deleting or reordering any row breaks the chain
from that row on, and `verify` names the first broken row. A chain alone cannot
show that rows were cut off its end. So every store also keeps a head record
(row count and last row hash) apart from the rows, and a log shorter than its
head is reported as truncated. Rows hold content hashes and ids, never the learned text.

`AuditStore` is the interface; `AuditLog` keeps rows in SQLite with the head in
a sidecar file, and `InMemoryAuditStore` keeps both in memory for tests and
short-lived agents.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel

from tworail.records import AuditEvent

GENESIS_HASH = "0" * 64
"""The previous-row hash of the first row."""

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%f+00:00"

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
CREATE INDEX IF NOT EXISTS audit_kind ON audit_events (kind);
CREATE INDEX IF NOT EXISTS audit_tenant ON audit_events (tenant);
"""


class ChainReport(BaseModel):
    """Outcome of verifying the hash chain."""

    ok: bool
    """True when every row's hash matches its content and its predecessor, and no row is missing."""
    rows: int
    """Rows checked."""
    first_broken: int | None = None
    """Id of the first row whose hash does not verify (or the first missing row), or None."""
    reason: str = ""
    """Description of the first broken row, or a note when the log is intact but the head lags."""


@dataclass(frozen=True)
class ChainRow:
    """One stored row, with the columns the chain check reads."""

    event_id: int
    """Row id assigned by the store."""
    kind: str
    """Indexed copy of the event kind."""
    source: str
    """Indexed copy of the event source."""
    tenant: str
    """Indexed copy of the event tenant."""
    body: str
    """Canonical JSON of the event without its id; the hashed content."""
    prev_hash: str
    """Hash of the previous row, or `GENESIS_HASH`."""
    row_hash: str
    """SHA-256 of `prev_hash` and `body`."""


@dataclass(frozen=True)
class ChainHead:
    """Row count and last row hash, stored apart from the rows to detect a cut-off tail."""

    rows: int
    """Rows appended so far."""
    head_hash: str
    """Hash of the last row, or `GENESIS_HASH` for an empty log."""


def row_hash(prev_hash: str, body: str) -> str:
    """Return the chain hash of a row: SHA-256 of the previous hash, a newline and the body."""
    return hashlib.sha256((prev_hash + "\n" + body).encode("utf-8")).hexdigest()


def content_hash(text: str) -> str:
    """Return the SHA-256 hex digest of `text`, the id the audit log keeps for content."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def time_key(moment: datetime) -> str:
    """Return `moment` as fixed-width UTC text, so that text order equals time order."""
    if moment.tzinfo is None:
        raise ValueError(f"time {moment.isoformat()} has no time zone; pass a timezone-aware datetime")
    return moment.astimezone(timezone.utc).strftime(_TIME_FORMAT)


def verify_chain(rows: Iterable[ChainRow], head: ChainHead | None) -> ChainReport:
    """Check the hash chain of `rows` (in append order) and compare its end with `head`."""
    rows = list(rows)
    expected_prev = GENESIS_HASH
    for row in rows:
        if row.prev_hash != expected_prev:
            return ChainReport(ok=False, rows=len(rows), first_broken=row.event_id,
                               reason="previous-row hash does not match: a row before it was deleted, "
                                      "inserted or reordered")
        if row.row_hash != row_hash(row.prev_hash, row.body):
            return ChainReport(ok=False, rows=len(rows), first_broken=row.event_id,
                               reason="row hash does not match its content: the row was edited")
        parsed = json.loads(row.body)
        if (parsed.get("kind"), parsed.get("source"), parsed.get("tenant")) != (row.kind, row.source, row.tenant):
            return ChainReport(ok=False, rows=len(rows), first_broken=row.event_id,
                               reason="indexed columns differ from the hashed content: the row was edited")
        expected_prev = row.row_hash
    return _check_head(rows, head)


def _check_head(rows: list[ChainRow], head: ChainHead | None) -> ChainReport:
    if head is None:
        if rows:
            return ChainReport(ok=False, rows=len(rows), first_broken=rows[-1].event_id,
                               reason="the head record is missing, so a cut-off tail cannot be ruled out")
        return ChainReport(ok=True, rows=0)
    if len(rows) < head.rows:
        next_id = rows[-1].event_id + 1 if rows else 1
        return ChainReport(ok=False, rows=len(rows), first_broken=next_id,
                           reason=f"the log ends after {len(rows)} rows but the head records {head.rows}: "
                                  "rows were cut off its end")
    anchored = rows[head.rows - 1].row_hash if head.rows else GENESIS_HASH
    if anchored != head.head_hash:
        broken = rows[head.rows - 1].event_id if head.rows else rows[0].event_id
        return ChainReport(ok=False, rows=len(rows), first_broken=broken,
                           reason="the row the head record points to has another hash: the log was rewritten")
    if len(rows) > head.rows:
        # The row commits before the head is written, so a crash in between leaves the head behind.
        return ChainReport(ok=True, rows=len(rows),
                           reason=f"the head record lags {len(rows) - head.rows} rows behind; "
                                  "the next append advances it")
    return ChainReport(ok=True, rows=len(rows))


def _matches(event: AuditEvent, kinds: Collection[str] | None, source: str | None, tenant: str | None,
             since: datetime | None, until: datetime | None) -> bool:
    if kinds is not None and event.kind not in kinds:
        return False
    if source is not None and event.source != source:
        return False
    if tenant is not None and event.tenant != tenant:
        return False
    if since is not None and event.time < since:
        return False
    return until is None or event.time < until


def _kinds(kind: str | Collection[str] | None) -> tuple[str, ...] | None:
    if kind is None:
        return None
    return (kind,) if isinstance(kind, str) else tuple(kind)


def _check_event_time(event: AuditEvent) -> None:
    if event.time.tzinfo is None:
        raise ValueError(f"audit event time {event.time.isoformat()} has no time zone; "
                         "pass a timezone-aware datetime such as tworail.records.utc_now()")


class AuditStore(ABC):
    """An append-only, hash-chained store of `AuditEvent` rows.

    Backends implement `append`, `events`, `chain_rows`, `head` and `close`;
    verification and the summary are shared, so every backend detects the
    same tampering.
    """

    @abstractmethod
    def append(self, event: AuditEvent) -> AuditEvent:
        """Append `event` and return it with its assigned `event_id`."""

    @abstractmethod
    def events(
        self,
        *,
        kind: str | Collection[str] | None = None,
        source: str | None = None,
        tenant: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_id: int | None = None,
    ) -> list[AuditEvent]:
        """Return events in append order, filtered by kind (one or several), source, tenant and time.

        `since` is inclusive and `until` exclusive; `after_id` keeps rows with a larger id.
        """

    @abstractmethod
    def chain_rows(self) -> list[ChainRow]:
        """Return every stored row in append order, as stored (for verification)."""

    @abstractmethod
    def head(self) -> ChainHead | None:
        """Return the separately stored head record, or None when there is none."""

    @abstractmethod
    def close(self) -> None:
        """Release the store's resources."""

    def verify(self) -> ChainReport:
        """Check every row's hash against its content and predecessor, and the end against the head."""
        return verify_chain(self.chain_rows(), self.head())

    def last(self, kind: str | Collection[str] | None = None) -> AuditEvent | None:
        """Return the most recent event, optionally of the given kind(s)."""
        found = self.events(kind=kind)
        return found[-1] if found else None

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

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class InMemoryAuditStore(AuditStore):
    """An audit store in process memory; thread-safe, lost when the process ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: list[ChainRow] = []
        self._events: list[AuditEvent] = []
        self._head = ChainHead(rows=0, head_hash=GENESIS_HASH)

    def append(self, event: AuditEvent) -> AuditEvent:
        """Append `event` and return it with its assigned `event_id`."""
        _check_event_time(event)
        body = event.model_dump_json(exclude={"event_id"})
        with self._lock:
            prev_hash = self._rows[-1].row_hash if self._rows else GENESIS_HASH
            event_id = self._rows[-1].event_id + 1 if self._rows else 1
            row = ChainRow(event_id, event.kind, event.source, event.tenant, body, prev_hash,
                           row_hash(prev_hash, body))
            stored = event.model_copy(update={"event_id": event_id})
            self._rows.append(row)
            self._events.append(stored)
            self._head = ChainHead(rows=self._head.rows + 1, head_hash=row.row_hash)
        return stored

    def events(self, *, kind=None, source=None, tenant=None, since=None, until=None,
               after_id=None) -> list[AuditEvent]:
        """Return events in append order, filtered as `AuditStore.events` describes."""
        kinds = _kinds(kind)
        with self._lock:
            snapshot = list(self._events)
        return [event for event in snapshot
                if (after_id is None or event.event_id > after_id)
                and _matches(event, kinds, source, tenant, since, until)]

    def chain_rows(self) -> list[ChainRow]:
        """Return every stored row in append order."""
        with self._lock:
            return list(self._rows)

    def head(self) -> ChainHead | None:
        """Return the head record."""
        with self._lock:
            return self._head

    def close(self) -> None:
        """Nothing to release; kept for the `AuditStore` interface."""


class AuditLog(AuditStore):
    """An audit store in one SQLite file, with the head record in `<path>.head`; thread-safe.

    The head sidecar is written after the row commits, so a crash in between
    leaves a head that lags (reported, still ok) rather than one ahead of the
    rows (which would read as truncation). Keep the sidecar on storage the
    database's writers cannot rewrite when tampering by them is a concern.
    """

    def __init__(self, path: Path | str, *, head_path: Path | str | None = None) -> None:
        self.path = Path(path)
        self.head_path = Path(head_path) if head_path is not None else self.path.with_name(self.path.name + ".head")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.executescript(_SCHEMA)
        with self._lock:
            empty = self._db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0] == 0
            if empty and not self.head_path.exists():
                self._write_head(ChainHead(rows=0, head_hash=GENESIS_HASH))

    def append(self, event: AuditEvent) -> AuditEvent:
        """Append `event` and return it with its assigned `event_id`."""
        _check_event_time(event)
        body = event.model_dump_json(exclude={"event_id"})
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT row_hash FROM audit_events ORDER BY event_id DESC LIMIT 1"
                ).fetchone()
                prev_hash = row[0] if row else GENESIS_HASH
                new_hash = row_hash(prev_hash, body)
                cursor = self._db.execute(
                    "INSERT INTO audit_events (time, kind, source, tenant, body, prev_hash, row_hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (time_key(event.time), event.kind, event.source, event.tenant, body, prev_hash, new_hash),
                )
                count = self._db.execute("SELECT COUNT(*) FROM audit_events").fetchone()[0]
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._write_head(ChainHead(rows=count, head_hash=new_hash))
        return event.model_copy(update={"event_id": cursor.lastrowid})

    def events(self, *, kind=None, source=None, tenant=None, since=None, until=None,
               after_id=None) -> list[AuditEvent]:
        """Return events in append order, filtered as `AuditStore.events` describes."""
        clauses, params = [], []
        kinds = _kinds(kind)
        if kinds is not None:
            clauses.append(f"kind IN ({', '.join('?' for _ in kinds)})")
            params.extend(kinds)
        for column, value in (("source", source), ("tenant", tenant)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if since is not None:
            clauses.append("time >= ?")
            params.append(time_key(since))
        if until is not None:
            clauses.append("time < ?")
            params.append(time_key(until))
        if after_id is not None:
            clauses.append("event_id > ?")
            params.append(after_id)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            rows = self._db.execute(
                f"SELECT event_id, body FROM audit_events{where} ORDER BY event_id", params
            ).fetchall()
        return [AuditEvent.model_validate_json(body).model_copy(update={"event_id": eid}) for eid, body in rows]

    def chain_rows(self) -> list[ChainRow]:
        """Return every stored row in append order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT event_id, kind, source, tenant, body, prev_hash, row_hash"
                " FROM audit_events ORDER BY event_id"
            ).fetchall()
        return [ChainRow(*row) for row in rows]

    def head(self) -> ChainHead | None:
        """Return the head record from the sidecar file, or None when it is missing."""
        try:
            data = json.loads(self.head_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return ChainHead(rows=int(data["rows"]), head_hash=str(data["head_hash"]))

    def _write_head(self, head: ChainHead) -> None:
        tmp = self.head_path.with_name(f"{self.head_path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps({"rows": head.rows, "head_hash": head.head_hash}), encoding="utf-8")
        os.replace(tmp, self.head_path)

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
