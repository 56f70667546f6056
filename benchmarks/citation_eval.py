"""Citation accuracy of the reference rail on the SQLite 3.40.1 documentation.

Unpacks the 766-page documentation tarball, ingests every page into a fresh
DocumentIndex with the real all-MiniLM-L6-v2 embedder, answers each gold
question with the ReferenceRail and reports, per question kind and overall:

* answer accuracy: the first citation's quote contains the gold answer after
  white space is collapsed;
* source accuracy: the first citation's source is the gold page;
* anchor accuracy, over questions whose gold names an anchor;
* retrieval recall: the gold page is among the retrieved chunks;
* p50 and p95 latency per question, and the ingestion time.

Usage::

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/citation_eval.py --index-dir /tmp/sqlite-index --out eval.json

With ``--index-dir`` the built index is kept and reused while the build
settings are unchanged; dense vectors are also cached per chunk text next to
it, so a change to chunking or sparse weighting re-embeds only changed chunks.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import statistics
import sys
import tarfile
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import PrivateAttr

from tworail.rails.reference.rail import ReferenceRail
from tworail.retrieval import chunking, documents, html_text, sparse
from tworail.records import Task
from tworail.retrieval.chunking import SectionChunker
from tworail.retrieval.documents import load_documents
from tworail.retrieval.embedding import HashingEmbedder, MiniLMEmbedding
from tworail.retrieval.index import DocumentIndex
from tworail.retrieval.sparse import BM25Encoder, tokenize
from tworail.retrieval.store import Fusion

logger = logging.getLogger("citation_eval")

DATA = Path("/work/shared/data/sqlite-docs")
DEFAULT_TARBALL = DATA / "sqlite-doc-3.40.1-html.tar.xz"
DEFAULT_GOLD = DATA / "gold_qa.jsonl"
_SPACE = re.compile(r"\s+")


class CachedEmbedding(BaseEmbedding):
    """Embedder wrapper that keeps each text's vector in memory and in a .npy file pair."""

    _inner: BaseEmbedding = PrivateAttr()
    _cache: dict[str, list[float]] = PrivateAttr(default_factory=dict)
    _path: Path | None = PrivateAttr(default=None)
    dimension: int = 384

    def __init__(self, inner: BaseEmbedding, path: Path | None) -> None:
        super().__init__(
            model_name=inner.model_name,
            embed_batch_size=inner.embed_batch_size,
            dimension=getattr(inner, "dimension", 384),
        )
        self._inner = inner
        self._path = path
        if path is not None and path.with_suffix(".keys.json").is_file():
            keys = json.loads(path.with_suffix(".keys.json").read_text())
            vectors = np.load(path.with_suffix(".npy"))
            self._cache = {key: vector.tolist() for key, vector in zip(keys, vectors)}
            logger.info("loaded %d cached vectors from %s", len(keys), path)

    def save(self) -> None:
        """Write the cache next to the index, if it has a path."""
        if self._path is None or not self._cache:
            return
        keys = list(self._cache)
        np.save(self._path.with_suffix(".npy"), np.asarray([self._cache[key] for key in keys], dtype=np.float32))
        self._path.with_suffix(".keys.json").write_text(json.dumps(keys))

    @staticmethod
    def _key(text: str) -> str:
        return hashlib.sha1(text.encode("utf-8")).hexdigest()

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        missing = [text for text in dict.fromkeys(texts) if self._key(text) not in self._cache]
        if missing:
            for text, vector in zip(missing, self._inner.get_text_embedding_batch(missing)):
                self._cache[self._key(text)] = vector
        return [self._cache[self._key(text)] for text in texts]

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._get_text_embeddings([text])[0]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._inner.get_query_embedding(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)


def normalise(text: str) -> str:
    """Collapse white space runs to single spaces and strip the ends."""
    return _SPACE.sub(" ", text).strip()


