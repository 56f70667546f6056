"""Build the pretraining corpus of the bundled TTT-E2E checkpoint from public data.

Sources (all read from a data root laid out like the project's shared data folder):

- Ubuntu IRC disentanglement, **train** split only: each gold cluster of
  `gold.train.clusters.txt` becomes one thread, its messages in line order with
  `===` system lines (joins, quits, nick changes) dropped. The dev split is held
  out entirely because the bundled demo threads come from it.
- SQLite 3.40.1 documentation: the visible text of every HTML page in
  `sqlite-doc-3.40.1-html.tar.xz`, minus a configurable held-out slice of pages.
- Apache Hadoop issues from GitBugs (CC BY 4.0): summary and description. The
  latest issues by creation date are held out, so evaluation text comes after
  everything the model was trained on.
- Optionally, a built Debian documentation corpus (`debian_corpus`), its train
  split thinned to a character budget (about the size of the other sources together).

The LogHub logs are never read (their licence excludes shipped training data).
The builder writes the documents as JSONL and a manifest listing every input
file with its SHA-256 and size, the document counts and the splits. Held-out
Hadoop issues and Debian documents are written too, with split 'held_out', so an
evaluation can read them; tokenizer and training never do.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path

logger = logging.getLogger(__name__)

IRC_DIR = "ubuntu-irc-disentanglement"
IRC_TRAIN_ARCHIVE = f"{IRC_DIR}/train.tar.xz"
IRC_TRAIN_CLUSTERS = f"{IRC_DIR}/gold.train.clusters.txt"
SQLITE_ARCHIVE = "sqlite-docs/sqlite-doc-3.40.1-html.tar.xz"
HADOOP_CSV = "gitbugs/hadoop/hadoop_bugs.csv"
HADOOP_DATE_FORMAT = "%d/%b/%y %H:%M"
"""Format of the Created column of the GitBugs CSV, for example '30/Sep/21 17:20'."""
VALIDATION_EVERY = 50
"""Every n-th document (in build order) goes to the validation split."""


class CorpusError(RuntimeError):
    """Raised when an input of the corpus is missing or malformed."""


@dataclass
class Document:
    """One training document with its origin."""

    source: str
    """Corpus source: 'ubuntu-irc', 'sqlite-docs' or 'hadoop-issues'."""
    id: str
    """Id inside the source, for example the page path or the issue id."""
    text: str
    """Plain text of the document."""
    held_out: bool = False
    """Whether the document is kept out of training and validation (written with split 'held_out')."""


@dataclass
class CorpusSpec:
    """What goes into the corpus and what is held out."""

    data_root: Path
    """Folder holding the public data sets (one subfolder per data set)."""
    held_out_pages: list[str] = field(default_factory=list)
    """SQLite page paths inside the archive (such as 'wal.html') kept out of training."""
    include_hadoop: bool = True
    """Whether to add the Hadoop issue summaries and descriptions."""
    hadoop_held_out_fraction: float = 0.05
    """Fraction of Hadoop issues, the latest by creation date, kept out of training."""
    debian_corpus_dir: Path | None = None
    """Folder written by `build_debian_corpus` whose train split is added, or None."""
    debian_max_characters: int | None = None
    """Budget of Debian training text: every n-th document is kept so the total stays under it; None keeps all."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.hadoop_held_out_fraction < 1.0:
            raise CorpusError(
                f"hadoop_held_out_fraction={self.hadoop_held_out_fraction} is invalid; "
                "set a fraction of at least 0 and below 1, such as 0.05 for the latest 5%"
            )
        if self.debian_max_characters is not None and self.debian_max_characters <= 0:
            raise CorpusError(
                f"debian_max_characters={self.debian_max_characters} is invalid; set a positive number, or None for no budget"
            )


