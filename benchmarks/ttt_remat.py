"""Memory and time of exact meta-learning with and without rematerialized inner steps.

For each sequence length the exact meta-loss of one sequence is built and
differentiated: once keeping every inner step's activations for the outer
backward pass, once rematerializing each step (activation checkpointing). Each
measurement runs in a fresh process, which reports its peak resident memory
above what it held before the step (model and tokens loaded, one warm-up step
at the shortest length done). The growth of that peak per mini-batch is compared
with the size of one set of fast weights plus one KV cache of the suffix blocks.
A separate pass checks that both modes give the same outer gradients.

Usage (from any folder but the repository root)::

    python benchmarks/ttt_remat.py --json benchmarks/results/ttt_remat.json
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

from tworail.rails.ttt.config import InnerLoopConfig, preset
from tworail.rails.ttt.meta import meta_loss
from tworail.rails.ttt.model import TTTModel

from results_file import write_results

MIB = 2**20
MODES = ("prefix", "kept", "rematerialized")
"""Measured passes: the prefix blocks alone, and the exact meta step without and with rematerialization."""


def per_mini_batch_state_bytes(model: TTTModel) -> int:
    """Return the bytes of one set of fast weights plus one suffix KV cache (k + b keys and values), fp32."""
    config = model.config
    fast = sum(value.numel() for value in model.w0().values())
    cache = 2 * config.n_suffix * (config.window + config.mini_batch) * config.d_model
    return 4 * (fast + cache)


def meta_step(model: TTTModel, tokens: torch.Tensor, rematerialize: bool) -> list[torch.Tensor]:
    """Run one exact meta-learning forward and backward pass; return the outer gradients."""
    model.zero_grad(set_to_none=True)
    inner = InnerLoopConfig.for_model(model.config)
    meta_loss(model, tokens, inner, "exact", 1.0, rematerialize).backward()
    return [parameter.grad.clone() for parameter in model.parameters()]


def peak_kib() -> int:
    """Return this process's peak resident memory in KiB (Linux ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def prefix_step(model: TTTModel, tokens: torch.Tensor) -> None:
    """Run the prefix blocks alone forward and backward, as the meta step runs them."""
    inputs = tokens[:, :-1]
    h, _ = model.run_prefix(inputs, torch.arange(inputs.shape[1]), [None] * model.config.n_prefix)
    h.square().mean().backward()


def child(preset_name: str, length: int, mode: str, threads: int) -> dict[str, float]:
    """Measure one (length, mode) pair in this process: peak memory growth and seconds of the step.

    Modes: 'kept' and 'rematerialized' run the exact meta step; 'prefix' runs only the prefix blocks.
    """
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    config = preset(preset_name)
    model = TTTModel(config)
    def step(tokens: torch.Tensor) -> None:
        if mode == "prefix":
            prefix_step(model, tokens)
        else:
            meta_step(model, tokens, mode == "rematerialized")

    step(torch.randint(0, config.vocab_size, (1, 2 * config.mini_batch + 1)))
    tokens = torch.randint(0, config.vocab_size, (1, length + 1))
    before = peak_kib()
    started = time.perf_counter()
    step(tokens)
    seconds = time.perf_counter() - started
    return {"peak_growth_bytes": (peak_kib() - before) * 1024, "seconds": seconds}


def gradient_difference(preset_name: str, length: int) -> float:
    """Return the largest absolute difference between the outer gradients of the two modes."""
    torch.manual_seed(0)
    config = preset(preset_name)
    model = TTTModel(config)
    tokens = torch.randint(0, config.vocab_size, (1, length + 1))
    kept, recomputed = meta_step(model, tokens, False), meta_step(model, tokens, True)
    return max(float((a - b).abs().max()) for a, b in zip(kept, recomputed, strict=True))


def run_child(args: argparse.Namespace, length: int, mode: str) -> dict[str, float]:
    """Run `child` in a fresh interpreter so that each peak starts from the same baseline."""
    command = [sys.executable, __file__, "--preset", args.preset, "--threads", str(args.threads),
               "--child", str(length), mode]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def measure_all(args: argparse.Namespace) -> list[dict[str, float]]:
    """Measure every length in every mode, printing one table row each; return the rows."""
    rows = []
    print("| tokens | mode | peak memory growth MiB | seconds |")
    print("|---|---|---|---|")
    for length in args.lengths:
        for mode in MODES:
            measured = run_child(args, length, mode)
            rows.append({"tokens": length, "mode": mode, **measured})
            print(f"| {length} | {mode} | {measured['peak_growth_bytes'] / MIB:.1f} | {measured['seconds']:.2f} |")
    return rows


def growth_per_mini_batch(rows: list[dict[str, float]], lengths: list[int], mini_batch: int) -> dict[str, float]:
    """Return, per mode, the peak growth in bytes per mini-batch between the shortest and longest length."""
    slopes = {}
    for mode in MODES:
        first, last = (row for row in rows if row["mode"] == mode and row["tokens"] in (lengths[0], lengths[-1]))
        mini_batches = (last["tokens"] - first["tokens"]) / mini_batch
        slopes[mode] = (last["peak_growth_bytes"] - first["peak_growth_bytes"]) / mini_batches
        print(f"{mode}: {slopes[mode] / MIB:.2f} MiB more peak memory per mini-batch")
    return slopes


def main() -> None:
    """Measure each length in both modes, print a table and optionally write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu-small", help="ModelConfig preset name")
    parser.add_argument("--lengths", type=int, nargs="+", default=[256, 512, 1024, 2048], help="sequence lengths")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--child", nargs=2, metavar=("LENGTH", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.preset, int(args.child[0]), args.child[1], args.threads)))
        return
    if len(args.lengths) < 2:
        parser.error(f"--lengths {args.lengths} has one length; give two or more to measure growth per mini-batch")

    config = preset(args.preset)
    state = per_mini_batch_state_bytes(TTTModel(config))
    rows = measure_all(args)
    slopes = growth_per_mini_batch(rows, args.lengths, config.mini_batch)
    for mode in ("kept", "rematerialized"):
        print(f"{mode}, inner loop alone (minus the prefix): {(slopes[mode] - slopes['prefix']) / MIB:.2f} MiB per mini-batch")
    print(f"fast weights + one suffix KV cache: {state / MIB:.2f} MiB per mini-batch")

    difference = gradient_difference(args.preset, args.lengths[0])
    print(f"largest outer-gradient difference between the modes at {args.lengths[0]} tokens: {difference:.3g}")
    if args.json:
        report = {"preset": args.preset, "config": config.to_dict(), "batch_size": 1, "threads": args.threads,
                  "fast_weights_plus_cache_bytes": state, "rows": rows, "peak_bytes_per_mini_batch": slopes,
                  "max_gradient_difference": difference,
                  "hardware": f"{platform.processor() or platform.machine()}, torch threads = {args.threads}"}
        write_results(args.json, report)


if __name__ == "__main__":
    main()
