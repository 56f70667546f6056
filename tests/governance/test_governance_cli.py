"""The governance CLI commands, run through argparse as `tworail` runs them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from governance_helpers import TEST_POLICY, TEXTS, Clock, provenance

from tworail.governance import GovernedLearner, ToyFastWeightModel
from tworail.governance.cli import add_commands
from tworail.governance.snapshots import states_equal


def run(argv, capsys):
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", type=Path, default=None)
    parser = argparse.ArgumentParser(prog="tworail")
    add_commands(parser.add_subparsers(dest="command", required=True), common,
                 rail_factory=lambda: ToyFastWeightModel(seed=0))
    args = parser.parse_args(argv)
    status = args.handler(args)
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.fixture
def data_dir(tmp_path):
    (tmp_path / "governance").mkdir()
    (tmp_path / "governance" / "policy.toml").write_text(TEST_POLICY)
    with GovernedLearner(ToyFastWeightModel(seed=0), tmp_path, clock=Clock()) as learner:
        for text, source in zip(TEXTS[:3], ["crm/a", "crm/b", "crm/a"]):
            learner.learn(text, provenance(source)).raise_for_status()
    return tmp_path


def open_learner(data_dir):
    return GovernedLearner(ToyFastWeightModel(seed=0), data_dir)


def test_unlearn_command(data_dir, capsys):
    status, out, _ = run(["unlearn", "--data-dir", str(data_dir), "--source", "crm/b", "--actor", "dpo",
                          "--reason", "erasure"], capsys)
    assert status == 0
    assert "unlearned events [4]" in out
    with open_learner(data_dir) as learner:
        assert [c.source for c in learner.lineage.commits] == ["crm/a", "crm/a"]
        assert learner.audit.last(kind="unlearn").actor == "dpo"


def test_unlearn_without_selector_fails(data_dir, capsys):
    status, _, err = run(["unlearn", "--data-dir", str(data_dir)], capsys)
    assert status == 1
    assert "pass --source, --event-id or --tenant" in err


def test_unlearn_unknown_source_fails(data_dir, capsys):
    status, _, err = run(["unlearn", "--data-dir", str(data_dir), "--source", "nope"], capsys)
    assert status == 1
    assert "no committed learning event" in err


def test_revert_command(data_dir, capsys):
    with open_learner(data_dir) as learner:
        first = learner.lineage.commits[0]
        expected = learner.state_at(first.time)
    status, out, _ = run(["revert", "--data-dir", str(data_dir), "--to", first.time.isoformat()], capsys)
    assert status == 0
    assert "events [4, 5] left" in out
    with open_learner(data_dir) as learner:
        assert states_equal(learner.fast_weights(), expected)


def test_changes_command_json(data_dir, capsys):
    status, out, _ = run(["changes", "--data-dir", str(data_dir), "--since", "2025-01-01T00:00:00", "--json"], capsys)
    report = json.loads(out)
    assert status == 0
    assert report["counts"]["learn"] == 3
    assert report["changed"] is True


def test_contributors_command(data_dir, capsys):
    status, out, _ = run(["contributors", "--data-dir", str(data_dir), "--json"], capsys)
    ranked = json.loads(out)
    assert status == 0
    assert {entry["source"] for entry in ranked} == {"crm/a", "crm/b"}


def test_freeze_resume_and_status(data_dir, capsys):
    assert run(["freeze", "--data-dir", str(data_dir), "--reason", "audit", "--actor", "ops"], capsys)[0] == 0
    status, out, _ = run(["learning-status", "--data-dir", str(data_dir), "--json"], capsys)
    assert json.loads(out)["frozen"] is True
    assert json.loads(out)["active_commits"] == 3
    assert run(["resume", "--data-dir", str(data_dir), "--reason", "reviewed", "--actor", "ops"], capsys)[0] == 0
    status, _, err = run(["resume", "--data-dir", str(data_dir), "--reason", "again"], capsys)
    assert status == 1
    assert "not frozen" in err


def test_expire_command(data_dir, capsys):
    status, out, _ = run(["expire", "--data-dir", str(data_dir)], capsys)
    assert status == 0
    assert "expired events [3, 4, 5]" in out  # the test data is from 2025 with 30 days of retention


def test_policy_command_decides(data_dir, capsys):
    status, out, _ = run(["policy", "--data-dir", str(data_dir), "--source", "crm/1", "--owner", "ops",
                          "--retention-days", "7"], capsys)
    assert status == 0
    assert "learn-after-redaction by rules[0] (crm)" in out
    status, out, _ = run(["policy", "--data-dir", str(data_dir), "--source", "crm/1"], capsys)
    assert status == 1
    assert "owner 'unknown' names nobody" in out


def test_policy_command_shows_default(tmp_path, capsys):
    status, out, _ = run(["policy", "--data-dir", str(tmp_path), "--show-default"], capsys)
    assert status == 0
    assert 'sources = ["ubuntu-irc/*"]' in out


def test_missing_audit_log_fails(tmp_path, capsys):
    status, _, err = run(["changes", "--data-dir", str(tmp_path / "empty"), "--since", "2025-01-01"], capsys)
    assert status == 1
    assert "no audit log" in err


def test_bad_time_is_a_usage_error(data_dir, capsys):
    with pytest.raises(SystemExit):
        run(["revert", "--data-dir", str(data_dir), "--to", "yesterday"], capsys)
