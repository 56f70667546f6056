"""The data contract: which provenance a document needs before anything may learn it.

A document is learnable only with full provenance: a source id, a URI with a
scheme, an accountable owner, a tenant, a MIME content type, a timezone-aware
ingestion time that is not in the future, and a retention period.

Decisions this module makes, because `Provenance` has defaults for some fields:
- an owner that is empty or a placeholder such as "unknown" (the default of
  `Provenance.owner`) counts as missing;
- `retention_days=None` counts as missing unless the policy rule that matches
  the source sets `retention_days`, in which case the policy owner is
  accountable for that default and it is used for expiry.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlparse

from pydantic import BaseModel, Field

from tworail.governance.errors import ContractViolation
from tworail.records import Provenance, utc_now

_MIME = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")
_CLOCK_SKEW = timedelta(minutes=5)

DEFAULT_PLACEHOLDER_OWNERS = ("", "unknown", "none", "null", "n/a", "na", "tbd", "todo", "?", "-", "owner", "nobody")
"""Owner values that name nobody and so count as a missing owner."""


class ContractConfig(BaseModel):
    """Settings of the data contract, the `[contract]` table of a learn policy."""

    model_config = {"extra": "forbid"}

    placeholder_owners: list[str] = Field(default_factory=lambda: list(DEFAULT_PLACEHOLDER_OWNERS))
    """Owner values (compared case-insensitively, stripped) that count as missing."""
    require_retention: bool = True
    """Reject documents without a retention period from the document or the policy."""
    max_retention_days: int | None = Field(default=None, ge=1)
    """Maximum retention period accepted, in days, or None for no limit."""


class ContractReport(BaseModel):
    """Outcome of checking one document's provenance against the contract."""

    ok: bool
    """True when no field is missing or invalid."""
    missing: list[str] = Field(default_factory=list)
    """Provenance fields that are missing or invalid."""
    problems: list[str] = Field(default_factory=list)
    """One readable line per missing or invalid field, with the fix."""
    retention_days: int | None = None
    """Retention period in force: the document's own, else the policy default."""
    retention_from: str = ""
    """Origin of `retention_days`: 'document', 'policy' or '' when there is none."""


def mime_essence(content_type: str) -> str:
    """Return the lowercase `type/subtype` of a MIME type, without parameters such as charset."""
    return content_type.split(";", 1)[0].strip().lower()


def check_contract(
    provenance: Provenance,
    config: ContractConfig | None = None,
    *,
    default_retention_days: int | None = None,
    now: datetime | None = None,
) -> ContractReport:
    """Check `provenance` against the contract; `default_retention_days` comes from the matching policy rule."""
    config = config or ContractConfig()
    now = now or utc_now()
    problems: dict[str, str] = {}
    if not provenance.source_id.strip():
        problems["source_id"] = "source_id is empty; give the document a stable source id"
    if not urlparse(provenance.uri.strip()).scheme:
        problems["uri"] = (f"uri {provenance.uri!r} has no scheme; give the location of the original, "
                           "for example file:///... or https://...")
    placeholders = {value.strip().lower() for value in config.placeholder_owners}
    if provenance.owner.strip().lower() in placeholders:
        problems["owner"] = (f"owner {provenance.owner!r} names nobody; set the person or team accountable "
                             "for the source")
    if not provenance.tenant.strip():
        problems["tenant"] = "tenant is empty; set the tenant the document belongs to"
    if not _MIME.match(mime_essence(provenance.content_type)):
        problems["content_type"] = (f"content_type {provenance.content_type!r} is not a MIME type; "
                                    "use type/subtype, for example text/plain")
    _check_time(provenance, now, problems)
    retention, origin = _retention(provenance, default_retention_days, config, problems)
    return ContractReport(ok=not problems, missing=list(problems), problems=list(problems.values()),
                          retention_days=retention, retention_from=origin)


def _check_time(provenance: Provenance, now: datetime, problems: dict[str, str]) -> None:
    ingested = provenance.ingested_at
    if ingested.tzinfo is None:
        problems["ingested_at"] = (f"ingested_at {ingested.isoformat()} has no time zone; "
                                   "record ingestion times in UTC")
    elif ingested - now > _CLOCK_SKEW:
        problems["ingested_at"] = f"ingested_at {ingested.isoformat()} lies in the future; check the clock"


def _retention(provenance: Provenance, default: int | None, config: ContractConfig,
               problems: dict[str, str]) -> tuple[int | None, str]:
    if provenance.retention_days is not None:
        retention, origin = provenance.retention_days, "document"
    elif default is not None:
        retention, origin = default, "policy"
    else:
        retention, origin = None, ""
    if retention is None and config.require_retention:
        problems["retention_days"] = ("retention_days is missing; set it on the document's provenance or "
                                      "give the matching policy rule a retention_days default")
    elif retention is not None and retention < 1:
        problems["retention_days"] = f"retention_days={retention} is invalid; set at least 1 day"
    elif retention is not None and config.max_retention_days is not None and retention > config.max_retention_days:
        problems["retention_days"] = (f"retention_days={retention} exceeds the contract's maximum of "
                                      f"{config.max_retention_days} days; shorten it")
    return retention, origin


def enforce_contract(
    provenance: Provenance,
    config: ContractConfig | None = None,
    *,
    default_retention_days: int | None = None,
    now: datetime | None = None,
) -> ContractReport:
    """Return the report of `check_contract`, or raise `ContractViolation` listing every problem."""
    report = check_contract(provenance, config, default_retention_days=default_retention_days, now=now)
    if not report.ok:
        raise ContractViolation(
            f"source {provenance.source_id!r} breaks the data contract: " + "; ".join(report.problems),
            missing=report.missing,
        )
    return report
