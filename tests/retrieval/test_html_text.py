import re

from tworail.retrieval.documents import build_sections
from tworail.retrieval.html_text import html_to_text


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def test_hidden_elements_dropped():
    page = html_to_text(
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<script>var x = 1;</script><p>shown</p><svg><text>drawn</text></svg></body></html>"
    )
    assert page.text == "shown"
    assert page.title == "T"


def test_blocks_become_lines():
    page = html_to_text("<div>one</div><p>two<br>three</p><ul><li>four<li>five</ul><h2>six</h2>")
    assert page.text.split("\n") == ["one", "two", "three", "four", "five", "six"]


def test_table_row_is_one_line():
    page = html_to_text("<table><tr><td>2022-12-28</td>\n<td>3.40.1</td></tr><tr><td>a</td><td>b</td></tr></table>")
    assert page.text == "2022-12-28\t3.40.1\na\tb"


def test_spaces_collapse_within_line():
    page = html_to_text("<p>  many \n\n  spaces&nbsp;&nbsp;here  <b>bold</b>text </p>")
    assert page.text == "many spaces here boldtext"


def test_preformatted_lines_kept():
    page = html_to_text("<pre>CREATE TABLE t1(\n  a INTEGER\n);</pre>")
    assert page.text.split("\n") == ["CREATE TABLE t1(", "a INTEGER", ");"]


def test_anchor_points_at_next_visible_text():
    page = html_to_text('<p>intro</p><a name="perm"></a><h3>(3) SQLITE_PERM</h3><p>The code.</p>')
    (anchor, offset), = page.anchors
    assert anchor == "#perm"
    assert page.text[offset:].startswith("(3) SQLITE_PERM")
    assert [heading.title for heading in page.headings] == ["(3) SQLITE_PERM"]


def test_container_id_ends_with_element():
    page = html_to_text('<div id="menu">Home</div><p>Body text</p><h2 id="x">X</h2><p>more</p>')
    sections = build_sections(page.text, page.anchors, page.headings)
    assert [(section.anchor, page.text[section.start:section.end].strip()) for section in sections] == [
        ("#menu", "Home"),
        ("", "Body text"),
        ("#x", "X\nmore"),
    ]


def test_empty_container_opens_no_section():
    page = html_to_text('<p>a</p><div id="empty"></div><p>b</p>')
    sections = build_sections(page.text, page.anchors, page.headings)
    assert [section.anchor for section in sections] == [""]


def test_same_offset_anchors_become_aliases():
    page = html_to_text('<a name="pve"></a><h1 id="primary">Primary</h1><p>text</p>')
    (section,) = build_sections(page.text, page.anchors, page.headings)
    assert section.anchor == "#pve"
    assert section.aliases == ["#primary"]
    assert section.title == "Primary"


def test_rescode_sections(bundled_documents):
    document = bundled_documents["rescode.html"]
    by_anchor = {section.anchor: section for section in document.sections}
    perm = by_anchor["#perm"]
    assert perm.title == "(3) SQLITE_PERM"
    assert document.text[perm.start:perm.end].startswith("(3) SQLITE_PERM\nThe SQLITE_PERM result code")
    assert by_anchor["#ioerr_read"].title == "(266) SQLITE_IOERR_READ"
    assert "#primary_result_codes_versus_extended_result_codes" in by_anchor["#pve"].aliases
    assert document.title == "Result and Error Codes"


def test_sections_are_ordered_and_disjoint(bundled_documents):
    for document in bundled_documents.values():
        previous_end = 0
        for section in document.sections:
            assert previous_end <= section.start < section.end <= len(document.text), document.source
            previous_end = section.end


def test_gold_evidence_found_in_stored_text(bundled_documents, gold_questions):
    missing = [
        row["id"]
        for row in gold_questions
        if normalise(row["evidence"]) not in normalise(bundled_documents[row["source"]].text)
    ]
    assert missing == []


def test_gold_anchors_exist(bundled_documents, gold_questions):
    missing = []
    for row in gold_questions:
        if not row["anchor"]:
            continue
        sections = bundled_documents[row["source"]].sections
        names = {section.anchor for section in sections} | {a for s in sections for a in s.aliases}
        if row["anchor"] not in names:
            missing.append(row["id"])
    assert missing == []
