"""Rate limits under concurrent callers: reject, never block, never over-admit."""

from __future__ import annotations

import threading
import time

import pytest
from governance_helpers import TEXTS, provenance

from tworail.governance import BucketConfig, RateLimitConfig, RateLimiter, RateLimitExceeded


class FrozenClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def hammer(limiter, calls_per_thread, threads, principal=lambda i: "alice", source=lambda i: "s"):
    accepted, rejected = [], []
    barrier = threading.Barrier(threads)

    def worker(index):
        barrier.wait()
        for _ in range(calls_per_thread):
            try:
                limiter.acquire(principal=principal(index), source=source(index))
                accepted.append(index)
            except RateLimitExceeded as error:
                rejected.append(error)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return accepted, rejected


def test_concurrent_callers_get_exactly_the_burst():
    config = RateLimitConfig(per_principal=BucketConfig(rate_per_second=1.0, burst=25), per_source=None)
    limiter = RateLimiter(config, clock=FrozenClock())
    accepted, rejected = hammer(limiter, calls_per_thread=10, threads=8)
    assert len(accepted) == 25
    assert len(rejected) == 55
    assert rejected[0].key == "principal:alice"
    assert "retry in 1.00 s" in str(rejected[0])


def test_buckets_are_per_principal():
    config = RateLimitConfig(per_principal=BucketConfig(rate_per_second=1.0, burst=3), per_source=None)
    limiter = RateLimiter(config, clock=FrozenClock())
    accepted, _ = hammer(limiter, calls_per_thread=5, threads=4, principal=lambda i: f"p{i}")
    assert sorted(accepted) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]


def test_source_limit_applies_across_principals():
    config = RateLimitConfig(per_principal=None, per_source=BucketConfig(rate_per_second=1.0, burst=4))
    limiter = RateLimiter(config, clock=FrozenClock())
    accepted, rejected = hammer(limiter, calls_per_thread=3, threads=4, principal=lambda i: f"p{i}")
    assert len(accepted) == 4
    assert {error.key for error in rejected} == {"source:s"}


def test_rejected_request_charges_no_bucket():
    config = RateLimitConfig(per_principal=BucketConfig(rate_per_second=1.0, burst=5),
                             per_source=BucketConfig(rate_per_second=1.0, burst=1))
    limiter = RateLimiter(config, clock=FrozenClock())
    limiter.acquire(principal="alice", source="s")
    for _ in range(3):
        with pytest.raises(RateLimitExceeded):
            limiter.acquire(principal="alice", source="s")
    for source in ("t", "u", "v", "w"):
        limiter.acquire(principal="alice", source=source)
    with pytest.raises(RateLimitExceeded, match="principal:alice"):
        limiter.acquire(principal="alice", source="x")


def test_bucket_refills_over_time():
    clock = FrozenClock()
    limiter = RateLimiter(RateLimitConfig(per_principal=BucketConfig(rate_per_second=2.0, burst=1), per_source=None),
                          clock=clock)
    limiter.acquire(principal="a", source="s")
    with pytest.raises(RateLimitExceeded):
        limiter.acquire(principal="a", source="s")
    clock.now += 0.5
    limiter.acquire(principal="a", source="s")


def test_rejection_does_not_wait():
    limiter = RateLimiter(RateLimitConfig(per_principal=BucketConfig(rate_per_second=0.001, burst=1), per_source=None))
    limiter.acquire(principal="a", source="s")
    start = time.perf_counter()
    with pytest.raises(RateLimitExceeded):
        limiter.acquire(principal="a", source="s")
    assert time.perf_counter() - start < 0.1


def test_learner_rejects_over_limit_callers_with_rows(policy, make_learner):
    limited = policy.model_copy(update={"rate_limits": RateLimitConfig(
        per_principal=None, per_source=BucketConfig(rate_per_second=0.001, burst=3))})
    learner = make_learner(policy=limited)
    outcomes = []
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def caller(index):
        barrier.wait()
        outcome = learner.learn(TEXTS[index % len(TEXTS)], provenance("crm/a"), actor=f"client{index}")
        with lock:
            outcomes.append(outcome)

    pool = [threading.Thread(target=caller, args=(i,)) for i in range(6)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert sorted(outcome.status for outcome in outcomes) == ["committed"] * 3 + ["rejected"] * 3
    assert {o.rule for o in outcomes if not o.committed} == {"ratelimit.source"}
    assert len(learner.audit.events(kind="reject")) == 3
    assert len(learner.lineage.commits) == 3
    assert learner.audit.verify().ok
