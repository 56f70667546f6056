"""The learn policy: which sources may be learned, how, and the thresholds that guard learning.

A policy is a TOML file validated by pydantic. It names an owner, allow and
deny lists of sources (globs on the source id), content types and fields, and
an ordered list of rules that give each matching source an action:
'learn', 'learn-after-redaction' or 'never'. It also carries the data
contract settings, the acceptance and drift thresholds, the budgets and the
rate limits, so one owned document governs the whole learn path.

`LearnPolicy.decide` returns a `PolicyDecision` that names the rule that made
it. Order of evaluation: content-type deny, content-type allow, source deny,
source allow, then the first matching rule, then `default_action`.
"""

from __future__ import annotations

import hashlib
import tomllib
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError, field_validator

from tworail.governance.acceptance import AcceptanceThresholds
from tworail.governance.budgets import BudgetConfig
from tworail.governance.contracts import DEFAULT_PLACEHOLDER_OWNERS, ContractConfig, mime_essence
from tworail.governance.drift import DriftThresholds
from tworail.governance.errors import PolicyError
from tworail.governance.fields import ListRules
from tworail.governance.ratelimit import RateLimitConfig
from tworail.records import Provenance

LearnAction = Literal["learn", "learn-after-redaction", "never"]
"""Action for a document: learned as is (secrets still removed), learned after redaction, or never learned."""


class PolicyDecision(BaseModel):
    """The policy's verdict on one document, with the rule that made it."""

    action: LearnAction
    """Action allowed for the document."""
    rule: str
    """The rule that decided, for example 'rules[0] (bundled Ubuntu support threads)' or 'sources.deny[1]'."""
    reasons: list[str] = Field(default_factory=list)
    """Why, one line each."""


