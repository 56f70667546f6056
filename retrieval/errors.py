"""Exceptions raised by the retrieval package, for callers that need to catch them."""

from __future__ import annotations


class IngestError(ValueError):
    """A document could not be read: missing, unreadable, unsupported or undecodable."""


class EmbeddingModelError(RuntimeError):
    """The bundled embedding model is missing or could not be loaded."""


class StoreError(RuntimeError):
    """The vector store rejected a request or is in a state that prevents it."""


class StoreLockedError(StoreError):
    """Another client, in this process or another, already has the local store folder open."""


class DocumentNotFoundError(KeyError):
    """No stored document has the requested id."""

    def __str__(self) -> str:
        # KeyError quotes its argument; show the message as written.
        return str(self.args[0]) if self.args else ""
