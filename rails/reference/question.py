"""What a question asks for: its exact key terms, its content words and its answer type.

Key terms are the tokens a matching passage must repeat exactly: identifiers
(``SQLITE_IOERR_READ``, ``AUTOINCREMENT``), numbers, versions and dates. The
answer type is the standard wh-question cue of extractive question answering:
'when' asks for a date, 'cost' for a price, 'how many' or 'value of' for a
number, unless the question already states a value of that type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from tworail.retrieval.sparse import COMPOUND_PATTERN, STOPWORDS, compounds, is_key_term, tokenize

_QUOTED = re.compile(r"[\"“”]([^\"“”]{3,}?)[\"“”]")

_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
DATE_PATTERN = re.compile(
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b|\b{_MONTHS}\s+\d{{1,2}},?\s+\d{{4}}\b|\b\d{{1,2}}\s+{_MONTHS}\s+\d{{4}}\b",
    re.IGNORECASE,
)
"""ISO dates and dates with month names."""

MONEY_PATTERN = re.compile(
    r"[$€£¥]\s?\d|\b\d[\d,.]*\s?(?:usd|eur|gbp|dollars?|euros?)\b|\bfree\b|\bno charge\b",
    re.IGNORECASE,
)
"""Prices: a currency sign or name next to a number, or 'free'."""

NUMBER_PATTERN = re.compile(r"(?<![\w.])\d[\d,]*(?:\.\d+)?(?![\w.])")
"""A standalone number; digits inside versions, dates or identifiers do not count."""

_DATE_CUE = re.compile(r"\b(?:when|what date|which date|what day|what year|which year)\b", re.IGNORECASE)
_MONEY_CUE = re.compile(r"\b(?:cost|costs|price|prices|priced|pricing|fee|fees)\b", re.IGNORECASE)
_NUMBER_CUE = re.compile(
    r"\b(?:how many|how much|how long|how large|how big|numeric|number of|value of|default value|"
    r"maximum|minimum|limit|size of)\b",
    re.IGNORECASE,
)


class AnswerType(str, Enum):
    """The kind of value a question asks for."""

    DATE = "date"
    MONEY = "money"
    NUMBER = "number"


_TYPE_WORDS = {
    AnswerType.DATE: frozenset(tokenize("date dates day year when")),
    AnswerType.MONEY: frozenset(tokenize("cost costs price prices priced pricing fee fees")),
    AnswerType.NUMBER: frozenset(tokenize("numeric number value")),
}
"""Stemmed words that name a kind of value, left out of a typed question's content words."""

_TYPE_PATTERNS = {
    AnswerType.DATE: DATE_PATTERN,
    AnswerType.MONEY: MONEY_PATTERN,
    AnswerType.NUMBER: NUMBER_PATTERN,
}


@dataclass(frozen=True)
class Question:
    """A question broken down for span scoring."""

    text: str
    """The question as asked."""
    key_terms: frozenset[str]
    """Lower-case identifiers, numbers, versions and dates that must match whole."""
    words: frozenset[str]
    """Stemmed content terms (see ``tworail.retrieval.sparse.tokenize``) other than key terms."""
    phrases: tuple[str, ...]
    """Quoted phrases, lower-case with white space collapsed."""
    answer_type: AnswerType | None
    """Kind of value asked for, or None when the question gives no cue."""

    def has_answer_type(self, text: str) -> bool:
        """Return whether text contains a value of the answer type not already in the question."""
        if self.answer_type is None:
            return False
        pattern = _TYPE_PATTERNS[self.answer_type]
        asked = {match.group(0).lower() for match in pattern.finditer(self.text)}
        return any(match.group(0).lower() not in asked for match in pattern.finditer(text))


def analyse_question(text: str) -> Question:
    """Break a question into key terms, content words, quoted phrases and answer type."""
    key_terms = {
        match.group(0).lower()
        for match in COMPOUND_PATTERN.finditer(text)
        if is_key_term(match.group(0)) and match.group(0).lower() not in STOPWORDS
    }
    answer_type = _answer_type(text)
    # Words that only name the kind of value asked for ('date', 'cost',
    # 'numeric value') describe the answer, not the passage that holds it.
    descriptors = _TYPE_WORDS.get(answer_type, frozenset()) if answer_type else frozenset()
    words = {term for term in tokenize(text) if term not in key_terms and term not in descriptors}
    phrases = tuple(
        re.sub(r"\s+", " ", match.group(1)).strip().lower() for match in _QUOTED.finditer(text)
    )
    return Question(
        text=text,
        key_terms=frozenset(key_terms),
        words=frozenset(words),
        phrases=phrases,
        answer_type=answer_type,
    )


def _answer_type(text: str) -> AnswerType | None:
    if _DATE_CUE.search(text) and not DATE_PATTERN.search(text):
        return AnswerType.DATE
    if _MONEY_CUE.search(text) and not MONEY_PATTERN.search(text):
        return AnswerType.MONEY
    if _NUMBER_CUE.search(text) and not NUMBER_PATTERN.search(text):
        return AnswerType.NUMBER
    return None


def whole_terms(text: str) -> set[str]:
    """Return the lower-case whole words and compounds of text, for exact key-term matching."""
    return set(compounds(text))
