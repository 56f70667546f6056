"""Extract the documentation text of one Debian binary package (.deb).

`extract_text` unpacks the package with `dpkg-deb -x` into a temporary folder
and walks its documentation folders: `usr/share/doc`, `usr/share/man`,
`usr/share/info`, `usr/share/gtk-doc`, `usr/share/help` and any other
`man/manN` folder under `usr/share` (PostgreSQL puts its man pages in
`usr/share/postgresql/15/man`). Each file becomes one document: HTML as its
visible text, man pages converted from roff, info manuals without node
headers and menus, and plain text as it is. gzip, bzip2 and xz files are
decompressed first.

Some files are skipped, and `skipped` counts each under its reason. These are
symbolic links, images, fonts, web assets, data files, lists of people,
generated search and index pages, change logs and translations (when
`english_only`). Binary files (a NUL byte in the first 8000 bytes, the test
git uses) and executable scripts ('#!' first line) are skipped too, as are
files under `min_bytes` bytes once decompressed or converted, copyright files
after the first one of the package and the second format of a manual shipped
twice (see `_other_format`).
"""

from __future__ import annotations

import bz2
import gzip
import logging
import lzma
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from tworail.rails.ttt.debian_html import html_to_text
from tworail.rails.ttt.debian_packages import AptCommandError, control_field, run_command
from tworail.rails.ttt.debian_roff import roff_to_text

logger = logging.getLogger(__name__)

MIN_BYTES = 200
"""Files smaller than this, once decompressed or once converted to text, are skipped (man page links, stubs)."""

DOC_ROOTS = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/gtk-doc/", "usr/share/help/")
"""Folders (relative to the package root) whose files are read as documentation."""

ASSET_SUFFIXES = frozenset({
    ".png", ".gif", ".jpg", ".jpeg", ".svg", ".svgz", ".xpm", ".ico", ".bmp", ".tif", ".tiff", ".webp", ".eps",
    ".ps", ".pdf", ".odg", ".dia", ".dot", ".pikchr", ".woff", ".woff2", ".ttf", ".otf", ".eot", ".js", ".css",
    ".map", ".inv", ".buildinfo", ".zip", ".tar", ".pickle", ".doctree", ".devhelp", ".devhelp2", ".mo", ".gmo",
})
"""File suffixes of images, diagrams, fonts, web assets and archives, never read as text."""

DATA_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
"""Suffixes of data and schema files (Linux's devicetree bindings are 8 MB of YAML), not prose."""

PEOPLE_LISTS = frozenset({"MAINTAINERS", "CREDITS", "AUTHORS", "THANKS", "CONTRIBUTORS"})
"""Upper-case file name stems of lists of names, e-mail and postal addresses, kept out of training text."""

SPHINX_ASSET_DIRS = frozenset({"_static", "_images", "_downloads"})
"""Sphinx build folders of web assets, images and downloadable files."""

SPHINX_SOURCES_DIR = "_sources"
"""Sphinx build folder with copies of the reST sources of the HTML pages."""

INDEX_PAGES = re.compile(r"^(genindex(-\w+)?|search|py-modindex|modindex|searchindex|objects)\.html?$")
"""Generated index and search pages, which list links and no prose."""

CHANGE_LOG = re.compile(r"^(changelog|ChangeLog|CHANGES|Changes|NEWS\.Debian)(\.[\w.]+)?$")
"""Change logs (Debian's and upstream's, such as Python's whatsnew/changelog.html): lists of changes, not prose."""

WEB_FILES = frozenset({"robots.txt", "favicon.ico", ".htaccess"})
"""Files of a documentation web site that only configure the server or crawlers."""

COMPRESSED = {".gz": gzip.decompress, ".bz2": bz2.decompress, ".xz": lzma.decompress}
"""Compressed file suffixes and the stdlib function that decompresses each."""

_LOCALE = re.compile(r"^([a-z]{2,3})([_-]([A-Z]{2}|[A-Z][a-z]{3}))?(\.[\w-]+)?(@\w+)?$")
_LOCALE_WITH_REGION = re.compile(r"^([a-z]{2,3})[_-][A-Z]{2}$")
_MAN_PAGE = re.compile(r"\.\d[\w+-]*$")


class DebExtractionError(AptCommandError):
    """Raised when `dpkg-deb -x` cannot unpack a package file."""


@dataclass(frozen=True)
class ExtractedDocument:
    """The text of one documentation file of a Debian package."""

    package: str
    """Binary package name (control field `Package`)."""
    path: str
    """Path of the file inside the package, without a leading slash, for example 'usr/share/man/man7/uri.7.gz'."""
    kind: str
    """File format the text was converted from: 'html', 'man', 'info', 'text' or 'copyright'."""
    text: str
    """Plain text of the file."""

    @property
    def id(self) -> str:
        """Corpus id of the document: 'PACKAGE:PATH'."""
        return f"{self.package}:{self.path}"


