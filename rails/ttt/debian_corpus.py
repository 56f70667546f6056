"""Build a pretraining corpus of the learnable rail from Debian documentation packages.

`build_debian_corpus` downloads the packages with apt (`debian_packages`),
extracts the text of their documentation files (`debian_extract`), drops
exact duplicates by the SHA-256 of the text, and writes into the output folder:

- `debs/`: the downloaded .deb files;
- `documents.jsonl`: one row per document with the fields of the base
  corpus (`source`, `id`, `split`, `text`) plus `package`, `path` and `kind`;
- `manifest.json`: every package with its version, architecture, file name,
  size and SHA-256, the License fields of its copyright file, its document
  and byte counts per split and its skip counts, plus the split rule.

The 'held_out' split (every document whose SHA-256 of 'PACKAGE:PATH' is 0
modulo 50, plus forced paths) must stay out of training; `debian_documents`
yields only the 'train' split for the base corpus builder.

Command line: `python -m tworail.rails.ttt.debian_corpus OUT_DIR [--packages NAME ...]`.
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import hashlib
import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from tworail.rails.ttt.corpus import Document, bundled_sqlite_pages
from tworail.rails.ttt.debian_copyright import license_summary, read_copyright_file
from tworail.rails.ttt.debian_extract import MIN_BYTES, ExtractedDocument, extract_text
from tworail.rails.ttt.debian_packages import DebianCorpusError, PackageRecord, download_packages

logger = logging.getLogger(__name__)

SOURCE = "debian-docs"
"""Value of the `source` field of every document, as in the base corpus's rows."""

# Checked with `apt-cache policy` against Debian 12 (bookworm) and its security
# updates: all seven have a candidate there. linux-doc-6.1 is the versioned
# package that bookworm's `linux-doc` metapackage depends on. On another release,
# pick the linux-doc-X.Y that `apt-cache depends linux-doc` names.
DEFAULT_PACKAGES = (
    "linux-doc-6.1",
    "python3.11-doc",
    "postgresql-doc-15",
    "sqlite3-doc",
    "manpages",
    "git-doc",
    "debian-handbook",
)
"""Documentation packages of the default corpus (about 98 MB of .deb files on bookworm)."""

HELD_OUT_EVERY = 50
"""One document in this many (by the hash of its id) goes to the held-out split."""

SQLITE_DOC_DIR = "usr/share/doc/sqlite3"
"""Folder of the SQLite HTML pages inside the sqlite3-doc package."""

DUPLICATED_IN_BASE_CORPUS = frozenset({"sqlite3-doc"})
"""Packages whose text the base corpus already reads from upstream: the SQLite 3.40.1 HTML pages."""