class _TextExtractor(HTMLParser):
    """Collect the visible text of an HTML page, one block element per line."""

    SKIPPED = {"script", "style", "head", "title"}
    BLOCKS = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "dt", "dd", "table", "blockquote"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIPPED:
            self.skip_depth += 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIPPED and self.skip_depth:
            self.skip_depth -= 1
        elif tag in self.BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip_depth:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Return the visible text of an HTML page with whitespace collapsed inside lines."""
    extractor = _TextExtractor()
    extractor.feed(html)
    lines = (" ".join(line.split()) for line in "".join(extractor.parts).splitlines())
    return "\n".join(line for line in lines if line)


def _require(path: Path) -> Path:
    if not path.exists():
        raise CorpusError(f"corpus input {path} is missing; point data_root at the shared data folder")
    return path


def irc_threads(archive: Path, clusters: Path, unpack_dir: Path) -> Iterator[Document]:
    """Yield the gold threads of the IRC train split, unpacking the archive once into `unpack_dir`."""
    raw_dir = unpack_dir / "train"
    if not raw_dir.is_dir():
        logger.info("unpacking %s into %s", archive, unpack_dir)
        unpack_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(_require(archive)) as tar:
            tar.extractall(unpack_dir, filter="data")
    # Cluster ids name the hour by the file stem, e.g. '2004-12-25' for 2004-12-25.train-c.raw.txt.
    raw_files = {path.name.split(".")[0]: path for path in raw_dir.glob("*.raw.txt")}
    log_lines: dict[str, list[str]] = {}
    for row in _require(clusters).read_text(encoding="utf-8").splitlines():
        if not row.strip():
            continue
        head, *rest = row.split()
        stem, first = head.split(":")
        if stem not in raw_files:
            raise CorpusError(f"cluster {head!r} names hour {stem!r}, which has no .raw.txt in {raw_dir}")
        if stem not in log_lines:
            log_lines[stem] = raw_files[stem].read_text(encoding="utf-8", errors="replace").splitlines()
        numbers = sorted(int(n) for n in [first, *rest])
        messages = [log_lines[stem][n] for n in numbers if not log_lines[stem][n].startswith("===")]
        if messages:
            yield Document("ubuntu-irc", f"{stem}:{numbers[0]}", "\n".join(messages))


def sqlite_pages(archive: Path, held_out: set[str]) -> Iterator[Document]:
    """Yield the text of each SQLite documentation page not in `held_out`."""
    with tarfile.open(_require(archive)) as tar:
        members = sorted(tar.getmembers(), key=lambda m: m.name)
        missing = sorted(held_out - {member.name.removeprefix("./") for member in members})
        if missing:
            raise CorpusError(
                f"held-out pages {missing} are not in {archive}; give paths inside the archive such as 'wal.html'"
            )
        for member in members:
            name = member.name.removeprefix("./")
            if not member.isfile() or not name.endswith(".html") or name in held_out:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            text = html_to_text(handle.read().decode("utf-8", errors="replace"))
            if text:
                yield Document("sqlite-docs", name, text)


def _summary(row: dict[str, str]) -> str:
    return (row.get("Summary") or "").strip()


def _description(row: dict[str, str]) -> str:
    return (row.get("Description") or "").strip()


def _created(row: dict[str, str]) -> datetime:
    value = (row.get("Created") or "").strip()
    try:
        return datetime.strptime(value, HADOOP_DATE_FORMAT)
    except ValueError:
        raise CorpusError(
            f"Hadoop issue {row.get('Issue id')!r} has Created={value!r}; expected a date like '30/Sep/21 17:20'"
        ) from None


def hadoop_issues(path: Path, held_out_fraction: float = 0.0) -> Iterator[Document]:
    """Yield 'summary, blank line, description' for each Hadoop issue, oldest first.

    The latest `held_out_fraction` of the issues by creation date come out marked held out.
    """
    csv.field_size_limit(1 << 30)
    with open(_require(path), encoding="utf-8", newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if _summary(row) or _description(row)]
    rows.sort(key=_created)
    first_held_out = len(rows) - int(len(rows) * held_out_fraction)
    for index, row in enumerate(rows):
        text = f"{_summary(row)}\n\n{_description(row)}".strip()
        yield Document("hadoop-issues", row.get("Issue id") or _summary(row), text, held_out=index >= first_held_out)


def within_budget(documents: list[Document], max_characters: int | None) -> list[Document]:
    """Keep every n-th document, n the smallest stride that brings the total under `max_characters`.

    Striding keeps the mix of packages; documents past the budget are dropped at the end.
    """
    total = sum(len(doc.text) for doc in documents)
    if max_characters is None or total <= max_characters:
        return documents
    stride = -(-total // max_characters)
    kept: list[Document] = []
    used = 0
    for doc in documents[::stride]:
        if used + len(doc.text) > max_characters:
            break
        kept.append(doc)
        used += len(doc.text)
    logger.info("kept %d of %d documents (%d of %d characters, stride %d)", len(kept), len(documents), used, total, stride)
    return kept


def file_record(path: Path, root: Path) -> dict[str, object]:
    """Return a manifest entry: path relative to the data root, SHA-256 and size in bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return {"path": str(path.relative_to(root)), "sha256": digest.hexdigest(), "bytes": path.stat().st_size}


