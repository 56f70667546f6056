"""Visible text of an HTML page, with the positions of its anchors and headings.

The stored text is what a reader sees: script, style and svg are dropped, block
elements start a new line, table cells on one row are separated by a tab (so a
table row is one line), and runs of white space inside a line collapse to one
space. Every element with an ``id`` and every ``<a name=...>`` marks an anchor at
the position of the next visible character, so sections and citations can point
back to ``page.html#anchor``. The anchor of a link or heading runs on to the
next anchor; the anchor of any other element (a menu ``<div>``, a ``<table>``)
ends with that element.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from html.parser import HTMLParser

_SKIPPED_TAGS = frozenset({"script", "style", "svg", "template"})
"""Elements whose content is never visible text."""

_BLOCK_TAGS = frozenset(
    {
        "address", "article", "aside", "blockquote", "body", "br", "caption", "center",
        "dd", "details", "dir", "div", "dl", "dt", "fieldset", "figcaption", "figure",
        "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header", "hr",
        "html", "legend", "li", "main", "menu", "nav", "ol", "option", "p", "pre",
        "section", "select", "summary", "table", "tbody", "tfoot", "thead", "title",
        "tr", "ul",
    }
)
"""Elements that start and end a line of the stored text."""

_CELL_TAGS = frozenset({"td", "th"})
"""Table cells: separated by a tab so that one table row stays one line."""

_HEADING_TAGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

_POINT_ANCHOR_TAGS = _HEADING_TAGS | {"a"}
"""Elements whose anchor marks a position: its section runs on to the next anchor.

An id on any other element names that element, so its section ends where the
element ends and the anchor that was current before it applies again.
"""

_IMPLIED_END: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "li": (frozenset({"li"}), frozenset({"ul", "ol", "menu"})),
    "dt": (frozenset({"dt", "dd"}), frozenset({"dl"})),
    "dd": (frozenset({"dt", "dd"}), frozenset({"dl"})),
    "tr": (frozenset({"tr", "td", "th"}), frozenset({"table", "thead", "tbody", "tfoot"})),
    "td": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "th": (frozenset({"td", "th"}), frozenset({"tr", "table"})),
    "option": (frozenset({"option"}), frozenset({"select"})),
}
"""Start tag -> (open elements it ends, elements that stop the search), as HTML omits end tags."""

_VOID_TAGS = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
     "track", "wbr"}
)
"""Elements without content or end tag; they never enter the open-element stack."""

_SPACE_RUN = re.compile(r"\s+")
"""White space, including no-break spaces (U+00A0) that entities such as &nbsp; produce."""


@dataclass
class Heading:
    """A heading element: its text and where that text lies in the stored text."""

    title: str
    """Heading text with white space collapsed."""
    start: int
    """Offset of the heading's first character."""
    level: int
    """1 for h1 up to 6 for h6."""


@dataclass
class HtmlText:
    """Visible text of a page plus the anchors and headings found in it."""

    text: str
    """Stored plain text; every offset below refers to it."""
    title: str = ""
    """Content of the page's <title> element, or '' when it has none."""
    anchors: list[tuple[str, int]] = field(default_factory=list)
    """('#name', offset) where a section starts, in document order; '' resumes unanchored text."""
    headings: list[Heading] = field(default_factory=list)
    """Headings in document order."""


@dataclass
class _OpenElement:
    tag: str
    anchor: str | None
    """Anchor the element names, or None."""
    previous: str
    """Anchor that was current when the element opened."""


class _AnchorTracker:
    """Anchor events from a stack of open elements; each event waits for the next character.

    An event ('#name', offset) starts a section; ('', offset) or an earlier
    anchor after an element closes resumes the section that was current before.
    """

    def __init__(self) -> None:
        self._stack: list[_OpenElement] = []
        self._active = ""
        # (anchor, element it names or None): an anchor waits here for the next character.
        self._pending: list[tuple[str, _OpenElement | None]] = []
        self.events: list[tuple[str, int]] = []

    def open(self, tag: str, anchor: str | None) -> None:
        self._end_implied(tag)
        if tag in _VOID_TAGS:
            return
        element = _OpenElement(tag=tag, anchor=None, previous=self._active)
        if anchor:
            if tag not in _POINT_ANCHOR_TAGS:
                element.anchor = anchor
            self._mark(anchor, element)
        self._stack.append(element)

    def close(self, tag: str) -> None:
        if not any(element.tag == tag for element in self._stack):
            return
        while self._stack:
            element = self._stack.pop()
            self._end(element)
            if element.tag == tag:
                break

    def close_all(self) -> None:
        while self._stack:
            self._end(self._stack.pop())

    def place(self, offset: int) -> None:
        """Fix the pending events at ``offset``, the position of the next visible character."""
        for anchor, _ in self._pending:
            self.events.append((anchor, offset))
        self._pending.clear()

    def _end_implied(self, tag: str) -> None:
        if tag in _IMPLIED_END:
            ended, stops = _IMPLIED_END[tag]
            for depth in range(len(self._stack) - 1, -1, -1):
                open_tag = self._stack[depth].tag
                if open_tag in stops:
                    return
                if open_tag in ended:
                    self.close(open_tag)
                    return
        elif tag in _BLOCK_TAGS and self._stack and self._stack[-1].tag == "p":
            self.close("p")

    def _end(self, element: _OpenElement) -> None:
        if element.anchor is None:
            return
        if self._pending and self._pending[-1][1] is element:
            # Nothing visible inside the element: its anchor never starts a section.
            self._pending.pop()
            self._active = element.previous
        else:
            self._mark(element.previous)

    def _mark(self, anchor: str, element: _OpenElement | None = None) -> None:
        self._pending.append((anchor, element))
        self._active = anchor


