"""Held-out loss of the learnable rail with and without test-time training.

Measures, on the 52 bundled held-out support threads (Ubuntu IRC dev split),
the mean next-token loss in nats per token (token-weighted over all threads):

* ``w0``: the checkpoint as shipped, no test-time training;
* ``after_learn``: after ``learn_many`` on the 123 bundled learn threads
  (persistent mode, fast weights kept);
* ``per_request_ttt``: each held-out thread read with inner-loop updates that are
  discarded afterwards (every token scored before its own mini-batch's update),
  starting from W0, and also starting from the weights after learning.

It also times ``learn_many`` on the learn threads and ranking 10 candidates.

Usage (from any folder but the repository root)::

    HF_HUB_OFFLINE=1 python benchmarks/learnable_heldout.py --json heldout.json [--model DIR]
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from pathlib import Path

import torch

from tworail.datasets import support_threads
from tworail.rails.ttt.rail import LearnableRail

from results_file import write_results

logger = logging.getLogger("learnable_heldout")


def mean_loss(rail: LearnableRail, texts: list[str], test_time_training: bool) -> tuple[float, int]:
    """Return the token-weighted mean loss over texts and the number of scored tokens."""
    losses = torch.cat([rail.score(text, test_time_training=test_time_training) for text in texts])
    return float(losses.mean()), int(losses.numel())


def time_ranking(rail: LearnableRail, prompt: str, candidates: list[str]) -> float:
    """Return the seconds one `rank` call over the candidates takes."""
    started = time.perf_counter()
    rail.rank(prompt, candidates)
    return time.perf_counter() - started


def run(model_dir: Path | None) -> dict[str, object]:
    """Run every measurement and return the results as a JSON-ready dict."""
    torch.set_num_threads(1)
    rail = LearnableRail.from_pretrained(model_dir)
    learn_texts = [thread.text for thread in support_threads("learn")]
    heldout = support_threads("heldout")
    heldout_texts = [thread.text for thread in heldout]

    w0_loss, tokens = mean_loss(rail, heldout_texts, test_time_training=False)
    w0_ttt_loss, _ = mean_loss(rail, heldout_texts, test_time_training=True)

    started = time.perf_counter()
    report = rail.learn_many(learn_texts)
    learn_seconds = time.perf_counter() - started

    learned_loss, _ = mean_loss(rail, heldout_texts, test_time_training=False)
    learned_ttt_loss, _ = mean_loss(rail, heldout_texts, test_time_training=True)

    first_lines = [text.splitlines()[0] for text in heldout_texts]
    candidates = [line.split("> ", 1)[-1] for line in first_lines[:10]]
    rank_seconds = time_ranking(rail, first_lines[10], candidates)

    return {
        "model": str(model_dir) if model_dir else "bundled (tworail/data/model)",
        "heldout_threads": len(heldout_texts),
        "heldout_tokens": tokens,
        "learn_threads": len(learn_texts),
        "loss_nats_per_token": {
            "w0_no_ttt": w0_loss,
            "w0_per_request_ttt": w0_ttt_loss,
            "after_learn_no_ttt": learned_loss,
            "after_learn_per_request_ttt": learned_ttt_loss,
        },
        "learn_report": report.model_dump(),
        "learn_seconds": learn_seconds,
        "rank_10_candidates_seconds": rank_seconds,
        "hardware": f"{platform.processor() or platform.machine()}, torch threads = 1",
    }


def main() -> None:
    """Parse arguments, run the benchmark, print a summary and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder; default: the bundled checkpoint")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")

    results = run(args.model)
    losses = results["loss_nats_per_token"]
    print(f"held-out threads: {results['heldout_threads']} ({results['heldout_tokens']} tokens)")
    for name, value in losses.items():
        print(f"  {name:28s} {value:.4f} nats/token")
    print(f"learn_many on {results['learn_threads']} threads: {results['learn_seconds']:.1f} s")
    print(f"rank 10 candidates: {results['rank_10_candidates_seconds']:.2f} s")
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
