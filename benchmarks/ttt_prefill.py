"""Prefill time per 1,000 tokens against context length: TTT-E2E against full attention.

TTT-E2E runs the real inference inner loop of the `cpu-small` shape (window 256,
mini-batch 64): one SGD step on the prime MLPs per mini-batch. It reads the
context in segments of `seq_len` tokens and carries the KV cache and fast weights
across segments, as `LearnableRail` does. Its cost per token does not depend on
the context length.

Full attention is a plain causal Transformer with the same blocks and weights
(prime MLPs applied as ordinary MLPs, window = context). Its attention runs
over query chunks with `scaled_dot_product_attention`, so memory stays bounded
while compute grows with the square of the context.

Random weights and random tokens: the cost does not depend on them. One timed
run per length, two for lengths up to 4K (the faster one is kept). A full
attention length whose estimated time (4 times the previous length's) exceeds
`--max-seconds` is not run; its row is marked as an extrapolation.

Usage (from any folder but the repository root)::

    python benchmarks/ttt_prefill.py --json benchmarks/results/ttt_prefill.json
    python benchmarks/ttt_prefill.py --quick   # 1K and 2K only
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from tworail.rails.ttt.config import InnerLoopConfig, preset
from tworail.rails.ttt.evaluate import frozen
from tworail.rails.ttt.inner_loop import batch_fast_weights, run_inner_loop
from tworail.rails.ttt.model import Block, TTTModel, apply_rope

from results_file import write_results

logger = logging.getLogger("ttt_prefill")

LENGTHS = (1024, 2048, 4096, 8192, 16384, 32768, 65536)
"""Context lengths in tokens."""
REPEATED_UP_TO = 4096
"""Lengths up to this are timed twice."""


def ttt_prefill(model: TTTModel, tokens: torch.Tensor) -> None:
    """Read tokens (1, N) with inner-loop updates, segment by segment, as the learnable rail does."""
    inner = InnerLoopConfig.for_model(model.config)
    fast = batch_fast_weights(model.w0(), 1)
    caches = None
    seg = model.config.seq_len
    with frozen(model):
        for start in range(0, tokens.shape[1] - 1, seg):
            piece = tokens[:, start : start + seg + 1]
            result = run_inner_loop(
                model, piece[:, :-1], piece[:, 1:], fast, inner, caches=caches, start_position=start
            )
            fast, caches = result.fast_weights, result.caches


def chunked_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, chunk: int) -> torch.Tensor:
    """Causal attention of q, k, v (B, H, T, D), computed for `chunk` queries at a time."""
    outputs = []
    length = q.shape[2]
    for start in range(0, length, chunk):
        stop = min(start + chunk, length)
        # Queries start..stop-1 see keys 0..query; the mask covers only the visible prefix.
        mask = torch.arange(stop)[None, :] <= torch.arange(start, stop)[:, None]
        outputs.append(F.scaled_dot_product_attention(q[:, :, start:stop], k[:, :, :stop], v[:, :, :stop], attn_mask=mask))
    return torch.cat(outputs, dim=2)


def full_attention_block(block: Block, h: torch.Tensor, inv_freq: torch.Tensor, chunk: int) -> torch.Tensor:
    """Run one block of the TTT model as a full-attention block (prime MLP as an ordinary MLP)."""
    attn = block.attn
    x = block.attn_pre(h)
    positions = torch.arange(h.shape[1])
    q = apply_rope(attn.q_norm(attn._heads(x @ attn.wq)), positions, inv_freq)
    k = apply_rope(attn.k_norm(attn._heads(x @ attn.wk)), positions, inv_freq)
    v = attn._heads(x @ attn.wv)
    out = chunked_causal_attention(q, k, v, chunk).transpose(1, 2).reshape(h.shape[0], h.shape[1], -1)
    h = h + block.attn_post(out @ attn.wo)
    if block.prime is not None:
        h = h + block.prime_post(block.prime(block.prime_pre(h)))
    return h + block.mlp_post(block.mlp(block.mlp_pre(h)))


def full_attention_prefill(model: TTTModel, tokens: torch.Tensor, chunk: int) -> None:
    """Run the whole context (1, N) through the blocks as a full-attention Transformer and the LM head."""
    with torch.inference_mode():
        h = model.embed_tokens(tokens[:, :-1])
        for block in model.blocks:
            h = full_attention_block(block, h, model.inv_freq, chunk)
        # The head runs chunk by chunk so the (N, vocab) logits never exist at once.
        for piece in h.split(chunk, dim=1):
            model.lm_head(piece)


def time_once(prefill: Callable[[], None]) -> float:
    """Return the wall seconds of one call."""
    started = time.perf_counter()
    prefill()
    return time.perf_counter() - started


def measure(name: str, prefill: Callable[[torch.Tensor], None], length: int, vocab: int) -> dict[str, float]:
    """Time prefill of `length` random tokens; return seconds and milliseconds per 1,000 tokens."""
    tokens = torch.randint(0, vocab, (1, length + 1), generator=torch.Generator().manual_seed(length))
    runs = 2 if length <= REPEATED_UP_TO else 1
    seconds = min(time_once(lambda: prefill(tokens)) for _ in range(runs))
    logger.info("%s %d tokens: %.1f s", name, length, seconds)
    return {"length": length, "seconds": seconds, "ms_per_1k_tokens": 1000 * seconds / (length / 1000), "runs": runs}


def run(lengths: tuple[int, ...], work_dir: Path, max_seconds: float, chunk: int) -> dict[str, object]:
    """Time both models at every length (reusing rows cached in work_dir); return the JSON-ready results."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    config = preset("cpu-small")
    model = TTTModel(config).eval()
    prefills = {
        "ttt_e2e": lambda tokens: ttt_prefill(model, tokens),
        "full_attention": lambda tokens: full_attention_prefill(model, tokens, chunk),
    }
    work_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, list[dict[str, object]]] = {name: [] for name in prefills}
    for name, prefill in prefills.items():
        for length in lengths:
            cached = work_dir / f"{name}_{length}.json"
            if cached.is_file():
                results[name].append(json.loads(cached.read_text(encoding="utf-8")))
                continue
            previous = results[name][-1] if results[name] else None
            if previous is not None and 4 * previous["seconds"] > max_seconds:
                # Quadratic attention: doubling the context multiplies the time by about 4.
                estimate = 4 * previous["seconds"]
                row = {"length": length, "seconds": estimate, "ms_per_1k_tokens": 1000 * estimate / (length / 1000),
                       "extrapolated": True}
            else:
                row = measure(name, prefill, length, config.vocab_size)
                cached.write_text(json.dumps(row) + "\n", encoding="utf-8")
            results[name].append(row)
    return {
        "model_config": config.to_dict(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "query_chunk": chunk,
        "results": results,
        "ratio_full_over_ttt": {
            str(a["length"]): a["ms_per_1k_tokens"] / b["ms_per_1k_tokens"]
            for a, b in zip(results["full_attention"], results["ttt_e2e"], strict=True)
        },
        "hardware": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch thread",
    }


def main() -> None:
    """Parse arguments, run the benchmark, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/ttt_prefill"), help="cache of timed rows")
    parser.add_argument("--max-seconds", type=float, default=300.0, help="maximum estimated seconds of a full-attention run; longer ones are extrapolated")
    parser.add_argument("--chunk", type=int, default=1024, help="queries per attention chunk of full attention")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1K and 2K tokens")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    lengths = LENGTHS[:2] if args.quick else LENGTHS
    results = run(lengths, args.work_dir, args.max_seconds, args.chunk)
    print("| context | TTT-E2E ms/1K | full attention ms/1K | ratio |")
    print("|---|---|---|---|")
    for ttt, full in zip(results["results"]["ttt_e2e"], results["results"]["full_attention"], strict=True):
        mark = " (extrapolated)" if full.get("extrapolated") else ""
        ratio = full["ms_per_1k_tokens"] / ttt["ms_per_1k_tokens"]
        print(f"| {ttt['length']} | {ttt['ms_per_1k_tokens']:.0f} | {full['ms_per_1k_tokens']:.0f}{mark} | {ratio:.2f} |")
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
