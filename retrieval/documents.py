"""Documents with stored text, sections and provenance, and the loaders that make them.

Every citation offset in tworail refers to ``Document.text``. Loaders turn HTML,
Markdown and plain-text files (and support-chat threads) into that text once, at
ingestion, and record the sections a citation can name by anchor.
"""

from __future__ import annotations

import bisect
import codecs
import hashlib
import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from tworail.datasets import SupportThread
from tworail.records import Provenance
from tworail.retrieval.errors import IngestError
from tworail.retrieval.html_text import Heading, html_to_text
from tworail.retrieval.markdown_text import markdown_headings

logger = logging.getLogger(__name__)

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html",
    ".htm": "text/html",
    ".txt": "text/plain",
    ".md": "text/markdown",
    ".markdown": "text/markdown",
}
"""Supported file extensions and the MIME type each is stored under."""

IRC_CONTENT_TYPE = "text/x-irc-log"
"""MIME type of support-chat threads."""

_TITLE_MAX_CHARS = 100
"""A section without a heading takes its first line as title, cut to this length."""

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.IGNORECASE)


class Section(BaseModel):
    """A part of a document that starts at an anchor or heading."""

    anchor: str = ""
    """Fragment that links to the section, for example '#perm', or '' if it has none."""
    title: str = ""
    """Heading of the section, or its first line when it has no heading."""
    start: int = Field(ge=0)
    """Offset of the section's first character in the document's stored text."""
    end: int = Field(ge=0)
    """Offset one past the section's last character in the stored text."""
    aliases: list[str] = Field(default_factory=list)
    """Further anchors that point at the same position as ``anchor``."""


class Document(BaseModel):
    """A source document as tworail stores it: plain text plus sections and provenance."""

    doc_id: str
    """Stable id: the first 16 hex digits of sha256(tenant + NUL + source)."""
    source: str
    """POSIX path relative to the ingested folder, for example 'releaselog/3_35_0.html'."""
    text: str
    """Stored plain text; every citation offset refers to it."""
    content_type: str
    """MIME type of the original, for example 'text/html'."""
    provenance: Provenance
    """Origin, owner and tenant of the document."""
    sections: list[Section] = Field(default_factory=list)
    """Sections in document order; together they cover all non-blank text."""
    title: str = ""
    """Title of the whole document, for example the HTML <title>."""

    @property
    def tenant(self) -> str:
        """Return the tenant the document belongs to."""
        return self.provenance.tenant

    def section_at(self, offset: int) -> Section | None:
        """Return the section that contains ``offset``, or None when none does."""
        position = bisect.bisect_right(self.sections, offset, key=lambda section: section.start) - 1
        if position >= 0 and offset < self.sections[position].end:
            return self.sections[position]
        return None


def make_doc_id(tenant: str, source: str) -> str:
    """Return the stable document id for a source of a tenant."""
    digest = hashlib.sha256(f"{tenant}\x00{source}".encode("utf-8")).hexdigest()
    return digest[:16]


def build_sections(
    text: str,
    anchors: Sequence[tuple[str, int]],
    headings: Sequence[Heading],
) -> list[Section]:
    """Split ``text`` into sections at anchor events.

    An event ('#name', offset) starts a section; ('', offset) starts text
    outside any anchor, as before the first anchor. Two anchors at the same
    offset become one section: the first is its anchor, the second an alias.
    An event repeating the current anchor continues its section. Sections with
    only white space are left out.
    """
    starts: list[tuple[int, str, list[str]]] = [(0, "", [])]
    for anchor, offset in anchors:
        last_offset, last_anchor, aliases = starts[-1]
        if offset < last_offset or anchor == last_anchor:
            continue
        if offset > last_offset:
            starts.append((offset, anchor, []))
        elif last_anchor and anchor:
            aliases.append(anchor)
        else:
            # An anchor after unanchored text, or unanchored text resuming
            # before the anchor at this offset showed any text: the later wins.
            starts[-1] = (offset, anchor, [])
    sections = []
    for number, (start, anchor, aliases) in enumerate(starts):
        end = starts[number + 1][0] if number + 1 < len(starts) else len(text)
        if not text[start:end].strip():
            continue
        title = _section_title(text, start, end, headings)
        sections.append(Section(anchor=anchor, title=title, start=start, end=end, aliases=aliases))
    return sections


def _section_title(text: str, start: int, end: int, headings: Sequence[Heading]) -> str:
    for heading in headings:
        if start <= heading.start < end:
            return heading.title
        if heading.start >= end:
            break
    first_line = text[start:end].strip().split("\n", 1)[0]
    return re.sub(r"\s+", " ", first_line)[:_TITLE_MAX_CHARS]


