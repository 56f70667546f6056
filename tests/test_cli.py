"""The command line as a user drives it: exit codes, messages and JSON output."""

import json

import pytest

from tworail import cli
from tworail.agent import TwoRail
from tworail.datasets import sqlite_docs_dir
from tworail.rails.ttt.config import preset
from tworail.rails.ttt.rail import LearnableRail
from tworail.retrieval.embedding import HashingEmbedder


@pytest.fixture
def offline_agent(monkeypatch):
    """Build CLI agents with the hashing embedder and a tiny random learnable rail."""

    def make(args):
        learnable = LearnableRail.from_config(preset("cpu-tiny", vocab_size=512), seed=0)
        return TwoRail(args.data_dir, embedder=HashingEmbedder(), learnable=learnable)

    monkeypatch.setattr(cli, "_agent", make)


def run(capsys, *argv):
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_ingest_missing_path_fails(tmp_path, capsys):
    status, _, err = run(capsys, "ingest", str(tmp_path / "nope"), "--data-dir", str(tmp_path))
    assert status == 1
    assert "nope" in err


def test_ask_empty_question_fails(tmp_path, capsys):
    status, _, err = run(capsys, "ask", "  ", "--data-dir", str(tmp_path))
    assert status == 1
    assert "empty" in err


def test_ask_jsonl_unreadable_file_fails(tmp_path, capsys):
    status, _, err = run(capsys, "ask", "--jsonl", str(tmp_path / "missing.jsonl"), "--data-dir", str(tmp_path))
    assert status == 1
    assert "missing.jsonl" in err


def test_audit_without_log_fails(tmp_path, capsys):
    status, _, err = run(capsys, "audit", "--data-dir", str(tmp_path))
    assert status == 1
    assert "no audit log" in err


def test_train_invalid_config_fails(tmp_path, capsys):
    config = tmp_path / "train.json"
    config.write_text(json.dumps({"run_dir": str(tmp_path / "run"), "held_out_pages": "bundle"}))
    status, _, err = run(capsys, "train", str(config))
    assert status == 1
    assert "held_out_pages='bundle' is invalid; use 'bundled'" in err
    assert "Traceback" not in err


def test_train_malformed_json_fails(tmp_path, capsys):
    config = tmp_path / "train.json"
    config.write_text("{run_dir: x}")
    status, _, err = run(capsys, "train", str(config))
    assert status == 1
    assert "is not valid JSON" in err


def test_ingest_then_ask_json(tmp_path, capsys, offline_agent):
    status, out, _ = run(capsys, "ingest", str(sqlite_docs_dir()), "--data-dir", str(tmp_path))
    assert status == 0
    assert "ingested" in out

    status, out, _ = run(capsys, "ask", "What is the numeric value of SQLITE_FULL?", "--json", "--data-dir", str(tmp_path))
    assert status == 0
    record = json.loads(out)
    assert set(record) == {"question", "route", "answer", "claims", "conflicts"}
    assert record["route"]["rails"] == ["reference"]
    citation = record["claims"][0]["citations"][0]
    assert citation["source"] == "rescode.html"
    assert "SQLITE_FULL" in citation["quote"]


def test_ask_jsonl_reports_bad_line_and_answers_rest(tmp_path, capsys, offline_agent, monkeypatch):
    run(capsys, "ingest", str(sqlite_docs_dir()), "--data-dir", str(tmp_path))
    lines = tmp_path / "questions.jsonl"
    lines.write_text(
        json.dumps({"question": "What is the numeric value of SQLITE_FULL?"}) + "\n"
        + "{not json\n"
        + json.dumps({"text": "no question field"}) + "\n"
        + json.dumps({"question": "When was SQLite version 3.40.0 released?"}) + "\n"
    )
    status, out, err = run(capsys, "ask", "--jsonl", str(lines), "--json", "--data-dir", str(tmp_path))
    assert status == 1
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 4
    assert records[1] == {"line": 2, "error": records[1]["error"]}
    assert "invalid JSON" in records[1]["error"]
    assert "question" in records[2]["error"]
    assert records[3]["claims"]
    assert "line 2" in err


NOTES_POLICY = """
owner = "test suite"
version = "1"
default_action = "never"

[[rules]]
name = "team notes"
sources = ["*.txt"]
action = "learn-after-redaction"
retention_days = 30
"""


def test_learn_rejected_by_default_policy(tmp_path, capsys, offline_agent):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("the printer on floor two jams when duplex is on\n" * 5)
    status, out, err = run(capsys, "learn", str(notes), "--data-dir", str(tmp_path / "data"))
    assert status == 1
    assert "rejected a.txt" in out
    assert "--policy" in err


def test_learn_with_policy_then_audit_verify(tmp_path, capsys, offline_agent):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("the printer on floor two jams when duplex is on\n" * 5)
    policy = tmp_path / "policy.toml"
    policy.write_text(NOTES_POLICY)
    status, out, _ = run(capsys, "learn", str(notes), "--policy", str(policy), "--data-dir", str(tmp_path / "data"))
    assert status == 0
    assert "learned a.txt" in out

    status, out, _ = run(capsys, "audit", "--verify", "--data-dir", str(tmp_path / "data"))
    assert status == 0
    assert "hash chain intact" in out

    (notes / "b.txt").write_text("the scanner on floor three needs a driver update\n" * 5)
    status, out, _ = run(capsys, "learn", str(notes / "b.txt"), "--data-dir", str(tmp_path / "data"))
    assert status == 0, "the policy put in force earlier must still apply"
    assert "learned b.txt" in out


def test_governance_commands_registered(tmp_path, capsys):
    status, out, _ = run(capsys, "policy", "--show-default", "--data-dir", str(tmp_path))
    assert status == 0
    assert "default_action" in out


def test_signed_learning_after_keys_created(tmp_path, capsys, offline_agent):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("the printer on floor two jams when duplex is on\n" * 5)
    policy = tmp_path / "policy.toml"
    policy.write_text(NOTES_POLICY)
    data = str(tmp_path / "data")
    key_file = tmp_path / "bot.key"

    status, out, _ = run(capsys, "keys", "support-bot", "--out", str(key_file), "--data-dir", data)
    assert status == 0
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    status, out, _ = run(capsys, "learn", str(notes), "--policy", str(policy), "--data-dir", data)
    assert status == 1
    assert "rejected a.txt" in out

    status, out, _ = run(capsys, "learn", str(notes), "--principal", "support-bot", "--key-file", str(key_file),
                         "--data-dir", data)
    assert status == 0
    assert "learned a.txt" in out

    wrong = tmp_path / "wrong.key"
    wrong.write_text("00" * 32 + "\n")
    status, out, _ = run(capsys, "learn", str(notes), "--principal", "support-bot", "--key-file", str(wrong),
                         "--data-dir", data)
    assert status == 1
    assert "signature" in out


def test_principal_without_key_file_fails(tmp_path, capsys):
    status, _, err = run(capsys, "learn", str(tmp_path), "--principal", "bot", "--data-dir", str(tmp_path))
    assert status == 1
    assert "--key-file" in err
