import pytest

from tworail.records import Citation
from tworail.retrieval.documents import load_documents
from tworail.retrieval.embedding import HashingEmbedder
from tworail.retrieval.errors import DocumentNotFoundError, StoreError
from tworail.retrieval.index import DocumentIndex


@pytest.fixture
def pages(tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    (folder / "codes.html").write_text(
        "<html><head><title>Codes</title></head><body>"
        '<a name="perm"></a><h3>(3) SQLITE_PERM</h3><p>The SQLITE_PERM result code means access denied.</p>'
        '<a name="busy"></a><h3>(5) SQLITE_BUSY</h3><p>The SQLITE_BUSY result code means the file is locked.</p>'
        "</body></html>",
        encoding="utf-8",
    )
    (folder / "notes.md").write_text("# Checkpoints\nWAL checkpoints move pages back.\n", encoding="utf-8")
    return folder


@pytest.fixture
def index(tmp_path):
    with DocumentIndex(tmp_path / "index", HashingEmbedder()) as opened:
        yield opened


def citation_for(index, doc_id, needle):
    document = index.document(doc_id)
    start = document.text.index(needle)
    return Citation(source=document.source, start=start, end=start + len(needle), quote=needle, doc_id=doc_id)


def test_add_and_search(index, pages):
    documents = load_documents([pages])
    added = index.add(documents)
    assert added == index.chunk_count() > 0
    assert len(index) == 2
    hit = index.search("SQLITE_BUSY locked", k=3)[0]
    document = index.document(hit.doc_id)
    assert hit.source == "codes.html"
    assert document.text[hit.start:hit.end] == hit.text
    assert "SQLITE_BUSY" in hit.text


def test_readd_replaces_document(index, pages):
    documents = load_documents([pages])
    first = index.add(documents)
    second = index.add(load_documents([pages]))
    assert first == second == index.chunk_count()
    assert len(index) == 2


def test_readd_changed_text_drops_old_chunks(index, pages):
    index.add(load_documents([pages]))
    (pages / "notes.md").write_text("# Vacuum\nVACUUM rebuilds the file.\n", encoding="utf-8")
    index.add(load_documents([pages / "notes.md"]))
    assert all("checkpoints" not in hit.text.lower() for hit in index.search("WAL checkpoints", k=10))


def test_verify_accepts_exact_and_rejects_tampered(index, pages):
    (document,) = [d for d in load_documents([pages]) if d.source == "codes.html"]
    index.add([document])
    good = citation_for(index, document.doc_id, "(3) SQLITE_PERM")
    assert index.verify(good)
    assert not index.verify(good.model_copy(update={"quote": "(4) SQLITE_PERM"}))
    assert not index.verify(good.model_copy(update={"start": good.start + 1, "end": good.end + 1}))
    assert not index.verify(good.model_copy(update={"end": 10**6}))
    assert not index.verify(good.model_copy(update={"source": "other.html"}))
    assert not index.verify(good.model_copy(update={"doc_id": "0" * 16}))
    assert index.verify(good.model_copy(update={"doc_id": ""}))


def test_documents_survive_restart(tmp_path, pages):
    documents = load_documents([pages])
    with DocumentIndex(tmp_path / "index", HashingEmbedder()) as index:
        index.add(documents)
        citation = citation_for(index, documents[0].doc_id, "SQLITE_PERM result code")
    with DocumentIndex(tmp_path / "index", HashingEmbedder()) as reopened:
        assert len(reopened) == 2
        assert reopened.verify(citation)
        assert reopened.search("SQLITE_PERM", k=1)[0].source == "codes.html"


def test_other_embedder_rejected(tmp_path):
    DocumentIndex(tmp_path / "index", HashingEmbedder()).close()
    with pytest.raises(StoreError, match="built with embedder HashingEmbedder:hashing"):
        DocumentIndex(tmp_path / "index", HashingEmbedder(model_name="other"))


def test_tenants_are_separate(index, pages):
    index.add(load_documents([pages], tenant="acme"))
    index.add(load_documents([pages / "notes.md"], tenant="globex"))
    assert {hit.tenant for hit in index.search("SQLITE_PERM checkpoints", k=10, tenant="globex")} == {"globex"}
    assert index.search("SQLITE_PERM", k=1, tenant="acme")[0].source == "codes.html"
    assert index.search("SQLITE_PERM", k=5, tenant="initech") == []


def test_remove_document(index, pages):
    documents = load_documents([pages])
    index.add(documents)
    removed = index.remove(documents[0].doc_id)
    assert removed > 0
    assert len(index) == 1
    with pytest.raises(DocumentNotFoundError, match="no stored document has id"):
        index.document(documents[0].doc_id)
    with pytest.raises(DocumentNotFoundError):
        index.remove(documents[0].doc_id)


def test_blank_query_returns_nothing(index, pages):
    index.add(load_documents([pages]))
    assert index.search("   ") == []


def test_search_from_threads(index, pages):
    from concurrent.futures import ThreadPoolExecutor

    index.add(load_documents([pages]))
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: index.search("SQLITE_BUSY", k=1)[0].source, range(8)))
    assert results == ["codes.html"] * 8
