import pytest

from tworail.records import Task
from tworail.router import Router, RouterConfig


def route(question: str, **kwargs):
    return Router().route(Task(question=question, **kwargs))


@pytest.mark.parametrize(
    "question",
    [
        "What is the numeric value of the SQLite result code SQLITE_BUSY?",
        "When was SQLite version 3.35.0 released?",
        "How much does an annual maintenance subscription cost?",
        "Quote the copyright statement of SQLite.",
        "Which pragma switches a database to write-ahead logging?",
    ],
)
def test_exact_questions_go_to_reference(question):
    decision = route(question)
    assert decision.rails[0] == "reference"
    assert decision.precision >= 0.5


@pytest.mark.parametrize(
    "question",
    [
        "What are the support threads usually about?",
        "What do users with a broken wireless card usually hear?",
        "Which problems come up most often in the channel?",
    ],
)
def test_pattern_questions_go_to_learnable(question):
    decision = route(question)
    assert decision.rails[0] == "learnable"
    assert decision.precision < 0.5


def test_reasons_quote_what_matched():
    decision = route("What is the numeric value of SQLITE_BUSY?")
    assert any("SQLITE_BUSY" in reason for reason in decision.reasons)
    assert "SQLITE_BUSY" in decision.explain()


def test_risk_cue_adds_reference_rail():
    decision = route("How do people usually get a refund for a double charge?")
    assert decision.risk >= 0.5
    assert "reference" in decision.rails
    assert "learnable" in decision.rails


def test_no_cue_asks_both_rails():
    decision = route("hello there")
    assert decision.rails == ["reference", "learnable"]
    assert decision.reasons == []


def test_candidates_bring_learnable_rail():
    decision = route("Which fix?", candidates=["reboot", "reinstall"])
    assert "learnable" in decision.rails


def test_lowercase_words_are_not_error_codes():
    decision = route("every snake_case name here")
    assert "error_code" not in decision.features


def test_scores_stay_in_unit_interval():
    decision = route("SQLITE_BUSY SQLITE_LOCKED SQLITE_FULL 3.40.1 3.35.0 $5 cite quote license warranty")
    assert 0.0 <= decision.precision <= 1.0
    assert decision.precision > 0.99


def test_config_rejects_unknown_feature():
    with pytest.raises(ValueError, match="unknown router features"):
        RouterConfig(weights={"colour": 0.5})


def test_config_rejects_weight_outside_unit_interval():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        RouterConfig(weights={"version": 1.5})
