"""Headings and anchors of a Markdown document.

Markdown is stored as written, so offsets are offsets into the file text. Each
ATX heading (``#`` to ``######``) opens a section whose anchor is the slug that
GitHub gives the heading: lower case, punctuation removed, spaces turned into
hyphens, and ``-1``, ``-2`` appended to repeats.
"""

from __future__ import annotations

import re

from tworail.retrieval.html_text import Heading

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.MULTILINE)
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})", re.MULTILINE)
_SLUG_DROP = re.compile(r"[^\w\- ]", re.UNICODE)


def slugify(title: str) -> str:
    """Return the GitHub-style anchor slug of a heading, without the '#'."""
    return _SLUG_DROP.sub("", title.strip().lower()).replace(" ", "-")


def markdown_headings(text: str) -> tuple[list[tuple[str, int]], list[Heading]]:
    """Return the ('#slug', offset) anchors and the headings of a Markdown text.

    The offset of a heading is the start of its line, so the section includes
    the heading line itself. Lines inside fenced code blocks are not headings.
    """
    fenced = _fenced_ranges(text)
    anchors: list[tuple[str, int]] = []
    headings: list[Heading] = []
    seen: dict[str, int] = {}
    for match in _ATX_HEADING.finditer(text):
        if any(start <= match.start() < end for start, end in fenced):
            continue
        title = re.sub(r"\s+", " ", match.group(2)).strip()
        if not title:
            continue
        slug = slugify(title)
        repeats = seen.get(slug, 0)
        seen[slug] = repeats + 1
        if repeats:
            slug = f"{slug}-{repeats}"
        anchors.append(("#" + slug, match.start()))
        headings.append(Heading(title=title, start=match.start(), level=len(match.group(1))))
    return anchors, headings


def _fenced_ranges(text: str) -> list[tuple[int, int]]:
    """Return (start, end) offsets of fenced code blocks; an unclosed fence runs to the end."""
    ranges = []
    opening: re.Match[str] | None = None
    for match in _FENCE.finditer(text):
        if opening is None:
            opening = match
        elif match.group(1)[0] == opening.group(1)[0] and len(match.group(1)) >= len(opening.group(1)):
            ranges.append((opening.start(), match.end()))
            opening = None
    if opening is not None:
        ranges.append((opening.start(), len(text)))
    return ranges
