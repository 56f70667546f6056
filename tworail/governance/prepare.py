"""Preparing a document's text for the inner loop: fields, sanitizing, screening, redaction.

The order matters: field rules first (they work on the raw JSON), then
sanitizing (so screens see normalized text), then the quarantine screens,
then redaction. Under 'learn-after-redaction' personal data and secrets are
redacted; under 'learn' only secrets are, because a secret in the weights can
reach anyone who queries them.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from tworail.governance.fields import ListRules, filter_fields
from tworail.governance.quarantine import ScreenThresholds, screen
from tworail.governance.redaction import Redactor
from tworail.governance.sanitize import sanitize


class PreparedText(BaseModel):
    """The text that may reach the inner loop, and what preparing it changed."""

    text: str
    """Sanitized, redacted text; empty when quarantined."""
    quarantined: bool = False
    """True when a screen fired; the text must not be learned."""
    findings: list[str] = Field(default_factory=list)
    """Names of the screens that fired."""
    redactions: dict[str, int] = Field(default_factory=dict)
    """Redaction counts by kind."""
    sanitized: dict[str, int] = Field(default_factory=dict)
    """Sanitizing changes by kind."""
    removed_fields: list[str] = Field(default_factory=list)
    """Paths of JSON fields removed by the field rules."""


class TextPreparer:
    """Runs field rules, sanitizing, screening and redaction with fixed settings."""

    def __init__(self, *, screen_thresholds: ScreenThresholds | None = None, use_optional: bool = True) -> None:
        self.screen_thresholds = screen_thresholds or ScreenThresholds()
        self.use_optional = use_optional
        self._full = Redactor(use_detect_secrets=use_optional)
        self._secrets_only = Redactor(pii=False, use_detect_secrets=use_optional)

    def prepare(self, text: str, content_type: str, *, redact_pii: bool, field_rules: ListRules) -> PreparedText:
        """Return the learnable form of `text`, or a quarantined result."""
        fields = filter_fields(text, content_type, field_rules)
        clean = sanitize(fields.text, content_type, use_optional=self.use_optional)
        screened = screen(clean.text, self.screen_thresholds)
        if screened.quarantined:
            return PreparedText(text="", quarantined=True, findings=screened.findings,
                                sanitized=clean.changes, removed_fields=fields.removed)
        redactor = self._full if redact_pii else self._secrets_only
        redacted = redactor.redact(clean.text)
        return PreparedText(text=redacted.text, redactions=redacted.counts, sanitized=clean.changes,
                            removed_fields=fields.removed)
