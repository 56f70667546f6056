import sqlite3

from tworail.audit import AuditLog, content_hash
from tworail.records import AuditEvent


def fill(log: AuditLog, n: int = 4) -> None:
    for i in range(n):
        log.append(AuditEvent(kind="learn", source=f"s{i % 2}", content_hash=content_hash(f"text {i}"),
                              parameters=["blocks.7.prime.w1"], update_norm=0.5, tokens=10))


def test_append_assigns_ids_and_verifies(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log)
    events = log.events()
    assert [event.event_id for event in events] == [1, 2, 3, 4]
    assert log.verify().ok


def test_query_by_source_and_kind(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log)
    log.append(AuditEvent(kind="reject", source="s0"))
    assert len(log.events(source="s0")) == 3
    assert len(log.events(kind="reject")) == 1


def test_edited_row_is_detected(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("UPDATE audit_events SET body = replace(body, '0.5', '0.1') WHERE event_id = 3")
    db.commit()
    report = log.verify()
    assert not report.ok
    assert report.first_broken == 3


def test_deleted_row_is_detected(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log)
    db = sqlite3.connect(tmp_path / "audit.sqlite")
    db.execute("DELETE FROM audit_events WHERE event_id = 2")
    db.commit()
    report = log.verify()
    assert not report.ok
    assert report.first_broken == 3


def test_summary_counts_learning(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    fill(log)
    summary = log.summary()
    assert summary["events"] == 4
    assert summary["tokens_learned"] == 40
    assert summary["sources"] == 2
    assert summary["chain_ok"] is True


def test_rows_never_hold_text(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.append(AuditEvent(kind="learn", source="s", content_hash=content_hash("secret text")))
    raw = (tmp_path / "audit.sqlite").read_bytes()
    assert b"secret text" not in raw
