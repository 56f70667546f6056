"""Budgets on learning: caps per period, a cap on what the fast weights hold, and retention expiry.

- Per source and period: the tokens and summed update norm of the 'learn'
  rows in the last `period_seconds`, plus the new batch, must stay under the
  caps, or the batch is rejected. Rows unlearned since then still count,
  because that learning happened.
- Over all active commits: when their tokens exceed `max_active_tokens`, the
  oldest commits are evicted (unlearned) until the rest fit.
- Retention: a commit whose retention period has ended is expired (unlearned)
  by the expiry sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from tworail.audit import AuditStore
from tworail.governance.lineage import Commit, Lineage


class BudgetConfig(BaseModel):
    """Budget settings, the `[budget]` table of a learn policy; None disables a cap."""

    model_config = {"extra": "forbid"}

    period_seconds: float = Field(default=3600.0, gt=0)
    """Length of the sliding window the per-period caps apply to."""
    max_tokens_per_period: int | None = Field(default=None, ge=1)
    """Tokens one source may have learned within a period."""
    max_update_norm_per_period: float | None = Field(default=None, gt=0)
    """Summed update norm one source may have caused within a period."""
    max_active_tokens: int | None = Field(default=None, ge=1)
    """Tokens all active commits together may hold; the oldest are evicted beyond it."""


class BudgetUsage(BaseModel):
    """Learning by one source within the current period."""

    tokens: int = 0
    """Tokens learned."""
    update_norm: float = 0.0
    """Summed update norm."""
    events: int = 0
    """Learn events counted."""


def usage_in_period(audit: AuditStore, *, source: str, tenant: str, now: datetime, period_seconds: float) -> BudgetUsage:
    """Return the source's learning within the period that ends at `now`."""
    since = now - timedelta(seconds=period_seconds)
    events = audit.events(kind="learn", source=source, tenant=tenant, since=since)
    return BudgetUsage(tokens=sum(event.tokens for event in events),
                       update_norm=sum(event.update_norm for event in events), events=len(events))


def over_budget(config: BudgetConfig, usage: BudgetUsage, *, tokens: int, update_norm: float) -> list[tuple[str, str]]:
    """Return (rule, reason) for each per-period cap the new batch would break."""
    failures = []
    if config.max_tokens_per_period is not None and usage.tokens + tokens > config.max_tokens_per_period:
        failures.append(("budget.tokens", f"the source learned {usage.tokens} tokens in the last "
                                          f"{config.period_seconds:g} s; {tokens} more exceed the cap of "
                                          f"{config.max_tokens_per_period}"))
    if (config.max_update_norm_per_period is not None
            and usage.update_norm + update_norm > config.max_update_norm_per_period):
        failures.append(("budget.update_norm", f"the source's update norm in the last {config.period_seconds:g} s "
                                               f"is {usage.update_norm:.4f}; {update_norm:.4f} more exceed the cap "
                                               f"of {config.max_update_norm_per_period}"))
    return failures


def evictions(config: BudgetConfig, lineage: Lineage) -> list[Commit]:
    """Return the oldest active commits to evict so the rest fit `max_active_tokens`."""
    if config.max_active_tokens is None:
        return []
    total = sum(commit.tokens for commit in lineage.commits)
    evicted = []
    for commit in lineage.commits:
        if total <= config.max_active_tokens:
            break
        evicted.append(commit)
        total -= commit.tokens
    return evicted


def expired(lineage: Lineage, now: datetime) -> list[Commit]:
    """Return the active commits whose retention period ended at or before `now`."""
    return [commit for commit in lineage.commits if commit.expires_at is not None and commit.expires_at <= now]
