"""Sanitizing before redaction: Unicode normalization and safe text from HTML.

`sanitize` optionally repairs mojibake with ftfy. It turns HTML documents into
plain text without scripts, styles or markup, with nh3 when installed and the
standard library's `html.parser` in any case. Then it applies Unicode NFKC and
removes format characters (category Cf, such as zero-width and bidirectional
controls) and control characters other than tab and newline. Normalizing first means the screens
and redactors that follow see 'ignore' rather than a full-width or
zero-width-split spelling of it.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

from pydantic import BaseModel, Field

from tworail.governance.contracts import mime_essence

HTML_TYPES = ("text/html", "application/xhtml+xml")
"""Content types treated as HTML."""

_DROP_CONTENT = {"script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math"}
_BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "table", "section",
          "article", "blockquote", "dd", "dt", "hr"}


class SanitizeResult(BaseModel):
    """Sanitized text and what sanitizing changed."""

    text: str
    """The normalized plain text."""
    changes: dict[str, int] = Field(default_factory=dict)
    """Counts by change, for example {'format_chars_removed': 2, 'html_to_text': 1}."""


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in _DROP_CONTENT:
            self._skip += 1
        elif tag in _BLOCK and not self._skip:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _DROP_CONTENT:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK and not self._skip:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str, *, use_nh3: bool = True) -> str:
    """Return the visible text of an HTML document, without scripts, styles or tags."""
    if use_nh3:
        try:
            import nh3
        except ImportError:
            use_nh3 = False
    if use_nh3:
        # Keep only block tags so line breaks survive, then let the parser drop them.
        markup = nh3.clean(markup, tags=_BLOCK, attributes={}, clean_content_tags=_DROP_CONTENT - {"svg", "math"})
    extractor = _TextExtractor()
    extractor.feed(markup)
    extractor.close()
    text = html.unescape("".join(extractor.parts))
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]+\n", "\n", text)).strip()


def _is_removable(char: str) -> bool:
    category = unicodedata.category(char)
    return category == "Cf" or (category == "Cc" and char not in "\t\n")


def sanitize(text: str, content_type: str = "text/plain", *, use_optional: bool = True) -> SanitizeResult:
    """Return `text` as safe, normalized plain text; `use_optional=False` skips ftfy and nh3."""
    changes: dict[str, int] = {}
    if use_optional:
        try:
            import ftfy
        except ImportError:
            pass
        else:
            fixed = ftfy.fix_text(text, normalization=None)
            if fixed != text:
                changes["mojibake_fixed"] = 1
            text = fixed
    if mime_essence(content_type) in HTML_TYPES:
        text = html_to_text(text, use_nh3=use_optional)
        changes["html_to_text"] = 1
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    normalized = unicodedata.normalize("NFKC", text)
    if normalized != text:
        changes["nfkc_changed"] = 1
    removed = sum(_is_removable(char) for char in normalized)
    if removed:
        changes["format_chars_removed"] = removed
        normalized = "".join(char for char in normalized if not _is_removable(char))
    return SanitizeResult(text=normalized, changes=changes)
