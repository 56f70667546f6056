"""Benchmark of the governance control plane.

Measures, on one CPU thread:

1. audit log append and verify rates (SQLite and in-memory stores);
2. time to revert and to unlearn one source as a function of the number of
   commits learned after it (unlearning replays them, reverting does not);
3. exposure (Carlini et al. 2019) of a canary whose value redaction removes
   and of an unredacted control canary, before and after learning;
4. one drift alert raised by a deliberately bad source, the freeze it causes,
   and the revert that undoes it.

Sections 2 and 3 use the real TTT-E2E rail (a randomly initialized cpu-tiny
model, `--model tiny`) or the toy byte MLP (`--model toy`). Section 4 always
uses the toy model, because the randomly initialized tiny rail barely moves
its gold loss (about 0.01 nats per token) when it learns.

Run:  python benchmarks/governance_bench.py --out results/governance_bench.json
(from a folder other than the repository root, or with the repository
installed, so that `tworail` imports). Prints a summary and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import torch

from tworail.audit import AuditLog, InMemoryAuditStore, content_hash
from tworail.datasets import support_threads
from tworail.governance import Canary, GovernedLearner, ToyFastWeightModel, exposure, parse_policy
from tworail.records import AuditEvent, Provenance, utc_now

logger = logging.getLogger("governance_bench")

BENCH_POLICY = """
owner = "governance benchmark"
[[rules]]
sources = ["*"]
action = "learn-after-redaction"
retention_days = 30
[acceptance]
max_gold_loss_increase = 5.0
max_probe_pass_rate_drop = 1.0
[drift]
max_gold_loss_increase = 5.0
max_gold_loss_rise = 0.2
[rate_limits]
per_principal = { rate_per_second = 100000, burst = 100000 }
per_source = { rate_per_second = 100000, burst = 100000 }
"""


class StepClock:
    """Event times one second apart, so that revert targets are unambiguous."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self):
        self.now += timedelta(seconds=1)
        return self.now


def make_model(kind: str):
    """Return a fresh model of the given kind with seed 0."""
    if kind == "toy":
        return ToyFastWeightModel(seed=0)
    from tworail.rails.ttt.config import preset
    from tworail.rails.ttt.rail import LearnableRail

    return LearnableRail.from_config(preset("cpu-tiny", vocab_size=257), seed=0)


def provenance(source: str) -> Provenance:
    """Return full provenance for a benchmark source."""
    return Provenance(source_id=source, uri=f"file:///bench/{source}", owner="benchmark", retention_days=30)


def short_threads(count: int, chars: int = 400) -> list[str]:
    """Return `count` bundled support threads cut to about `chars` characters."""
    threads = support_threads("learn")
    return [threads[i % len(threads)].text[:chars] for i in range(count)]


def bench_audit(events: int) -> dict[str, object]:
    """Measure append and verify rates of both audit stores."""
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, store in (("sqlite", AuditLog(Path(folder) / "audit.sqlite")), ("memory", InMemoryAuditStore())):
            start = time.perf_counter()
            for i in range(events):
                store.append(AuditEvent(kind="learn", source=f"s{i % 17}", content_hash=content_hash(str(i)),
                                        update_norm=0.1, tokens=100))
            append_s = time.perf_counter() - start
            start = time.perf_counter()
            report = store.verify()
            verify_s = time.perf_counter() - start
            store.close()
            results[name] = {"events": events, "append_per_s": events / append_s, "verify_rows_per_s": events / verify_s,
                             "chain_ok": report.ok}
    return results


def _learner_with_history(kind: str, later: int, data_dir: Path, texts: list[str], gold: list[str]):
    learner = GovernedLearner(make_model(kind), data_dir, parse_policy(BENCH_POLICY), gold_texts=gold,
                              clock=StepClock())
    target = learner.learn(texts[0], provenance("target/source")).raise_for_status()
    for i in range(later):
        learner.learn(texts[1 + i], provenance(f"other/{i}")).raise_for_status()
    return learner, target.event


def bench_removal(kind: str, later_counts: list[int], gold: list[str]) -> list[dict[str, object]]:
    """Time revert and unlearn of one source against the number of commits after it."""
    texts = short_threads(max(later_counts) + 1)
    rows = []
    for later in later_counts:
        with tempfile.TemporaryDirectory() as folder:
            learner, target = _learner_with_history(kind, later, Path(folder) / "a", texts, gold)
            start = time.perf_counter()
            learner.unlearn(source="target/source", actor="bench")
            unlearn_s = time.perf_counter() - start
            learner.close()
            learner, target = _learner_with_history(kind, later, Path(folder) / "b", texts, gold)
            start = time.perf_counter()
            learner.revert(target.time - timedelta(microseconds=1), actor="bench")
            revert_s = time.perf_counter() - start
            learner.close()
        rows.append({"later_events": later, "unlearn_s": unlearn_s, "revert_s": revert_s})
        logger.info("later=%d unlearn %.3f s revert %.3f s", later, unlearn_s, revert_s)
    return rows


