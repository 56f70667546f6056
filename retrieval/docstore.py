"""SQLite storage of documents, so citations can be verified after a restart.

The vector store keeps chunks for search. This store keeps each whole Document
(stored text, sections, provenance) as JSON under its id. A small table of
settings records what must not change between runs, such as the embedding model.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

from tworail.retrieval.documents import Document
from tworail.retrieval.errors import DocumentNotFoundError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_source ON documents (tenant, source);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""


class DocumentStore:
    """Documents by id in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._connection = sqlite3.connect(self.path, check_same_thread=False)
        with self._lock, self._connection:
            self._connection.executescript(_SCHEMA)

    def put(self, document: Document, chunks: int) -> None:
        """Store a document, replacing the one with the same id, with its chunk count."""
        digest = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
        with self._lock, self._connection:
            self._connection.execute(
                "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?)",
                (document.doc_id, document.tenant, document.source, digest, chunks,
                 document.model_dump_json()),
            )

    def get(self, doc_id: str) -> Document:
        """Return the stored document; raise DocumentNotFoundError when there is none."""
        with self._lock:
            row = self._connection.execute(
                "SELECT body FROM documents WHERE doc_id = ?", (doc_id,)
            ).fetchone()
        if row is None:
            raise DocumentNotFoundError(
                f"no stored document has id {doc_id!r}; add it to the index first"
            )
        return Document.model_validate_json(row[0])

    def __contains__(self, doc_id: object) -> bool:
        with self._lock:
            row = self._connection.execute("SELECT 1 FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return row is not None

    def find(self, source: str, tenant: str | None = None) -> list[str]:
        """Return the ids of the documents with this source, of one tenant or of all."""
        query = "SELECT doc_id FROM documents WHERE source = ?"
        parameters: tuple[str, ...] = (source,)
        if tenant is not None:
            query += " AND tenant = ?"
            parameters += (tenant,)
        with self._lock:
            return [row[0] for row in self._connection.execute(query, parameters)]

    def delete(self, doc_id: str) -> bool:
        """Remove a document; return whether it was stored."""
        with self._lock, self._connection:
            cursor = self._connection.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        return cursor.rowcount > 0

    def doc_ids(self, tenant: str | None = None) -> list[str]:
        """Return the stored document ids in source order, of one tenant or of all."""
        query = "SELECT doc_id FROM documents"
        parameters: tuple[str, ...] = ()
        if tenant is not None:
            query += " WHERE tenant = ?"
            parameters = (tenant,)
        with self._lock:
            return [row[0] for row in self._connection.execute(query + " ORDER BY source", parameters)]

    def tenants(self) -> set[str]:
        """Return the tenants that have at least one stored document."""
        with self._lock:
            return {row[0] for row in self._connection.execute("SELECT DISTINCT tenant FROM documents")}

    def chunk_total(self) -> int:
        """Return the number of chunks recorded for all stored documents."""
        with self._lock:
            return int(self._connection.execute("SELECT COALESCE(SUM(chunks), 0) FROM documents").fetchone()[0])

    def __len__(self) -> int:
        with self._lock:
            return int(self._connection.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def setting(self, key: str) -> str | None:
        """Return a stored setting, or None when it was never set."""
        with self._lock:
            row = self._connection.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        """Store a setting, replacing its previous value."""
        with self._lock, self._connection:
            self._connection.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, value))

    def close(self) -> None:
        """Close the SQLite connection."""
        with self._lock:
            self._connection.close()
