"""The learnable rail on a converted Hugging Face checkpoint, with the checkpoint's own tokenizer.

`LearnableRail` only calls the inner loop, the decoder and the model's
`TTTModel` methods, so it drives an `HFTTTModel` unchanged. Two things differ
from the project's own checkpoints. First, texts start with the checkpoint's BOS
token (its EOS token when it has no BOS) instead of `<|endoftext|>`, and
generation stops at its EOS token. Second, the tokenizer's template, which
would add BOS to every encoded piece, is switched off.
"""

from __future__ import annotations

import logging
from pathlib import Path

from tokenizers import Tokenizer

from tworail.rails.ttt.config import InnerLoopConfig
from tworail.rails.ttt.hf_checkpoint import load_converted, save_converted
from tworail.rails.ttt.hf_model import HFTTTModel
from tworail.rails.ttt.hf_tokenizer import DocumentTokens, document_tokens, load_hf_tokenizer, without_template
from tworail.rails.ttt.rail import LearnableRail

logger = logging.getLogger(__name__)


class HFLearnableRail(LearnableRail):
    """`LearnableRail` over an `HFTTTModel`, using the checkpoint's tokenizer and BOS/EOS tokens."""

    def __init__(self, model: HFTTTModel, tokenizer: Tokenizer, tokens: DocumentTokens | None = None) -> None:
        # NOTE: this repeats LearnableRail.__init__ instead of calling it, because that
        # looks up `<|endoftext|>` by name and Llama tokenizers have no such token.
        if tokenizer.get_vocab_size() > model.config.vocab_size:
            raise ValueError(
                f"tokenizer has {tokenizer.get_vocab_size()} ids but the model only "
                f"{model.config.vocab_size}; load the tokenizer of the same checkpoint"
            )
        model.eval()
        model.requires_grad_(False)  # only the fast weights ever receive gradients here
        self.model = model
        self.source_tokenizer = tokenizer
        """The checkpoint's tokenizer as loaded, written back by `save_pretrained`."""
        self.tokenizer = without_template(tokenizer)
        self.tokens = tokens if tokens is not None else document_tokens(model.hf.config)
        """Document start and end ids."""
        self.inner = InnerLoopConfig.for_model(model.config)
        self._eot = self.tokens.end  # LearnableRail.generate stops at this id
        self._w0 = {name: value.detach().clone() for name, value in model.w0().items()}
        self._fast = {name: value.clone() for name, value in self._w0.items()}

    @classmethod
    def from_pretrained(cls, path: Path | str | None = None) -> "HFLearnableRail":
        """Load a folder written by `save_pretrained` or `save_converted` (with its tokenizer)."""
        if path is None:
            raise ValueError("path is required; pass a folder written by save_converted or save_pretrained")
        model = load_converted(path)
        logger.info("loaded converted learnable rail from %s", path)
        return cls(model, load_hf_tokenizer(path))

    @classmethod
    def from_model(cls, model: HFTTTModel, checkpoint_dir: Path | str) -> "HFLearnableRail":
        """Wrap a converted model, with the tokenizer read from the original checkpoint folder."""
        return cls(model, load_hf_tokenizer(checkpoint_dir))

    def save_pretrained(self, path: Path) -> None:
        """Write the model with W0 (not the current fast weights) and the tokenizer to `path`."""
        save_converted(self.model, path, self.source_tokenizer)

    def encode(self, text: str) -> list[int]:
        """Return the token ids of text preceded by the document start token."""
        return [self.tokens.start, *self.tokenizer.encode(text).ids]
