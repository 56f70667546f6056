import pytest

from tworail.records import Provenance
from tworail.retrieval.chunking import SectionChunker, count_wordpieces, embed_text
from tworail.retrieval.documents import Document, Section


def make_document(text: str, sections: list[Section], title: str = "Page") -> Document:
    return Document(
        doc_id="d1",
        source="page.html",
        text=text,
        content_type="text/html",
        provenance=Provenance(source_id="page.html", uri="file:///page.html"),
        sections=sections,
        title=title,
    )


@pytest.fixture(scope="module")
def bundled_nodes(bundled_documents):
    chunker = SectionChunker()
    return [(document, node) for document in bundled_documents.values() for node in chunker.chunk(document)]


def test_offsets_round_trip_for_bundled_pages(bundled_nodes):
    for document, node in bundled_nodes:
        assert document.text[node.start_char_idx:node.end_char_idx] == node.text, node.node_id


def test_embedded_text_fits_model_limit(bundled_nodes):
    counts = count_wordpieces([embed_text(node) for _, node in bundled_nodes])
    assert max(counts) + 2 <= 256


def test_chunks_cover_every_nonblank_line(bundled_documents):
    document = bundled_documents["chronology.html"]
    covered = set()
    for node in SectionChunker().chunk(document):
        covered.update(range(node.start_char_idx, node.end_char_idx))
    uncovered = [i for i, char in enumerate(document.text) if not char.isspace() and i not in covered]
    assert uncovered == []


def test_titles_only_in_embedded_text(bundled_documents):
    document = bundled_documents["rescode.html"]
    node = next(n for n in SectionChunker().chunk(document) if n.metadata["anchor"] == "#perm")
    assert node.text.startswith("(3) SQLITE_PERM")
    assert embed_text(node).startswith("Result and Error Codes | (3) SQLITE_PERM\n(3) SQLITE_PERM")
    assert set(node.metadata) >= {"doc_id", "source", "anchor", "title", "tenant"}
    assert node.metadata["source"] == "rescode.html"


def test_long_section_splits_on_lines_with_overlap():
    rows = [f"2022-01-{day:02d}\t3.{day}.0 release row with several words" for day in range(1, 61)]
    text = "\n".join(rows)
    document = make_document(text, [Section(anchor="#t", title="Releases", start=0, end=len(text))])
    nodes = SectionChunker(max_tokens=64, overlap_tokens=16).chunk(document)
    assert len(nodes) > 3
    for node in nodes:
        assert node.text.split("\n")[0] in rows
        assert node.text.split("\n")[-1] in rows
    for previous, following in zip(nodes, nodes[1:]):
        assert following.start_char_idx < previous.end_char_idx


def test_overlong_line_split_at_sentences():
    sentence = "This sentence has exactly nine words in it."
    text = " ".join([sentence] * 40)
    document = make_document(text, [Section(anchor="", title="Long", start=0, end=len(text))])
    nodes = SectionChunker(max_tokens=64, overlap_tokens=0).chunk(document)
    assert len(nodes) > 1
    for node in nodes:
        assert node.text.startswith("This")
        assert node.text.endswith("it.")
        assert count_wordpieces([embed_text(node)])[0] + 2 <= 64


def test_small_sections_join_the_next():
    text = "Menu\nHome\n(3) SQLITE_PERM\nThe SQLITE_PERM result code indicates that access was denied for this file."
    sections = [
        Section(anchor="#menu", title="Menu", start=0, end=10),
        Section(anchor="#perm", title="(3) SQLITE_PERM", start=10, end=len(text)),
    ]
    (node,) = SectionChunker().chunk(make_document(text, sections))
    assert node.start_char_idx == 0
    assert node.metadata["anchor"] == "#perm"


def test_invalid_settings_raise():
    with pytest.raises(ValueError, match="max_tokens=8"):
        SectionChunker(max_tokens=8)
    with pytest.raises(ValueError, match="overlap_tokens=200"):
        SectionChunker(max_tokens=256, overlap_tokens=200)


def test_long_titles_are_cut_to_fit():
    title = "SQLITE_IOERR_" * 60
    text = "\n".join(f"row {number} with a few more words in it" for number in range(80))
    document = make_document(text, [Section(anchor="#x", title=title, start=0, end=len(text))], title=title)
    for node in SectionChunker().chunk(document):
        assert count_wordpieces([embed_text(node)])[0] + 2 <= 256
        assert len(node.metadata["title"]) < len(title)
