import logging

import pytest

from tworail.records import Task


def first_citation(answer):
    assert answer.claims, f"no claims for: {answer.details}"
    return answer.claims[0].citations[0]


@pytest.mark.parametrize(
    ("question", "source", "anchor", "answer"),
    [
        ("What is the numeric value of the SQLite result code SQLITE_PERM?", "rescode.html", "#perm", "3"),
        ("Which SQLite result code has the numeric value 266?", "rescode.html", "#ioerr_read", "SQLITE_IOERR_READ"),
        ("How do I create an AUTOINCREMENT field?", "faq.html", "#q1",
         "Short answer: A column declared INTEGER PRIMARY KEY will autoincrement."),
        ("What is the default value of SQLITE_MAX_LENGTH in SQLite?", "limits.html", "#max_length", "1,000,000,000"),
    ],
)
def test_answers_with_page_and_anchor(rail, question, source, anchor, answer):
    citation = first_citation(rail.answer(Task(question=question)))
    assert citation.source == source
    assert citation.anchor == anchor
    assert answer in citation.quote


def test_price_quote_includes_the_cost(rail):
    question = 'What does the "Annual Maintenance Subscription" offering from the SQLite developers cost?'
    citation = first_citation(rail.answer(Task(question=question)))
    assert citation.source == "prosupport.html"
    assert "$1500/year" in citation.quote
    assert "Annual Maintenance Subscription" in citation.quote


def test_release_date_quoted(rail):
    citation = first_citation(rail.answer(Task(question="On what date was SQLite version 3.40.1 released?")))
    assert "2022-12-28" in citation.quote


def test_quote_is_small_and_verified(rail, sqlite_index):
    answer = rail.answer(Task(question="What is the numeric value of the SQLite result code SQLITE_BUSY?"))
    assert answer.rail == "reference"
    for claim in answer.claims:
        assert claim.provenance == "cited"
        assert claim.rail == "reference"
        (citation,) = claim.citations
        assert sqlite_index.verify(citation)
        assert len(citation.quote) < 600
        document = sqlite_index.document(citation.doc_id)
        assert document.text[citation.start:citation.end] == citation.quote
    assert first_citation(answer).quote.startswith("(5) SQLITE_BUSY")


def test_defining_section_preferred_over_index_list(rail):
    citation = first_citation(rail.answer(Task(question="What is the numeric value of the SQLite result code SQLITE_NOMEM?")))
    assert citation.anchor == "#nomem"
    assert citation.quote.startswith("(7) SQLITE_NOMEM\nThe SQLITE_NOMEM result code")


def test_unrelated_question_gets_empty_answer(rail):
    answer = rail.answer(Task(question="Qwzx plmokn vbtrew?"))
    assert answer.answer == ""
    assert answer.claims == []


def test_unverifiable_quote_dropped(rail, sqlite_index, monkeypatch, caplog):
    monkeypatch.setattr(sqlite_index, "verify", lambda citation: False)
    with caplog.at_level(logging.WARNING, logger="tworail.rails.reference.rail"):
        answer = rail.answer(Task(question="What is the numeric value of the SQLite result code SQLITE_PERM?"))
    assert answer.claims == []
    assert "dropped unverifiable quote" in caplog.text


def test_tenant_scopes_the_answer(rail):
    answer = rail.answer(Task(question="What is SQLITE_PERM?", tenant="someone-else"))
    assert answer.claims == []


def test_details_list_hits(rail):
    answer = rail.answer(Task(question="Is SQLite threadsafe?"))
    hits = answer.details["hits"]
    assert 0 < len(hits) <= rail.k
    assert {"source", "anchor", "start", "end", "score"} <= set(hits[0])
