"""Extractive answers: pick the stored spans that answer a question, verbatim.

The composer never writes text. It scores the sentences of the retrieved
chunks (and each pair of adjacent sentences of one section) against the
question and returns the best as quotes with their offsets. Each quote grows
to the smallest context that contains the answer: a heading takes the sentence
after it, a first sentence takes its heading, a quote that only restates the
question (an FAQ entry's question line) takes what follows, and a quote
without the kind of value the question asks for (a date, a price, a number)
takes the next line or two of its section when they hold one.

Scoring, per candidate:

* Each question term has a weight. Ordinary words weigh their rarity among
  the candidates (a smoothed inverse document frequency), so a word that
  every candidate repeats counts little. Key terms (identifiers, numbers,
  versions) and quoted phrases weigh ``key_weight`` or ``phrase_weight``
  times the rarity of the rarest possible term.
* Coverage is the weight of the terms the candidate contains, plus half the
  weight of those only its section title contains, over the weight of all
  terms. Key terms match only as whole tokens: '3' does not match in '3.40.1'.
* The score is coverage scaled down by up to ``key_share`` for missing key
  terms, plus small bonuses for a section heading, a better-ranked chunk and
  the asked-for kind of value near a key term, minus small penalties for a
  line of a list whose lines all share one shape (an index of names) and for
  using two sentences where one would do.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tworail.rails.reference.question import Question, analyse_question, whole_terms
from tworail.rails.reference.spans import Span, spans_in
from tworail.retrieval.documents import Document
from tworail.retrieval.sparse import tokenize
from tworail.retrieval.store import Hit

_SHAPE_WORD = re.compile(r"[^\W\d]\w*", re.UNICODE)
_SHAPE_NUMBER = re.compile(r"\d+")
_SPACE = re.compile(r"\s+")

_CONTEXT_CHARS = 2000
"""How far around a span to look for its heading and following lines."""

_MAX_QUOTE_SPANS = 4
"""Spans a quote may grow to while it only restates the question."""

_RESTATEMENT_NEW_TERMS = 0.25
"""Share of new terms below which a quote counts as restating the question."""


@dataclass(frozen=True)
class Passage:
    """A verbatim quote chosen as (part of) an answer."""

    doc_id: str
    source: str
    anchor: str
    start: int
    end: int
    quote: str
    score: float
    """Span score the passage was chosen by; higher is better."""
    coverage: float
    """Share of the question's term weight the quote or its section title contains, 0 to 1."""
    retrieval_score: float
    """Score of the retrieved chunk the span came from."""


@dataclass
class _Candidate:
    """One span, or two adjacent spans of one section, scored as a unit."""

    spans: tuple[Span, ...]
    rank: int
    retrieval_score: float
    list_like: bool
    terms: frozenset[str] = frozenset()
    title_terms: frozenset[str] = frozenset()

    @property
    def first(self) -> Span:
        return self.spans[0]

    @property
    def text(self) -> str:
        return "\n".join(span.text for span in self.spans)


