"""Write a benchmark's results as indented JSON, the form `benchmarks/results/` keeps."""

from __future__ import annotations

import json
from pathlib import Path


def write_results(path: Path, results: dict[str, object]) -> None:
    """Write `results` to `path` as indented JSON (creating its folder) and print where it went."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {path}")
