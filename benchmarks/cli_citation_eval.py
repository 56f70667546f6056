"""Citation accuracy and latency of `tworail ask --jsonl`, as a user runs it.

Feeds every gold question of the SQLite gold set to one `tworail ask --jsonl
--json` process over a data directory whose index already holds the SQLite
documentation, reads one JSON answer per line, and reports per question kind
and overall the fraction of questions whose first citation's quote contains
the gold answer (white space collapsed), and the median and 95th percentile
of the time between consecutive answers (the per-question latency once the
process has loaded its models).

Usage, from outside the repository root:

    tworail ingest PAGES_DIR --data-dir DATA          # once; PAGES_DIR holds the 766 pages
    python benchmarks/cli_citation_eval.py --data-dir DATA --gold gold_qa.jsonl --out result.json
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path


def normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def run(data_dir: Path, gold: list[dict]) -> tuple[list[dict], list[float], float]:
    """Return the answers, the arrival time of each, and the process start time."""
    command = [shutil.which("tworail") or "tworail", "ask", "--jsonl", "--json", "--data-dir", str(data_dir)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def feed() -> None:
        for row in gold:
            process.stdin.write(json.dumps({"question": row["question"]}) + "\n")
        process.stdin.close()

    threading.Thread(target=feed, daemon=True).start()
    answers, arrivals = [], []
    for line in process.stdout:
        arrivals.append(time.perf_counter())
        answers.append(json.loads(line))
    if process.wait() != 0:
        raise SystemExit(f"tworail ask exited with status {process.returncode}")
    return answers, arrivals, started


def score(gold: list[dict], answers: list[dict]) -> dict[str, dict[str, float]]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for row, answer in zip(gold, answers, strict=True):
        claims = [claim for claim in answer.get("claims", []) if claim["citations"]]
        quote = claims[0]["citations"][0]["quote"] if claims else ""
        correct = normalize(row["answer"]) in normalize(quote)
        hits[row["kind"]].append(correct)
        hits["overall"].append(correct)
    return {kind: {"n": len(values), "answer_in_first_quote": sum(values) / len(values)}
            for kind, values in hits.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="data directory with the ingested pages")
    parser.add_argument("--gold", type=Path, required=True, help="gold_qa.jsonl")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args()

    gold = [json.loads(line) for line in args.gold.read_text().splitlines() if line.strip()]
    answers, arrivals, started = run(args.data_dir, gold)
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    result = {
        "questions": len(gold),
        "accuracy": score(gold, answers),
        "first_answer_s": arrivals[0] - started,
        "latency_p50_s": statistics.median(gaps),
        "latency_p95_s": statistics.quantiles(gaps, n=20)[-1],
        "command": "tworail ask --jsonl --json --data-dir DATA",
    }
    for kind, values in sorted(result["accuracy"].items()):
        print(f"{kind:12s} n={values['n']:4d}  answer in first quote {values['answer_in_first_quote']:.3f}")
    print(f"first answer after {result['first_answer_s']:.1f} s (process start and model loading)")
    print(f"per question: p50 {result['latency_p50_s'] * 1000:.0f} ms, p95 {result['latency_p95_s'] * 1000:.0f} ms")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
