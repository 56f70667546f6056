from tworail.records import Provenance
from tworail.rails.reference.composer import ExtractiveComposer
from tworail.retrieval.documents import Document, build_sections
from tworail.retrieval.html_text import html_to_text
from tworail.retrieval.store import Hit


def html_document(doc_id: str, source: str, html: str) -> Document:
    page = html_to_text(html)
    return Document(
        doc_id=doc_id,
        source=source,
        text=page.text,
        content_type="text/html",
        provenance=Provenance(source_id=source, uri=f"file:///{source}"),
        sections=build_sections(page.text, page.anchors, page.headings),
        title=page.title,
    )


def whole_hit(document: Document, score: float = 1.0) -> Hit:
    return Hit(chunk_id=f"{document.doc_id}-0", text=document.text, doc_id=document.doc_id,
               source=document.source, start=0, end=len(document.text), score=score)


CODES = html_document(
    "codes",
    "codes.html",
    "<h2>Result code list</h2><ul>" + "".join(
        f"<li>SQLITE_{name} ({value})</li>" for name, value in
        [("ABORT", 4), ("BUSY", 5), ("LOCKED", 6), ("NOMEM", 7), ("PERM", 3)]
    ) + "</ul>"
    '<a name="perm"></a><h3>(3) SQLITE_PERM</h3><p>The SQLITE_PERM result code indicates that access was denied. '
    "It is returned when the file cannot be opened.</p>"
    '<a name="busy"></a><h3>(5) SQLITE_BUSY</h3><p>The SQLITE_BUSY result code indicates a locked file.</p>',
)

PRICES = html_document(
    "prices",
    "prices.html",
    "<h2>Support</h2><ol><li><p><b>Annual Maintenance Subscription.</b> Private email advice.<p>Cost: $1500/year</li>"
    "<li><p><b>Public Forum.</b> Community help.<p>Cost: Free</li></ol>",
)

LIMITS = html_document(
    "limits",
    "limits.html",
    '<a name="max_length"></a><h2>Maximum length of a string or BLOB</h2><p>The maximum number of bytes in a '
    "string or BLOB is defined by the preprocessor macro SQLITE_MAX_LENGTH. The default value of this macro is "
    "1 billion (1,000,000,000). You can raise or lower this value at compile-time.</p>",
)


def compose(question: str, *documents: Document):
    hits = [whole_hit(document) for document in documents]
    return ExtractiveComposer().compose(question, hits, {d.doc_id: d for d in documents})


def test_heading_takes_first_sentence():
    (best, *_) = compose("What is the numeric value of the SQLite result code SQLITE_PERM?", CODES)
    assert best.anchor == "#perm"
    assert best.quote == "(3) SQLITE_PERM\nThe SQLITE_PERM result code indicates that access was denied."
    assert CODES.text[best.start:best.end] == best.quote


def test_definition_preferred_over_list_line():
    (best, *_) = compose("Which SQLite result code has the numeric value 3?", CODES)
    assert best.quote.startswith("(3) SQLITE_PERM")


def test_price_question_reaches_cost_line():
    (best, *_) = compose('What does the "Annual Maintenance Subscription" offering cost?', PRICES)
    assert "Annual Maintenance Subscription." in best.quote
    assert best.quote.endswith("Cost: $1500/year")
    assert "Public Forum" not in best.quote


def test_value_in_following_sentence():
    (best, *_) = compose("What is the default value of SQLITE_MAX_LENGTH?", LIMITS)
    assert "1,000,000,000" in best.quote
    assert "You can raise" not in best.quote
    assert best.anchor == "#max_length"


def test_no_match_returns_nothing():
    assert compose("Qwzx plmokn vbtrew?", CODES, PRICES) == []


def test_passages_do_not_overlap_and_are_ranked():
    passages = compose("SQLITE_BUSY locked result code", CODES, PRICES, LIMITS)
    assert passages
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for one in passages:
        for other in passages:
            if one is not other and one.doc_id == other.doc_id:
                assert one.end <= other.start or other.end <= one.start
    assert passages[0].anchor == "#busy"


def test_missing_document_is_skipped():
    hits = [whole_hit(CODES)]
    assert ExtractiveComposer().compose("SQLITE_PERM", hits, {}) == []
