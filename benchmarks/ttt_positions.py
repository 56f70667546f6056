"""Loss by token position of the bundled TTT-E2E checkpoint on held-out real text.

Four held-out sources, none of them in the checkpoint's training or validation split:

* ``sqlite_pages``: the SQLite documentation pages bundled with tworail, which the
  corpus builder leaves out of training; each page is one text.
* ``debian_docs``: the Debian documentation pages of the corpus's held-out split
  (a hashed slice of each package); each page is one text.
* ``irc_heldout_hours``: the bundled held-out IRC threads from the Ubuntu IRC dev
  split, whose days the corpus builder never reads. The threads of each hour are
  joined in order of their first line into one text.
* ``hadoop_later_issues``: the latest Hadoop issues by creation date, which the
  corpus builder holds out, in date order, joined into texts of consecutive issues.

Each text is scored by `LearnableRail.score` with per-request test-time training
on and off, and the per-token losses are averaged in position buckets
(0-256, 256-512, ...) up to `--max-tokens`.

Usage (from any folder but the repository root)::

    HF_HUB_OFFLINE=1 python benchmarks/ttt_positions.py --corpus-documents RUN/corpus/documents.jsonl \
        [--model RUN/export] --json benchmarks/results/ttt_positions.json
    HF_HUB_OFFLINE=1 python benchmarks/ttt_positions.py --corpus-documents RUN/corpus/documents.jsonl --quick

RUN is the run folder of `tworail train` that produced the checkpoint; a corpus built
without Debian documentation simply has no Debian source.
"""

from __future__ import annotations

import argparse
import logging
import platform
import time
from collections import defaultdict
from pathlib import Path

import torch
from tqdm import tqdm

from tworail.datasets import sqlite_docs_dir, support_threads
from tworail.rails.ttt.corpus import html_to_text, read_documents
from tworail.rails.ttt.rail import LearnableRail

from results_file import write_results

logger = logging.getLogger("ttt_positions")

BUCKET = 256
"""Width of a position bucket in tokens."""
CHARS_PER_TOKEN_BOUND = 8
"""Characters kept per scored token: the BPE averages far fewer, so cutting texts here loses no scored position."""


def sqlite_texts() -> list[str]:
    """Return the plain text of every bundled SQLite HTML page."""
    pages = sorted(sqlite_docs_dir().glob("*.html"))
    return [html_to_text(page.read_text(encoding="utf-8")) for page in pages]


def irc_hour_texts() -> list[str]:
    """Return one text per hour: the held-out threads of that hour joined in order of their first line."""
    by_hour: dict[str, list] = defaultdict(list)
    for thread in support_threads("heldout"):
        by_hour[thread.hour].append(thread)
    return [
        "\n".join(thread.text for thread in sorted(threads, key=lambda t: t.lines[0]))
        for _, threads in sorted(by_hour.items())
    ]


def held_out_rows(documents: Path, source: str) -> list[dict[str, str]]:
    """Return the held-out rows of one source from a corpus build's documents.jsonl, in file order."""
    if not documents.is_file():
        raise FileNotFoundError(
            f"corpus file {documents} not found; pass --corpus-documents with the documents.jsonl "
            "of the run that trained the checkpoint"
        )
    rows = [row for row in read_documents(documents, "held_out") if row["source"] == source]
    if not rows:
        logger.warning("%s has no held-out %s documents, so that source is left out", documents, source)
    return rows


def grouped(texts: list[str], min_characters: int) -> list[str]:
    """Join consecutive texts, separated by a blank line, into groups of at least `min_characters`."""
    groups: list[str] = []
    current: list[str] = []
    for text in texts:
        current.append(text)
        if sum(len(part) for part in current) >= min_characters:
            groups.append("\n\n".join(current))
            current = []
    if current:
        groups.append("\n\n".join(current))
    return groups


