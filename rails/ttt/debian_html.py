"""Visible text of generated HTML documentation (Sphinx, DocBook, AsciiDoc, Publican) with `html.parser`.

Scripts, styles, the document head and navigation chrome are dropped: `<nav>`
and `<footer>` elements, and elements whose class or id names a sidebar,
breadcrumb, header link or navigation bar of the common documentation
generators. Block elements end a line, text inside `<pre>` keeps its line
breaks and indentation, and other runs of whitespace collapse to one space.
"""

from __future__ import annotations

from html.parser import HTMLParser

SKIPPED_TAGS = frozenset(
    {"script", "style", "head", "nav", "footer", "noscript", "template", "button", "form", "select", "svg"}
)
"""Elements whose whole content is dropped (inline `<svg>` contains diagram labels, not prose)."""

SKIPPED_CLASSES = frozenset({
    # Sphinx classic and the Read the Docs theme
    "sphinxsidebar", "related", "footer", "headerlink", "mobile-nav", "menu-wrapper", "wy-nav-side",
    "wy-nav-top", "rst-footer-buttons", "rst-versions", "wy-breadcrumbs", "language_switcher_placeholder",
    "version_switcher_placeholder", "inline-search",
    # DocBook XSL (PostgreSQL) and Publican (the Debian Administrator's Handbook)
    "navheader", "navfooter", "docnav", "toc-link",
    # AsciiDoc (Git)
    "footer-text",
    # SQLite's own pages
    "menu", "searchmenu", "tagline", "fancy_toc",
})
"""CSS class names of navigation chrome whose elements are dropped with their content."""

SKIPPED_IDS = frozenset({"banner", "footer", "footer-text", "nav", "navbar", "sidebar", "breadcrumbs", "searchbox"})
"""Element ids of navigation chrome whose elements are dropped with their content."""

BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "details", "div", "dl", "dt",
    "figcaption", "figure", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li", "main", "ol", "p",
    "pre", "section", "summary", "table", "tbody", "thead", "tr", "ul",
})
"""Elements that start and end a line of text."""

VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"})
"""Elements without an end tag, which therefore never open a skipped region."""


class _VisibleText(HTMLParser):
    """Collect the visible text of a page as blocks: ('flow', text) or ('pre', text)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[tuple[str, list[str]]] = [("flow", [])]
        self.skip_tag: str | None = None
        self.skip_depth = 0
        self.pre_depth = 0

    def new_block(self, kind: str) -> None:
        if self.blocks[-1][1]:
            self.blocks.append((kind, []))
        else:
            self.blocks[-1] = (kind, [])

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_tag is not None:
            self.skip_depth += tag == self.skip_tag
            return
        attributes = dict(attrs)
        classes = set((attributes.get("class") or "").split())
        if tag not in VOID_TAGS and (
            tag in SKIPPED_TAGS or classes & SKIPPED_CLASSES or attributes.get("id") in SKIPPED_IDS
        ):
            self.skip_tag, self.skip_depth = tag, 1
        elif tag == "pre":
            self.pre_depth += 1
            self.new_block("pre")
        elif tag in BLOCK_TAGS and not self.pre_depth:
            self.new_block("flow")

    def handle_endtag(self, tag: str) -> None:
        if self.skip_tag is not None:
            self.skip_depth -= tag == self.skip_tag
            if self.skip_depth == 0:
                self.skip_tag = None
            return
        if tag == "pre" and self.pre_depth:
            self.pre_depth -= 1
            if not self.pre_depth:
                self.new_block("flow")
        elif tag in BLOCK_TAGS and not self.pre_depth:
            self.new_block("flow")
        elif tag in ("td", "th"):
            self.blocks[-1][1].append(" ")

    def handle_data(self, data: str) -> None:
        if self.skip_tag is None:
            self.blocks[-1][1].append(data)

    def text(self) -> str:
        lines = []
        for kind, parts in self.blocks:
            joined = "".join(parts)
            if kind == "pre":
                pre_lines = [line.rstrip() for line in joined.splitlines()]
                lines.append("\n".join(pre_lines).strip("\n"))
            else:
                lines.append(" ".join(joined.split()))
        return "\n".join(line for line in lines if line.strip())


def html_to_text(html: str) -> str:
    """Return the visible text of an HTML page: one line per block element, `<pre>` text kept verbatim."""
    parser = _VisibleText()
    parser.feed(html)
    parser.close()
    return parser.text()
