"""Seconds per training step of a TTT-E2E preset: pretraining, exact and first-order meta-learning.

Used to size the `cpu-small` preset of the bundled checkpoint: run it with the
candidate shape and multiply by the planned step counts. Random tokens stand in
for text, which does not change the cost.

Usage (from any folder but the repository root)::

    python benchmarks/ttt_step_times.py --preset cpu-small --batch-size 4 --repeats 3 [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from tworail.rails.ttt.config import InnerLoopConfig, preset
from tworail.rails.ttt.meta import meta_loss, pretrain_loss
from tworail.rails.ttt.model import TTTModel


def median_seconds(step: Callable[[], torch.Tensor], repeats: int) -> float:
    """Return the median wall time of forward plus backward over `repeats` runs after one warm-up."""
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        step().backward()
        times.append(time.perf_counter() - started)
    return statistics.median(times[1:])


def main() -> None:
    """Time each kind of step and print (and optionally write) seconds per step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small", help="ModelConfig preset name")
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per step")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per kind of step")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    config = preset(args.preset)
    model = TTTModel(config)
    tokens = torch.randint(0, config.vocab_size, (args.batch_size, config.seq_len + 1))
    inner = InnerLoopConfig.for_model(config)
    results = {
        "preset": args.preset,
        "config": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "batch_size": args.batch_size,
        "threads": args.threads,
        "seconds_per_step": {
            "pretrain": median_seconds(lambda: pretrain_loss(model, tokens), args.repeats),
            "meta_exact": median_seconds(lambda: meta_loss(model, tokens, inner, "exact", 1.0), args.repeats),
            "meta_first_order": median_seconds(
                lambda: meta_loss(model, tokens, inner, "first_order", 1.0), args.repeats
            ),
        },
    }
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