def bench_exposure(kind: str, repetitions: int, rivals: int, gold: list[str]) -> dict[str, object]:
    """Measure the exposure of a redacted and an unredacted canary before and after learning."""
    learner = GovernedLearner(make_model(kind), None, parse_policy(BENCH_POLICY), gold_texts=gold, clock=StepClock())
    redacted = Canary(name="card (redacted)", template="card on file: {secret}.", secret="4539148803436467",
                      luhn=True, rivals=rivals)
    control = Canary(name="vault code (not redacted)", template="the vault code is {secret}.", secret="739201",
                     rivals=rivals)
    record = "Customer record. card on file: 4539 1488 0343 6467. the vault code is 739201. "
    before = {c.name: exposure(learner.rail, c).exposure for c in (redacted, control)}
    for _ in range(repetitions):
        learner.learn(record * 3, provenance("crm/customers")).raise_for_status()
    after = {c.name: exposure(learner.rail, c).exposure for c in (redacted, control)}
    learner.close()
    return {"candidates": rivals + 1, "max_exposure_bits": float(torch.log2(torch.tensor(rivals + 1.0))),
            "learn_events": repetitions, "occurrences_learned": 3 * repetitions,
            "exposure_before": before, "exposure_after": after}


def bench_drift(good: int) -> dict[str, object]:
    """Learn good threads, then a bad source: record the alert, the freeze and the revert."""
    gold = [thread.text for thread in support_threads("heldout")[:3]]
    learner = GovernedLearner(ToyFastWeightModel(seed=0), None, parse_policy(BENCH_POLICY), gold_texts=gold,
                              clock=StepClock())
    for thread in support_threads("learn")[:good]:
        learner.learn(thread.text, provenance(thread.provenance().source_id)).raise_for_status()

    gold_before = learner._head_metrics["gold_loss"]
    rng = random.Random(0)
    letters = "αβγδεζηθικλμνξοπρστυφχψω"
    bad_text = " ".join("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(300))
    last_good_time = learner.lineage.commits[-1].time
    outcome = learner.learn(bad_text, provenance("bad/gibberish"))
    gold_bad = outcome.event.metrics_after.get("gold_loss")
    frozen_after_alert = learner.frozen
    blocked = learner.learn(support_threads("learn")[good].text, provenance("ubuntu-irc/next"))

    start = time.perf_counter()
    learner.revert(last_good_time, actor="bench-operator", reason="undo the bad source the drift alert flagged")
    revert_s = time.perf_counter() - start
    learner.resume(actor="bench-operator", reason="bad source reverted")

    result = {
        "good_commits": good,
        "bad_commit_status": outcome.status,
        "alerts": [alert.model_dump() for alert in outcome.alerts],
        "frozen_after_alert": frozen_after_alert,
        "next_learn_while_frozen": blocked.rule,
        "gold_loss_before_bad": gold_before,
        "gold_loss_after_bad": gold_bad,
        "gold_loss_after_revert": learner._head_metrics["gold_loss"],
        "revert_s": revert_s,
        "frozen_after_resume": learner.frozen,
        "audit_kinds": learner.audit.summary()["by_kind"],
        "chain_ok": learner.audit.verify().ok,
    }
    learner.close()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run every section, print a summary and write the JSON results."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=("tiny", "toy"), default="tiny",
                        help="model for the removal and exposure sections (default: the real cpu-tiny rail)")
    parser.add_argument("--out", type=Path, default=Path("governance_bench.json"), help="JSON file to write")
    parser.add_argument("--audit-events", type=int, default=2000, help="rows appended per audit store")
    parser.add_argument("--later", type=int, nargs="+", default=[0, 2, 4, 8, 16],
                        help="numbers of commits after the unlearned source")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args(argv)
    if args.quick:
        args.audit_events, args.later = 200, [0, 2]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    gold = [thread.text[:400] for thread in support_threads("heldout")[:2]]

    results: dict[str, object] = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
                    "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "model": args.model,
    }
    timings = {}
    for name, run in (
        ("audit", lambda: bench_audit(args.audit_events)),
        ("removal", lambda: bench_removal(args.model, args.later, gold)),
        ("exposure", lambda: bench_exposure(args.model, 2 if args.quick else 5, 63 if args.quick else 255, gold)),
        ("drift", lambda: bench_drift(3 if args.quick else 6)),
    ):
        start = time.perf_counter()
        results[name] = run()
        timings[name] = time.perf_counter() - start
    results["section_seconds"] = timings

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2, default=str))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
