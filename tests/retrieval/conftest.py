"""Shared fixtures: the bundled SQLite pages, their gold questions and a hashing index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tworail.datasets import sqlite_docs_dir
from tworail.retrieval.documents import Document, load_documents
from tworail.retrieval.embedding import HashingEmbedder
from tworail.retrieval.index import DocumentIndex

GOLD_PATH = Path(__file__).parent / "data" / "sqlite_gold_qa.jsonl"


@pytest.fixture(scope="session")
def bundled_documents() -> dict[str, Document]:
    """The bundled SQLite pages by source."""
    return {document.source: document for document in load_documents([sqlite_docs_dir()])}


@pytest.fixture(scope="session")
def gold_questions() -> list[dict[str, str]]:
    """The 313 gold questions about the bundled pages."""
    return [json.loads(line) for line in GOLD_PATH.read_text(encoding="utf-8").splitlines() if line]


@pytest.fixture(scope="session")
def bundled_index(tmp_path_factory, bundled_documents):
    """A DocumentIndex of the bundled pages with the hashing embedder (no model)."""
    index = DocumentIndex(tmp_path_factory.mktemp("bundled-index"), HashingEmbedder())
    index.add(bundled_documents.values())
    yield index
    index.close()
