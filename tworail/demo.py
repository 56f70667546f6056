"""The demo job: ingest the bundled docs, learn the bundled threads, answer real questions.

`run_demo` does the work and returns a `DemoResult`; the CLI prints it. The
questions are fixed: some need exact values from the SQLite 3.40.1 docs
(error codes, limits, prices, dates, legal text), some ask for the gist of
the Ubuntu support threads and come with candidate answers for the learnable
rail to rank.
"""

from __future__ import annotations

import logging
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from tworail.agent import TwoRail
from tworail.datasets import SupportThread, sqlite_docs_dir, support_threads
from tworail.records import MergedAnswer, Task

logger = logging.getLogger(__name__)

DEMO_TASKS: tuple[Task, ...] = (
    Task(question="What does the SQLite result code SQLITE_BUSY mean, and what is its numeric value?"),
    Task(question="What is the default maximum number of columns in a table, SQLITE_MAX_COLUMN?"),
    Task(question="How much does the Compressed And Encrypted Read-Only Database (CEROD) extension cost?"),
    Task(question="When was SQLite version 3.40.0 released?"),
    Task(question="Quote what the SQLite copyright page says about the warranty of title."),
    Task(question="Which pragma switches a database to write-ahead logging?"),
    Task(
        question="What do people in the Ubuntu support channel usually ask about?",
        candidates=[
            "how do I install this package with apt-get",
            "my wireless card does not work after the upgrade",
            "how do I get my nvidia graphics driver working",
            "what is a good recipe for sourdough bread",
            "who won the football match last night",
        ],
    ),
    Task(
        question="A user's sound stopped working after an update. What do they usually hear first?",
        candidates=[
            "check that the channels are not muted in alsamixer",
            "reinstall windows and try again",
            "buy a new computer",
            "the weather will be sunny tomorrow",
        ],
    ),
)
"""The demo's questions, exact ones first, then pattern questions with candidates."""


class DemoResult(BaseModel):
    """Outcome and measurements of one demo run."""

    chunks: int
    """Chunks ingested from the bundled docs and threads."""
    threads_learned: int
    """Support threads learned through the learnable rail."""
    heldout_loss_before: float
    """Mean loss per token on held-out threads under W0, in nats."""
    heldout_loss_per_request: float
    """The same with per-request test-time training: each thread read with inner steps from W0."""
    heldout_loss_after: float
    """Mean loss per token on held-out threads after learning the bundled threads, in nats."""
    answers: list[MergedAnswer] = Field(default_factory=list)
    """The answers, in the order of `DEMO_TASKS`."""
    audit: dict[str, object] = Field(default_factory=dict)
    """Summary of the audit log."""
    seconds: dict[str, float] = Field(default_factory=dict)
    """Wall time of each step."""


def _heldout_loss(agent: TwoRail, threads: list[SupportThread], *, test_time_training: bool = False) -> float:
    losses = [agent.learnable.score(thread.text, test_time_training=test_time_training) for thread in threads]
    tokens = sum(loss.numel() for loss in losses)
    return float(sum(loss.sum().item() for loss in losses) / max(tokens, 1))


def run_demo(
    data_dir: Path,
    *,
    progress: bool = True,
    threads_limit: int | None = None,
    tasks: tuple[Task, ...] = DEMO_TASKS,
    on_answer: Callable[[MergedAnswer], None] | None = None,
    embedder=None,
) -> DemoResult:
    """Run the demo in a fresh `data_dir` (its previous content is deleted)."""
    from tworail.retrieval.documents import load_documents, thread_document

    if data_dir.exists():
        shutil.rmtree(data_dir)
    seconds: dict[str, float] = {}
    learn_threads = support_threads("learn")[:threads_limit]
    heldout_threads = support_threads("heldout")[:threads_limit]

    with TwoRail(data_dir, embedder=embedder) as agent:
        start = time.perf_counter()
        docs_dir = sqlite_docs_dir()
        documents = load_documents([docs_dir], owner="SQLite developers (public domain)")
        documents += [thread_document(thread) for thread in learn_threads]
        chunks = agent.ingest_documents(documents, progress=progress)
        seconds["ingest"] = time.perf_counter() - start

        start = time.perf_counter()
        before = _heldout_loss(agent, heldout_threads)
        per_request = _heldout_loss(agent, heldout_threads, test_time_training=True)
        seconds["score_heldout_before"] = time.perf_counter() - start

        start = time.perf_counter()
        items = [(thread.text, thread.provenance()) for thread in learn_threads]
        agent.learn_many(items, progress=progress, total=len(items))
        seconds["learn"] = time.perf_counter() - start

        start = time.perf_counter()
        after = _heldout_loss(agent, heldout_threads)
        seconds["score_heldout_after"] = time.perf_counter() - start

        start = time.perf_counter()
        answers = []
        latencies = []
        for task in tasks:
            asked = time.perf_counter()
            answer = agent.ask(task)
            latencies.append(time.perf_counter() - asked)
            answers.append(answer)
            if on_answer is not None:
                on_answer(answer)
        seconds["answer"] = time.perf_counter() - start
        seconds["answer_p50"] = statistics.median(latencies) if latencies else 0.0
        audit = agent.audit.summary()

    logger.info("demo finished: %s", {name: round(value, 2) for name, value in seconds.items()})
    return DemoResult(
        chunks=chunks,
        threads_learned=len(learn_threads),
        heldout_loss_before=before,
        heldout_loss_per_request=per_request,
        heldout_loss_after=after,
        answers=answers,
        audit=audit,
        seconds=seconds,
    )
