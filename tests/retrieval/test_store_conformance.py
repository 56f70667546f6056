"""One suite that every VectorStore backend that runs here must pass."""

import math

import pytest
from llama_index.core.schema import TextNode

from tworail.retrieval.errors import StoreError, StoreLockedError
from tworail.retrieval.sparse import BM25Encoder
from tworail.retrieval.store import EmbeddedChunk, Fusion, QdrantStore

DIMENSION = 8
ENCODER = BM25Encoder()


def unit(*values: float) -> list[float]:
    padded = list(values) + [0.0] * (DIMENSION - len(values))
    norm = math.sqrt(sum(value * value for value in padded))
    return [value / norm for value in padded]


def chunk(chunk_id: str, text: str, dense: list[float], *, doc_id: str = "d1", tenant: str = "default") -> EmbeddedChunk:
    node = TextNode(
        id_=chunk_id,
        text=text,
        start_char_idx=10,
        end_char_idx=10 + len(text),
        metadata={"doc_id": doc_id, "source": f"{doc_id}.html", "anchor": "#a", "title": "T",
                  "page_title": "P", "tenant": tenant},
    )
    return EmbeddedChunk(node=node, dense=dense, sparse=ENCODER.encode_document(text))


CHUNKS = [
    chunk("c1", "(3) SQLITE_PERM access mode denied", unit(1, 0)),
    chunk("c2", "(5) SQLITE_BUSY database file is locked", unit(0, 1)),
    chunk("c3", "write-ahead logging and checkpoints", unit(1, 1), doc_id="d2"),
    chunk("c4", "SQLITE_PERM for another tenant", unit(1, 0), doc_id="d3", tenant="acme"),
]


@pytest.fixture(params=["memory", "local"])
def store(request, tmp_path):
    location = ":memory:" if request.param == "memory" else tmp_path / "qdrant"
    backend = QdrantStore(location, dimension=DIMENSION)
    backend.upsert(CHUNKS)
    yield backend
    backend.close()


def search(store, text, dense, k=3, tenant="default"):
    return store.search(dense, ENCODER.encode_query(text), k, tenant)


def test_count_by_tenant(store):
    assert store.count() == 4
    assert store.count("default") == 3
    assert store.count("acme") == 1
    assert store.count("nobody") == 0


def test_hit_carries_payload(store):
    (hit, *_) = search(store, "SQLITE_PERM", unit(1, 0))
    assert hit.chunk_id == "c1"
    assert hit.text == "(3) SQLITE_PERM access mode denied"
    assert (hit.doc_id, hit.source, hit.anchor, hit.title, hit.page_title) == ("d1", "d1.html", "#a", "T", "P")
    assert (hit.start, hit.end) == (10, 10 + len(hit.text))
    assert hit.tenant == "default"


def test_tenant_filter_applies(store):
    hits = search(store, "SQLITE_PERM tenant", unit(1, 0), k=10, tenant="acme")
    assert [hit.chunk_id for hit in hits] == ["c4"]
    all_tenants = search(store, "SQLITE_PERM", unit(1, 0), k=10, tenant=None)
    assert {"c1", "c4"} <= {hit.chunk_id for hit in all_tenants}


@pytest.mark.parametrize("fusion", list(Fusion))
def test_every_fusion_finds_exact_match(store, fusion):
    store.fusion = fusion
    hits = search(store, "SQLITE_BUSY locked", unit(0, 1))
    assert hits[0].chunk_id == "c2"
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_sparse_and_dense_use_their_own_vector(store):
    # The dense vector points at c1, but only c2 contains the identifier.
    store.fusion = Fusion.SPARSE
    assert search(store, "SQLITE_BUSY", unit(1, 0))[0].chunk_id == "c2"
    store.fusion = Fusion.DENSE
    assert search(store, "SQLITE_BUSY", unit(1, 0))[0].chunk_id == "c1"


def test_query_without_terms_uses_dense(store):
    hits = search(store, "???", unit(1, 1))
    assert hits[0].chunk_id == "c3"


def test_upsert_same_id_replaces(store):
    store.upsert([chunk("c1", "(3) SQLITE_PERM rewritten", unit(1, 0))])
    assert store.count() == 4
    (hit, *_) = search(store, "rewritten", unit(1, 0))
    assert hit.text == "(3) SQLITE_PERM rewritten"


def test_delete_document_removes_its_chunks(store):
    store.upsert([chunk("c5", "second chunk of d1", unit(0, 0, 1))])
    assert store.delete_document("d1") == 3
    assert store.delete_document("d1") == 0
    assert store.count() == 2
    assert all(hit.doc_id != "d1" for hit in search(store, "SQLITE_PERM", unit(1, 0), tenant=None))


def test_wrong_dimension_raises(store):
    with pytest.raises(StoreError, match="length 3, expected 8"):
        store.search([1.0, 0.0, 0.0], ENCODER.encode_query("x"), 3)
    with pytest.raises(StoreError, match="expected 8"):
        store.upsert([chunk("bad", "text", [1.0, 0.0])])


def test_invalid_k_raises(store):
    with pytest.raises(ValueError, match="k=0"):
        search(store, "x", unit(1), k=0)


def test_local_folder_persists_and_locks(tmp_path):
    folder = tmp_path / "qdrant"
    first = QdrantStore(folder, dimension=DIMENSION)
    first.upsert(CHUNKS)
    with pytest.raises(StoreLockedError, match="already open"):
        QdrantStore(folder, dimension=DIMENSION)
    first.close()
    reopened = QdrantStore(folder, dimension=DIMENSION)
    assert reopened.count() == 4
    reopened.close()


def test_local_folder_rejects_other_dimension(tmp_path):
    QdrantStore(tmp_path / "qdrant", dimension=DIMENSION).close()
    with pytest.raises(StoreError, match="dense size 8"):
        QdrantStore(tmp_path / "qdrant", dimension=16)


def test_idf_weighs_rare_terms_more(store):
    # Without IDF the repeated common term would win; Qdrant applies IDF at
    # query time (Modifier.IDF), in local mode too.
    store.fusion = Fusion.SPARSE
    common = [chunk(f"n{i}", "checkpoint page", unit(0, 0, 1), doc_id=f"n{i}") for i in range(6)]
    repeated = chunk("repeated", "checkpoint checkpoint checkpoint", unit(0, 0, 1), doc_id="repeated")
    rare = chunk("rare", "vacuum page page", unit(0, 0, 1), doc_id="rare")
    store.upsert([*common, repeated, rare])
    hits = search(store, "checkpoint vacuum", unit(0, 0, 1), k=3)
    assert hits[0].chunk_id == "rare"
    assert hits[1].chunk_id == "repeated"


def test_large_local_store_warns(store, monkeypatch, caplog):
    monkeypatch.setattr("tworail.retrieval.store.LOCAL_MODE_POINT_LIMIT", 4)
    with caplog.at_level("WARNING", logger="tworail.retrieval.store"):
        store.upsert([chunk("c9", "one more chunk", unit(0, 0, 1))])
        store.upsert([chunk("c10", "and another", unit(0, 0, 1))])
    assert caplog.text.count("run a Qdrant server and pass its URL") == 1
