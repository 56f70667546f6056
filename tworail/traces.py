"""The trace log: one row per answered question, written by the graph's record step."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from tworail.records import MergedAnswer, utc_now

_SCHEMA = """
CREATE TABLE IF NOT EXISTS traces (
    trace_id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL,
    time TEXT NOT NULL,
    question TEXT NOT NULL,
    rails TEXT NOT NULL,
    answer TEXT NOT NULL
);
"""


class TraceLog:
    """Answers with their route and provenance, in one SQLite file."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.executescript(_SCHEMA)

    def record(self, thread_id: str, answer: MergedAnswer) -> int:
        """Store `answer` under the graph thread `thread_id` and return the trace id."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO traces (thread_id, time, question, rails, answer) VALUES (?, ?, ?, ?, ?)",
                (thread_id, utc_now().isoformat(), answer.question, "+".join(answer.route.rails),
                 json.dumps(answer.to_public_dict())),
            )
        return int(cursor.lastrowid)

    def count(self) -> int:
        """Return the number of stored traces."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM traces").fetchone()[0])

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()
