"""Screening for text that should never be learned: prompt injection and poisoning.

Text is quarantined (kept out of the inner loop, with an audit row) when it
- contains phrases that address the model instead of a reader, such as
  'ignore all previous instructions' or chat-template control tokens;
- repeats one rare token far more than natural text does, the shape of a
  backdoor trigger (line prefixes such as timestamps and speaker labels are
  not counted);
- is extremely repetitive overall (it compresses to a small fraction of its
  size, or a single line makes up most of it).

Run it on sanitized text, so full-width or zero-width spellings are already
normalized. The thresholds were checked against the bundled SQLite pages and
Ubuntu support threads, none of which trips them.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter

from pydantic import BaseModel, Field

INJECTION_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (name, re.compile(pattern, re.IGNORECASE))
    for name, pattern in (
        ("ignore_instructions", r"\b(?:ignore|disregard|forget|override)\s+(?:all\s+|any\s+|the\s+|your\s+)*"
                                r"(?:previous|prior|above|earlier|preceding|system)\s+"
                                r"(?:instructions?|prompts?|messages?|rules|directions)"),
        ("role_override", r"\byou\s+are\s+now\s+(?:a|an|in|the|my)\b|\bfrom\s+now\s+on,?\s+you\s+(?:are|will|must)\b"),
        ("system_prompt", r"\b(?:reveal|print|show|repeat|output)\s+(?:your|the)\s+(?:system\s+prompt|instructions)\b"),
        ("new_instructions", r"\bnew\s+(?:system\s+)?instructions\s*:"),
        ("jailbreak", r"\b(?:do\s+anything\s+now|developer\s+mode\s+enabled|jailbreak(?:ing)?\s+mode)\b"),
        ("chat_template_token", r"<\|(?:im_start|im_end|endoftext|system|user|assistant)\|>|\[/?INST\]|<<SYS>>"),
        ("always_answer", r"\b(?:always|only)\s+(?:answer|respond|reply)\s+(?:with|that)\b"),
    )
)
"""Named patterns of text that addresses a model."""


class ScreenThresholds(BaseModel):
    """Limits of the repetition screens."""

    min_chars_for_repetition: int = 400
    """Texts shorter than this skip the repetition screens (short texts compress badly)."""
    min_compression_ratio: float = 0.12
    """zlib-compressed size over raw size below which a text counts as extremely repetitive."""
    max_line_share: float = 0.5
    """Largest share of non-empty lines one identical line may have (with at least 6 lines)."""
    trigger_min_count: int = 12
    """Occurrences from which a rare token or phrase may be a trigger."""
    trigger_max_share: float = 0.08
    """Largest share of all tokens one rare token may have; rare means 8+ characters or mixed symbols."""


class ScreenResult(BaseModel):
    """Outcome of screening one text."""

    quarantined: bool
    """True when any screen fired."""
    findings: list[str] = Field(default_factory=list)
    """Names of the screens that fired, for example 'injection:ignore_instructions'."""


_TOKEN = re.compile(r"\S+")
_LINE_PREFIX = re.compile(r"^(?:\s*(?:\[[^\]\n]{0,40}\]|<[^>\n]{1,40}>|[^\s:]{1,40}:)(?=\s|$))*")


def _injections(text: str) -> list[str]:
    return [f"injection:{name}" for name, pattern in INJECTION_PATTERNS if pattern.search(text)]


def _repetition(text: str, limits: ScreenThresholds) -> list[str]:
    findings = []
    raw = text.encode("utf-8")
    if len(raw) >= limits.min_chars_for_repetition:
        ratio = len(zlib.compress(raw, 9)) / len(raw)
        if ratio < limits.min_compression_ratio:
            findings.append("repetition:compression")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) >= 6:
        _, count = Counter(lines).most_common(1)[0]
        if count / len(lines) > limits.max_line_share:
            findings.append("repetition:line")
    return findings


def _is_rare(token: str) -> bool:
    # Common words are short; triggers are long or mix letters with digits and symbols.
    core = token.strip(".,;:!?()[]<>\"'")
    return len(core) >= 8 or (bool(re.search(r"[A-Za-z]", core)) and bool(re.search(r"[\d_#@$%^&*~|]", core)))


def _content_tokens(text: str) -> list[str]:
    # Chat logs start every line with a timestamp, a speaker label and often an addressee.
    # Those repeat by structure, so only the rest of each line counts.
    tokens = []
    for line in text.splitlines():
        tokens.extend(_TOKEN.findall(_LINE_PREFIX.sub("", line)))
    return tokens


def _triggers(text: str, limits: ScreenThresholds) -> list[str]:
    tokens = _content_tokens(text)
    if len(tokens) < limits.trigger_min_count:
        return []
    counts = Counter(token for token in tokens if _is_rare(token))
    for token, count in counts.most_common(3):
        if count >= limits.trigger_min_count and count / len(tokens) > limits.trigger_max_share:
            return ["poisoning:repeated_trigger"]
    return []


def screen(text: str, thresholds: ScreenThresholds | None = None) -> ScreenResult:
    """Screen sanitized text for prompt injection, trigger strings and extreme repetition."""
    limits = thresholds or ScreenThresholds()
    findings = _injections(text) + _repetition(text, limits) + _triggers(text, limits)
    return ScreenResult(quarantined=bool(findings), findings=findings)