def is_translation(path: PurePosixPath) -> bool:
    """Return whether a path lies in a non-English translation (locale folder or a 'translations' folder).

    A folder right under `usr/share/man` that is not `manN` is a locale (as in
    'usr/share/man/de/man1'). Elsewhere, a folder named like 'zh_CN' or 'de-DE' is one.
    English locales ('en', 'en_US', 'en-GB') count as English.
    """
    parts = path.parts
    if "translations" in parts:
        return True
    if parts[:3] == ("usr", "share", "man") and len(parts) > 4:
        locale = _LOCALE.match(parts[3])
        if locale and not parts[3].startswith("man") and locale.group(1) != "en":
            return True
    return any((match := _LOCALE_WITH_REGION.match(part)) and match.group(1) != "en" for part in parts[:-1])


def document_kind(path: PurePosixPath) -> str:
    """Return how a documentation file is read: 'html', 'man', 'info', 'copyright' or 'text'.

    The compression suffix is ignored: 'ls.1.gz' is a man page.
    """
    name = _strip_compression(path.name)
    if name.endswith((".html", ".htm", ".xhtml")):
        return "html"
    if "/man/" in f"/{path.parent}/" and path.parent.name.startswith("man") and _MAN_PAGE.search(name):
        return "man"
    if path.parts[:3] == ("usr", "share", "info") or re.search(r"\.info(-\d+)?$", name):
        return "info"
    if name == "copyright" and path.parent.parent == PurePosixPath("usr/share/doc"):
        return "copyright"
    return "text"


def _strip_compression(name: str) -> str:
    for suffix in COMPRESSED:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_documentation(path: PurePosixPath) -> bool:
    """Return whether a file lies in a documentation folder (see DOC_ROOTS, plus man/manN folders)."""
    text = str(path)
    if text.startswith(DOC_ROOTS):
        return True
    return text.startswith("usr/share/") and "man" in path.parts and path.parent.name.startswith("man")


def skip_reason(path: PurePosixPath, *, english_only: bool = True) -> str | None:
    """Return why a file is not read as a document ('asset', 'index page', ...), or None to read it."""
    if not is_documentation(path):
        return "not documentation"
    name = _strip_compression(path.name)
    suffix = PurePosixPath(name).suffix.lower()
    if suffix in ASSET_SUFFIXES:
        return "asset"
    if suffix in DATA_SUFFIXES:
        return "data file"
    if name.split(".")[0].upper() in PEOPLE_LISTS:
        return "people list"
    if SPHINX_ASSET_DIRS.intersection(path.parts):
        return "asset"
    if SPHINX_SOURCES_DIR in path.parts:
        return "other format"
    if INDEX_PAGES.match(name) or name in WEB_FILES:
        return "index page"
    if CHANGE_LOG.match(name):
        return "change log"
    if english_only and is_translation(path):
        return "translation"
    return None


def _other_format(path: PurePosixPath, html_files: set[PurePosixPath]) -> bool:
    """Return whether a file is a second format of a manual that the package also ships as HTML.

    Only applies when the package contains HTML: reStructuredText sources
    (Sphinx renders them to the HTML), AsciiDoc '.txt' sources next to an HTML
    page of the same name (Git's manuals) and info manuals (Python's). Man
    pages are kept: they often document a command that the HTML does not.
    NOTE: a reST or info file in such a package that has no HTML rendering is
    dropped too, because the rule does not match files to pages. For the same
    reason PostgreSQL's SPI man pages, which repeat its HTML, are kept.
    """
    if not html_files:
        return False
    name = _strip_compression(path.name)
    if name.endswith(".rst") or document_kind(path) == "info":
        return True
    return name.endswith(".txt") and path.with_name(name[:-4] + ".html") in html_files


def read_bytes(file: Path) -> bytes:
    """Return a file's bytes, decompressed when its name ends in .gz, .bz2 or .xz."""
    data = file.read_bytes()
    decompress = COMPRESSED.get(file.suffix)
    if decompress is None:
        return data
    try:
        return decompress(data)
    except (OSError, EOFError, lzma.LZMAError) as error:
        logger.warning("cannot decompress %s (%s), so it is read as it is", file, error)
        return data


def decode_text(data: bytes) -> str | None:
    """Return the text of a file's bytes (UTF-8, else Latin-1), or None for binary data.

    Like git, a NUL byte in the first 8000 bytes marks the data as binary.
    """
    if b"\0" in data[:8000]:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


_INFO_MENU_ENTRY = re.compile(r"^\* [^:\n]+::|^\* [^:\n]+:\s+\(?[^.,\t\n]+[.,\t]")
_INFO_DIR_ENTRY = re.compile(r"INFO-DIR-SECTION.*?END-INFO-DIR-ENTRY\n?", re.DOTALL)


