"""The reference rail: answers made only of verified quotes from the document index."""

from __future__ import annotations

import logging
import time

from tworail.records import Citation, Claim, RailAnswer, Task
from tworail.rails.reference.composer import ExtractiveComposer, Passage
from tworail.retrieval.documents import Document
from tworail.retrieval.errors import DocumentNotFoundError
from tworail.retrieval.index import DocumentIndex
from tworail.retrieval.store import Hit

logger = logging.getLogger(__name__)


class ReferenceRail:
    """Search the index, quote the best spans verbatim and verify every quote.

    The answer's claims are 'cited' claims, best first; the first claim's
    first citation is the rail's best evidence. A quote that does not match
    the stored text at its offsets is dropped and logged, never returned.
    """

    def __init__(
        self,
        index: DocumentIndex,
        *,
        k: int = 8,
        composer: ExtractiveComposer | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"k={k} is invalid; retrieve at least one chunk")
        self.index = index
        self.k = k
        self.composer = composer or ExtractiveComposer()

    def answer(self, task: Task) -> RailAnswer:
        """Answer a task with verified quotes from the task's tenant; empty when nothing matches."""
        started = time.perf_counter()
        hits = self.index.search(task.question, k=self.k, tenant=task.tenant)
        documents = self._documents(hits)
        passages = self.composer.compose(task.question, hits, documents)
        claims = [claim for claim in (self._claim(passage) for passage in passages) if claim is not None]
        details: dict[str, object] = {
            "hits": [_hit_summary(hit) for hit in hits],
            "latency_ms": round(1000 * (time.perf_counter() - started), 1),
        }
        answer = "\n".join(claim.text for claim in claims)
        return RailAnswer(rail="reference", answer=answer, claims=claims, details=details)

    def _documents(self, hits: list[Hit]) -> dict[str, Document]:
        documents: dict[str, Document] = {}
        for hit in hits:
            if hit.doc_id in documents:
                continue
            try:
                documents[hit.doc_id] = self.index.document(hit.doc_id)
            except DocumentNotFoundError:
                logger.warning("chunk %s points at missing document %s; skipped", hit.chunk_id, hit.doc_id)
        return documents

    def _claim(self, passage: Passage) -> Claim | None:
        citation = Citation(
            source=passage.source,
            anchor=passage.anchor,
            start=passage.start,
            end=passage.end,
            quote=passage.quote,
            doc_id=passage.doc_id,
            score=passage.retrieval_score,
        )
        if not self.index.verify(citation):
            logger.warning(
                "dropped unverifiable quote from %s at %d-%d", passage.source, passage.start, passage.end
            )
            return None
        return Claim(
            text=passage.quote,
            provenance="cited",
            rail="reference",
            citations=[citation],
            confidence=round(passage.coverage, 4),
        )


def _hit_summary(hit: Hit) -> dict[str, object]:
    return {
        "source": hit.source,
        "anchor": hit.anchor,
        "start": hit.start,
        "end": hit.end,
        "score": round(hit.score, 4),
    }