def build_documents(spec: CorpusSpec, unpack_dir: Path) -> list[Document]:
    """Read every source of the spec and return the documents in a fixed order."""
    root = spec.data_root
    documents: list[Document] = []
    documents.extend(irc_threads(root / IRC_TRAIN_ARCHIVE, root / IRC_TRAIN_CLUSTERS, unpack_dir))
    documents.extend(sqlite_pages(root / SQLITE_ARCHIVE, set(spec.held_out_pages)))
    if spec.include_hadoop:
        documents.extend(hadoop_issues(root / HADOOP_CSV, spec.hadoop_held_out_fraction))
    if spec.debian_corpus_dir is not None:
        # Imported here because debian_corpus itself imports this module.
        from tworail.rails.ttt.debian_corpus import debian_documents

        debian = list(debian_documents(spec.debian_corpus_dir, include_held_out=True))
        documents.extend(within_budget([doc for doc in debian if not doc.held_out], spec.debian_max_characters))
        documents.extend(doc for doc in debian if doc.held_out)
    if not documents:
        raise CorpusError(f"no documents found under {root}")
    return documents


def split_of(index: int) -> str:
    """Return 'validation' for every `VALIDATION_EVERY`-th document, else 'train'."""
    return "validation" if index % VALIDATION_EVERY == VALIDATION_EVERY - 1 else "train"


def _splits(documents: list[Document]) -> Iterator[str]:
    """Yield each document's split: held-out ones stay out of the train/validation count."""
    index = 0
    for doc in documents:
        if doc.held_out:
            yield "held_out"
        else:
            yield split_of(index)
            index += 1


def debian_package_records(debian_corpus_dir: Path) -> list[dict[str, object]]:
    """Return name, version, .deb file name, SHA-256, size and licence of each package of a Debian corpus build."""
    manifest = json.loads((Path(debian_corpus_dir) / "manifest.json").read_text(encoding="utf-8"))
    keys = ("name", "version", "filename", "sha256", "bytes", "license")
    return [{key: package.get(key) for key in keys} for package in manifest.get("packages", [])]


def write_corpus(spec: CorpusSpec, out_dir: Path) -> dict[str, object]:
    """Write `documents.jsonl` and `manifest.json` into out_dir and return the manifest.

    Each JSONL row has source, id, split and text. Token counts are added to the
    manifest later by the tokenizer step (see `add_token_counts`).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    documents = build_documents(spec, out_dir / "unpacked")
    counts: dict[str, dict[str, int]] = {}
    with open(out_dir / "documents.jsonl", "w", encoding="utf-8") as handle:
        for doc, split in zip(documents, _splits(documents)):
            handle.write(json.dumps({"source": doc.source, "id": doc.id, "split": split, "text": doc.text}) + "\n")
            entry = counts.setdefault(f"{doc.source}/{split}", {"documents": 0, "characters": 0})
            entry["documents"] += 1
            entry["characters"] += len(doc.text)
    root = spec.data_root
    inputs = [root / IRC_TRAIN_ARCHIVE, root / IRC_TRAIN_CLUSTERS, root / SQLITE_ARCHIVE]
    if spec.include_hadoop:
        inputs.append(root / HADOOP_CSV)
    records = [file_record(path, root) for path in inputs]
    if spec.debian_corpus_dir is not None:
        debian_manifest = Path(spec.debian_corpus_dir) / "manifest.json"
        records.append(file_record(debian_manifest, Path(spec.debian_corpus_dir).parent))
        records.append(file_record(Path(spec.debian_corpus_dir) / "documents.jsonl", Path(spec.debian_corpus_dir).parent))
    manifest: dict[str, object] = {
        "inputs": records,
        "counts": counts,
        "splits": {
            "train": "every document not held out, except each 50th",
            "validation": "each 50th document not held out, in build order",
            "held_out": {
                "ubuntu-irc": "the whole dev split (gold.dev.clusters.txt, dev/): never read",
                "sqlite-docs": sorted(spec.held_out_pages),
                "hadoop-issues": f"the latest {spec.hadoop_held_out_fraction:.0%} by creation date (split 'held_out')",
                "debian-docs": "the Debian corpus's own held-out split (split 'held_out')",
                "loghub-2k": "never read (licence)",
            },
            "debian_max_characters": spec.debian_max_characters,
        },
    }
    if spec.debian_corpus_dir is not None:
        manifest["debian_packages"] = debian_package_records(spec.debian_corpus_dir)
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("wrote %d documents to %s", len(documents), out_dir)
    return manifest


def read_documents(path: Path, split: str | None = None) -> Iterable[dict[str, str]]:
    """Yield the JSONL rows written by `write_corpus`, optionally only one split."""
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if split is None or row["split"] == split:
                yield row


def bundled_sqlite_pages() -> list[str]:
    """Return the archive paths of the SQLite pages bundled with tworail (the default held-out slice)."""
    from tworail.datasets import sqlite_docs_dir

    root = sqlite_docs_dir()
    return sorted(str(path.relative_to(root)) for path in root.rglob("*.html"))
