"""Fixtures of the governance tests: a deterministic toy model, a fixed clock and a permissive policy."""

from __future__ import annotations

import pytest
import torch
from governance_helpers import GOLD, TEST_POLICY, Clock

from tworail.governance import GovernedLearner, ToyFastWeightModel, parse_policy


@pytest.fixture(autouse=True)
def _deterministic_torch():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)
    torch.set_num_threads(threads)


@pytest.fixture
def policy():
    return parse_policy(TEST_POLICY)


@pytest.fixture
def make_learner(policy):
    """Return a factory of learners on a fresh toy model (same seed, so same W0)."""
    opened: list[GovernedLearner] = []

    def make(data_dir=None, *, model=None, **kwargs) -> GovernedLearner:
        kwargs.setdefault("gold_texts", GOLD)
        kwargs.setdefault("clock", Clock())
        kwargs.setdefault("policy", policy)
        learner = GovernedLearner(model or ToyFastWeightModel(seed=0), data_dir, **kwargs)
        opened.append(learner)
        return learner

    yield make
    for learner in opened:
        try:
            learner.close()
        except Exception:  # noqa: BLE001 - a test may have closed it already
            pass
