"""TTT-E2E against window-only and full-history predictors on a synthetic language.

Each document draws its own unigram distribution theta ~ Dirichlet(alpha) over a
small vocabulary and then samples its tokens i.i.d. from theta. Because theta is
unknown, the Bayes-optimal next-token distribution given n observed tokens is the
Dirichlet posterior predictive (count_v + alpha) / (n + V * alpha):

* the full-history ideal counts every earlier token of the document, so its loss
  keeps falling with position;
* the window-only ideal counts only the tokens the sliding-window mask lets a
  query see (the k tokens before its mini-batch plus the mini-batch's causal
  part), so its loss plateaus once the window is full;
* a stack of L sliding-window layers can reach further back, about L * k tokens,
  so the benchmark also reports the ideal that counts everything within that
  reach: the bound a sliding-window model without test-time training cannot beat.

All three are computed by exact counting on the evaluation documents. Five variants of
the project's `TTTModel` train on the same batches for the same number of steps:
sliding-window only (no inner loop), full attention (window >= sequence length),
naive TTT (the sliding-window model with test-time updates it was not trained
for), and TTT-E2E meta-learned with exact and first-order meta-gradients. Every
variant has the same architecture, so the parameter counts are equal.

The default shape gives every variant the same budget, long enough that full
attention learns in-context counting: its loss falls below the best window-only
predictor past the window. Embeddings start at a standard deviation of 1.0
rather than 0.02. With the sandwich norms every sub-layer adds a unit-RMS output
to the residual stream, so a 0.02 embedding is a small part of it. In a trial
run, full attention at 0.02 after 2,000 steps was still worse than at 1.0 after 600.

Resumable: each variant checkpoints its model, optimizer and data generator every
`CHECKPOINT_EVERY` steps, and each finished model and each variant's losses are
cached in `--work-dir`; rerunning continues where it stopped.

Usage (from any folder but the repository root)::

    python benchmarks/ttt_synthetic.py --json benchmarks/results/ttt_synthetic.json
    python benchmarks/ttt_synthetic.py --quick   # smoke run, a few steps per variant
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from tworail.rails.ttt.config import InnerLoopConfig, ModelConfig, baseline_mlp_width
from tworail.rails.ttt.evaluate import ttt_losses
from tworail.rails.ttt.meta import inner_lr_multiplier, meta_loss, pretrain_loss
from tworail.rails.ttt.model import TTTModel
from tworail.rails.ttt.train import TrainConfig, learning_rate, make_optimizer

from results_file import write_results

logger = logging.getLogger("ttt_synthetic")

CHECKPOINT_EVERY = 100
"""Optimizer steps between a variant's training checkpoints."""
VARIANTS = ("sliding_window", "full_attention", "naive_ttt", "ttt_e2e_exact", "ttt_e2e_first_order")
"""Evaluated variants; naive TTT reuses the sliding-window model."""


@dataclass(frozen=True)
class SyntheticSettings:
    """Shape of the synthetic language, the model and the training budget."""

    vocab: int = 64
    """Vocabulary size V of the synthetic language."""
    alpha: float = 0.3
    """Symmetric Dirichlet concentration of each document's unigram distribution."""
    d_model: int = 64
    """Model width."""
    n_layers: int = 4
    """Blocks; the last one is the suffix block with the prime MLP."""
    n_heads: int = 2
    """Attention heads."""
    window: int = 16
    """Sliding-window size k."""
    mini_batch: int = 8
    """Inner-loop mini-batch size b."""
    seq_len: int = 256
    """Tokens per training and evaluation sequence."""
    steps: int = 2000
    """Optimizer steps per trained variant."""
    batch_size: int = 8
    """Sequences per optimizer step."""
    lr: float = 3e-3
    """Peak AdamW learning rate (linear warm-up, cosine decay)."""
    embed_init_std: float = 1.0
    """Standard deviation of the initial embedding entries (the same for every variant)."""
    eval_docs: int = 128
    """Evaluation documents (disjoint seed from training)."""
    buckets: int = 8
    """Position buckets of equal width over the sequence."""
    seed: int = 0
    """Seed of the data and the initialization."""


