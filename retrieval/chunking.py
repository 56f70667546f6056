"""Split documents into llama-index TextNodes that follow sections and fit the embedder.

all-MiniLM-L6-v2 reads at most 256 word pieces and silently drops the rest, so
every chunk, together with the title line prepended for embedding, is sized in
the model's own word pieces. A chunk never crosses into a new section except
that sections too small to stand alone (a heading, a menu) join the section
after them. Long sections are cut at line boundaries with a small overlap, so a
table row stays whole. A line too long on its own is cut at sentence ends,
then at spaces.

The node text is exactly ``document.text[start_char_idx:end_char_idx]``. The
page and section titles live in metadata and enter only the embedded and
indexed form (``node.get_content(MetadataMode.EMBED)``), never the offsets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from llama_index.core.schema import MetadataMode, NodeRelationship, RelatedNodeInfo, TextNode

from tworail.retrieval.documents import Document, Section
from tworail.retrieval.embedding import MINILM_MAX_TOKENS, wordpiece_tokenizer

TokenCounter = Callable[[Sequence[str]], list[int]]
"""Returns the number of model word pieces of each text, special tokens excluded."""

DEFAULT_OVERLAP_TOKENS = 32
"""Word pieces repeated from the end of one chunk at the start of the next in a long section."""

DEFAULT_MIN_SECTION_TOKENS = 16
"""Sections below this size (a lone heading, a menu) join the section that follows."""

_SPECIAL_TOKENS = 2
"""[CLS] and [SEP], which the embedder adds to every input."""

_TITLE_MAX_CHARS = 160
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_SPACE = re.compile(r"\s+")

EMBED_EXCLUDED_KEYS = ["doc_id", "source", "anchor", "tenant"]
"""Metadata keys left out of the embedded text; the titles stay in."""


def count_wordpieces(texts: Sequence[str]) -> list[int]:
    """Return the all-MiniLM-L6-v2 word-piece count of each text, special tokens excluded."""
    if not texts:
        return []
    encodings = wordpiece_tokenizer().encode_batch(list(texts), add_special_tokens=False)
    return [len(encoding.ids) for encoding in encodings]


@dataclass(frozen=True)
class _Unit:
    """A piece of stored text that is never split further: a line or part of one."""

    start: int
    end: int
    tokens: int


class SectionChunker:
    """Cut documents into section-aligned TextNodes within the embedder's token limit."""

    def __init__(
        self,
        *,
        max_tokens: int = MINILM_MAX_TOKENS,
        overlap_tokens: int = DEFAULT_OVERLAP_TOKENS,
        min_section_tokens: int = DEFAULT_MIN_SECTION_TOKENS,
        count_tokens: TokenCounter | None = None,
    ) -> None:
        if max_tokens < 32:
            raise ValueError(f"max_tokens={max_tokens} is too small; use at least 32 word pieces")
        if not 0 <= overlap_tokens < max_tokens // 2:
            raise ValueError(
                f"overlap_tokens={overlap_tokens} must be between 0 and half of max_tokens ({max_tokens})"
            )
        self.max_tokens = max_tokens
        self.overlap_tokens = overlap_tokens
        self.min_section_tokens = min_section_tokens
        self.count_tokens = count_tokens or count_wordpieces

    def chunk(self, document: Document) -> list[TextNode]:
        """Return the document's chunks as TextNodes, in document order."""
        nodes: list[TextNode] = []
        for group in self._section_groups(document):
            main = max(group, key=lambda section: section.end - section.start)
            start, end = group[0].start, group[-1].end
            titles = self._fit_titles(document.title, main.title)
            budget = self.max_tokens - _SPECIAL_TOKENS - self.count_tokens([_embed_header(*titles)])[0]
            units = self._units(document.text, start, end, budget)
            for first, last in self._pack(units, budget):
                nodes.append(_make_node(document, main, len(nodes), first, last, titles))
        return nodes

    def _fit_titles(self, page_title: str, section_title: str) -> tuple[str, str]:
        """Cut the page and section titles until their header line takes a quarter of the limit at most."""
        limit = _TITLE_MAX_CHARS
        while True:
            titles = (page_title[:limit], section_title[:limit])
            if limit <= 8 or self.count_tokens([_embed_header(*titles)])[0] <= self.max_tokens // 4:
                return titles
            limit //= 2

    def _section_groups(self, document: Document) -> list[list[Section]]:
        """Group each too-small section with the sections after it."""
        sections = document.sections
        sizes = self.count_tokens([document.text[s.start : s.end] for s in sections])
        groups: list[list[Section]] = []
        pending: list[Section] = []
        pending_tokens = 0
        for section, size in zip(sections, sizes):
            pending.append(section)
            pending_tokens += size
            if pending_tokens >= self.min_section_tokens:
                groups.append(pending)
                pending, pending_tokens = [], 0
        if pending:
            if groups:
                groups[-1].extend(pending)
            else:
                groups.append(pending)
        return groups

    def _units(self, text: str, start: int, end: int, budget: int) -> list[_Unit]:
        """Return the non-blank lines of text[start:end], cut further where one exceeds budget."""
        spans = _strip_spans(text, _split_spans(text, start, end, "\n"))
        counts = self.count_tokens([text[s:e] for s, e in spans])
        units: list[_Unit] = []
        for (span_start, span_end), tokens in zip(spans, counts):
            if tokens <= budget:
                units.append(_Unit(span_start, span_end, tokens))
            else:
                units.extend(self._split_long_line(text, span_start, span_end, budget))
        return units

    def _split_long_line(self, text: str, start: int, end: int, budget: int) -> list[_Unit]:
        pieces = _strip_spans(text, _regex_spans(text, start, end, _SENTENCE_END))
        counts = self.count_tokens([text[s:e] for s, e in pieces])
        units: list[_Unit] = []
        for (piece_start, piece_end), tokens in zip(pieces, counts):
            if tokens <= budget:
                units.append(_Unit(piece_start, piece_end, tokens))
                continue
            words = _strip_spans(text, _regex_spans(text, piece_start, piece_end, _SPACE))
            word_counts = self.count_tokens([text[s:e] for s, e in words])
            units.extend(_pack_words(words, word_counts, budget))
        return units

    def _pack(self, units: list[_Unit], budget: int) -> list[tuple[_Unit, _Unit]]:
        """Greedily fill chunks with whole units; repeat trailing units as overlap."""
        chunks: list[tuple[_Unit, _Unit]] = []
        current: list[_Unit] = []
        used = 0
        for unit in units:
            if current and used + unit.tokens > budget:
                chunks.append((current[0], current[-1]))
                current, used = self._overlap(current, budget - unit.tokens)
            current.append(unit)
            used += unit.tokens
        if current:
            chunks.append((current[0], current[-1]))
        return chunks

    def _overlap(self, previous: list[_Unit], room: int) -> tuple[list[_Unit], int]:
        carried: list[_Unit] = []
        used = 0
        for unit in reversed(previous):
            if used + unit.tokens > min(self.overlap_tokens, room):
                break
            carried.insert(0, unit)
            used += unit.tokens
        return carried, used