def build_fingerprint(embedder_name: str, page_count: int) -> str:
    """Return a hash of everything that changes the stored index."""
    chunker = SectionChunker()
    encoder = BM25Encoder()
    probe = "SQLITE_IOERR_READ 3.40.1 2022-12-28 Codes released $1500/year don't"
    modules = (html_text, documents, chunking, sparse)
    settings = {
        "sources": hashlib.sha256("".join(inspect.getsource(module) for module in modules).encode()).hexdigest(),
        "embedder": embedder_name,
        "pages": page_count,
        "chunker": [chunker.max_tokens, chunker.overlap_tokens, chunker.min_section_tokens],
        "bm25": [encoder.k1, encoder.b, encoder.average_length],
        "tokens": tokenize(probe),
    }
    return hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def unpack(tarball: Path, target: Path) -> Path:
    """Unpack the documentation tarball into target and return the folder of pages."""
    with tarfile.open(tarball) as archive:
        archive.extractall(target, filter="data")
    return target


def open_index(args: argparse.Namespace, work: Path) -> tuple[DocumentIndex, CachedEmbedding, dict[str, Any]]:
    """Build the index, or reuse the one in --index-dir when its fingerprint matches."""
    inner: BaseEmbedding = HashingEmbedder() if args.embedder == "hashing" else MiniLMEmbedding(device=args.device)
    index_dir = Path(args.index_dir) if args.index_dir else work / "index"
    cache_path = index_dir.parent / f"{index_dir.name}.embeddings" if args.index_dir else None
    embedder = CachedEmbedding(inner, cache_path)
    pages = unpack(args.tarball, work / "pages")
    started = time.perf_counter()
    loaded = load_documents([pages])
    load_seconds = time.perf_counter() - started
    fingerprint = build_fingerprint(args.embedder, len(loaded))
    stamp = index_dir / "build.json"
    stats: dict[str, Any] = {"documents": len(loaded), "load_seconds": round(load_seconds, 2)}
    if stamp.is_file() and json.loads(stamp.read_text()).get("fingerprint") == fingerprint and not args.rebuild:
        saved = json.loads(stamp.read_text())
        index = DocumentIndex(index_dir, embedder)
        stats.update(saved["stats"], reused=True)
        logger.info("reusing index in %s (%d documents)", index_dir, len(index))
        return index, embedder, stats
    if index_dir.exists():
        shutil.rmtree(index_dir)
    index = DocumentIndex(index_dir, embedder)
    started = time.perf_counter()
    chunks = index.add(loaded, progress=not args.quiet)
    index_seconds = time.perf_counter() - started
    embedder.save()
    stats.update(chunks=chunks, index_seconds=round(index_seconds, 1), reused=False)
    stamp.write_text(json.dumps({"fingerprint": fingerprint, "stats": stats}))
    return index, embedder, stats


def evaluate(rail: ReferenceRail, questions: list[dict[str, Any]], verbose: bool) -> dict[str, Any]:
    """Answer every question and return the per-kind and overall figures."""
    totals: dict[str, defaultdict[str, float]] = defaultdict(lambda: defaultdict(float))
    latencies = []
    misses = []
    for row in questions:
        started = time.perf_counter()
        answer = rail.answer(Task(question=row["question"]))
        latencies.append(time.perf_counter() - started)
        citation = answer.claims[0].citations[0] if answer.claims else None
        hit_sources = {hit["source"] for hit in answer.details.get("hits", [])}
        outcome = {
            "questions": 1,
            "answered": citation is not None,
            "answer_correct": citation is not None and normalise(row["answer"]) in normalise(citation.quote),
            "source_correct": citation is not None and citation.source == row["source"],
            "retrieved_source": row["source"] in hit_sources,
        }
        if row.get("anchor"):
            outcome["anchor_questions"] = 1
            outcome["anchor_correct"] = citation is not None and citation.anchor == row["anchor"]
        for kind in (row["kind"], "overall"):
            for key, value in outcome.items():
                totals[kind][key] += float(value)
        if not outcome["answer_correct"]:
            misses.append({
                "id": row["id"], "question": row["question"], "answer": row["answer"],
                "cited_source": citation.source if citation else None,
                "cited_anchor": citation.anchor if citation else None,
                "quote": citation.quote[:300] if citation else None,
            })
            if verbose:
                print(json.dumps(misses[-1], ensure_ascii=False))
    kinds = {kind: _rates(values) for kind, values in totals.items()}
    return {
        "kinds": kinds,
        "latency_p50_ms": round(1000 * statistics.median(latencies), 1),
        "latency_p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1),
        "misses": misses,
    }


