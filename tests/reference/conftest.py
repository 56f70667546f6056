"""Fixtures: a hashing-embedder index of the bundled SQLite pages and a rail over it."""

from __future__ import annotations

import pytest

from tworail.datasets import sqlite_docs_dir
from tworail.rails.reference.rail import ReferenceRail
from tworail.retrieval.documents import load_documents
from tworail.retrieval.embedding import HashingEmbedder
from tworail.retrieval.index import DocumentIndex


@pytest.fixture(scope="session")
def sqlite_index(tmp_path_factory):
    """A DocumentIndex of the bundled SQLite pages; no model is loaded."""
    index = DocumentIndex(tmp_path_factory.mktemp("reference-index"), HashingEmbedder())
    index.add(load_documents([sqlite_docs_dir()]))
    yield index
    index.close()


@pytest.fixture(scope="session")
def rail(sqlite_index):
    """The reference rail over the bundled pages."""
    return ReferenceRail(sqlite_index)