class SourceRule(BaseModel):
    """One rule: sources (and optionally tenants) it matches, and their action."""

    model_config = {"extra": "forbid"}

    name: str = ""
    """Label shown in decisions and the audit trail."""
    sources: list[str]
    """Glob patterns on the source id, for example 'ubuntu-irc/*'."""
    action: LearnAction
    """Action for matching documents."""
    tenants: list[str] | None = None
    """Tenants the rule applies to, or None for all."""
    retention_days: int | None = Field(default=None, ge=1)
    """Retention used for documents of these sources that carry none."""

    @field_validator("sources", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    def matches(self, provenance: Provenance) -> bool:
        """Return True when the rule covers the document's source and tenant."""
        if self.tenants is not None and provenance.tenant not in self.tenants:
            return False
        return any(fnmatchcase(provenance.source_id, pattern) for pattern in self.sources)


class LearnPolicy(BaseModel):
    """A learn policy; load one with `load_policy` or use `default_policy`."""

    model_config = {"extra": "forbid"}

    owner: str
    """Person or team accountable for the policy."""
    version: str = "1"
    """Version label chosen by the owner."""
    description: str = ""
    """Purpose of the policy, in the owner's words."""
    default_action: LearnAction = "never"
    """Action for documents no rule matches."""
    sources: ListRules = Field(default_factory=ListRules)
    """Allow and deny globs on source ids."""
    content_types: ListRules = Field(default_factory=ListRules)
    """Allow and deny globs on MIME types (type/subtype, without parameters)."""
    fields: ListRules = Field(default_factory=ListRules)
    """Allow and deny globs on field names of structured (JSON) documents."""
    rules: list[SourceRule] = Field(default_factory=list)
    """Per-source actions; the first match wins."""
    contract: ContractConfig = Field(default_factory=ContractConfig)
    """Data contract settings."""
    acceptance: AcceptanceThresholds = Field(default_factory=AcceptanceThresholds)
    """Thresholds a learning batch must meet on its shadow copy to commit."""
    drift: DriftThresholds = Field(default_factory=DriftThresholds)
    """Thresholds that raise drift alerts after a commit."""
    budget: BudgetConfig = Field(default_factory=BudgetConfig)
    """Caps on learned tokens and update norm, and eviction."""
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    """Token buckets per principal and per source."""

    @field_validator("owner")
    @classmethod
    def _named_owner(cls, value: str) -> str:
        if value.strip().lower() in DEFAULT_PLACEHOLDER_OWNERS:
            raise ValueError(f"owner {value!r} names nobody; set the person or team accountable for the policy")
        return value

    def policy_hash(self) -> str:
        """Return the SHA-256 of the policy's canonical JSON, recorded by policy-change events."""
        return hashlib.sha256(self.model_dump_json().encode("utf-8")).hexdigest()

    def matching_rule(self, provenance: Provenance) -> tuple[int, SourceRule] | None:
        """Return the index and rule that first matches the document, or None."""
        for index, rule in enumerate(self.rules):
            if rule.matches(provenance):
                return index, rule
        return None

    def retention_default(self, provenance: Provenance) -> int | None:
        """Return the retention the matching rule gives documents that carry none."""
        match = self.matching_rule(provenance)
        return match[1].retention_days if match else None

    def decide(self, provenance: Provenance) -> PolicyDecision:
        """Return the action for a document, with the rule that decided it."""
        content_type = mime_essence(provenance.content_type)
        source = provenance.source_id
        denied = _first_match(content_type, self.content_types.deny)
        if denied is not None:
            return PolicyDecision(action="never", rule=f"content_types.deny[{denied}]",
                                  reasons=[f"content type {content_type!r} is denied"])
        if self.content_types.allow and _first_match(content_type, self.content_types.allow) is None:
            return PolicyDecision(action="never", rule="content_types.allow",
                                  reasons=[f"content type {content_type!r} is not on the allowlist"])
        denied = _first_match(source, self.sources.deny)
        if denied is not None:
            return PolicyDecision(action="never", rule=f"sources.deny[{denied}]",
                                  reasons=[f"source {source!r} matches denied pattern {self.sources.deny[denied]!r}"])
        if self.sources.allow and _first_match(source, self.sources.allow) is None:
            return PolicyDecision(action="never", rule="sources.allow",
                                  reasons=[f"source {source!r} is not on the allowlist"])
        match = self.matching_rule(provenance)
        if match is None:
            return PolicyDecision(action=self.default_action, rule="default_action",
                                  reasons=[f"no rule matches source {source!r} in tenant {provenance.tenant!r}"])
        index, rule = match
        label = f"rules[{index}]" + (f" ({rule.name})" if rule.name else "")
        return PolicyDecision(action=rule.action, rule=label,
                              reasons=[f"source {source!r} matches {rule.sources}"])


def _first_match(value: str, patterns: list[str]) -> int | None:
    for index, pattern in enumerate(patterns):
        if fnmatchcase(value, pattern):
            return index
    return None


def parse_policy(text: str, *, origin: str = "<text>") -> LearnPolicy:
    """Parse and validate a policy from TOML text; raise `PolicyError` naming the bad key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"policy {origin} is not valid TOML: {error}") from None
    try:
        return LearnPolicy.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise PolicyError(f"policy {origin} is invalid at {where}: {first['msg']} "
                          f"({error.error_count()} problem(s) in all)") from None


def load_policy(path: Path | str) -> LearnPolicy:
    """Load and validate a policy file; raise `PolicyError` when it is missing or invalid."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"cannot read policy file {path}: {error.strerror}") from None
    return parse_policy(text, origin=str(path))


DEFAULT_POLICY_TOML = """\
owner = "tworail maintainers"
version = "1"
description = "Learn the bundled Ubuntu support threads after redaction; learn nothing else."
default_action = "never"

[content_types]
allow = ["text/plain", "text/markdown", "text/html", "text/x-irc-log", "application/json"]

[fields]
deny = ["password", "passwd", "secret*", "*token*", "api_key", "apikey", "ssn", "card_number", "iban"]

[[rules]]
name = "bundled Ubuntu support threads"
sources = ["ubuntu-irc/*"]
action = "learn-after-redaction"
retention_days = 365

[acceptance]
max_gold_loss_increase = 0.5
max_probe_pass_rate_drop = 0.25

[drift]
max_gold_loss_increase = 0.25
freeze_on_alert = true

[budget]
period_seconds = 3600
max_tokens_per_period = 1000000

[rate_limits.per_principal]
rate_per_second = 5.0
burst = 50

[rate_limits.per_source]
rate_per_second = 2.0
burst = 20
"""
"""The default policy as TOML, also a starting point for your own policy file."""


def default_policy() -> LearnPolicy:
    """Return the default policy: the bundled demo threads are learned after redaction, nothing else."""
    return parse_policy(DEFAULT_POLICY_TOML, origin="(default policy)")