class ExtractiveComposer:
    """Choose the best verbatim spans of retrieved chunks as answer passages."""

    def __init__(
        self,
        *,
        max_passages: int = 3,
        min_coverage: float = 0.3,
        keep_ratio: float = 0.85,
        key_weight: float = 3.0,
        phrase_weight: float = 3.0,
        answer_type_bonus: float = 0.25,
        rank_bonus: float = 0.05,
        list_penalty: float = 0.1,
        pair_penalty: float = 0.05,
        heading_bonus: float = 0.08,
        key_share: float = 0.6,
    ) -> None:
        if max_passages < 1:
            raise ValueError(f"max_passages={max_passages} is invalid; return at least one passage")
        self.max_passages = max_passages
        self.min_coverage = min_coverage
        self.keep_ratio = keep_ratio
        self.key_weight = key_weight
        self.phrase_weight = phrase_weight
        self.answer_type_bonus = answer_type_bonus
        self.rank_bonus = rank_bonus
        self.list_penalty = list_penalty
        self.pair_penalty = pair_penalty
        self.heading_bonus = heading_bonus
        self.key_share = key_share

    def compose(
        self,
        question: str,
        hits: Sequence[Hit],
        documents: Mapping[str, Document],
    ) -> list[Passage]:
        """Return up to ``max_passages`` passages, best first; empty when nothing matches.

        ``documents`` maps each hit's ``doc_id`` to its stored document.
        """
        parsed = analyse_question(question)
        candidates = _candidates(hits, documents)
        if not candidates or not (parsed.key_terms or parsed.words or parsed.phrases):
            return []
        weights = self._term_weights(parsed, candidates)
        total = sum(weights.values())
        if total <= 0:
            return []
        scored = sorted(
            ((self._base_score(parsed, candidate, weights, total), candidate) for candidate in candidates),
            key=lambda pair: pair[0][0],
            reverse=True,
        )
        passages = [
            self._passage(parsed, candidate, documents[candidate.first.doc_id], score, coverage)
            for (score, coverage), candidate in scored[: 4 * self.max_passages + 8]
        ]
        passages.sort(key=lambda passage: passage.score, reverse=True)
        return self._select(passages)

    def _term_weights(self, parsed: Question, candidates: list[_Candidate]) -> dict[str, float]:
        for candidate in candidates:
            text = candidate.text
            lowered = _SPACE.sub(" ", text.lower())
            phrases = {phrase for phrase in parsed.phrases if phrase in lowered}
            candidate.terms = frozenset(whole_terms(text) | set(tokenize(text)) | phrases)
            title = candidate.first.title
            candidate.title_terms = frozenset(whole_terms(title) | set(tokenize(title)))
        counts: Counter[str] = Counter()
        for candidate in candidates:
            counts.update(candidate.terms)
        spans = len(candidates)
        # Key terms and phrases weigh as much as the rarest term, because
        # retrieval gathers candidates that repeat them: being common among
        # the candidates is no evidence against them.
        top_rarity = math.log((spans + 1) / 0.5)
        weights: dict[str, float] = {}
        for term in (*parsed.key_terms, *parsed.phrases):
            base = self.key_weight if term in parsed.key_terms else self.phrase_weight
            weights[term] = base * top_rarity
        for term in parsed.words:
            rarity = math.log((spans + 1) / (counts[term] + 0.5))
            weights.setdefault(term, max(rarity, 0.1))
        return weights

    def _base_score(
        self,
        parsed: Question,
        candidate: _Candidate,
        weights: dict[str, float],
        total: float,
    ) -> tuple[float, float]:
        in_span = sum(weight for term, weight in weights.items() if term in candidate.terms)
        in_title = sum(
            weight
            for term, weight in weights.items()
            if term in candidate.title_terms and term not in candidate.terms
        )
        coverage = (in_span + 0.5 * in_title) / total
        score = coverage * self._key_factor(parsed, candidate, weights)
        score += self.rank_bonus / (1 + candidate.rank)
        if candidate.first.is_heading:
            score += self.heading_bonus
        if candidate.list_like:
            score -= self.list_penalty
        if len(candidate.spans) > 1:
            score -= self.pair_penalty
        return score, coverage

    def _key_factor(self, parsed: Question, candidate: _Candidate, weights: dict[str, float]) -> float:
        """Return 1 when the candidate has every key term, down to 1 - key_share when it has none."""
        keys = [term for term in (*parsed.key_terms, *parsed.phrases) if term in weights]
        if not keys:
            return 1.0
        key_total = sum(weights[term] for term in keys)
        found = sum(weights[term] for term in keys if term in candidate.terms)
        found += 0.5 * sum(
            weights[term] for term in keys if term in candidate.title_terms and term not in candidate.terms
        )
        return 1.0 - self.key_share + self.key_share * found / key_total

    def _passage(
        self,
        parsed: Question,
        candidate: _Candidate,
        document: Document,
        score: float,
        coverage: float,
    ) -> Passage:
        first, last = _quote_bounds(parsed, candidate.spans, document)
        quote = document.text[first:last]
        score += self.answer_type_bonus * coverage * _answer_type_closeness(parsed, candidate.spans, quote)
        section = document.section_at(first)
        return Passage(
            doc_id=document.doc_id,
            source=document.source,
            anchor=section.anchor if section is not None else "",
            start=first,
            end=last,
            quote=quote,
            score=score,
            coverage=min(coverage, 1.0),
            retrieval_score=candidate.retrieval_score,
        )

    def _select(self, passages: list[Passage]) -> list[Passage]:
        if not passages or passages[0].coverage < self.min_coverage:
            return []
        best = passages[0].score
        chosen: list[Passage] = []
        for passage in passages:
            if len(chosen) == self.max_passages or passage.score < self.keep_ratio * best:
                break
            if passage.coverage < self.min_coverage or any(_overlaps(passage, kept) for kept in chosen):
                continue
            chosen.append(passage)
        return chosen