def sample_documents(settings: SyntheticSettings, count: int, generator: torch.Generator) -> torch.Tensor:
    """Return (count, seq_len + 1) token ids, each row i.i.d. from its own Dirichlet draw."""
    concentration = torch.full((count, settings.vocab), settings.alpha)
    # Gamma sampling with an explicit generator keeps batches reproducible per step.
    gammas = torch._standard_gamma(concentration, generator=generator)
    theta = gammas / gammas.sum(dim=1, keepdim=True)
    return torch.multinomial(theta, settings.seq_len + 1, replacement=True, generator=generator)


def posterior_predictive_losses(
    tokens: torch.Tensor, settings: SyntheticSettings, window: int | None, layers: int = 1
) -> torch.Tensor:
    """Return (B, T) losses of the Dirichlet posterior predictive for targets tokens[:, 1:].

    With `window=None` the predictor counts all earlier tokens; otherwise it counts
    the tokens the model's mask shows to input position p: positions from
    (p // b) * b - k through p. With `layers` > 1 it counts what that many stacked
    masked layers can reach: the first visible position, found again from there.
    """
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    one_hot = torch.nn.functional.one_hot(inputs, settings.vocab).double()  # (B, T, V)
    cumulative = torch.cat((torch.zeros_like(one_hot[:, :1]), one_hot.cumsum(dim=1)), dim=1)  # (B, T+1, V)
    positions = torch.arange(inputs.shape[1])
    if window is None:
        first = torch.zeros_like(positions)
    else:
        first = positions
        for _ in range(layers):
            first = (first // settings.mini_batch * settings.mini_batch - window).clamp_min(0)
    counts = cumulative[:, positions + 1] - cumulative[:, first]  # (B, T, V)
    seen = counts.sum(dim=-1)  # (B, T)
    target_counts = counts.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    probability = (target_counts + settings.alpha) / (seen + settings.vocab * settings.alpha)
    return -probability.log().float()


LINEAR_READOUT_SCALES = (2, 4, 6, 8, 12, 16, 24, 32)
"""Scales beta tried for the linear-readout reference; the best one on the last bucket is reported."""


def linear_readout_losses(tokens: torch.Tensor, settings: SyntheticSettings) -> tuple[torch.Tensor, float]:
    """Return (B, T) losses of softmax(beta * frequencies of all earlier tokens) and the beta used.

    This is what one attention layer spreading its weight evenly over the history,
    followed by a linear readout, can compute. It shows whether beating the
    window-only ideal needs only memory of the context or also a learned log-count readout.
    """
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    counts = torch.nn.functional.one_hot(inputs, settings.vocab).double().cumsum(dim=1)
    frequencies = counts / counts.sum(dim=-1, keepdim=True)
    candidates = []
    for beta in LINEAR_READOUT_SCALES:
        log_probs = torch.log_softmax(beta * frequencies, dim=-1)
        losses = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).float()
        candidates.append((losses, float(beta)))
    return min(candidates, key=lambda candidate: float(candidate[0].chunk(settings.buckets, dim=1)[-1].mean()))

def model_config(settings: SyntheticSettings, full_attention: bool) -> ModelConfig:
    """Return the TTTModel shape of a variant; full attention widens the window to the sequence."""
    return ModelConfig(
        vocab_size=settings.vocab,
        d_model=settings.d_model,
        n_layers=settings.n_layers,
        n_heads=settings.n_heads,
        window=settings.seq_len if full_attention else settings.window,
        mini_batch=settings.mini_batch,
        seq_len=settings.seq_len,
        embed_init_std=settings.embed_init_std,
    )


