"""The SDK facade: one object to ingest, learn, ask and read the audit log.

A `TwoRail` agent keeps all its state under one data directory:

    <data_dir>/index/             stored documents and the embedded Qdrant collection
    <data_dir>/learnable/         the learnable rail's current fast weights
    <data_dir>/governance/        policy, snapshots, deltas and encrypted learned texts
    <data_dir>/audit.sqlite       the hash-chained audit log
    <data_dir>/traces.sqlite      one row per answered question
    <data_dir>/checkpoints.sqlite LangGraph checkpoints of the ask graph

The rails load lazily: a question routed only to the reference rail never
loads the language model, and one routed only to the learnable rail never
loads the embedding model.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langgraph.checkpoint.sqlite import SqliteSaver
from safetensors.torch import load_file
from tqdm.auto import tqdm

from tworail.audit import AuditLog
from tworail.graph import build_ask_graph, run_ask_graph
from tworail.records import MergedAnswer, Provenance, RailAnswer, Task
from tworail.router import Router
from tworail.traces import TraceLog

if TYPE_CHECKING:
    from tworail.governance.auth import SignedRequest
    from tworail.governance.learner import GovernedLearner, LearnOutcome
    from tworail.governance.policy import LearnPolicy
    from tworail.rails.reference.rail import ReferenceRail
    from tworail.rails.ttt.rail import LearnableRail
    from tworail.retrieval.documents import Document
    from tworail.retrieval.index import DocumentIndex

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "TWORAIL_DATA_DIR"
"""Environment variable that sets the default data directory."""


def default_data_dir() -> Path:
    """Return $TWORAIL_DATA_DIR if set, else ~/.tworail."""
    return Path(os.environ.get(DATA_DIR_ENV) or Path.home() / ".tworail")


class _LazyRail:
    """A rail built on first use, so unused rails cost nothing."""

    def __init__(self, build: Callable[[], object]) -> None:
        self._build = build
        self._rail = None

    @property
    def rail(self):
        if self._rail is None:
            self._rail = self._build()
        return self._rail

    def answer(self, task: Task) -> RailAnswer:
        return self.rail.answer(task)


class TwoRail:
    """An agent with a learnable rail, a reference rail and a governed learn path.

    Components may be injected (an embedder, a learnable rail, a router) so
    tests and notebooks can use doubles; by default the agent uses the
    all-MiniLM-L6-v2 embedder and the bundled TTT-E2E checkpoint.
    """

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        embedder=None,
        learnable: LearnableRail | None = None,
        router: Router | None = None,
    ) -> None:
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._embedder = embedder
        self._index: DocumentIndex | None = None
        self._learnable: LearnableRail | None = learnable
        self._learner: GovernedLearner | None = None
        self._lock = threading.RLock()
        self.router = router or Router()
        self.audit = AuditLog(self.data_dir / "audit.sqlite")
        self.traces = TraceLog(self.data_dir / "traces.sqlite")
        self._checkpoint_db = sqlite3.connect(self.data_dir / "checkpoints.sqlite", check_same_thread=False)
        self._reference_rail = _LazyRail(self._build_reference_rail)
        self._learnable_rail = _LazyRail(lambda: self.learnable)
        self.graph = build_ask_graph(
            self.router,
            {"reference": self._reference_rail, "learnable": self._learnable_rail},
            self.traces,
            SqliteSaver(self._checkpoint_db),
        )

    # Components

    @property
    def index(self) -> DocumentIndex:
        """The document index, opened on first use."""
        if self._index is None:
            from tworail.retrieval.index import DocumentIndex

            self._index = DocumentIndex(self.data_dir / "index", self._get_embedder())
        return self._index

    @property
    def learnable(self) -> LearnableRail:
        """The learnable rail with this agent's fast weights, loaded on first use."""
        if self._learnable is None:
            from tworail.rails.ttt.rail import LearnableRail

            self._learnable = LearnableRail.from_pretrained()
            weights = self._fast_weights_path()
            # NOTE: the audit trail, not this file, records which state is current. After a
            # crash between the audit row and this file's write, asks use the previous
            # weights until the governed learner opens and repairs the file.
            if weights.exists():
                self._learnable.load_fast_weights(load_file(weights))
                logger.info("loaded fast weights from %s", weights)
        return self._learnable

    def _get_embedder(self):
        if self._embedder is None:
            from tworail.retrieval.embedding import MiniLMEmbedding

            self._embedder = MiniLMEmbedding()
        return self._embedder

    def _build_reference_rail(self) -> ReferenceRail:
        from tworail.rails.reference.rail import ReferenceRail

        return ReferenceRail(self.index)

    def _fast_weights_path(self) -> Path:
        return self.data_dir / "learnable" / "fast_weights.safetensors"

    # Ingest

    def ingest(self, paths: Sequence[Path | str], *, tenant: str = "default", owner: str = "unknown",
               progress: bool = False) -> int:
        """Ingest files or folders (HTML, text, Markdown) and return the number of chunks added."""
        from tworail.retrieval.documents import load_documents

        documents = load_documents([Path(path) for path in paths], tenant=tenant, owner=owner)
        return self.ingest_documents(documents, progress=progress)

    def ingest_documents(self, documents: Sequence[Document], *, progress: bool = False) -> int:
        """Add already loaded documents to the index and return the number of chunks added."""
        added = self.index.add(documents, progress=progress)
        logger.info("ingested %d documents as %d chunks", len(documents), added)
        return added

    # Learn

    @property
    def learner(self) -> GovernedLearner:
        """The governed learn path over the learnable rail, opened on first use.

        It uses `<data_dir>/governance/policy.toml` when that file exists, else the
        built-in default policy, and shares this agent's audit log. When
        `<data_dir>/governance/keys.json` exists, it accepts only signed requests.
        """
        if self._learner is None:
            from tworail.governance.keystore import load_keyring
            from tworail.governance.learner import GovernedLearner

            # With a key file in the data directory, every learning request must be signed.
            self._learner = GovernedLearner(self.learnable, self.data_dir, audit=self.audit,
                                            keyring=load_keyring(self.data_dir))
        return self._learner

    def set_policy(self, policy: LearnPolicy, *, actor: str = "local") -> None:
        """Put a learn policy in force; the change is an audit event."""
        with self._lock:
            self.learner.set_policy(policy, actor=actor)

    def install_policy(self, path: Path | str, *, actor: str = "local") -> LearnPolicy:
        """Validate a policy TOML file, keep a copy in the data directory and put it in force.

        The copy at `<data_dir>/governance/policy.toml` is the policy later processes
        open with, so the policy stays in force after this one exits.
        """
        from tworail.governance.policy import load_policy

        policy = load_policy(Path(path))
        target = self.data_dir / "governance" / "policy.toml"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        tmp.write_text(Path(path).read_text(encoding="utf-8"), encoding="utf-8")
        os.replace(tmp, target)
        self.set_policy(policy, actor=actor)
        return policy

    def learn(self, text: str, provenance: Provenance, *, request: SignedRequest | None = None,
              actor: str | None = None) -> LearnOutcome:
        """Learn `text` through the governed learn path and return the outcome.

        The text reaches the fast weights only if it passes the data contract, the
        learn policy, redaction and quarantine screens, rate limits, budgets and
        the acceptance gate; every outcome, rejections included, is an audit event.
        """
        with self._lock:
            return self.learner.learn(text, provenance, request=request, actor=actor)

    def learn_many(self, items: Iterable[tuple[str, Provenance]], *, progress: bool = False,
                   total: int | None = None, sign: Callable[[str, Provenance], SignedRequest] | None = None
                   ) -> list[LearnOutcome]:
        """Learn several texts in order through the governed learn path, each signed by `sign` if given."""
        outcomes = []
        bar = tqdm(items, total=total, desc="learning", unit="doc", disable=not progress)
        for text, provenance in bar:
            request = sign(text, provenance) if sign is not None else None
            outcome = self.learn(text, provenance, request=request)
            outcomes.append(outcome)
            bar.set_postfix_str(outcome.status)
        return outcomes

    # Ask

    def ask(self, question: str | Task) -> MergedAnswer:
        """Answer one question through the ask graph."""
        task = question if isinstance(question, Task) else Task(question=question)
        # A learn applies its shadow update to the shared rail before the acceptance
        # gate decides, so asking waits until no learn is in progress.
        with self._lock:
            return run_ask_graph(self.graph, task)

    def close(self) -> None:
        """Close the index and every database this agent opened."""
        if self._index is not None:
            self._index.close()
        if self._learner is not None:
            self._learner.close()  # also closes the shared audit log
        else:
            self.audit.close()
        self.traces.close()
        self._checkpoint_db.close()

    def __enter__(self) -> TwoRail:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
