"""Byte-level BPE tokenizer of the learnable rail, trained with the `tokenizers` library."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

logger = logging.getLogger(__name__)

END_OF_TEXT = "<|endoftext|>"
"""Special token placed between documents in the training stream."""


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> Tokenizer:
    """Train a byte-level BPE tokenizer with `vocab_size` ids (including the end-of-text token)."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[END_OF_TEXT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    logger.info("trained byte-level BPE with %d tokens", tokenizer.get_vocab_size())
    return tokenizer


def load_tokenizer(path: Path) -> Tokenizer:
    """Load a tokenizer saved as `tokenizer.json`."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"tokenizer file {path} not found; train one with train_tokenizer")
    return Tokenizer.from_file(str(path))


def end_of_text_id(tokenizer: Tokenizer) -> int:
    """Return the id of the end-of-text token."""
    token_id = tokenizer.token_to_id(END_OF_TEXT)
    if token_id is None:
        raise ValueError(f"tokenizer has no {END_OF_TEXT!r} token; train it with train_tokenizer")
    return token_id
