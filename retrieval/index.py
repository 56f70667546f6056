"""DocumentIndex: ingestion, hybrid search and citation checks over one folder.

The folder contains ``documents.sqlite3`` (every stored text, so a citation can be
checked against it after a restart) and, unless another store is passed, a
Qdrant local-mode collection under ``qdrant/``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import TextNode
from tqdm.auto import tqdm

from tworail.records import Citation
from tworail.retrieval.chunking import SectionChunker, embed_text
from tworail.retrieval.docstore import DocumentStore
from tworail.retrieval.documents import Document
from tworail.retrieval.errors import DocumentNotFoundError, StoreError
from tworail.retrieval.sparse import BM25Encoder
from tworail.retrieval.store import EmbeddedChunk, Hit, QdrantStore, VectorStore

logger = logging.getLogger(__name__)

_EMBEDDER_SETTING = "embedder"


class DocumentIndex:
    """Stored documents plus their chunks in a vector store, searchable by tenant.

    ``len(index)`` is the number of stored documents. The index may be shared
    between threads: one lock serialises every call into the vector store.
    """

    def __init__(
        self,
        path: Path | str,
        embedder: BaseEmbedding,
        *,
        store: VectorStore | None = None,
        chunker: SectionChunker | None = None,
        encoder: BM25Encoder | None = None,
        batch_size: int = 256,
    ) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.embedder = embedder
        self.chunker = chunker or SectionChunker()
        self.encoder = encoder or BM25Encoder()
        self.batch_size = batch_size
        self._lock = threading.RLock()
        self.documents = DocumentStore(self.path / "documents.sqlite3")
        self._check_embedder()
        try:
            self.store = store or QdrantStore(self.path / "qdrant", dimension=self._dimension())
        except BaseException:
            self.documents.close()
            raise

    def _dimension(self) -> int:
        dimension = getattr(self.embedder, "dimension", None)
        if isinstance(dimension, int):
            return dimension
        return len(self.embedder.get_query_embedding("dimension probe"))

    def _check_embedder(self) -> None:
        """Refuse to mix vectors of two embedding models in one index folder."""
        name = f"{type(self.embedder).__name__}:{self.embedder.model_name}"
        stored = self.documents.setting(_EMBEDDER_SETTING)
        if stored is None:
            self.documents.set_setting(_EMBEDDER_SETTING, name)
        elif stored != name:
            self.documents.close()
            raise StoreError(
                f"index at {self.path} was built with embedder {stored}, not {name}; "
                "open it with the same embedder or use a new folder"
            )

    def add(self, documents: Iterable[Document], *, progress: bool = False) -> int:
        """Store, chunk, embed and index documents; return the number of chunks added.

        A document whose id is already stored is replaced: its old chunks are
        removed first.
        """
        unique = {document.doc_id: document for document in documents}
        with self._lock:
            nodes: list[TextNode] = []
            for document in unique.values():
                document_nodes = self.chunker.chunk(document)
                if document.doc_id in self.documents:
                    # Only a stored document can have chunks; skipping the others
                    # spares local mode a scan of every payload per new document.
                    self.store.delete_document(document.doc_id)
                self.documents.put(document, len(document_nodes))
                nodes.extend(document_nodes)
            self._index_nodes(nodes, progress=progress)
        logger.info("indexed %d chunks of %d documents in %s", len(nodes), len(unique), self.path)
        return len(nodes)

    def _index_nodes(self, nodes: Sequence[TextNode], *, progress: bool) -> None:
        bar = tqdm(total=len(nodes), desc="embedding chunks", unit="chunk", disable=not progress)
        with bar:
            for first in range(0, len(nodes), self.batch_size):
                batch = nodes[first : first + self.batch_size]
                texts = [embed_text(node) for node in batch]
                dense = self.embedder.get_text_embedding_batch(texts)
                chunks = [
                    EmbeddedChunk(node=node, dense=vector, sparse=self.encoder.encode_document(text))
                    for node, vector, text in zip(batch, dense, texts)
                ]
                self.store.upsert(chunks)
                bar.update(len(batch))

    def search(self, query: str, *, k: int = 5, tenant: str | None = None) -> list[Hit]:
        """Return the ``k`` chunks that best match the query, of one tenant or of all."""
        if not query.strip():
            return []
        if tenant is not None:
            tenants = self.documents.tenants()
            if tenant not in tenants:
                return []
            if len(tenants) == 1:
                # Every chunk is the tenant's: skip the payload filter, which
                # local mode evaluates point by point.
                tenant = None
        dense = self.embedder.get_query_embedding(query)
        sparse = self.encoder.encode_query(query)
        with self._lock:
            return self.store.search(dense, sparse, k, tenant)

    def document(self, doc_id: str) -> Document:
        """Return a stored document; raise DocumentNotFoundError when there is none."""
        return self.documents.get(doc_id)

    def remove(self, doc_id: str) -> int:
        """Remove a document and its chunks; return the number of chunks removed."""
        with self._lock:
            removed = self.store.delete_document(doc_id)
            if not self.documents.delete(doc_id):
                raise DocumentNotFoundError(f"no stored document has id {doc_id!r}; nothing to remove")
        return removed

    def verify(self, citation: Citation) -> bool:
        """Return whether the quote equals the stored text of its document at its offsets.

        The document is found by ``doc_id``, or by ``source`` when the citation
        has no id and exactly one stored document has that source.
        """
        document = self._cited_document(citation)
        if document is None or document.source != citation.source:
            return False
        if not 0 <= citation.start <= citation.end <= len(document.text):
            return False
        return document.text[citation.start : citation.end] == citation.quote

    def _cited_document(self, citation: Citation) -> Document | None:
        doc_id = citation.doc_id
        if not doc_id:
            candidates = self.documents.find(citation.source)
            if len(candidates) != 1:
                return None
            doc_id = candidates[0]
        try:
            return self.documents.get(doc_id)
        except DocumentNotFoundError:
            return None

    def chunk_count(self, tenant: str | None = None) -> int:
        """Return the number of indexed chunks, of one tenant or of all."""
        with self._lock:
            return self.store.count(tenant)

    def __len__(self) -> int:
        return len(self.documents)

    def close(self) -> None:
        """Close the vector store and the document store."""
        with self._lock:
            self.store.close()
            self.documents.close()

    def __enter__(self) -> DocumentIndex:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