def is_held_out(document_id: str, *, every: int = HELD_OUT_EVERY) -> bool:
    """Return whether a document id falls in the held-out split: SHA-256 of the id, first 8 bytes, mod `every` is 0.

    The id is 'PACKAGE:PATH', so the split does not depend on build order,
    on the package list or on the package version.
    """
    digest = hashlib.sha256(document_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % every == 0


def bundled_sqlite_held_out_paths() -> list[str]:
    """Return the sqlite3-doc paths of the SQLite pages bundled with tworail, which evaluation uses."""
    return [f"{SQLITE_DOC_DIR}/{page}" for page in bundled_sqlite_pages()]


def split_of(document_id: str, path: str, held_out_paths: Sequence[str]) -> str:
    """Return 'held_out' for a hashed or forced held-out document (path matches a glob), else 'train'."""
    if any(fnmatch.fnmatchcase(path, pattern) for pattern in held_out_paths) or is_held_out(document_id):
        return "held_out"
    return "train"


class _CorpusWriter:
    """Append deduplicated documents to documents.jsonl and count them per package and split."""

    def __init__(self, handle: TextIO, max_bytes: int | None, held_out_paths: Sequence[str]) -> None:
        self.handle = handle
        self.max_bytes = max_bytes
        self.held_out_paths = list(held_out_paths)
        self.seen: set[str] = set()
        """SHA-256 digests of the texts written so far."""
        self.total_bytes = 0
        self.full = False
        """Whether a document was rejected because it would pass `max_bytes`."""
        self.counts: dict[str, dict[str, int]] = {}

    def add(self, document: ExtractedDocument, stats: dict[str, Any]) -> bool:
        """Write one document unless its text was written before. Return False once `max_bytes` is reached."""
        digest = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
        if digest in self.seen:
            stats["duplicates"] += 1
            return True
        size = len(document.text.encode("utf-8"))
        if self.max_bytes is not None and self.total_bytes + size > self.max_bytes:
            self.full = True
            return False
        self.seen.add(digest)
        self.total_bytes += size
        split = split_of(document.id, document.path, self.held_out_paths)
        row = {"source": SOURCE, "id": document.id, "split": split, "text": document.text,
               "package": document.package, "path": document.path, "kind": document.kind}
        self.handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        stats["documents"][split] += 1
        stats["text_bytes"][split] += size
        entry = self.counts.setdefault(f"{SOURCE}/{split}", {"documents": 0, "characters": 0, "bytes": 0})
        entry["documents"] += 1
        entry["characters"] += len(document.text)
        entry["bytes"] += size
        return True


def _package_entry(record: PackageRecord, deb_dir: Path) -> dict[str, Any]:
    """Return the manifest entry of one package before its documents are counted."""
    copyright_text = read_copyright_file(deb_dir / record.filename, record.name)
    return {
        **record.to_json(),
        "license": license_summary(copyright_text),
        "documents": {"train": 0, "held_out": 0},
        "text_bytes": {"train": 0, "held_out": 0},
        "duplicates": 0,
        "skipped": {},
    }


def _extract_package(
    record: PackageRecord, deb_dir: Path, writer: _CorpusWriter, stats: dict[str, Any], english_only: bool
) -> None:
    """Extract one package's documents into the writer, stopping when it is full."""
    skipped: Counter[str] = Counter()
    documents = extract_text(deb_dir / record.filename, english_only=english_only, skipped=skipped)
    with contextlib.closing(documents):
        for document in documents:
            if not writer.add(document, stats):
                break
    stats["skipped"] = dict(sorted(skipped.items()))


def build_debian_corpus(
    packages: Iterable[str],
    out_dir: Path,
    *,
    max_bytes: int | None = None,
    held_out_paths: Sequence[str] = (),
    english_only: bool = True,
    apt_get: str = "apt-get",
    apt_cache: str = "apt-cache",
    progress: bool = True,
) -> dict[str, object]:
    """Download the packages, extract and deduplicate their text, write the corpus and return its manifest.

    Documents are read package by package in the given order and by path inside
    each package; the first copy of a text is kept. With `max_bytes`, writing
    stops before the first document that would take the UTF-8 text past that
    size, and the manifest records `"truncated": true`. `held_out_paths` are glob
    patterns on the path inside the package (such as 'usr/share/doc/sqlite3/wal.html')
    that go to the held-out split in addition to the hashed ones.
    Raises PackageNotFoundError for a name apt cannot locate.
    """
    if max_bytes is not None and max_bytes <= 0:
        raise ValueError(f"max_bytes={max_bytes} must be positive, or None for no limit")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    deb_dir = out_dir / "debs"
    records = download_packages(packages, deb_dir, apt_get=apt_get, apt_cache=apt_cache, progress=progress)
    logger.info("downloaded %d packages in %.1f s", len(records), time.monotonic() - started)
    entries = []
    partial = out_dir / "documents.jsonl.partial"
    with open(partial, "w", encoding="utf-8") as handle:
        writer = _CorpusWriter(handle, max_bytes, held_out_paths)
        for record in tqdm(records, desc="extract", unit="package", disable=not progress):
            entries.append(_package_entry(record, deb_dir))
            if not writer.full:
                _extract_package(record, deb_dir, writer, entries[-1], english_only)
    partial.replace(out_dir / "documents.jsonl")
    manifest = _manifest(entries, writer, held_out_paths, english_only, max_bytes)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info(
        "wrote %d documents (%d bytes of text) to %s in %.1f s",
        manifest["totals"]["documents"], writer.total_bytes, out_dir, time.monotonic() - started,
    )
    return manifest


def _manifest(
    entries: list[dict[str, Any]],
    writer: _CorpusWriter,
    held_out_paths: Sequence[str],
    english_only: bool,
    max_bytes: int | None,
) -> dict[str, object]:
    """Return the manifest of a finished build."""
    return {
        "source": SOURCE,
        "packages": entries,
        "counts": writer.counts,
        "totals": {
            "documents": sum(sum(entry["documents"].values()) for entry in entries),
            "text_bytes": writer.total_bytes,
            "deb_bytes": sum(entry["bytes"] for entry in entries),
            "duplicates_dropped": sum(entry["duplicates"] for entry in entries),
        },
        "dedup": "exact: SHA-256 of the UTF-8 text; the first copy is kept (packages in list order, paths sorted)",
        "extraction": {"english_only": english_only, "min_bytes": MIN_BYTES},
        "max_bytes": max_bytes,
        "truncated": writer.full,
        "splits": {
            "train": "every document not held out",
            "held_out": {
                "rule": f"int.from_bytes(sha256('PACKAGE:PATH')[:8], 'big') % {HELD_OUT_EVERY} == 0",
                "forced_paths": sorted(held_out_paths),
                "use": "never train on these; they measure learning on unseen Debian documentation",
            },
        },
    }


def debian_documents(
    corpus_dir: Path,
    *,
    exclude_packages: Iterable[str] = DUPLICATED_IN_BASE_CORPUS,
    include_held_out: bool = False,
) -> Iterator[Document]:
    """Yield the documents of a built Debian corpus as base-corpus `Document`s.

    Only the train split comes out unless `include_held_out` is set; held-out
    documents then come out with `held_out=True`. Packages in `exclude_packages`
    are left out. The default excludes sqlite3-doc, whose pages the base corpus already reads.
    """
    path = Path(corpus_dir) / "documents.jsonl"
    if not path.is_file():
        raise DebianCorpusError(
            f"{path} not found; build the Debian corpus first with "
            f"`python -m tworail.rails.ttt.debian_corpus {Path(corpus_dir)}` (from a folder other than the repository root)"
        )
    excluded = set(exclude_packages)
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            held_out = row["split"] != "train"
            if row["package"] not in excluded and (include_held_out or not held_out):
                yield Document(row["source"], row["id"], row["text"], held_out=held_out)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tworail.rails.ttt.debian_corpus",
        description="Download Debian documentation packages and write their text as a corpus with a manifest.",
    )
    parser.add_argument("out_dir", type=Path, help="output folder for debs/, documents.jsonl and manifest.json")
    parser.add_argument("--packages", nargs="+", default=list(DEFAULT_PACKAGES), metavar="NAME",
                        help="Debian binary package names (default: %(default)s)")
    parser.add_argument("--max-bytes", type=int, default=None,
                        help="stop writing documents before the UTF-8 text passes this many bytes (default: no limit)")
    parser.add_argument("--held-out-path", action="append", default=[], metavar="GLOB",
                        help="extra glob on the path inside the package that goes to the held-out split (repeatable)")
    parser.add_argument("--no-bundled-held-out", action="store_true",
                        help="do not hold out the sqlite3-doc copies of the SQLite pages bundled with tworail")
    parser.add_argument("--all-languages", action="store_true", help="keep translated documentation too")
    parser.add_argument("--apt-get", default="apt-get", help="apt-get executable (default: %(default)s)")
    parser.add_argument("--apt-cache", default="apt-cache", help="apt-cache executable (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    parser.add_argument("--log-level", default="INFO", help="logging level (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return the exit status (1 when a package is missing or apt fails)."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    held_out = list(args.held_out_path)
    if not args.no_bundled_held_out:
        held_out.extend(bundled_sqlite_held_out_paths())
    try:
        manifest = build_debian_corpus(
            args.packages,
            args.out_dir,
            max_bytes=args.max_bytes,
            held_out_paths=held_out,
            english_only=not args.all_languages,
            apt_get=args.apt_get,
            apt_cache=args.apt_cache,
            progress=not args.no_progress,
        )
    except (DebianCorpusError, ValueError) as error:
        logger.error("%s", error)
        return 1
    logger.info("manifest: %s", json.dumps(manifest["totals"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