def load_document(
    path: Path | str,
    root: Path | str | None = None,
    *,
    tenant: str = "default",
    owner: str = "unknown",
) -> Document:
    """Load one HTML, Markdown or plain-text file as a Document.

    ``source`` is the path relative to ``root`` in POSIX form, or the file name
    when ``root`` is None. Raises IngestError when the file is missing,
    unreadable, of an unsupported type or not decodable text.
    """
    path = Path(path)
    if not path.exists():
        raise IngestError(f"document not found: {path}; check the path or remove it from the list")
    if not path.is_file():
        raise IngestError(f"not a regular file: {path}; pass a file or a folder of documents")
    content_type = CONTENT_TYPES.get(path.suffix.lower())
    if content_type is None:
        supported = ", ".join(sorted(CONTENT_TYPES))
        raise IngestError(
            f"unsupported file type {path.suffix or '(none)'!r} for {path}; "
            f"supported extensions are {supported}"
        )
    source = _relative_source(path, Path(root) if root is not None else None)
    raw = _read_bytes(path)
    decoded = _decode(raw, path, html=content_type == "text/html")
    text, sections, title = _parse(decoded, content_type, path)
    provenance = Provenance(
        source_id=source,
        uri=path.resolve().as_uri(),
        owner=owner,
        tenant=tenant,
        content_type=content_type,
    )
    return Document(
        doc_id=make_doc_id(tenant, source),
        source=source,
        text=text,
        content_type=content_type,
        provenance=provenance,
        sections=sections,
        title=title,
    )


def load_documents(
    paths: Iterable[Path | str],
    *,
    tenant: str = "default",
    owner: str = "unknown",
) -> list[Document]:
    """Load files and folders as Documents.

    A folder is walked recursively in sorted order. Its files of a supported
    type are loaded with sources relative to that folder, while other files
    and hidden entries are skipped. A file given directly gets its name as
    source.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    documents: list[Document] = []
    for entry in paths:
        entry = Path(entry)
        if entry.is_dir():
            documents.extend(_load_folder(entry, tenant=tenant, owner=owner))
        else:
            documents.append(load_document(entry, None, tenant=tenant, owner=owner))
    return documents


def thread_document(thread: SupportThread, *, tenant: str = "default") -> Document:
    """Wrap a support-chat thread as a Document with one section."""
    source = f"ubuntu-irc/{thread.id}"
    provenance = thread.provenance().model_copy(update={"tenant": tenant})
    title = f"Ubuntu IRC support thread {thread.id}"
    sections = []
    if thread.text.strip():
        sections.append(Section(anchor="", title=title, start=0, end=len(thread.text)))
    return Document(
        doc_id=make_doc_id(tenant, source),
        source=source,
        text=thread.text,
        content_type=IRC_CONTENT_TYPE,
        provenance=provenance,
        sections=sections,
        title=title,
    )


def _load_folder(folder: Path, *, tenant: str, owner: str) -> list[Document]:
    documents = []
    skipped = 0
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        if path.suffix.lower() not in CONTENT_TYPES:
            skipped += 1
            continue
        documents.append(load_document(path, folder, tenant=tenant, owner=owner))
    if skipped:
        logger.info("skipped %d files of unsupported types under %s", skipped, folder)
    return documents


def _relative_source(path: Path, root: Path | None) -> str:
    if root is None:
        return path.name
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        raise IngestError(
            f"document {path} is not inside the root folder {root}; "
            "pass the folder that contains it as root"
        ) from None


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise IngestError(
            f"cannot read {path}: {error.strerror or error}; check its permissions"
        ) from error


def _decode(raw: bytes, path: Path, *, html: bool) -> str:
    """Decode UTF-8 (with or without BOM), or the charset an HTML page declares."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as utf8_error:
        declared = _META_CHARSET.search(raw[:4096]) if html else None
        if declared is not None:
            encoding = declared.group(1).decode("ascii")
            try:
                codecs.lookup(encoding)
                return raw.decode(encoding)
            except (LookupError, UnicodeDecodeError):
                pass
        raise IngestError(
            f"cannot decode {path} as UTF-8 (byte {utf8_error.start}); "
            "convert the file to UTF-8 or declare its charset in a <meta> tag"
        ) from utf8_error


def _parse(decoded: str, content_type: str, path: Path) -> tuple[str, list[Section], str]:
    """Return the stored text, sections and title of decoded file content."""
    if content_type == "text/html":
        page = html_to_text(decoded)
        sections = build_sections(page.text, page.anchors, page.headings)
        return page.text, sections, page.title or path.stem
    if content_type == "text/markdown":
        anchors, headings = markdown_headings(decoded)
        sections = build_sections(decoded, anchors, headings)
        title = headings[0].title if headings else path.stem
        return decoded, sections, title
    return decoded, build_sections(decoded, [], []), path.stem
