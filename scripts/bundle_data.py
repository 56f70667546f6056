"""Rebuild the demo data under tworail/data/ from the public data sets.

Usage: python scripts/bundle_data.py SHARED_DATA_DIR

Copies a slice of the SQLite 3.40.1 documentation (public domain) unchanged,
and rebuilds whole gold support threads of the Ubuntu IRC disentanglement
corpus (CC BY 4.0) from its gold.dev.clusters.txt. Threads of the first seven
dev hours are the ones the demo learns; the last three hours are held out to
measure the learnable rail.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE_DATA = Path(__file__).resolve().parent.parent / "tworail" / "data"
MIN_MESSAGES = 3
LEARN_HOURS = 7


def copy_sqlite_pages(shared: Path) -> None:
    source = shared / "sqlite-docs"
    target = PACKAGE_DATA / "sqlite-docs"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source / "pages", target)
    shutil.copy(source / "debian-copyright.txt", target / "debian-copyright.txt")


def read_threads(shared: Path) -> dict[str, list[dict]]:
    """Return the dev threads with at least MIN_MESSAGES lines, by hour file."""
    corpus = shared / "ubuntu-irc-disentanglement"
    by_hour: dict[str, list[dict]] = defaultdict(list)
    for line in (corpus / "gold.dev.clusters.txt").read_text().splitlines():
        head, *rest = line.split()
        hour, first = head.split(":")
        numbers = sorted(int(n) for n in [first, *rest])
        if len(numbers) < MIN_MESSAGES:
            continue
        raw = (corpus / "dev" / f"{hour}.raw.txt").read_text(errors="replace").splitlines()
        messages = [raw[n] for n in numbers if not raw[n].startswith("===")]
        if len(messages) < MIN_MESSAGES:
            continue
        by_hour[hour].append(
            {"id": f"{hour}:{numbers[0]}", "hour": hour, "lines": numbers, "text": "\n".join(messages)}
        )
    return by_hour


def write_threads(shared: Path) -> tuple[int, int]:
    target = PACKAGE_DATA / "ubuntu-irc"
    target.mkdir(parents=True, exist_ok=True)
    by_hour = read_threads(shared)
    hours = sorted(by_hour)
    splits = {"learn": hours[:LEARN_HOURS], "heldout": hours[LEARN_HOURS:]}
    counts = []
    for split, split_hours in splits.items():
        rows = [thread for hour in split_hours for thread in by_hour[hour]]
        with open(target / f"threads.{split}.jsonl", "w") as handle:
            for row in rows:
                handle.write(json.dumps(row) + "\n")
        counts.append(len(rows))
    licence = shared / "ubuntu-irc-disentanglement" / "LICENSE-data.txt"
    shutil.copy(licence, target / "LICENSE-data.txt")
    return counts[0], counts[1]


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: python scripts/bundle_data.py SHARED_DATA_DIR")
    shared = Path(sys.argv[1])
    copy_sqlite_pages(shared)
    learn, heldout = write_threads(shared)
    print(f"sqlite pages copied; threads: {learn} to learn, {heldout} held out")


if __name__ == "__main__":
    main()
