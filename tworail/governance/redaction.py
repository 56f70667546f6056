"""Redaction of personal data and secrets before text reaches the inner loop.

Detectors find e-mail addresses, phone numbers, payment card numbers (Luhn
checked), IBANs (ISO 13616 mod-97 checked), IPv4 and IPv6 addresses (checked
by `ipaddress`) and secrets: private key blocks, well-known token formats,
values of `password=`-style assignments and long high-entropy strings. When
`detect-secrets` is installed its line scanners add further secret values.
Overlapping matches keep the earliest, then the longest. Each match becomes
a placeholder such as '[EMAIL]'; the result reports kinds and counts, never
the values.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pydantic import BaseModel, Field

from tworail.governance.canaries import luhn_valid

logger = logging.getLogger(__name__)

PII_KINDS = ("email", "phone", "card", "iban", "ipv4", "ipv6")
"""Kinds of personal data; redacted only under 'learn-after-redaction'."""

SECRET_KINDS = ("private_key", "token", "credential", "high_entropy")
"""Kinds of secrets; always redacted, because anyone who can query the weights may extract them."""


@dataclass(frozen=True)
class Span:
    """One detected value: where it is and what kind it is."""

    start: int
    """Offset of its first character."""
    end: int
    """Offset one past its last character."""
    kind: str
    """Detector kind, for example 'email'."""


class RedactionResult(BaseModel):
    """Redacted text and what was removed (kinds and counts, never values)."""

    text: str
    """The text with each detected value replaced by a placeholder."""
    counts: dict[str, int] = Field(default_factory=dict)
    """Number of redactions per kind."""

    @property
    def total(self) -> int:
        """Number of redactions of all kinds."""
        return sum(self.counts.values())


_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]*@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}\b")
_PHONE = re.compile(r"(?<![\w+])(?<!\d\.)(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?!\w|\.\d)")
_CARD = re.compile(r"(?<![\d-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{1,7}|\d{4}[ -]?\d{6}[ -]?\d{4,5})(?![\d-])")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?(?![0-9A-Fa-f:])")
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
                          re.DOTALL)
_TOKENS = re.compile(
    r"\b(?:AKIA[0-9A-Z]{16}"                      # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,}"                # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{40,}"
    r"|xox[abprs]-[A-Za-z0-9-]{10,}"              # Slack tokens
    r"|sk-[A-Za-z0-9_-]{20,}"                     # API keys of the sk- family
    r"|AIza[0-9A-Za-z_-]{35}"                     # Google API keys
    r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"  # JSON Web Tokens
)
_BEARER = re.compile(r"(?i)\b(?:bearer|token)\s+([A-Za-z0-9._~+/=-]{16,})")
_ASSIGNMENT = re.compile(
    r"(?i)\b(?:password|passwd|pwd|pass|secret|api[_-]?key|access[_-]?key|auth[_-]?token|token|client[_-]?secret)"
    r"[\"']?\s*[:=]\s*(\"[^\"\n]+\"|'[^'\n]+'|[^\s,;\"']+)"
)
_CANDIDATE_SECRET = re.compile(r"(?<![A-Za-z0-9+=_-])[A-Za-z0-9+=_-]{20,}(?![A-Za-z0-9+=_-])")


def _iban_valid(value: str) -> bool:
    compact = value.replace(" ", "")
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    digits = "".join(str(int(char, 36)) for char in moved)
    return int(digits) % 97 == 1


def _ipv4_valid(value: str) -> bool:
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def _ipv6_valid(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _phone_valid(value: str) -> bool:
    digits = sum(char.isdigit() for char in value)
    if not 9 <= digits <= 15 or re.search(r"\d{4}-\d{2}-\d{2}", value):
        return False
    if value.startswith("+") or "(" in value:
        return True
    # Without a country code or area-code brackets, only one separator style reads as a phone
    # number; mixed separators are lists of numbers or decimals.
    return len(set(re.findall(r"[ .-]", value))) == 1


def shannon_entropy(value: str) -> float:
    """Return the Shannon entropy of the characters of `value`, in bits per character."""
    counts = Counter(value)
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts.values())


def _high_entropy(value: str) -> bool:
    if re.fullmatch(r"[0-9a-fA-F]+", value):
        return len(value) >= 32 and any(char.isalpha() for char in value) and shannon_entropy(value) >= 3.0
    segments = re.split(r"[-_]", value)
    if len(segments) >= 3 and 2 * sum(segment.isalpha() for segment in segments) >= len(segments):
        return False  # a slug of words, such as a URL path
    # Random keys mix upper case, lower case and digits; file names and slugs rarely do.
    classes = (any(c.isupper() for c in value), any(c.islower() for c in value), any(c.isdigit() for c in value))
    return all(classes) and shannon_entropy(value) >= 4.0


Detector = Callable[[str], Iterator[Span]]


def _regex_detector(pattern: re.Pattern[str], kind: str, valid: Callable[[str], bool] | None = None,
                    group: int = 0) -> Detector:
    def detect(text: str) -> Iterator[Span]:
        for match in pattern.finditer(text):
            if valid is None or valid(match.group(group)):
                yield Span(match.start(group), match.end(group), kind)
    return detect


def _detect_high_entropy(text: str) -> Iterator[Span]:
    for match in _CANDIDATE_SECRET.finditer(text):
        if _high_entropy(match.group(0)):
            yield Span(match.start(), match.end(), "high_entropy")


def _detect_with_detect_secrets(text: str) -> Iterator[Span]:
    try:
        from detect_secrets.core.scan import scan_line
        from detect_secrets.settings import default_settings
    except ImportError:
        return
    found: set[str] = set()
    with default_settings():
        for line in text.splitlines():
            for secret in scan_line(line):
                # Its entropy plugins report every word of an ad-hoc line, so `_detect_high_entropy`
                # replaces them. Some plugins report only a short prefix, which would match words.
                if "High Entropy" in secret.type:
                    continue
                if secret.secret_value and len(secret.secret_value) >= 8:
                    found.add(secret.secret_value)
    for value in found:
        for match in re.finditer(re.escape(value), text):
            yield Span(match.start(), match.end(), "token")


SECRET_DETECTORS: tuple[Detector, ...] = (
    _regex_detector(_PRIVATE_KEY, "private_key"),
    _regex_detector(_TOKENS, "token"),
    _regex_detector(_BEARER, "token", group=1),
    _regex_detector(_ASSIGNMENT, "credential", group=1),
    _detect_high_entropy,
)
"""Detectors of secrets, strongest first."""

PII_DETECTORS: tuple[Detector, ...] = (
    _regex_detector(_EMAIL, "email"),
    _regex_detector(_IBAN, "iban", _iban_valid),
    _regex_detector(_CARD, "card", lambda value: luhn_valid(re.sub(r"[ -]", "", value))),
    _regex_detector(_IPV4, "ipv4", _ipv4_valid),
    _regex_detector(_IPV6, "ipv6", _ipv6_valid),
    _regex_detector(_PHONE, "phone", _phone_valid),
)
"""Detectors of personal data; earlier ones win ties, so a card number is not also a phone number."""


class Redactor:
    """Finds and replaces personal data and secrets."""

    def __init__(self, *, pii: bool = True, secrets: bool = True, use_detect_secrets: bool = True) -> None:
        detectors: list[Detector] = []
        if secrets:
            detectors.extend(SECRET_DETECTORS)
            if use_detect_secrets:
                detectors.append(_detect_with_detect_secrets)
        if pii:
            detectors.extend(PII_DETECTORS)
        self._detectors = detectors

    def find(self, text: str) -> list[Span]:
        """Return non-overlapping spans, earliest first; on overlap the earlier, then longer, detector wins."""
        spans = []
        for priority, detector in enumerate(self._detectors):
            spans.extend((span.start, -(span.end - span.start), priority, span) for span in detector(text))
        spans.sort(key=lambda item: item[:3])
        kept: list[Span] = []
        for _, _, _, span in spans:
            if kept and span.start < kept[-1].end:
                continue
            kept.append(span)
        return kept

    def redact(self, text: str) -> RedactionResult:
        """Replace every detected value with '[KIND]' and count the kinds."""
        pieces, counts, cursor = [], Counter(), 0
        for span in self.find(text):
            pieces.append(text[cursor:span.start])
            pieces.append(f"[{span.kind.upper()}]")
            counts[span.kind] += 1
            cursor = span.end
        pieces.append(text[cursor:])
        if counts:
            logger.debug("redacted %s", dict(counts))
        return RedactionResult(text="".join(pieces), counts=dict(counts))