class _VisibleTextParser(HTMLParser):
    """HTMLParser that writes visible text and records anchors and headings."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self._parts: list[str] = []
        self._length = 0
        self._line_has_text = False
        self._pending_break = False
        self._pending_tab = False
        self._pending_space = False
        self._anchors = _AnchorTracker()
        self._skip_depth = 0
        self._pre_depth = 0
        self._in_title = False
        self._title_parts: list[str] = []
        self._heading: tuple[int, int | None, int] | None = None
        self.headings: list[Heading] = []

    @property
    def text(self) -> str:
        """Return the text written so far."""
        return "".join(self._parts)

    @property
    def anchors(self) -> list[tuple[str, int]]:
        """Return the anchor events placed so far."""
        return self._anchors.events

    @property
    def title(self) -> str:
        """Return the collapsed text of the <title> element."""
        return _SPACE_RUN.sub(" ", "".join(self._title_parts)).strip()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            if tag not in _VOID_TAGS:
                self._skip_depth += 1
            return
        if self._skip_depth:
            return
        self._open_element(tag, dict(attrs))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        # Self-closing syntax (<br/>, <a name="x"/>): open and close in one step.
        if tag in _SKIPPED_TAGS or self._skip_depth:
            return
        self._open_element(tag, dict(attrs))
        if tag not in _VOID_TAGS:
            self._close_element(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self._skip_depth = max(0, self._skip_depth - 1)
            return
        if self._skip_depth:
            return
        self._close_element(tag)

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        if self._in_title:
            self._title_parts.append(data)
            return
        if self._pre_depth:
            self._write_preformatted(data)
        else:
            self._write_flow(data)

    def close(self) -> None:
        super().close()
        # Anchors after the last visible character open empty sections; they
        # still point at the end of the text so that links to them resolve.
        self._anchors.close_all()
        self._anchors.place(self._length)

    def _open_element(self, tag: str, attrs: dict[str, str | None]) -> None:
        name = (attrs.get("id") or (attrs.get("name") if tag == "a" else None) or "").strip()
        self._anchors.open(tag, "#" + name if name else None)
        if tag == "title":
            self._in_title = True
            return
        if tag in _BLOCK_TAGS:
            self._pending_break = True
        elif tag in _CELL_TAGS:
            self._pending_tab = True
        if tag == "pre":
            self._pre_depth += 1
        if tag in _HEADING_TAGS:
            # (level, offset of the first heading character, index of its part)
            self._heading = (int(tag[1]), None, 0)

    def _close_element(self, tag: str) -> None:
        self._anchors.close(tag)
        if tag == "title":
            self._in_title = False
            return
        if tag in _BLOCK_TAGS:
            self._pending_break = True
        if tag == "pre":
            self._pre_depth = max(0, self._pre_depth - 1)
        if tag in _HEADING_TAGS and self._heading is not None:
            level, start, first_part = self._heading
            title = _SPACE_RUN.sub(" ", "".join(self._parts[first_part:])).strip()
            if title and start is not None:
                self.headings.append(Heading(title=title, start=start, level=level))
            self._heading = None

    def _write_flow(self, data: str) -> None:
        words = _SPACE_RUN.sub(" ", data)
        if words.startswith(" "):
            self._pending_space = True
        stripped = words.strip()
        if stripped:
            self._emit(stripped)
        if words.endswith(" ") and stripped:
            self._pending_space = True

    def _write_preformatted(self, data: str) -> None:
        lines = data.split("\n")
        for number, line in enumerate(lines):
            if number > 0:
                self._pending_break = True
            self._write_flow(line)

    def _emit(self, chunk: str) -> None:
        """Append visible text after the separator that pending boundaries call for."""
        if self._line_has_text:
            if self._pending_break:
                self._append("\n")
                self._line_has_text = False
            elif self._pending_tab:
                self._append("\t")
            elif self._pending_space:
                self._append(" ")
        self._pending_break = self._pending_tab = self._pending_space = False
        self._anchors.place(self._length)
        if self._heading is not None and self._heading[1] is None:
            self._heading = (self._heading[0], self._length, len(self._parts))
        self._append(chunk)
        self._line_has_text = True

    def _append(self, chunk: str) -> None:
        self._parts.append(chunk)
        self._length += len(chunk)


def html_to_text(html: str) -> HtmlText:
    """Extract the visible text of an HTML page with its anchors and headings.

    Parsing follows the standard library's lenient ``html.parser``: unclosed
    tags such as ``<p>`` and ``<li>`` are accepted, and entities are decoded.
    """
    parser = _VisibleTextParser()
    parser.feed(html)
    parser.close()
    return HtmlText(
        text=parser.text,
        title=parser.title,
        anchors=parser.anchors,
        headings=parser.headings,
    )