def _embed_header(page_title: str, section_title: str) -> str:
    """Return the title line that ``embed_text`` puts before a node's content."""
    titles = [page_title]
    if section_title and section_title != page_title:
        titles.append(section_title)
    return " | ".join(title for title in titles if title)


def _make_node(
    document: Document,
    section: Section,
    number: int,
    first: _Unit,
    last: _Unit,
    titles: tuple[str, str],
) -> TextNode:
    page_title, section_title = titles
    metadata = {
        "page_title": page_title,
        "title": section_title,
        "doc_id": document.doc_id,
        "source": document.source,
        "anchor": section.anchor,
        "tenant": document.tenant,
    }
    excluded = list(EMBED_EXCLUDED_KEYS)
    if section_title == page_title or not section_title:
        excluded.append("title")
    if not page_title:
        excluded.append("page_title")
    return TextNode(
        id_=f"{document.doc_id}-{number:05d}",
        text=document.text[first.start : last.end],
        start_char_idx=first.start,
        end_char_idx=last.end,
        metadata=metadata,
        excluded_embed_metadata_keys=excluded,
        excluded_llm_metadata_keys=list(EMBED_EXCLUDED_KEYS),
        metadata_template="{value}",
        metadata_separator=" | ",
        text_template="{metadata_str}\n{content}",
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=document.doc_id)},
    )


def embed_text(node: TextNode) -> str:
    """Return the text that is embedded and indexed for a node: titles, then content."""
    return node.get_content(metadata_mode=MetadataMode.EMBED)


def _split_spans(text: str, start: int, end: int, separator: str) -> list[tuple[int, int]]:
    spans = []
    position = start
    while position < end:
        found = text.find(separator, position, end)
        stop = end if found == -1 else found
        spans.append((position, stop))
        position = stop + len(separator)
    return spans


def _regex_spans(text: str, start: int, end: int, pattern: re.Pattern[str]) -> list[tuple[int, int]]:
    spans = []
    position = start
    for match in pattern.finditer(text, start, end):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, end))
    return spans


def _strip_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Trim white space off each span and drop spans that are blank."""
    stripped = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            stripped.append((start, end))
    return stripped


def _pack_words(words: list[tuple[int, int]], counts: list[int], budget: int) -> list[_Unit]:
    """Join consecutive words into units of at most ``budget`` word pieces."""
    units: list[_Unit] = []
    start = end = -1
    used = 0
    for (word_start, word_end), tokens in zip(words, counts):
        # NOTE: a single word longer than the budget (a long hash, a base64
        # run) stays whole, so the embedder truncates the end of its chunk.
        tokens = min(tokens, budget)
        if start >= 0 and used + tokens > budget:
            units.append(_Unit(start, end, used))
            start, used = -1, 0
        if start < 0:
            start = word_start
        end = word_end
        used += tokens
    if start >= 0:
        units.append(_Unit(start, end, used))
    return units
