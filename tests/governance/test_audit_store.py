"""Conformance suite of the audit stores: every backend passes the same tests."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta

import pytest

from tworail.audit import AuditLog, InMemoryAuditStore, content_hash, verify_chain
from tworail.records import AuditEvent

from governance_helpers import START


class SqliteBackend:
    name = "sqlite"

    def __init__(self, tmp_path):
        self.path = tmp_path / "audit.sqlite"

    def open(self):
        return AuditLog(self.path)

    def _db(self):
        return sqlite3.connect(self.path, isolation_level=None)

    def edit(self, store, event_id, old, new):
        self._db().execute("UPDATE audit_events SET body = replace(body, ?, ?) WHERE event_id = ?", (old, new, event_id))

    def delete(self, store, event_id):
        self._db().execute("DELETE FROM audit_events WHERE event_id = ?", (event_id,))

    def swap(self, store, first, second):
        db = self._db()
        rows = {eid: row for eid, *row in db.execute(
            "SELECT event_id, time, kind, source, tenant, body, prev_hash, row_hash FROM audit_events"
            " WHERE event_id IN (?, ?)", (first, second))}
        for target, origin in ((first, second), (second, first)):
            db.execute("UPDATE audit_events SET time=?, kind=?, source=?, tenant=?, body=?, prev_hash=?, row_hash=?"
                       " WHERE event_id = ?", (*rows[origin], target))

    def edit_indexed_column(self, store, event_id):
        self._db().execute("UPDATE audit_events SET source = 'forged' WHERE event_id = ?", (event_id,))


class MemoryBackend:
    name = "memory"

    def __init__(self, tmp_path):
        self.store = None

    def open(self):
        self.store = self.store or InMemoryAuditStore()
        return self.store

    def _replace(self, store, index, **changes):
        from dataclasses import replace

        store._rows[index] = replace(store._rows[index], **changes)

    def edit(self, store, event_id, old, new):
        index = event_id - 1
        self._replace(store, index, body=store._rows[index].body.replace(old, new))

    def delete(self, store, event_id):
        del store._rows[event_id - 1]
        del store._events[event_id - 1]

    def swap(self, store, first, second):
        from dataclasses import replace

        a, b = store._rows[first - 1], store._rows[second - 1]
        store._rows[first - 1] = replace(b, event_id=a.event_id)
        store._rows[second - 1] = replace(a, event_id=b.event_id)

    def edit_indexed_column(self, store, event_id):
        self._replace(store, event_id - 1, source="forged")


@pytest.fixture(params=[SqliteBackend, MemoryBackend], ids=["sqlite", "memory"])
def backend(request, tmp_path):
    return request.param(tmp_path)


def fill(store, n=5):
    for i in range(n):
        store.append(AuditEvent(kind="learn" if i % 2 == 0 else "reject", source=f"s{i % 2}",
                                tenant="t1" if i < 3 else "t2", time=START + timedelta(minutes=i),
                                content_hash=content_hash(f"text {i}"), update_norm=0.5, tokens=10))


def truncate_tail(backend, store):
    if backend.name == "sqlite":
        backend.delete(store, 5)
    else:
        del store._rows[-1]
        del store._events[-1]


def test_append_assigns_increasing_ids(backend):
    store = backend.open()
    fill(store)
    assert [event.event_id for event in store.events()] == [1, 2, 3, 4, 5]
    assert store.verify().ok
    assert store.verify().rows == 5


def test_query_by_kind_source_tenant_and_time(backend):
    store = backend.open()
    fill(store)
    assert [e.event_id for e in store.events(kind="learn")] == [1, 3, 5]
    assert [e.event_id for e in store.events(kind=("learn", "reject"), source="s1")] == [2, 4]
    assert [e.event_id for e in store.events(tenant="t2")] == [4, 5]
    window = store.events(since=START + timedelta(minutes=1), until=START + timedelta(minutes=3))
    assert [e.event_id for e in window] == [2, 3]
    assert [e.event_id for e in store.events(after_id=3)] == [4, 5]


def test_time_filter_handles_whole_seconds(backend):
    store = backend.open()
    store.append(AuditEvent(kind="learn", time=START))
    store.append(AuditEvent(kind="learn", time=START + timedelta(microseconds=500)))
    assert len(store.events(since=START)) == 2
    assert len(store.events(until=START + timedelta(microseconds=1))) == 1


def test_naive_event_time_is_rejected(backend):
    store = backend.open()
    with pytest.raises(ValueError, match="no time zone"):
        store.append(AuditEvent(kind="learn", time=START.replace(tzinfo=None)))


def test_edited_row_is_named(backend):
    store = backend.open()
    fill(store)
    backend.edit(store, 3, '"update_norm":0.5', '"update_norm":0.1')
    report = store.verify()
    assert not report.ok
    assert report.first_broken == 3
    assert "edited" in report.reason


def test_edited_indexed_column_is_named(backend):
    store = backend.open()
    fill(store)
    backend.edit_indexed_column(store, 2)
    report = store.verify()
    assert not report.ok
    assert report.first_broken == 2


def test_deleted_row_is_named(backend):
    store = backend.open()
    fill(store)
    backend.delete(store, 2)
    report = store.verify()
    assert not report.ok
    assert report.first_broken == 3


def test_reordered_rows_are_named(backend):
    store = backend.open()
    fill(store)
    backend.swap(store, 2, 4)
    report = store.verify()
    assert not report.ok
    assert report.first_broken == 2


def test_truncated_tail_is_named(backend):
    store = backend.open()
    fill(store)
    truncate_tail(backend, store)
    report = store.verify()
    assert not report.ok
    assert report.first_broken == 5
    assert "cut off" in report.reason


def test_rewritten_chain_contradicts_head(backend):
    store = backend.open()
    fill(store, 3)
    rows = store.chain_rows()
    forged = [rows[0], rows[1]]
    from dataclasses import replace

    from tworail.audit import row_hash

    body = rows[2].body.replace('"update_norm":0.5', '"update_norm":0.0')
    forged.append(replace(rows[2], body=body, row_hash=row_hash(rows[2].prev_hash, body)))
    report = verify_chain(forged, store.head())
    assert not report.ok
    assert report.first_broken == 3


def test_summary_counts_learning(backend):
    store = backend.open()
    fill(store)
    summary = store.summary()
    assert summary["events"] == 5
    assert summary["by_kind"] == {"learn": 3, "reject": 2}
    assert summary["tokens_learned"] == 30
    assert summary["chain_ok"] is True


def test_concurrent_appends_keep_the_chain(backend):
    store = backend.open()

    def writer(index):
        for j in range(20):
            store.append(AuditEvent(kind="learn", source=f"w{index}", tokens=j))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(store.events()) == 80
    assert store.verify().ok


def test_last_returns_latest_of_kind(backend):
    store = backend.open()
    fill(store)
    assert store.last(kind="reject").event_id == 4
    assert store.last().event_id == 5


def test_sqlite_rows_never_hold_text(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(AuditEvent(kind="learn", source="s", content_hash=content_hash("secret text")))
    assert b"secret text" not in (tmp_path / "audit.sqlite").read_bytes()


def test_sqlite_head_lagging_after_crash_is_ok(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log, 3)
    head = json.loads(log.head_path.read_text())
    fill(log, 1)
    # A crash between the row commit and the head write leaves the old head behind.
    log.head_path.write_text(json.dumps(head))
    report = log.verify()
    assert report.ok
    assert "lags" in report.reason
    fill(log, 1)
    assert log.verify().reason == ""


def test_sqlite_missing_head_is_reported(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log, 2)
    log.head_path.unlink()
    report = log.verify()
    assert not report.ok
    assert "head record is missing" in report.reason


def test_sqlite_reopened_log_verifies(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log)
    log.close()
    again = AuditLog(tmp_path / "audit.sqlite")
    assert again.verify().ok
    assert len(again.events()) == 5
