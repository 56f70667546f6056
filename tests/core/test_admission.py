import pytest

from tworail.admission import InvalidTaskError, admit, sanitize_text
from tworail.records import Task


def test_sanitize_removes_format_characters():
    assert sanitize_text("SQLITE\u200b_BUSY\u00a0 code\x07") == "SQLITE_BUSY code"


def test_sanitize_applies_nfkc():
    assert sanitize_text("ｆｕｌｌ width") == "full width"


def test_empty_question_rejected():
    with pytest.raises(InvalidTaskError, match="empty"):
        admit(Task(question=" \u200b "))


def test_long_question_rejected():
    with pytest.raises(InvalidTaskError, match="limit"):
        admit(Task(question="x" * 5000))


def test_empty_candidate_rejected():
    with pytest.raises(InvalidTaskError, match="candidate"):
        admit(Task(question="which?", candidates=["a", " "]))
