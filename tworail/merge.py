"""Merge the rails' answers into one answer with per-claim provenance.

For citation-critical tasks (the reference rail leads) cited claims come first,
and a learned claim that states an exact value (number, code, version, date)
that no cited quote contains is dropped from the answer and kept as a conflict.
For pattern tasks (the learnable rail leads) learned claims come first and
cited claims follow as supporting evidence.
"""

from __future__ import annotations

import re

from tworail.records import Claim, Conflict, MergedAnswer, RailAnswer, RouteDecision

EXACT_VALUE = re.compile(
    r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]{2,}\b"  # constants and error codes
    r"|\b\d+(?:[.,:/-]\d+)*\b"  # numbers, versions, dates, times
)
"""Values that must appear verbatim in evidence to count as supported."""


def exact_values(text: str) -> list[str]:
    """Return the exact values (codes, numbers, versions, dates) stated in `text`."""
    return [match.group(0) for match in EXACT_VALUE.finditer(text)]


def _unsupported_values(claim: Claim, cited: list[Claim]) -> list[str]:
    quotes = " ".join(citation.quote for other in cited for citation in other.citations)
    return [value for value in exact_values(claim.text) if value not in quotes]


def merge_answers(question: str, route: RouteDecision, answers: list[RailAnswer]) -> MergedAnswer:
    """Combine rail answers following the route's leading rail."""
    cited = [claim for answer in answers if answer.rail == "reference" for claim in answer.claims]
    learned = [claim for answer in answers if answer.rail == "learnable" for claim in answer.claims]
    reference_leads = bool(route.rails) and route.rails[0] == "reference"

    conflicts: list[Conflict] = []
    kept_learned: list[Claim] = []
    for claim in learned:
        missing = _unsupported_values(claim, cited)
        if missing and cited:
            reason = f"states {', '.join(missing)}, which no cited quote contains"
            conflicts.append(Conflict(claim=claim.text, reason=reason))
            if reference_leads:
                continue
        kept_learned.append(claim)

    claims = cited + kept_learned if reference_leads else kept_learned + cited
    text = "\n".join(claim.text for claim in claims)
    return MergedAnswer(question=question, route=route, answer=text, claims=claims, conflicts=conflicts)