def _candidates(hits: Sequence[Hit], documents: Mapping[str, Document]) -> list[_Candidate]:
    """Return each span, and each pair of adjacent spans of one section, once.

    A pair lets a sentence that names the thing asked about and the sentence
    after it that gives its value be scored together. Each candidate keeps the
    best rank at which its chunk was retrieved.
    """
    seen: dict[tuple[str, int, int], _Candidate] = {}
    for rank, hit in enumerate(hits):
        document = documents.get(hit.doc_id)
        if document is None:
            continue
        spans = spans_in(document, hit.start, hit.end)
        shapes = Counter(_shape(span.text) for span in spans)
        for position, span in enumerate(spans):
            list_like = shapes[_shape(span.text)] >= 4 and not span.is_heading
            windows = [(span,)]
            following = spans[position + 1] if position + 1 < len(spans) else None
            if following is not None and following.section == span.section and not list_like:
                windows.append((span, following))
            for window in windows:
                key = (span.doc_id, window[0].start, window[-1].end)
                if key not in seen:
                    seen[key] = _Candidate(
                        spans=window, rank=rank, retrieval_score=hit.score, list_like=list_like
                    )
    return list(seen.values())


def _shape(text: str) -> str:
    """Return the pattern of a line: words as 'w' and numbers as '9', punctuation kept."""
    return _SPACE.sub(" ", _SHAPE_NUMBER.sub("9", _SHAPE_WORD.sub("w", text)))


def _quote_bounds(parsed: Question, spans: tuple[Span, ...], document: Document) -> tuple[int, int]:
    """Grow spans to the smallest quote with the answer: heading, first sentence, value."""
    span = spans[0]
    section = span.section
    low = max(section.start if section else 0, span.start - _CONTEXT_CHARS)
    high = min(section.end if section else len(document.text), spans[-1].end + _CONTEXT_CHARS)
    neighbours = spans_in(document, low, high)
    first = next((i for i, other in enumerate(neighbours) if other.start == span.start), None)
    last = next((i for i, other in enumerate(neighbours) if other.end == spans[-1].end), None)
    if first is None or last is None:
        return span.start, spans[-1].end
    if first == last and span.is_heading and last + 1 < len(neighbours):
        last += 1
    elif first > 0 and neighbours[first - 1].is_heading and neighbours[first - 1].section == section:
        first -= 1
    # A quote that only restates the question (an FAQ entry's question line)
    # is followed by its answer.
    while last + 1 < len(neighbours) and last - first < _MAX_QUOTE_SPANS and _restates(
        parsed, document.text[neighbours[first].start : neighbours[last].end]
    ):
        last += 1
    quote = document.text[neighbours[first].start : neighbours[last].end]
    if parsed.answer_type is not None and not parsed.has_answer_type(quote):
        for ahead in range(last + 1, min(last + 3, len(neighbours))):
            if parsed.has_answer_type(neighbours[ahead].text):
                last = ahead
                break
    return neighbours[first].start, neighbours[last].end


def _answer_type_closeness(parsed: Question, spans: tuple[Span, ...], quote: str) -> float:
    """Return how close the asked-for value lies to what the question names.

    1 when one span contains both a key term (or the question has none) and
    the value, 0.75 when another span of the candidate contains the value,
    0.25 when only the lines the quote grew by do, and 0 when the quote has no
    value.
    """
    typed = [span for span in spans if parsed.has_answer_type(span.text)]
    if typed:
        if not parsed.key_terms or any(parsed.key_terms & whole_terms(span.text) for span in typed):
            return 1.0
        return 0.75
    return 0.25 if parsed.has_answer_type(quote) else 0.0


def _restates(parsed: Question, text: str) -> bool:
    """Return whether nearly every content term of text is a term of the question."""
    terms = set(tokenize(text))
    if not terms:
        return True
    known = parsed.words | parsed.key_terms
    return len(terms - known) <= _RESTATEMENT_NEW_TERMS * len(terms)


def _overlaps(first: Passage, second: Passage) -> bool:
    return first.doc_id == second.doc_id and first.start < second.end and second.start < first.end
