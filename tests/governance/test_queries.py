"""Questions on demand: changes between two times, top contributors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from governance_helpers import TEXTS, provenance

from tworail.governance import Probe, changes_between, top_contributors


@pytest.fixture
def history(make_learner):
    probe = Probe(prompt="[09:01] <bob> sudo apt-get ", candidates=["install name", "zzzz qqqq"],
                  expected="install name")
    learner = make_learner(probes=[probe])
    for text, source in zip(TEXTS, ["crm/a", "crm/b", "crm/a", "docs/c", "secret/x"]):
        learner.learn(text, provenance(source))
    return learner


def test_changes_between_lists_rows_and_states(history):
    learns = history.audit.events(kind="learn")
    since, until = learns[1].time, learns[3].time
    report = changes_between(history.audit, since, until)
    assert report.counts == {"learn": 2}
    assert [item.source for item in report.items] == ["crm/b", "crm/a"]
    assert report.items[0].rule == "rules[0] (crm)"
    assert report.state_before == learns[0].snapshot_id
    assert report.state_after == learns[2].snapshot_id
    assert report.changed


def test_changes_include_rejections_and_removals(history):
    history.unlearn(source="crm/b", actor="dpo", reason="erasure request 7")
    since = history.audit.events(kind="learn")[-1].time
    report = changes_between(history.audit, since, history.clock() + timedelta(seconds=1))
    kinds = [item.kind for item in report.items]
    assert kinds == ["learn", "reject", "unlearn"]
    assert report.items[1].rule == "policy.rules[2] (blocked)"
    assert report.items[2].reasons == ["erasure request 7"]
    assert report.state_after == history.head_id


def test_changes_window_must_be_ordered(history):
    now = history.clock()
    with pytest.raises(ValueError, match="must be later"):
        changes_between(history.audit, now, now)


def test_top_contributors_by_update_norm(history):
    ranked = top_contributors(history.audit)
    norms = {entry.source: entry.update_norm for entry in ranked}
    learns = history.audit.events(kind="learn")
    assert norms["crm/a"] == pytest.approx(sum(e.update_norm for e in learns if e.source == "crm/a"))
    assert [entry.update_norm for entry in ranked] == sorted(norms.values(), reverse=True)
    assert ranked[0].events >= 1


def test_top_contributors_by_probe_change(history):
    ranked = top_contributors(history.audit, by="probe", metric="gold_loss")
    learns = history.audit.events(kind="learn")
    expected = {source: sum(e.metrics_after["gold_loss"] - e.metrics_before["gold_loss"]
                            for e in learns if e.source == source) for source in {e.source for e in learns}}
    assert {entry.source: entry.probe_change for entry in ranked} == pytest.approx(expected)
    assert [abs(entry.probe_change) for entry in ranked] == sorted(map(abs, expected.values()), reverse=True)


def test_top_contributors_rejects_unknown_ranking(history):
    with pytest.raises(ValueError, match="rank by"):
        top_contributors(history.audit, by="volume")
