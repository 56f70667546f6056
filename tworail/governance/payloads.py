"""Encrypted storage of learned texts, so exact unlearning can replay what was kept.

Replaying the kept events needs their texts, so the learner stores the text
that reached the inner loop (after redaction), encrypted with Fernet under a
key per (tenant, source). Erasing a source deletes its key and ciphertexts;
the audit trail keeps only hashes, so it stays verifiable after erasure. The
database runs with `secure_delete`, so SQLite overwrites deleted keys and
ciphertexts instead of leaving them in free pages.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from tworail.audit import content_hash
from tworail.governance.errors import PayloadErased

_SCHEMA = """
CREATE TABLE IF NOT EXISTS source_keys (
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    key BLOB NOT NULL,
    PRIMARY KEY (tenant, source)
);
CREATE TABLE IF NOT EXISTS payloads (
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    payload_hash TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    PRIMARY KEY (tenant, source, payload_hash)
);
"""


class PayloadStore:
    """Learned texts encrypted per source in one SQLite file (':memory:' for a throwaway store)."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.executescript(_SCHEMA)

    def _key(self, tenant: str, source: str, *, create: bool) -> bytes | None:
        row = self._db.execute("SELECT key FROM source_keys WHERE tenant = ? AND source = ?",
                               (tenant, source)).fetchone()
        if row is not None or not create:
            return row[0] if row else None
        key = Fernet.generate_key()
        self._db.execute("INSERT INTO source_keys (tenant, source, key) VALUES (?, ?, ?)", (tenant, source, key))
        return key

    def put(self, tenant: str, source: str, text: str) -> str:
        """Encrypt and store `text` under its source's key; return its SHA-256, the payload id."""
        payload_hash = content_hash(text)
        with self._lock:
            key = self._key(tenant, source, create=True)
            token = Fernet(key).encrypt(text.encode("utf-8"))
            self._db.execute(
                "INSERT OR IGNORE INTO payloads (tenant, source, payload_hash, ciphertext) VALUES (?, ?, ?, ?)",
                (tenant, source, payload_hash, token),
            )
        return payload_hash

    def get(self, tenant: str, source: str, payload_hash: str) -> str:
        """Return the stored text, or raise `PayloadErased` when its key or ciphertext is gone."""
        with self._lock:
            key = self._key(tenant, source, create=False)
            row = self._db.execute(
                "SELECT ciphertext FROM payloads WHERE tenant = ? AND source = ? AND payload_hash = ?",
                (tenant, source, payload_hash),
            ).fetchone()
        if key is None or row is None:
            raise PayloadErased(f"the text {payload_hash[:12]} of source {source!r} (tenant {tenant!r}) was erased; "
                                "it cannot be replayed")
        try:
            return Fernet(key).decrypt(row[0]).decode("utf-8")
        except InvalidToken:
            raise PayloadErased(f"the text {payload_hash[:12]} of source {source!r} no longer decrypts with its "
                                "source key") from None

    def erase_payload(self, tenant: str, source: str, payload_hash: str) -> None:
        """Delete one stored text; the source key goes too once no text of the source is left."""
        with self._lock:
            self._db.execute("DELETE FROM payloads WHERE tenant = ? AND source = ? AND payload_hash = ?",
                             (tenant, source, payload_hash))
            left = self._db.execute("SELECT COUNT(*) FROM payloads WHERE tenant = ? AND source = ?",
                                    (tenant, source)).fetchone()[0]
            if not left:
                self._db.execute("DELETE FROM source_keys WHERE tenant = ? AND source = ?", (tenant, source))

    def erase_source(self, tenant: str, source: str) -> None:
        """Delete a source's key and every text stored under it."""
        with self._lock:
            self._db.execute("DELETE FROM source_keys WHERE tenant = ? AND source = ?", (tenant, source))
            self._db.execute("DELETE FROM payloads WHERE tenant = ? AND source = ?", (tenant, source))

    def entries(self) -> list[tuple[str, str, str]]:
        """Return (tenant, source, payload hash) of every stored text."""
        with self._lock:
            return [tuple(row) for row in self._db.execute("SELECT tenant, source, payload_hash FROM payloads")]

    def has_key(self, tenant: str, source: str) -> bool:
        """Return True while the source still has a key."""
        with self._lock:
            return self._key(tenant, source, create=False) is not None

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