def _rates(values: dict[str, float]) -> dict[str, float]:
    count = values["questions"]
    rates = {
        "questions": int(count),
        "answer_accuracy": round(values["answer_correct"] / count, 4),
        "source_accuracy": round(values["source_correct"] / count, 4),
        "retrieval_recall": round(values["retrieved_source"] / count, 4),
        "answered": round(values["answered"] / count, 4),
    }
    if values.get("anchor_questions"):
        rates["anchor_accuracy"] = round(values["anchor_correct"] / values["anchor_questions"], 4)
    return rates


def print_table(name: str, result: dict[str, Any]) -> None:
    """Print one row per question kind."""
    print(f"\n{name}: p50 {result['latency_p50_ms']} ms, p95 {result['latency_p95_ms']} ms per question")
    print(f"{'kind':<12}{'n':>5}{'answer':>9}{'source':>9}{'anchor':>9}{'recall':>9}")
    for kind, rates in sorted(result["kinds"].items(), key=lambda item: (item[0] == "overall", item[0])):
        anchor = f"{rates['anchor_accuracy']:.3f}" if "anchor_accuracy" in rates else "-"
        print(
            f"{kind:<12}{rates['questions']:>5}{rates['answer_accuracy']:>9.3f}"
            f"{rates['source_accuracy']:>9.3f}{anchor:>9}{rates['retrieval_recall']:>9.3f}"
        )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tarball", type=Path, default=DEFAULT_TARBALL, help="documentation tarball (.tar.xz)")
    parser.add_argument("--gold", type=Path, default=DEFAULT_GOLD, help="gold questions (JSON lines)")
    parser.add_argument("--index-dir", help="folder to keep the built index in and reuse; default: a temporary one")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the index even if --index-dir has one")
    parser.add_argument("--out", type=Path, help="write the figures as JSON to this file")
    parser.add_argument("--k", type=int, default=8, help="chunks the rail retrieves per question")
    parser.add_argument(
        "--fusion", default="default", choices=["default", "all", *[fusion.value for fusion in Fusion]],
        help="fusion of dense and sparse ranking; 'all' measures each in turn",
    )
    parser.add_argument("--embedder", default="minilm", choices=["minilm", "hashing"], help="dense embedder")
    parser.add_argument("--device", default="cpu", help="torch device for the embedder")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--limit", type=int, help="answer only the first N questions")
    parser.add_argument("--verbose", action="store_true", help="print every wrong answer")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the evaluation and return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    questions = [json.loads(line) for line in args.gold.read_text().splitlines() if line.strip()]
    questions = questions[: args.limit] if args.limit else questions
    with tempfile.TemporaryDirectory(prefix="citation-eval-") as temporary:
        index, _, stats = open_index(args, Path(temporary))
        with index:
            report: dict[str, Any] = {"ingestion": stats, "k": args.k, "runs": {}}
            if args.fusion == "all":
                fusions: list[Fusion | None] = list(Fusion)
            elif args.fusion == "default":
                fusions = [None]
            else:
                fusions = [Fusion(args.fusion)]
            for fusion in fusions:
                if fusion is not None:
                    index.store.fusion = fusion
                name = index.store.fusion.value
                result = evaluate(ReferenceRail(index, k=args.k), questions, args.verbose)
                report["runs"][name] = result
                print_table(name, result)
    print(f"\ningestion: {json.dumps(stats)}")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
