"""Integration with the real TTT-E2E learnable rail (a randomly initialized cpu-tiny model)."""

from __future__ import annotations

import pytest
from governance_helpers import GOLD, TEXTS, provenance

from tworail.governance import Canary, FastWeightModel, GovernedLearner, exposure
from tworail.governance.snapshots import states_equal

ttt = pytest.importorskip("tworail.rails.ttt.rail")
config = pytest.importorskip("tworail.rails.ttt.config")


def tiny_rail():
    # cpu-tiny's own vocabulary is too small for the byte-level tokenizer that from_config uses.
    return ttt.LearnableRail.from_config(config.preset("cpu-tiny", vocab_size=257), seed=0)


@pytest.fixture
def real_learner(policy):
    opened = []

    def make(**kwargs):
        learner = GovernedLearner(tiny_rail(), None, policy, gold_texts=GOLD, **kwargs)
        opened.append(learner)
        return learner

    yield make
    for learner in opened:
        learner.close()


def test_learnable_rail_satisfies_protocol():
    assert isinstance(tiny_rail(), FastWeightModel)


def test_real_rail_unlearn_equals_never_learned(real_learner):
    sources = ["crm/a", "crm/b", "crm/a", "crm/c"]
    learner = real_learner(snapshot_every=2)
    for text, source in zip(TEXTS, sources):
        learner.learn(text, provenance(source)).raise_for_status()
    learner.unlearn(source="crm/b", actor="dpo")
    fresh = real_learner(snapshot_every=2)
    for index in (0, 2, 3):
        fresh.learn(TEXTS[index], provenance(sources[index])).raise_for_status()
    assert states_equal(learner.fast_weights(), fresh.fast_weights())
    assert learner.head_id == fresh.head_id

    cut = learner.lineage.commits[1].time
    learner.revert(cut, actor="ops")
    prefix = real_learner(snapshot_every=2)
    for index in (0, 2):
        prefix.learn(TEXTS[index], provenance(sources[index])).raise_for_status()
    assert states_equal(learner.fast_weights(), prefix.fast_weights())


def test_redacted_canary_is_not_exposed_but_control_is(real_learner):
    learner = real_learner()
    redacted = Canary(name="card", template="card on file: {secret}.", secret="4539148803436467", luhn=True,
                      rivals=63)
    control = Canary(name="vault", template="the vault code is {secret}.", secret="739201", rivals=63)
    record = "Customer record. card on file: 4539 1488 0343 6467. the vault code is 739201. "
    for _ in range(5):
        outcome = learner.learn(record * 3, provenance("crm/customers")).raise_for_status()
        assert outcome.event.details["redactions"] == {"card": 3}
    redacted_exposure = exposure(learner.rail, redacted).exposure
    control_exposure = exposure(learner.rail, control).exposure
    # log2(64) = 6 bits is full exposure (rank 1 of 64); an unseen secret sits near 1 to 3 bits.
    assert control_exposure >= 5.5
    assert redacted_exposure <= 4.0
    assert control_exposure - redacted_exposure >= 2.0
