"""The ask path as one LangGraph graph.

    admit -> route -> { learnable | reference | both in parallel } -> merge -> record

The graph is built and compiled once per agent, with a checkpointer, so every
question runs as a graph thread whose state after each step is saved. State
values are plain JSON-compatible dicts (records dumped with pydantic), which
every LangGraph checkpointer can store.
"""

from __future__ import annotations

import logging
import operator
import uuid
from typing import Annotated, Protocol, TypedDict

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from tworail.admission import admit
from tworail.merge import merge_answers
from tworail.records import MergedAnswer, RailAnswer, RailName, RouteDecision, Task
from tworail.router import Router
from tworail.traces import TraceLog

logger = logging.getLogger(__name__)


class Rail(Protocol):
    """Anything that answers a task: the learnable rail, the reference rail or a double."""

    def answer(self, task: Task) -> RailAnswer:
        """Return the rail's answer to `task`."""
        ...


class AskState(TypedDict, total=False):
    """State of one question as it moves through the graph."""

    task: dict
    """The task, dumped from `Task`."""
    route: dict
    """The route decision, dumped from `RouteDecision`."""
    answers: Annotated[list[dict], operator.add]
    """Rail answers, appended by the rail steps that ran in parallel."""
    merged: dict
    """The merged answer, dumped from `MergedAnswer`."""
    trace_id: int
    """Row id of the answer in the trace log."""


class GraphConfigError(ValueError):
    """The graph cannot be built from the given components."""


def build_ask_graph(
    router: Router,
    rails: dict[RailName, Rail],
    traces: TraceLog,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """Build and compile the ask graph over the given router, rails and trace log."""
    if not rails:
        raise GraphConfigError("no rail given; pass at least one of 'reference' or 'learnable'")
    unknown = sorted(set(rails) - {"reference", "learnable"})
    if unknown:
        raise GraphConfigError(f"unknown rails {unknown}; rails are named 'reference' and 'learnable'")

    def admit_step(state: AskState) -> AskState:
        return {"task": admit(Task.model_validate(state["task"])).model_dump(mode="json")}

    def route_step(state: AskState) -> AskState:
        decision = router.route(Task.model_validate(state["task"]))
        available = [rail for rail in decision.rails if rail in rails]
        if available != decision.rails:
            missing = [rail for rail in decision.rails if rail not in rails]
            fallback = available or list(rails)
            decision = decision.model_copy(update={
                "rails": fallback,
                "reasons": [*decision.reasons, f"rail {', '.join(missing)} not loaded; using {'+'.join(fallback)}"],
            })
        logger.info("route: %s", decision.explain())
        return {"route": decision.model_dump(mode="json")}

    def rail_step(name: RailName):
        def run(state: AskState) -> AskState:
            answer = rails[name].answer(Task.model_validate(state["task"]))
            return {"answers": [answer.model_dump(mode="json")]}
        return run

    def merge_step(state: AskState) -> AskState:
        task = Task.model_validate(state["task"])
        route = RouteDecision.model_validate(state["route"])
        answers = [RailAnswer.model_validate(answer) for answer in state.get("answers", [])]
        return {"merged": merge_answers(task.question, route, answers).model_dump(mode="json")}

    def record_step(state: AskState, config) -> AskState:
        thread_id = config["configurable"]["thread_id"]
        trace_id = traces.record(thread_id, MergedAnswer.model_validate(state["merged"]))
        return {"trace_id": trace_id}

    def pick_rails(state: AskState) -> list[str]:
        return list(state["route"]["rails"])

    graph = StateGraph(AskState)
    graph.add_node("admit", admit_step)
    graph.add_node("route", route_step)
    for name in rails:
        graph.add_node(name, rail_step(name))
        graph.add_edge(name, "merge")
    graph.add_node("merge", merge_step)
    graph.add_node("record", record_step)
    graph.add_edge(START, "admit")
    graph.add_edge("admit", "route")
    graph.add_conditional_edges("route", pick_rails, list(rails))
    graph.add_edge("merge", "record")
    graph.add_edge("record", END)
    return graph.compile(checkpointer=checkpointer)


def run_ask_graph(graph: CompiledStateGraph, task: Task) -> MergedAnswer:
    """Run one task through a compiled ask graph in a new graph thread."""
    config = {"configurable": {"thread_id": f"ask-{uuid.uuid4().hex}"}}
    state = graph.invoke({"task": task.model_dump(mode="json")}, config)
    return MergedAnswer.model_validate(state["merged"])
