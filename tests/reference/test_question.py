import pytest

from tworail.rails.reference.question import AnswerType, analyse_question


def test_key_terms_and_words():
    question = analyse_question("What is the numeric value of the SQLite result code SQLITE_IOERR_READ?")
    assert question.key_terms == {"sqlite_ioerr_read"}
    assert {"result", "code", "ioerr", "read"} <= question.words
    assert "numer" not in question.words
    assert "sqlite_ioerr_read" not in question.words


def test_quoted_phrase():
    question = analyse_question('What does the "Annual  Maintenance Subscription" cost?')
    assert question.phrases == ("annual maintenance subscription",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("On what date was SQLite version 3.40.1 released?", AnswerType.DATE),
        ("When was WAL mode added?", AnswerType.DATE),
        ('What does the "SQLite License" offering cost?', AnswerType.MONEY),
        ("What is the numeric value of SQLITE_PERM?", AnswerType.NUMBER),
        ("What is the default value of SQLITE_MAX_LENGTH?", AnswerType.NUMBER),
        ("Which SQLite result code has the numeric value 3?", None),
        ("Is SQLite threadsafe?", None),
    ],
)
def test_answer_type(text, expected):
    assert analyse_question(text).answer_type is expected


def test_answer_type_ignores_values_in_question():
    question = analyse_question("What is the numeric value of SQLITE_PERM?")
    assert question.has_answer_type("(3) SQLITE_PERM")
    assert not question.has_answer_type("SQLITE_PERM means access denied")
    assert not question.has_answer_type("version 3.40.1 of SQLITE_PERM")
