"""Admission of tasks: validation and sanitizing before routing."""

from __future__ import annotations

import re
import unicodedata

from tworail.records import Task

MAX_QUESTION_CHARS = 4000
"""Maximum question length accepted, in characters after sanitizing."""

_SPACES = re.compile(r"\s+")


class InvalidTaskError(ValueError):
    """A task that cannot be answered as given; the message says how to fix it."""


def sanitize_text(text: str) -> str:
    """Return `text` NFKC-normalized, without control or format characters, spaces collapsed."""
    normalized = unicodedata.normalize("NFKC", text)
    kept = "".join(
        ch for ch in normalized
        if ch in "\n\t" or unicodedata.category(ch) not in {"Cc", "Cf", "Cs", "Co", "Cn"}
    )
    return _SPACES.sub(" ", kept).strip()


def admit(task: Task) -> Task:
    """Return a sanitized copy of `task`, or raise InvalidTaskError."""
    question = sanitize_text(task.question)
    if not question:
        raise InvalidTaskError("the question is empty; pass a non-empty question text")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidTaskError(
            f"the question has {len(question)} characters, more than the limit of "
            f"{MAX_QUESTION_CHARS}; shorten it or ingest the long text as a document"
        )
    candidates = [sanitize_text(candidate) for candidate in task.candidates]
    if any(not candidate for candidate in candidates):
        raise InvalidTaskError("a candidate answer is empty; remove it or give its text")
    return task.model_copy(update={"question": question, "candidates": candidates})
