"""Candidate spans for extractive question answering: sentences and lines of retrieved chunks.

A span is the smallest piece of stored text a quote is built from: one
sentence of a line. A heading, a table row and a line without sentence ends
are one span each. Offsets are offsets into the document's stored text, so
a quote made of spans can be cited.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tworail.retrieval.documents import Document, Section

HEADING_MAX_CHARS = 160
"""A section's first line counts as its heading only up to this length."""

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[A-Z0-9])")


@dataclass(frozen=True)
class Span:
    """A line or sentence of a document, with the section it lies in."""

    doc_id: str
    source: str
    start: int
    """Offset of the first character in the stored text."""
    end: int
    """Offset one past the last character in the stored text."""
    text: str
    section: Section | None
    """Section containing the span, or None for text outside every section."""
    is_heading: bool
    """Whether the span is the first line of its section (its heading or title line)."""

    @property
    def anchor(self) -> str:
        """Return the anchor of the span's section, or ''."""
        return self.section.anchor if self.section is not None else ""

    @property
    def title(self) -> str:
        """Return the title of the span's section, or ''."""
        return self.section.title if self.section is not None else ""


def spans_in(document: Document, start: int, end: int) -> list[Span]:
    """Return the spans of ``document.text[start:end]`` in order, blank lines left out."""
    text = document.text
    spans: list[Span] = []
    for line_start, line_end in _line_bounds(text, max(0, start), min(end, len(text))):
        section = document.section_at(line_start)
        is_heading = (
            section is not None
            and _first_line_start(text, section) == line_start
            and line_end - line_start <= HEADING_MAX_CHARS
        )
        pieces = [(line_start, line_end)]
        if not is_heading and "\t" not in text[line_start:line_end]:
            # A line with tabs is a table row, which stays whole.
            pieces = _sentence_bounds(text, line_start, line_end)
        for piece_start, piece_end in pieces:
            spans.append(
                Span(
                    doc_id=document.doc_id,
                    source=document.source,
                    start=piece_start,
                    end=piece_end,
                    text=text[piece_start:piece_end],
                    section=section,
                    is_heading=is_heading,
                )
            )
    return spans


def _first_line_start(text: str, section: Section) -> int:
    position = section.start
    while position < section.end and text[position].isspace():
        position += 1
    return position


def _line_bounds(text: str, start: int, end: int) -> list[tuple[int, int]]:
    bounds = []
    position = start
    while position < end:
        newline = text.find("\n", position, end)
        stop = end if newline == -1 else newline
        bounds.extend(_trim(text, position, stop))
        position = stop + 1
    return bounds


def _sentence_bounds(text: str, start: int, end: int) -> list[tuple[int, int]]:
    bounds = []
    position = start
    for match in _SENTENCE_END.finditer(text, start, end):
        bounds.extend(_trim(text, position, match.start()))
        position = match.end()
    bounds.extend(_trim(text, position, end))
    return bounds


def _trim(text: str, start: int, end: int) -> list[tuple[int, int]]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return [(start, end)] if start < end else []
