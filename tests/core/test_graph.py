import sqlite3

import pytest
from langgraph.checkpoint.sqlite import SqliteSaver

from tworail.admission import InvalidTaskError
from tworail.graph import GraphConfigError, build_ask_graph, run_ask_graph
from tworail.records import Citation, Claim, RailAnswer, Task
from tworail.router import Router
from tworail.traces import TraceLog


class ReferenceDouble:
    def __init__(self):
        self.calls = 0

    def answer(self, task):
        self.calls += 1
        quote = "(5) SQLITE_BUSY"
        citation = Citation(source="rescode.html", anchor="#busy", start=10, end=25, quote=quote)
        return RailAnswer(rail="reference", answer=quote,
                          claims=[Claim(text=quote, provenance="cited", rail="reference", citations=[citation])])


class LearnableDouble:
    def __init__(self):
        self.calls = 0

    def answer(self, task):
        self.calls += 1
        return RailAnswer(rail="learnable", answer="SQLITE_BUSY is 6",
                          claims=[Claim(text="SQLITE_BUSY is 6", provenance="learned", rail="learnable")])


@pytest.fixture
def parts(tmp_path):
    reference, learnable = ReferenceDouble(), LearnableDouble()
    traces = TraceLog(tmp_path / "traces.sqlite")
    saver = SqliteSaver(sqlite3.connect(tmp_path / "checkpoints.sqlite", check_same_thread=False))
    graph = build_ask_graph(Router(), {"reference": reference, "learnable": learnable}, traces, saver)
    return graph, reference, learnable, traces, saver


def test_exact_question_runs_reference_only(parts):
    graph, reference, learnable, traces, _ = parts
    merged = run_ask_graph(graph, Task(question="What is the numeric value of SQLITE_BUSY?"))
    assert merged.route.rails == ["reference"]
    assert (reference.calls, learnable.calls) == (1, 0)
    assert merged.claims[0].citations[0].quote == "(5) SQLITE_BUSY"
    assert traces.count() == 1


def test_both_rails_run_and_merge_flags_conflict(parts):
    graph, reference, learnable, _, _ = parts
    merged = run_ask_graph(graph, Task(question="hello there"))
    assert (reference.calls, learnable.calls) == (1, 1)
    assert [claim.provenance for claim in merged.claims] == ["cited"]
    assert merged.conflicts and "6" in merged.conflicts[0].reason


def test_checkpointer_saves_each_thread(parts):
    graph, _, _, _, saver = parts
    run_ask_graph(graph, Task(question="What is SQLITE_BUSY?"))
    run_ask_graph(graph, Task(question="What is SQLITE_FULL?"))
    threads = {item.config["configurable"]["thread_id"] for item in saver.list(None)}
    assert len(threads) == 2


def test_missing_rail_falls_back_with_reason(tmp_path):
    traces = TraceLog(tmp_path / "traces.sqlite")
    graph = build_ask_graph(Router(), {"reference": ReferenceDouble()}, traces)
    merged = run_ask_graph(graph, Task(question="What are the threads usually about?"))
    assert merged.route.rails == ["reference"]
    assert any("not loaded" in reason for reason in merged.route.reasons)


def test_empty_question_raises(parts):
    graph = parts[0]
    with pytest.raises(InvalidTaskError):
        run_ask_graph(graph, Task(question="   "))


def test_build_rejects_no_rails(tmp_path):
    with pytest.raises(GraphConfigError, match="at least one"):
        build_ask_graph(Router(), {}, TraceLog(tmp_path / "t.sqlite"))