def bucketed(losses: list[torch.Tensor], max_tokens: int) -> dict[str, list[float] | list[int]]:
    """Return mean loss and token count per position bucket over all texts (positions < max_tokens)."""
    buckets = max_tokens // BUCKET
    sums, counts = [0.0] * buckets, [0] * buckets
    for text_losses in losses:
        for index, chunk in enumerate(text_losses[:max_tokens].split(BUCKET)):
            sums[index] += float(chunk.sum())
            counts[index] += chunk.numel()
    # A bucket no text reaches has no mean; None keeps the JSON output valid.
    means = [total / count if count else None for total, count in zip(sums, counts, strict=True)]
    return {"mean_loss": means, "tokens": counts}


def score_source(rail: LearnableRail, texts: list[str], max_tokens: int, progress: bool) -> dict[str, object]:
    """Score texts with test-time training off and on; return bucketed losses of both."""
    # Positions past max_tokens are never reported, so cut texts before scoring to save time.
    texts = [text[: max_tokens * CHARS_PER_TOKEN_BOUND] for text in texts]
    result: dict[str, object] = {"texts": len(texts)}
    for ttt in (False, True):
        started = time.perf_counter()
        losses = [rail.score(text, test_time_training=ttt) for text in tqdm(texts, disable=not progress)]
        result["ttt_on" if ttt else "ttt_off"] = {
            **bucketed(losses, max_tokens),
            "seconds": time.perf_counter() - started,
        }
    result["text_tokens_scored"] = [min(max_tokens, len(rail.encode(text))) for text in texts]
    return result


def run(args: argparse.Namespace) -> dict[str, object]:
    """Load the checkpoint, score every source and return the JSON-ready results."""
    torch.set_num_threads(1)
    rail = LearnableRail.from_pretrained(args.model)
    sources = {
        "sqlite_pages": sqlite_texts(),
        "irc_heldout_hours": irc_hour_texts(),
        "debian_docs": [row["text"] for row in held_out_rows(args.corpus_documents, "debian-docs")],
        # The corpus builder writes the held-out issues oldest first.
        "hadoop_later_issues": grouped(
            [row["text"] for row in held_out_rows(args.corpus_documents, "hadoop-issues")],
            args.max_tokens * CHARS_PER_TOKEN_BOUND // 2,
        ),
    }
    sources = {name: texts for name, texts in sources.items() if texts}
    if args.quick:
        sources = {name: texts[:1] for name, texts in sources.items()}
    results = {}
    for name, texts in sources.items():
        results[name] = score_source(rail, texts, args.max_tokens, not args.no_progress)
        logger.info("%s done", name)
    return {
        "model": str(args.model) if args.model else "bundled (tworail/data/model)",
        "bucket_tokens": BUCKET,
        "max_tokens": args.max_tokens,
        "model_config": rail.model.config.to_dict(),
        "sources": results,
        "hardware": f"{platform.processor() or platform.machine()}, torch threads = 1",
    }


def print_table(results: dict[str, object]) -> None:
    """Print one Markdown row per source and setting, one column per bucket."""
    buckets = results["max_tokens"] // BUCKET
    print("| source | TTT | " + " | ".join(f"{i * BUCKET}-{(i + 1) * BUCKET}" for i in range(buckets)) + " |")
    print("|---" * (buckets + 2) + "|")
    for name, source in results["sources"].items():
        for setting in ("ttt_off", "ttt_on"):
            row = source[setting]["mean_loss"]
            print(f"| {name} | {setting} | " + " | ".join("-" if v is None else f"{v:.3f}" for v in row) + " |")
        print(f"| {name} | tokens | " + " | ".join(str(c) for c in source["ttt_off"]["tokens"]) + " |")


def main() -> None:
    """Parse arguments, run the benchmark, print the table and write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="model folder; default: the bundled checkpoint")
    parser.add_argument(
        "--corpus-documents",
        type=Path,
        required=True,
        help="documents.jsonl of the corpus the checkpoint was trained on (gives the held-out Debian pages and Hadoop issues)",
    )
    parser.add_argument("--max-tokens", type=int, default=4096, help="positions scored into buckets of 256")
    parser.add_argument("--quick", action="store_true", help="smoke run: one text per source, 512 tokens")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.max_tokens = 512
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    results = run(args)
    print_table(results)
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
