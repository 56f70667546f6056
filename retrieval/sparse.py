"""BM25 sparse vectors with a tokenizer that keeps identifiers and versions whole.

Documentation questions hinge on codes, names and numbers (``SQLITE_IOERR_READ``,
``3.40.1``), which common tokenizers split into pieces that match everywhere.
Here each compound token is kept whole *and* split into its parts, so an exact
identifier matches strongly and its parts still match loosely. Plain words are
Porter-stemmed so that 'codes' matches 'code' and 'released' matches 'release'.

Document vectors carry BM25 term-frequency saturation with length
normalisation. The store applies the inverse document frequency at query time
(Qdrant's ``Modifier.IDF``, which qdrant-client 1.20 local mode applies too).
A query vector therefore carries only a weight per distinct term: 1, or more
for key terms (identifiers, numbers, versions) that a matching passage should
repeat exactly.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

from nltk.stem.porter import PorterStemmer

COMPOUND_PATTERN = re.compile(r"\w+(?:[.\-/]\w+)*", re.UNICODE)
"""A word, identifier, version, date or path: word characters joined by . - or /."""

_PART_SPLIT = re.compile(r"[._\-/]+")
_DIGIT = re.compile(r"\d")
_INNER_CAPITAL = re.compile(r"[a-z][A-Z]")
_ALPHA = re.compile(r"[^\W\d_]+", re.UNICODE)

STOPWORDS = frozenset(
    """a an and are as at be but by can do does did for from had has have how i if in into is
    it its me my of on or our so than that the their them then there these they this to was we
    were what when where which who whom why will with you your""".split()
)
"""Function words dropped from queries and documents; they carry no topic."""

DEFAULT_K1 = 1.2
"""BM25 term-frequency saturation: higher lets repeated terms count for longer."""

DEFAULT_B = 0.75
"""BM25 length normalisation: 0 ignores chunk length, 1 divides by it fully."""

DEFAULT_AVERAGE_LENGTH = 87.0
"""Assumed mean chunk length in sparse tokens for BM25 length normalisation.

Chunks are capped at 256 word pieces, so their lengths vary little; a fixed
mean keeps document vectors independent of the rest of the corpus. The value is
the mean measured over the 12,761 chunks that ``tworail.retrieval.chunking``
makes of the 766-page SQLite 3.40.1 documentation, title line included.
"""


DEFAULT_KEY_BOOST = 3.0
"""Query weight of key terms (identifiers, numbers, versions) relative to other words."""


@lru_cache(maxsize=1)
def _stemmer() -> PorterStemmer:
    return PorterStemmer()


@lru_cache(maxsize=200_000)
def _normalise_word(word: str) -> str:
    """Stem a purely alphabetic word; return anything else unchanged."""
    if _ALPHA.fullmatch(word) and len(word) > 3:
        return _stemmer().stem(word, to_lowercase=False)
    return word


def compounds(text: str) -> list[str]:
    """Return the whole words and compounds of text, lower-cased, unstemmed, stopwords kept."""
    return [match.group(0) for match in COMPOUND_PATTERN.finditer(text.lower())]


def tokenize(text: str) -> list[str]:
    """Split text into lower-case search terms.

    A compound such as ``3.40.1``, ``SQLITE_IOERR_READ`` or ``2022-12-28`` yields
    the whole compound followed by each of its parts (``3.40.1``, ``3``, ``40``,
    ``1``). Plain words are stemmed; stopwords are dropped; compounds are kept
    as written (lower-cased) so that identifiers match exactly.
    """
    terms: list[str] = []
    for match in COMPOUND_PATTERN.finditer(text.lower()):
        terms.extend(_token_terms(match.group(0)))
    return terms


def _token_terms(token: str) -> list[str]:
    """Return the terms of one lower-case token: the whole first, then any parts."""
    parts = [part for part in _PART_SPLIT.split(token) if part]
    if len(parts) > 1:
        return [token, *(_normalise_word(part) for part in parts if part not in STOPWORDS)]
    if parts and parts[0] not in STOPWORDS:
        return [_normalise_word(parts[0])]
    return []


def is_key_term(token: str) -> bool:
    """Return whether a token, as written, is an identifier, number, version or acronym.

    Key terms are the ones a passage must repeat exactly: anything with a
    digit or underscore (``3.40.1``, ``SQLITE_PERM``), an all-capitals word of
    two or more letters (``BLOB``) or a word with an inner capital (``CamelCase``).
    """
    if _DIGIT.search(token) or "_" in token:
        return True
    letters = [char for char in token if char.isalpha()]
    if len(letters) >= 2 and token.isupper():
        return True
    return bool(_INNER_CAPITAL.search(token))


def query_term_weights(text: str, key_boost: float) -> dict[str, float]:
    """Return each distinct query term with weight ``key_boost`` for key terms, else 1."""
    weights: dict[str, float] = {}
    for match in COMPOUND_PATTERN.finditer(text):
        token = match.group(0)
        terms = _token_terms(token.lower())
        for position, term in enumerate(terms):
            weight = key_boost if position == 0 and is_key_term(token) else 1.0
            weights[term] = max(weights.get(term, 0.0), weight)
    return weights


def term_index(term: str) -> int:
    """Return the stable sparse index of a term: its CRC-32, an unsigned 32-bit integer.

    CRC-32 is fixed by the zlib format, so indices match across processes and
    Python versions, unlike ``hash``. Collisions among a corpus's distinct
    terms are rare at 2**32 buckets and only blur two terms' statistics.
    """
    return zlib.crc32(term.encode("utf-8"))


@dataclass(frozen=True)
class SparseVector:
    """Sorted term indices with their weights, as Qdrant expects them."""

    indices: list[int]
    values: list[float]

    def __len__(self) -> int:
        return len(self.indices)


class BM25Encoder:
    """Turn text into BM25 document vectors and query vectors that favour key terms."""

    def __init__(
        self,
        *,
        k1: float = DEFAULT_K1,
        b: float = DEFAULT_B,
        average_length: float = DEFAULT_AVERAGE_LENGTH,
        key_boost: float = DEFAULT_KEY_BOOST,
    ) -> None:
        if k1 < 0 or not 0.0 <= b <= 1.0 or average_length <= 0:
            raise ValueError(
                f"invalid BM25 parameters k1={k1}, b={b}, average_length={average_length}; "
                "expected k1 >= 0, 0 <= b <= 1 and average_length > 0"
            )
        self.k1 = k1
        self.b = b
        self.average_length = average_length
        self.key_boost = key_boost

    def encode_document(self, text: str) -> SparseVector:
        """Return the document vector: saturated term frequency per term."""
        terms = tokenize(text)
        counts = Counter(terms)
        norm = self.k1 * (1.0 - self.b + self.b * len(terms) / self.average_length)
        weights = {
            term: count * (self.k1 + 1.0) / (count + norm) for term, count in counts.items()
        }
        return _to_sparse(weights)

    def encode_query(self, text: str) -> SparseVector:
        """Return the query vector: ``key_boost`` for each key term, 1 for other terms."""
        return _to_sparse(query_term_weights(text, self.key_boost))


def _to_sparse(weights: dict[str, float]) -> SparseVector:
    merged: dict[int, float] = {}
    for term, weight in weights.items():
        index = term_index(term)
        merged[index] = merged.get(index, 0.0) + weight
    indices = sorted(merged)
    return SparseVector(indices=indices, values=[merged[index] for index in indices])