def info_to_text(source: str) -> str:
    """Return the text of a GNU info file without node headers, menus, directory entries and tag tables."""
    nodes = []
    for node in _INFO_DIR_ENTRY.sub("", source).split("\x1f"):
        lines = node.lstrip("\n").splitlines()
        if not lines or lines[0].startswith(("Tag Table:", "End Tag Table", "Indirect:", "Local Variables:")):
            continue
        if lines[0].startswith("File: ") and "Node: " in lines[0]:
            lines = lines[1:]
        content_lines = [line for line in lines if line.rstrip() != "* Menu:" and not _INFO_MENU_ENTRY.match(line)]
        nodes.append("\n".join(content_lines).strip())
    return "\n\n".join(node for node in nodes if node)


def convert(kind: str, text: str) -> str:
    """Return the plain text of a decoded file of the given kind (see `document_kind`)."""
    if kind == "html":
        return html_to_text(text)
    if kind == "man":
        return roff_to_text(text)
    if kind == "info":
        return info_to_text(text)
    return text.strip()


def unpack(deb_path: Path, dest: Path, *, dpkg_deb: str = "dpkg-deb") -> None:
    """Unpack a .deb's files into dest with `dpkg-deb -x`."""
    result = run_command([dpkg_deb, "-x", str(deb_path), str(dest)])
    if result.returncode != 0:
        raise DebExtractionError(
            f"`{dpkg_deb} -x {deb_path}` failed with exit status {result.returncode}: {result.stderr.strip()}. "
            "Is it a complete .deb file?"
        )


def _package_files(root: Path) -> tuple[list[PurePosixPath], set[PurePosixPath]]:
    """Return every file path under root (relative, sorted) and the subset that are symbolic links."""
    files, links = [], set()
    for folder, folders, names in os.walk(root):
        base = Path(folder)
        for name in names + [name for name in folders if (base / name).is_symlink()]:
            relative = PurePosixPath((base / name).relative_to(root).as_posix())
            files.append(relative)
            if (base / name).is_symlink():
                links.add(relative)
    return sorted(files), links


def extract_text(
    deb_path: Path,
    *,
    english_only: bool = True,
    min_bytes: int = MIN_BYTES,
    skipped: Counter[str] | None = None,
    dpkg_deb: str = "dpkg-deb",
) -> Iterator[ExtractedDocument]:
    """Yield one document per documentation file of a .deb, in path order.

    The package is unpacked with `dpkg-deb -x` into a temporary folder that is
    removed when the iterator finishes or is closed. `skipped`, when given,
    counts each file not yielded under its reason (see the module docstring).
    Raises DebExtractionError when the file is missing or is not a .deb.
    """
    deb_path = Path(deb_path)
    if not deb_path.is_file():
        raise DebExtractionError(f"package file {deb_path} not found. Download it first with download_packages")
    package = control_field(deb_path, "Package", dpkg_deb=dpkg_deb)
    skipped = Counter() if skipped is None else skipped
    with tempfile.TemporaryDirectory(prefix=f"{package}-") as folder:
        root = Path(folder)
        unpack(deb_path, root, dpkg_deb=dpkg_deb)
        files, links = _package_files(root)
        reasons = {path: "symlink" if path in links else skip_reason(path, english_only=english_only) for path in files}
        html_files = {path for path in files if reasons[path] is None and document_kind(path) == "html"}
        copyright_seen = False
        for path in files:
            reason = reasons[path] or ("other format" if _other_format(path, html_files) else None)
            if reason == "not documentation":
                continue
            kind = document_kind(path)
            if reason is None and kind == "copyright":
                reason, copyright_seen = ("extra copyright" if copyright_seen else None), True
            document = None if reason else _read_document(package, root, path, kind, min_bytes, skipped)
            if reason:
                skipped[reason] += 1
            if document is not None:
                yield document
    logger.info("extracted %s: skipped %s", package, dict(skipped))


def _read_document(
    package: str, root: Path, path: PurePosixPath, kind: str, min_bytes: int, skipped: Counter[str]
) -> ExtractedDocument | None:
    """Read and convert one file. Return None, counting the reason, when it is too small, binary, a script or empty."""
    data = read_bytes(root / path)
    if len(data) < min_bytes and kind != "copyright":
        skipped["too small"] += 1
        return None
    text = decode_text(data)
    if text is None:
        skipped["binary"] += 1
        return None
    if text.startswith("#!"):
        skipped["script"] += 1
        return None
    text = convert(kind, text)
    if not text:
        skipped["empty"] += 1
        return None
    if len(text.encode("utf-8")) < min_bytes and kind != "copyright":
        skipped["too small"] += 1
        return None
    return ExtractedDocument(package=package, path=str(path), kind=kind, text=text)
