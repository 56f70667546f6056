"""Field allowlists and denylists for structured documents.

For JSON documents (`application/json` and `+json` types) the policy's field
rules apply to object keys at every depth. A key matching a deny pattern is
removed with its value. When an allowlist is set, a key with a scalar value
survives only if it matches an allow pattern, and objects and arrays are
walked into. Patterns are case-insensitive globs. Other content types have
no fields, so the rules leave them unchanged.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, Field

from tworail.governance.contracts import mime_essence
from tworail.governance.errors import ContractViolation


class ListRules(BaseModel):
    """An allowlist and a denylist of glob patterns; an empty allowlist allows everything."""

    model_config = {"extra": "forbid"}

    allow: list[str] = Field(default_factory=list)
    """Patterns of values that may pass; empty means all that are not denied."""
    deny: list[str] = Field(default_factory=list)
    """Patterns of values that never pass; checked before the allowlist."""


class FieldFilterResult(BaseModel):
    """A structured document after the field rules."""

    text: str
    """The document with removed fields dropped, serialized again."""
    removed: list[str] = Field(default_factory=list)
    """Paths of removed fields, for example 'user.email' (names only, never values)."""


def is_structured(content_type: str) -> bool:
    """Return True for the content types whose fields the rules apply to (JSON)."""
    essence = mime_essence(content_type)
    return essence == "application/json" or essence.endswith("+json")


def _matches(name: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(name.lower(), pattern.lower()) for pattern in patterns)


def _filter(value: Any, rules: ListRules, path: str, removed: list[str]) -> Any:
    if isinstance(value, list):
        return [_filter(item, rules, f"{path}[]", removed) for item in value]
    if not isinstance(value, dict):
        return value
    kept = {}
    for key, item in value.items():
        name = f"{path}.{key}" if path else str(key)
        if _matches(str(key), rules.deny):
            removed.append(name)
            continue
        if rules.allow and not isinstance(item, (dict, list)) and not _matches(str(key), rules.allow):
            removed.append(name)
            continue
        kept[key] = _filter(item, rules, name, removed)
    return kept


def filter_fields(text: str, content_type: str, rules: ListRules) -> FieldFilterResult:
    """Apply the field rules to a JSON document; other content types pass unchanged."""
    if not is_structured(content_type) or not (rules.allow or rules.deny):
        return FieldFilterResult(text=text)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ContractViolation(
            f"the document is declared {content_type!r} but is not valid JSON ({error.msg} at line {error.lineno}); "
            "fix the document or declare its real content type",
            missing=["content_type"],
        ) from None
    removed: list[str] = []
    filtered = _filter(document, rules, "", removed)
    return FieldFilterResult(text=json.dumps(filtered, ensure_ascii=False), removed=removed)
