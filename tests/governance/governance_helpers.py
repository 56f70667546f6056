"""Shared data of the governance tests: a permissive policy, a fixed clock, small texts and provenance."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tworail.records import Provenance

START = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)

TEST_POLICY = """
owner = "governance tests"
default_action = "never"

[[rules]]
name = "crm"
sources = ["crm/*"]
action = "learn-after-redaction"
retention_days = 30

[[rules]]
name = "docs"
sources = ["docs/*"]
action = "learn"
retention_days = 30

[[rules]]
name = "blocked"
sources = ["secret/*"]
action = "never"

[acceptance]
max_gold_loss_increase = 2.0
max_probe_pass_rate_drop = 1.0

[drift]
max_gold_loss_increase = 2.0

[rate_limits.per_principal]
rate_per_second = 1000
burst = 1000

[rate_limits.per_source]
rate_per_second = 1000
burst = 1000
"""

GOLD = ["[10:00] <ann> my sound stopped after the update\n[10:01] <bob> check alsamixer for muted channels\n"]

TEXTS = [
    "[09:00] <ann> how do I install a package with apt-get?\n[09:01] <bob> sudo apt-get install name\n",
    "[09:05] <cid> my wireless card stopped working after the upgrade\n[09:06] <dee> try the restricted driver\n",
    "[09:10] <eve> nvidia driver shows a black screen\n[09:11] <fay> boot in recovery and reinstall it\n",
    "[09:15] <gus> how do I mount a usb disk?\n[09:16] <hal> it shows up under /media by default\n",
    "[09:20] <ivy> grub lost windows after install\n[09:21] <jon> run update-grub to find it again\n",
]


class Clock:
    """A clock that moves one second per call, so every event has its own time."""

    def __init__(self, start: datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def provenance(source: str, **changes) -> Provenance:
    """Return full provenance for a test source."""
    fields = {"source_id": source, "uri": f"file:///data/{source}", "owner": "support team",
              "ingested_at": START, "retention_days": 30}
    fields.update(changes)
    return Provenance(**fields)
