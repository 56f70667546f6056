"""The reference rail with the real all-MiniLM-L6-v2 embedder on the bundled SQLite pages."""

import json
import re
from pathlib import Path

import pytest

from tworail.datasets import sqlite_docs_dir
from tworail.rails.reference.rail import ReferenceRail
from tworail.records import Task
from tworail.retrieval.documents import load_documents
from tworail.retrieval.embedding import MiniLMEmbedding
from tworail.retrieval.index import DocumentIndex

GOLD_PATH = Path(__file__).parents[1] / "retrieval" / "data" / "sqlite_gold_qa.jsonl"


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.mark.slow
def test_minilm_rail_answers_gold_sample(tmp_path):
    rows = [json.loads(line) for line in GOLD_PATH.read_text(encoding="utf-8").splitlines() if line]
    sample = rows[::4]
    embedder = MiniLMEmbedding()
    vector = embedder.get_query_embedding("SQLITE_BUSY")
    assert len(vector) == 384
    assert abs(sum(value * value for value in vector) - 1.0) < 1e-4

    with DocumentIndex(tmp_path / "index", embedder) as index:
        index.add(load_documents([sqlite_docs_dir()]))
        rail = ReferenceRail(index)
        correct = 0
        for row in sample:
            answer = rail.answer(Task(question=row["question"]))
            if answer.claims:
                citation = answer.claims[0].citations[0]
                assert index.verify(citation)
                correct += normalise(row["answer"]) in normalise(citation.quote)
    assert correct / len(sample) >= 0.85
