"""Loaders for the demo data shipped inside the package."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from tworail.records import Provenance

THREAD_SPLITS = ("learn", "heldout")


class SupportThread(BaseModel):
    """One support case: the messages of a gold IRC thread, in order."""

    id: str
    """'<hour file>:<first line>' in the original corpus."""
    hour: str
    """Log hour the thread comes from, for example '2004-11-15_03'."""
    lines: list[int]
    """0-based line numbers of the messages in the original log."""
    text: str
    """The messages, one per line, as '[hh:mm] <nick> message'."""

    def provenance(self) -> Provenance:
        """Return the thread's provenance record."""
        return Provenance(
            source_id=f"ubuntu-irc/{self.id}",
            uri=f"https://irclogs.ubuntu.com/ (hour {self.hour}, lines {self.lines[0]}-{self.lines[-1]})",
            owner="ubuntu-irc-disentanglement (CC BY 4.0)",
            content_type="text/x-irc-log",
        )


def data_dir() -> Path:
    """Return the folder of bundled data inside the installed package."""
    return Path(str(resources.files("tworail.data")))


def sqlite_docs_dir() -> Path:
    """Return the folder of bundled SQLite 3.40.1 documentation pages."""
    return data_dir() / "sqlite-docs"


def support_threads(split: str = "learn") -> list[SupportThread]:
    """Load the bundled support threads of one split ('learn' or 'heldout')."""
    if split not in THREAD_SPLITS:
        raise ValueError(f"unknown thread split {split!r}; expected one of {THREAD_SPLITS}")
    path = data_dir() / "ubuntu-irc" / f"threads.{split}.jsonl"
    with open(path, encoding="utf-8") as handle:
        return [SupportThread.model_validate_json(line) for line in handle if line.strip()]
