"""Convert roff man pages (the man(7) macro package) to readable plain text in Python.

Debian images often lack `man` and `groff`, so this module reads the roff
source itself. It covers the roff that the manpages package and the DocBook and
docutils man page generators write. That is the man(7) macros, font and size
escapes, special characters, strings defined with `.ds` and macros defined with
`.de` (expanded with their arguments). It also evaluates `.if`/`.ie`/`.el`
conditions as a terminal formatter does, writes tbl tables with cells joined
by spaces and keeps the line breaks of no-fill blocks. Fill-mode lines are
joined into one line per paragraph. Layout requests (indentation, spacing,
adjustment) are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

MAX_MACRO_EXPANSIONS = 20_000
"""User macro calls expanded per page; later calls are dropped, which stops a macro that calls itself."""

SPECIAL_CHARACTERS = {
    "em": "\u2014", "en": "\u2013", "hy": "-", "mi": "-", "-": "-", "pl": "+", "mu": "\u00d7", "di": "\u00f7",
    "aq": "'", "dq": '"', "lq": "\u201c", "rq": "\u201d", "oq": "\u2018", "cq": "\u2019", "ga": "`", "aa": "\u00b4",
    "ti": "~", "ha": "^", "rs": "\\", "sl": "/", "ba": "|", "br": "|", "bv": "|", "ul": "_", "ru": "_",
    "bu": "\u2022", "co": "\u00a9", "rg": "\u00ae", "tm": "\u2122", "de": "\u00b0", "dg": "\u2020", "dd": "\u2021",
    "sc": "\u00a7", "ps": "\u00b6", "ct": "\u00a2", "Eu": "\u20ac", "eu": "\u20ac", "Po": "\u00a3", "Ye": "\u00a5",
    "eq": "=", "==": "\u2261", ">=": "\u2265", "<=": "\u2264", "!=": "\u2260", "->": "\u2192", "<-": "\u2190",
    "ua": "\u2191", "da": "\u2193", "rA": "\u21d2", "lA": "\u21d0", "<>": "\u2194", "fm": "\u2032", "sd": "\u2033",
    "la": "\u27e8", "ra": "\u27e9", "Fo": "\u00ab", "Fc": "\u00bb", "fo": "\u2039", "fc": "\u203a",
    "lh": "\u261c", "rh": "\u261e", "sq": "\u25a1", "OK": "\u2713", "+-": "\u00b1", "12": "\u00bd", "14": "\u00bc",
    "34": "\u00be", "ss": "\u00df", "ae": "\u00e6", "AE": "\u00c6", "o/": "\u00f8", "O/": "\u00d8", "oe": "\u0153",
    "'e": "\u00e9", "`e": "\u00e8", "^e": "\u00ea", ":u": "\u00fc", ":o": "\u00f6", ":a": "\u00e4", ":U": "\u00dc",
    ":O": "\u00d6", ":A": "\u00c4", "~n": "\u00f1", ",c": "\u00e7", "'a": "\u00e1", "'o": "\u00f3", "'i": "\u00ed",
}
"""groff special character names (written `\\(xx` or `\\[xx]`) and their Unicode text. Unknown names become ''."""

DEFAULT_STRINGS = {"lq": "\u201c", "rq": "\u201d", "R": "\u00ae", "Tm": "\u2122", "Aq": "'", "aq": "'", "dq": '"'}
"""Strings that man(7) and DocBook pages use without defining them on every formatter."""

# One roff escape sequence, matched from the left so that '\\\\' pairs are consumed first.
_ESCAPE = re.compile(
    r"""\\(?:
        (?P<comment>["\#].*)
      | \((?P<char2>..)
      | \[(?P<bracket>[^\]]*)\]
      | \*(?:\((?P<string2>..)|\[(?P<string_long>[^\]]*)\]|(?P<string1>.))
      | [fFgkmMY](?:\(..|\[[^\]]*\]|.)
      | n[+-]?(?:\(..|\[[^\]]*\]|.)
      | s(?:[+-]?\d|\([+-]?\d\d|[+-]?\(\d\d|\[[^\]]*\]|'[^']*')
      | [hvwlLDXNRbBoACSxZ](?P<quote>.)(?P<quoted>.*?)(?P=quote)
      | \$(?:\d|\*|@|\(\d\d|\[\d+\])
      | (?P<single>.)
    )""",
    re.VERBOSE,
)
_SINGLE = {"\\": "\\", "e": "\\", "E": "\\", "-": "-", " ": " ", "~": " ", "0": " ", "t": "\t", ".": ".",
           "'": "'", "`": "`", "_": "_"}


def glyph_text(name: str) -> str:
    """Return the text of a groff special character such as 'em', 'u00E9' or 'char233'."""
    if name in SPECIAL_CHARACTERS:
        return SPECIAL_CHARACTERS[name]
    unicode = re.fullmatch(r"u([0-9A-Fa-f]{4,6})(?:_[0-9A-Fa-f]{4,6})*", name)
    if unicode:
        return chr(int(unicode.group(1), 16))
    numbered = re.fullmatch(r"char(\d+)", name)
    if numbered:
        return chr(int(numbered.group(1)))
    return ""


def unescape(text: str, strings: dict[str, str]) -> str:
    """Replace roff escape sequences in one input line by their text and drop `\\"` comments.

    Font, size, motion, register and width (`\\w'...'`) escapes become '',
    while `\\Z'...'` and `\\o'...'` keep their characters.
    """

    def replace(match: re.Match[str]) -> str:
        if match.group("comment") is not None:
            return ""
        if match.group("char2") is not None:
            return glyph_text(match.group("char2"))
        if match.group("bracket") is not None:
            return glyph_text(match.group("bracket"))
        name = match.group("string2") or match.group("string_long") or match.group("string1")
        if name is not None:
            return strings.get(name, DEFAULT_STRINGS.get(name, ""))
        if match.group("quote") is not None:
            return match.group("quoted") if match.group(0)[1] in "ZoA" else ""
        single = match.group("single")
        if single is not None:
            return _SINGLE.get(single, "")
        return ""

    return _ESCAPE.sub(replace, text)


def strip_comment(line: str) -> str:
    """Return the line up to its first roff comment escape (backslash-quote or backslash-hash)."""
    for match in _ESCAPE.finditer(line):
        if match.group("comment") is not None:
            return line[: match.start()]
    return line


def split_arguments(text: str) -> list[str]:
    """Split a request's argument text into raw roff arguments.

    Spaces separate arguments unless escaped. A double quote opens an argument
    that runs to the next lone double quote, and '""' inside it is a literal quote.
    """
    arguments: list[str] = []
    position = 0
    while position < len(text):
        if text[position] in " \t":
            position += 1
            continue
        quoted = text[position] == '"'
        position += quoted
        token: list[str] = []
        while position < len(text):
            if quoted and text.startswith('""', position):
                token.append('"')
                position += 2
                continue
            if (quoted and text[position] == '"') or (not quoted and text[position] in " \t"):
                position += 1
                break
            step = 2 if text[position] == "\\" else 1
            token.append(text[position : position + step])
            position += step
        arguments.append("".join(token))
    return arguments


def _block_end(line: str) -> int:
    """Return the change of conditional-block depth on one line: +1 per '\\{', -1 per '\\}'."""
    return line.count("\\{") - line.count("\\}")


class _ManPageReader:
    """State of one man page conversion: definitions, the open paragraph and the output lines."""

    BREAKS = {"br", "sp", "bp", "RS", "RE", "in", "ti", "HP", "fi", "nf", "EX", "EE", "YS", "ce", "ne"}
    PARAGRAPHS = {"PP", "LP", "P", "IP", "TP", "TQ", "SH", "SS", "SY"}
    FONTS = {"B", "I", "SM", "SB"}
    ALTERNATING_FONTS = {"BR", "BI", "IB", "IR", "RB", "RI"}

    def __init__(self, source: str) -> None:
        self.queue = source.splitlines()[::-1]
        """Unread input lines, last line first, so that expansions are pushed onto the end."""
        self.strings: dict[str, str] = {}
        self.macros: dict[str, list[str]] = {}
        self.lines: list[str] = []
        self.words: list[str] = []
        self.no_fill = False
        self.tag_next = False
        self.join_next = False
        self.link: str | None = None
        self.else_conditions: list[bool] = []
        """For each .ie read, whether its .el branch runs (the negated condition)."""
        self.expansions = 0

    def next_line(self) -> str | None:
        """Pop the next input line, joining lines that end in an unescaped backslash."""
        if not self.queue:
            return None
        line = self.queue.pop()
        while line.endswith("\\") and (len(line) - len(line.rstrip("\\"))) % 2 == 1 and self.queue:
            line = line[:-1] + self.queue.pop()
        return line

    def push(self, lines: list[str]) -> None:
        """Insert lines to be read next, in their order."""
        self.queue.extend(reversed(lines))

    def flush(self) -> None:
        """End the open output line (a paragraph in fill mode)."""
        if self.words:
            self.lines.append(" ".join(" ".join(self.words).split()))
            self.words = []

    def paragraph_break(self) -> None:
        """End the open paragraph and leave one blank line."""
        self.flush()
        if self.lines and self.lines[-1]:
            self.lines.append("")

    def add_text(self, text: str) -> None:
        """Add formatted text, honouring '\\c' joins, no-fill mode and a pending .TP tag."""
        joins = text.rstrip().endswith("\\c")
        text = unescape(text.rstrip()[:-2] if joins else text, self.strings)
        if self.join_next and self.words:
            self.words[-1] += text
        else:
            self.words.append(text)
        self.join_next = joins
        if joins:
            return
        if self.no_fill or self.tag_next:
            self.flush()
            self.tag_next = False
            if self.no_fill and not text.strip():
                self.lines.append("")

    def text_line(self, line: str) -> None:
        """Read a text line: a blank line ends the paragraph and a leading space breaks the line."""
        if not line.strip() and not self.no_fill:
            self.paragraph_break()
            return
        if line.startswith((" ", "\t")) and not self.no_fill:
            self.flush()
        if self.no_fill and not self.join_next:
            self.flush()
            self.lines.append(unescape(line, self.strings).rstrip())
            return
        self.add_text(line)

    def run(self) -> str:
        """Read the whole page and return its text."""
        while (line := self.next_line()) is not None:
            if line.startswith((".", "'")):
                self.request(line)
            else:
                self.text_line(line)
        self.flush()
        text = "\n".join(line.rstrip() for line in self.lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip()

    def request(self, line: str) -> None:
        """Read one control line: a definition, a condition, a man(7) macro or a user macro."""
        body = strip_comment(line[1:]).strip()
        if not body:
            return
        name, _, rest = body.partition(" ")
        if "\t" in name:
            name, _, tail = name.partition("\t")
            rest = f"{tail} {rest}"
        if name in ("de", "de1", "am", "am1", "ig"):
            self.read_definition(name, split_arguments(rest))
        elif name in ("ds", "ds1", "as", "as1"):
            self.define_string(name, rest)
        elif name in ("if", "ie"):
            satisfied, action = self.condition(rest)
            if name == "ie":
                self.else_conditions.append(not satisfied)
            self.act(satisfied, action)
        elif name == "el":
            self.act(self.else_conditions.pop() if self.else_conditions else False, rest.lstrip())
        elif name == "TS":
            self.read_table()
        elif name == "EQ":
            self.skip_until(".EN")
        elif name in self.macros:
            self.expand(name, split_arguments(rest))
        else:
            self.man_macro(name, split_arguments(rest))

    def read_definition(self, request: str, arguments: list[str]) -> None:
        """Store a macro body (.de/.am) or drop an ignored block (.ig) up to its end line."""
        end = "." + (arguments[1] if len(arguments) > 1 else ".")
        body = self.skip_until(end)
        if request == "ig" or not arguments:
            return
        # Bodies are read in copy mode, where '\\\\' stands for one backslash.
        body = [line.replace("\\\\", "\\") for line in body]
        if request.startswith("am"):
            self.macros.setdefault(arguments[0], []).extend(body)
        else:
            self.macros[arguments[0]] = body

    def skip_until(self, end: str) -> list[str]:
        """Consume lines up to the one that starts with `end` and return the lines before it."""
        skipped = []
        while (line := self.next_line()) is not None:
            if line.strip().replace(" ", "").startswith(end):
                break
            skipped.append(line)
        return skipped

    def define_string(self, request: str, rest: str) -> None:
        """Define (.ds) or append to (.as) a string. A leading double quote is dropped."""
        name, _, value = rest.lstrip().partition(" ")
        value = unescape(value.lstrip().removeprefix('"'), self.strings)
        self.strings[name] = self.strings.get(name, "") + value if request.startswith("as") else value

    def expand(self, name: str, arguments: list[str]) -> None:
        """Push a user macro's body with '\\$1'..'\\$9', '\\$*' and '\\$@' replaced by the call's arguments."""
        self.expansions += 1
        if self.expansions > MAX_MACRO_EXPANSIONS:
            return

        def argument(match: re.Match[str]) -> str:
            key = match.group(1).strip("([]")
            if key in ("*", "@"):
                return " ".join(arguments)
            index = int(key) - 1
            return arguments[index] if index < len(arguments) else ""

        pattern = re.compile(r"\\\$(\d|\*|@|\(\d\d|\[\d+\])")
        self.push([pattern.sub(argument, line) for line in self.macros[name]])

    def condition(self, rest: str) -> tuple[bool, str]:
        """Evaluate the condition at the start of an .if/.ie argument; return it and the action after it.

        Conditions take the values that a terminal formatter gives them: 'n' is
        true, 't', 'o', 'e' and 'v' are false, the groff register '.g' is 1, other
        registers are 0, and 'd NAME' tests for a defined string or macro. Numeric expressions with
        operators are not evaluated and count as false.
        """
        rest = rest.lstrip()
        negate = rest.startswith("!")
        rest = rest[negate:]
        if not rest:
            return False, ""
        first = rest[0]
        if first in "ntoev" and (len(rest) == 1 or not rest[1].isalnum()):
            value, action = first == "n", rest[1:]
        elif first in "dmrcFS" and rest[1:2] == " ":
            name, _, action = rest[2:].lstrip().partition(" ")
            value = name in self.strings or name in self.macros if first in "dm" else first == "c"
        elif not first.isalnum() and first not in "\\(":
            left, _, tail = rest[1:].partition(first)
            right, _, action = tail.partition(first)
            value = unescape(left, self.strings) == unescape(right, self.strings)
        else:
            expression, _, action = rest.partition(" ")
            expression = re.sub(r"\\n(\(\.g|\[\.g\])", "1", expression)
            expression = re.sub(r"\\n[+-]?(\(..|\[[^\]]*\]|.)", "0", expression)
            value = expression.isdigit() and int(expression) > 0
        return value != negate, action.lstrip()

    def act(self, satisfied: bool, action: str) -> None:
        """Run or skip the action of a condition, which may open a '\\{ ... \\}' block."""
        if not action.startswith("\\{"):
            if satisfied and action:
                self.push([action])
            return
        block = [action[2:]]
        depth = _block_end(action)
        while depth > 0 and (line := self.next_line()) is not None:
            depth += _block_end(line)
            block.append(line)
        if not satisfied:
            return
        block_lines = []
        for line in block:
            line = line.replace("\\}", "")
            if line.strip() not in ("", ".", "'"):
                block_lines.append(line)
        self.push(block_lines)

    def read_table(self) -> None:
        """Read a tbl table up to .TE and write one line per row, cells separated by two spaces."""
        rows = self.skip_until(".TE")
        tab = "\t"
        if rows and rows[0].rstrip().endswith(";"):
            found = re.search(r"tab\s*\((.)\)", rows[0])
            tab = found.group(1) if found else tab
            rows = rows[1:]
        data, in_format, cell_text = [], True, None
        for row in rows:
            if in_format:
                in_format = not row.rstrip().endswith(".")
            elif row.startswith(".T&"):
                in_format = True
            elif cell_text is not None:
                if row.startswith("T}"):
                    data[-1] += " ".join(cell_text) + row[2:]
                    cell_text = None
                else:
                    cell_text.append(row)
            elif not row.startswith((".", "'")) and row.strip() not in ("_", "="):
                data.append(row.removesuffix("T{"))
                cell_text = [] if row.rstrip().endswith("T{") else None
        self.flush()
        for row in data:
            cells = [unescape(cell, self.strings).strip() for cell in row.split(tab)]
            self.lines.append("  ".join(cell for cell in cells if cell))
        self.lines.append("")

    def man_macro(self, name: str, raw_arguments: list[str]) -> None:
        """Apply one man(7) macro or formatting request; unknown requests are dropped."""
        arguments = [unescape(argument, self.strings) for argument in raw_arguments]
        if name in self.PARAGRAPHS:
            self.paragraph_break()
        elif name in self.BREAKS:
            self.flush()
        if name in ("nf", "EX"):
            self.no_fill = True
        elif name in ("fi", "EE"):
            self.no_fill = False
        elif name == "TH" and arguments:
            self.lines.append(f"{arguments[0]}({arguments[1]})" if len(arguments) > 1 else arguments[0])
            self.lines.append("")
        elif name in ("SH", "SS", "TP", "TQ"):
            self.tag_next = not arguments or name in ("TP", "TQ")
            if arguments and name in ("SH", "SS"):
                self.lines.append(" ".join(arguments))
        elif name == "IP" and arguments and arguments[0]:
            self.words.append(arguments[0])
        elif name in self.FONTS and raw_arguments:
            self.add_text(" ".join(raw_arguments))
        elif name in self.ALTERNATING_FONTS and raw_arguments:
            self.add_text("".join(raw_arguments))
        elif name in ("UR", "MT"):
            self.link = arguments[0] if arguments else None
        elif name in ("UE", "ME"):
            if self.link:
                self.words.append(f"<{self.link}>")
            self.link = None
            if raw_arguments:
                self.join_next = True
                self.add_text("".join(raw_arguments))
        elif name in ("SY", "OP") and raw_arguments:
            self.add_text(" ".join(raw_arguments) if name == "SY" else f"[{' '.join(raw_arguments)}]")


def roff_to_text(source: str) -> str:
    """Return the readable text of a man page written in roff with the man(7) macros.

    Section headings and .TP tags get their own lines, each paragraph becomes one
    line, paragraphs are separated by a blank line, and no-fill blocks (.nf, .EX)
    keep their line breaks. mdoc(7) pages keep only their plain text lines.
    """
    return _ManPageReader(source).run()