def baseline_parameter_count(config: ModelConfig) -> int:
    """Return the parameters of the same shape without prime MLPs, at the full SwiGLU width."""
    d = config.d_model
    attention = 4 * d * d + 2 * config.head_dim
    block = attention + 3 * d * baseline_mlp_width(d) + 4 * d
    return config.vocab_size * d + config.n_layers * block + d


def train_variant(
    settings: SyntheticSettings, variant: str, progress: bool, checkpoint: Path
) -> tuple[TTTModel, dict[str, float]]:
    """Train one variant for `settings.steps` steps, resuming from `checkpoint`; return the model and a summary."""
    config = model_config(settings, full_attention=variant == "full_attention")
    torch.manual_seed(settings.seed)
    model = TTTModel(config)
    schedule = TrainConfig(run_dir="unused", pretrain_lr=settings.lr, meta_lr=settings.lr)
    optimizer = make_optimizer(model, schedule)
    mode = {"ttt_e2e_exact": "exact", "ttt_e2e_first_order": "first_order"}.get(variant)
    inner = InnerLoopConfig.for_model(config)
    generator = torch.Generator().manual_seed(settings.seed)
    losses: list[float] = []
    seconds = 0.0
    if checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        generator.set_state(saved["generator"])
        losses, seconds = saved["losses"], saved["seconds"]
        logger.info("%s: resumed at step %d", variant, len(losses))
    started = time.perf_counter() - seconds
    for step in tqdm(range(len(losses), settings.steps), desc=variant, disable=not progress,
                     initial=len(losses), total=settings.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, settings.steps, settings.lr, schedule)
        batch = sample_documents(settings, settings.batch_size, generator)
        if mode is None:
            loss = pretrain_loss(model, batch)
        else:
            loss = meta_loss(model, batch, inner, mode, inner_lr_multiplier(step, settings.steps))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % CHECKPOINT_EVERY == 0:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "generator": generator.get_state(), "losses": losses,
                     "seconds": time.perf_counter() - started}
            torch.save(state, checkpoint.with_suffix(".tmp"))
            checkpoint.with_suffix(".tmp").replace(checkpoint)
    tail = losses[-max(1, len(losses) // 10) :]
    return model, {"train_seconds": time.perf_counter() - started, "final_train_loss": sum(tail) / len(tail)}


def bucket_means(losses: torch.Tensor, buckets: int) -> list[float]:
    """Return the mean loss of each of `buckets` equal position ranges of (B, T) losses."""
    return [float(chunk.mean()) for chunk in losses.chunk(buckets, dim=1)]


def evaluate_variant(model: TTTModel, tokens: torch.Tensor, update: bool, buckets: int) -> list[float]:
    """Return bucketed per-token losses of a model with or without test-time updates."""
    model.eval()
    return bucket_means(ttt_losses(model, tokens, update=update), buckets)


def check_work_dir(work_dir: Path, settings: SyntheticSettings) -> None:
    """Record the settings in `work_dir/settings.json`, or raise if the cached results used other settings."""
    path = work_dir / "settings.json"
    if not path.is_file():
        path.write_text(json.dumps(asdict(settings), indent=2) + "\n", encoding="utf-8")
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    changed = {name: (saved.get(name), value) for name, value in asdict(settings).items() if saved.get(name) != value}
    if changed:
        raise SystemExit(
            f"{work_dir} caches results of other settings (saved -> now: {changed}); pass a new --work-dir"
        )


def run(
    settings: SyntheticSettings, work_dir: Path, progress: bool, variants: tuple[str, ...] = VARIANTS
) -> dict[str, object]:
    """Train and evaluate `variants` (skipping cached ones); return the JSON-ready results."""
    work_dir.mkdir(parents=True, exist_ok=True)
    check_work_dir(work_dir, settings)
    eval_tokens = sample_documents(settings, settings.eval_docs, torch.Generator().manual_seed(10_000 + settings.seed))
    results: dict[str, object] = {}
    for variant in variants:
        cached = work_dir / f"{variant}.json"
        if cached.is_file():
            results[variant] = json.loads(cached.read_text(encoding="utf-8"))
            continue
        trained = "sliding_window" if variant == "naive_ttt" else variant
        weights = work_dir / f"{trained}.pt"
        model = TTTModel(model_config(settings, full_attention=trained == "full_attention"))
        summary: dict[str, float] = {}
        if weights.is_file():
            model.load_state_dict(torch.load(weights))
            summary = json.loads((work_dir / f"{trained}.summary.json").read_text(encoding="utf-8"))
        else:
            model, summary = train_variant(settings, trained, progress, work_dir / f"{trained}.checkpoint.pt")
            torch.save(model.state_dict(), weights)
            (work_dir / f"{trained}.summary.json").write_text(json.dumps(summary) + "\n", encoding="utf-8")
        update = variant in ("naive_ttt", "ttt_e2e_exact", "ttt_e2e_first_order")
        row = {"loss_by_bucket": evaluate_variant(model, eval_tokens, update, settings.buckets), **summary}
        row["parameters"] = sum(p.numel() for p in model.parameters())
        cached.write_text(json.dumps(row) + "\n", encoding="utf-8")
        logger.info("%s: %s", variant, [round(x, 3) for x in row["loss_by_bucket"]])
        results[variant] = row

    reference = model_config(settings, full_attention=False)
    linear_readout, beta = linear_readout_losses(eval_tokens, settings)
    bucket_width = settings.seq_len // settings.buckets
    return {
        "settings": asdict(settings),
        "bucket_token_ranges": [[i * bucket_width, (i + 1) * bucket_width] for i in range(settings.buckets)],
        "ideal_full_history": bucket_means(posterior_predictive_losses(eval_tokens, settings, None), settings.buckets),
        "ideal_window_only": bucket_means(
            posterior_predictive_losses(eval_tokens, settings, settings.window), settings.buckets
        ),
        "ideal_stacked_windows": bucket_means(
            posterior_predictive_losses(eval_tokens, settings, settings.window, settings.n_layers), settings.buckets
        ),
        "linear_readout_full_history": bucket_means(linear_readout, settings.buckets),
        "linear_readout_beta": beta,
        "variants": results,
        "parameters_ttt_model": sum(p.numel() for p in TTTModel(reference).parameters()),
        "parameters_baseline_without_prime": baseline_parameter_count(reference),
        "hardware": f"{platform.processor() or platform.machine()}, torch threads = 1",
    }


def print_table(results: dict[str, object]) -> None:
    """Print the loss-by-bucket table in Markdown."""
    ranges = results["bucket_token_ranges"]
    print("| variant | " + " | ".join(f"{a}-{b}" for a, b in ranges) + " |")
    print("|---" * (len(ranges) + 1) + "|")
    rows = {name: row["loss_by_bucket"] for name, row in results["variants"].items()}
    rows["ideal window-only"] = results["ideal_window_only"]
    rows["ideal within the stacked windows"] = results["ideal_stacked_windows"]
    rows["ideal full-history"] = results["ideal_full_history"]
    rows["linear readout of all frequencies"] = results["linear_readout_full_history"]
    for name, values in rows.items():
        print(f"| {name} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


def main() -> None:
    """Parse arguments, run the benchmark, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/ttt_synthetic"), help="cache of models and rows")
    parser.add_argument("--steps", type=int, default=None, help="optimizer steps per variant")
    parser.add_argument("--quick", action="store_true", help="smoke run: 3 steps, 8 evaluation documents")
    parser.add_argument(
        "--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
        help="variants to run; separate processes may run disjoint variants into the same work dir",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    torch.set_num_threads(1)

    settings = SyntheticSettings()
    if args.quick:
        settings = SyntheticSettings(steps=3, eval_docs=8)
    if args.steps is not None:
        settings = SyntheticSettings(**{**asdict(settings), "steps": args.steps})
    results = run(settings, args.work_dir, not args.no_progress, tuple(args.variants))
    print_table(results)
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
