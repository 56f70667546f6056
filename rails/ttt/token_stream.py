"""Tokenized training and validation streams: documents joined by end-of-text tokens."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from tokenizers import Tokenizer

from tworail.rails.ttt.corpus import read_documents
from tworail.rails.ttt.tokenizer import end_of_text_id, load_tokenizer, train_tokenizer

logger = logging.getLogger(__name__)


@dataclass
class TokenStream:
    """The corpus as two flat id tensors, plus the tokenizer that produced them."""

    tokenizer: Tokenizer
    """Byte-level BPE tokenizer of the run."""
    train: torch.Tensor
    """(n,) ids of the training split (int16, or int32 for vocabularies over 32,767 ids)."""
    validation: torch.Tensor
    """(m,) ids of the validation split, in the same dtype."""

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return self.tokenizer.get_vocab_size()

    def sample_batch(self, batch_size: int, length: int, seed: int) -> torch.Tensor:
        """Return (batch_size, length) windows of the training stream at offsets drawn from `seed`."""
        if self.train.numel() <= length:
            raise ValueError(f"training stream of {self.train.numel()} tokens is shorter than length={length}")
        generator = torch.Generator().manual_seed(seed)
        starts = torch.randint(0, self.train.numel() - length, (batch_size,), generator=generator)
        return torch.stack([self.train[s : s + length] for s in starts.tolist()]).long()

    def validation_batch(self, count: int, length: int) -> torch.Tensor:
        """Return `count` evenly spaced (count, length) windows of the validation stream."""
        span = self.validation.numel() - length
        if span <= 0:
            raise ValueError(f"validation stream of {self.validation.numel()} tokens is shorter than {length}")
        starts = [span * i // max(1, count) for i in range(count)]
        return torch.stack([self.validation[s : s + length] for s in starts]).long()


def _encode_split(tokenizer: Tokenizer, documents_path: Path, split: str, separator: int) -> torch.Tensor:
    texts = [row["text"] for row in read_documents(documents_path, split)]
    ids: list[int] = []
    for encoding in tokenizer.encode_batch(texts):
        ids.extend(encoding.ids)
        ids.append(separator)
    dtype = torch.int16 if tokenizer.get_vocab_size() <= 32767 else torch.int32
    return torch.tensor(ids, dtype=dtype)


def build_token_stream(corpus_dir: Path, vocab_size: int, separator: int | None = None) -> TokenStream:
    """Train (once) the tokenizer on the training split and encode both splits, caching the result.

    The tokenizer goes to `<corpus_dir>/../tokenizer.json`, the ids to `<corpus_dir>/tokens.pt`,
    and the token counts into the corpus manifest. A tokenizer already at that path (for
    example a Hugging Face checkpoint's) is used as it is. `separator` is the id placed
    after every document; by default the tokenizer's end-of-text token.
    """
    documents = corpus_dir / "documents.jsonl"
    tokenizer_path = corpus_dir.parent / "tokenizer.json"
    if tokenizer_path.is_file():
        tokenizer = load_tokenizer(tokenizer_path)
    else:
        texts = (row["text"] for row in read_documents(documents, "train"))
        tokenizer = train_tokenizer(texts, vocab_size)
        # Written under a temporary name and renamed, so an interrupted run never leaves half a file.
        tokenizer.save(str(tokenizer_path.with_suffix(".tmp")))
        tokenizer_path.with_suffix(".tmp").replace(tokenizer_path)
    if separator is None:
        separator = end_of_text_id(tokenizer)
    cache = corpus_dir / "tokens.pt"
    if cache.is_file():
        saved = torch.load(cache)
        return TokenStream(tokenizer, saved["train"], saved["validation"])
    stream = TokenStream(
        tokenizer,
        _encode_split(tokenizer, documents, "train", separator),
        _encode_split(tokenizer, documents, "validation", separator),
    )
    torch.save({"train": stream.train, "validation": stream.validation}, cache.with_suffix(".tmp"))
    cache.with_suffix(".tmp").replace(cache)
    manifest_path = corpus_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["tokens"] = {
        "vocab_size": stream.vocab_size,
        "train": int(stream.train.numel()),
        "validation": int(stream.validation.numel()),
        "separator": f"one {tokenizer.id_to_token(separator)!r} (id {separator}) after every document",
    }
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    logger.info("token stream: %d train, %d validation tokens", stream.train.numel(), stream.validation.numel())
    return stream
