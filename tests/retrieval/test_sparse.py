import pytest

from tworail.retrieval.sparse import BM25Encoder, is_key_term, term_index, tokenize


def test_version_kept_whole_and_split():
    assert tokenize("version 3.40.1") == ["version", "3.40.1", "3", "40", "1"]


def test_identifier_kept_whole_and_split():
    assert tokenize("SQLITE_IOERR_READ") == ["sqlite_ioerr_read", "sqlite", "ioerr", "read"]


def test_date_kept_whole_and_split():
    assert tokenize("2022-12-28") == ["2022-12-28", "2022", "12", "28"]


def test_words_stemmed_and_stopwords_dropped():
    assert tokenize("What codes were released?") == ["code", "releas"]


def test_sentence_end_not_part_of_version():
    assert tokenize("in 3.40.1.") == ["3.40.1", "3", "40", "1"]


def test_term_index_stable():
    assert term_index("sqlite_perm") == 2_437_627_797
    assert term_index("3.40.1") != term_index("3.40.10")


@pytest.mark.parametrize(
    ("token", "expected"),
    [("SQLITE_PERM", True), ("3.40.1", True), ("BLOB", True), ("CamelCase", True), ("SQLite", False),
     ("Release", False), ("a", False), ("A", False)],
)
def test_key_terms(token, expected):
    assert is_key_term(token) is expected


def test_document_weights_saturate():
    encoder = BM25Encoder()
    once = encoder.encode_document("perm other words here")
    many = encoder.encode_document("perm perm perm perm perm")
    weight_once = dict(zip(once.indices, once.values))[term_index("perm")]
    weight_many = dict(zip(many.indices, many.values))[term_index("perm")]
    assert weight_once < weight_many < encoder.k1 + 1


def test_query_vector_boosts_key_terms():
    vector = BM25Encoder(key_boost=3.0).encode_query("numeric value of SQLITE_PERM")
    weights = dict(zip(vector.indices, vector.values))
    assert weights[term_index("sqlite_perm")] == 3.0
    assert weights[term_index("perm")] == 1.0
    assert weights[term_index("numer")] == 1.0
    assert vector.indices == sorted(vector.indices)


def test_invalid_bm25_parameters_raise():
    with pytest.raises(ValueError, match="b=2"):
        BM25Encoder(b=2)
