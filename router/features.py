"""Task features for the precision and risk router.

Each feature is a named cue found in the task text: an exact value the answer
must get right (an error code, a version, a price), a risk cue (refunds,
security, personal data, legal terms) or a pattern cue (what usually happens,
what is common). A feature fires with a strength in [0, 1] and carries a
one-line reason that quotes what matched, so every route can explain itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from tworail.records import Task

Axis = Literal["precision", "risk", "pattern"]
"""The score a feature contributes to."""


@dataclass(frozen=True)
class Cue:
    """A regular expression that signals one feature."""

    name: str
    """Feature name, used as the key in `RouteDecision.features`."""
    axis: Axis
    """Score the feature raises."""
    pattern: re.Pattern[str]
    """Expression searched in the task text."""
    label: str
    """Phrase used in the one-line reason, for example 'error code'."""


@dataclass(frozen=True)
class FiredFeature:
    """A cue that matched the task, with what it matched."""

    cue: Cue
    """The cue that matched."""
    matches: tuple[str, ...]
    """Distinct matched strings, in order of appearance."""

    def reason(self) -> str:
        """Return a one-line reason such as "error code 'SQLITE_BUSY'"."""
        shown = ", ".join(repr(m) for m in self.matches[:3])
        more = f" and {len(self.matches) - 3} more" if len(self.matches) > 3 else ""
        return f"{self.cue.label} {shown}{more}"


def _cue(name: str, axis: Axis, label: str, regex: str, *, ignore_case: bool = True) -> Cue:
    flags = re.IGNORECASE if ignore_case else 0
    return Cue(name, axis, re.compile(regex, flags), label)


CUES: tuple[Cue, ...] = (
    # Exact values: the answer is wrong unless it states them exactly.
    # Case matters here: upper-case constants such as SQLITE_BUSY or EACCES are codes,
    # while "every" or "snake_case" are not.
    _cue("error_code", "precision", "error code",
         r"\b(?:[A-Z][A-Z0-9]*_[A-Z0-9_]{2,}|E[A-Z]{3,}|errno\s*\d+|(?:[Ee]rror|[Ee]xit|[Ss]tatus|[Rr]esult)\s+codes?)\b",
         ignore_case=False),
    _cue("version", "precision", "version string", r"\b\d+\.\d+(?:\.\d+)+\b|\bv\d+(?:\.\d+)+\b"),
    _cue("date", "precision", "date", r"\b\d{4}-\d{2}-\d{2}\b|\b(?:when was|release date|released on)\b"),
    _cue("money", "precision", "price", r"[$€£]\s?\d|\b\d+\s?(?:usd|eur|dollars?)\b|\b(?:price|cost|fee)s?\b"),
    _cue("number", "precision", "numeric value",
         r"\b(?:numeric value|how many|how much|maximum|minimum|limit|default value|value of)\b"),
    _cue("identifier", "precision", "identifier", r"\b[A-Z]{2,}-\d+\b|\b0x[0-9a-f]+\b|#\d{3,}\b"),
    _cue("quote", "precision", "request for exact wording",
         r"\b(?:cite|citation|quote|verbatim|exact(?:ly)? (?:text|wording)|word for word|source)\b|\"[^\"]{3,}\""),
    _cue("exact_name", "precision", "asks for an exact name",
         r"\b(?:which|what) (?:pragma|command|option|flag|setting|function|api|parameter|macro|keyword|package|file)s?\b"),
    _cue("legal", "precision", "legal term",
         r"\b(?:copyright|licen[cs]e|warranty|liabilit(?:y|ies)|public domain|agreement|terms of|contract|clause)\b"),
    # Risk cues: a wrong answer costs money, security or trust.
    _cue("money_risk", "risk", "money at stake", r"\b(?:refund|charge|invoice|billing|payment|purchase|pay)\w*\b"),
    _cue("security", "risk", "security topic",
         r"\b(?:security|vulnerab\w*|exploit|password|credential|token|encrypt\w*|attack|breach|corrupt\w*)\b"),
    _cue("personal_data", "risk", "personal data",
         r"\b(?:personal data|gdpr|pii|e-?mail address|phone number|erase my|delete my|privacy)\b"),
    _cue("legal_risk", "risk", "legal or compliance question",
         r"\b(?:legal|law|lawsuit|compliance|regulat\w*|copyright|licen[cs]e|warranty|liabilit\w*)\b"),
    _cue("data_loss", "risk", "data loss", r"\b(?:data loss|lose data|lost data|corrupt\w*|irrecoverable|drop table)\b"),
    # Pattern cues: the gist of many documents, not one exact fact.
    _cue("typical", "pattern", "asks what is typical",
         r"\b(?:usually|typically|typical|common(?:ly)?|often|most (?:users|people|threads|tickets|issues)|frequent\w*|recurring|tend to)\b"),
    _cue("summary", "pattern", "asks for a gist",
         r"\b(?:what (?:are|is) .{0,40}about|gist|overview|summar\w*|themes?|trends?|patterns?)\b"),
    _cue("anomaly", "pattern", "asks what is unusual", r"\b(?:unusual|anomal\w*|odd|surpris\w*|out of the ordinary)\b"),
    _cue("advice", "pattern", "asks what people hear or do",
         r"\b(?:what (?:do|does|should) .{0,40}(?:hear|try|do|get told)|usual (?:fix|advice|answer|resolution)|how do people)\b"),
)
"""Every cue the router checks, in the order reasons are listed."""


def fire_features(task: Task, cues: tuple[Cue, ...] = CUES) -> list[FiredFeature]:
    """Return the cues that match the task's question, in `cues` order."""
    fired = []
    for cue in cues:
        found = []
        for match in cue.pattern.finditer(task.question):
            text = match.group(0).strip()
            if text not in found:
                found.append(text)
        if found:
            fired.append(FiredFeature(cue, tuple(found)))
    return fired
