"""The tokenizer and document tokens of a local Hugging Face checkpoint, for the learnable rail."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer
from transformers import AutoTokenizer, PretrainedConfig

from tworail.rails.ttt.hf_load import HFCheckpointError

TOKENIZER_FILE = "tokenizer.json"


@dataclass(frozen=True)
class DocumentTokens:
    """Special token ids the rail puts around a text."""

    start: int
    """Id placed before every text: the checkpoint's BOS token, or its EOS token when it has no BOS."""
    end: int
    """Id at which generation stops: the checkpoint's (first) EOS token."""


def load_hf_tokenizer(path: Path | str) -> Tokenizer:
    """Load the checkpoint's tokenizer from its local folder as a `tokenizers.Tokenizer`.

    `tokenizer.json` is read directly. A folder without it is opened with
    `transformers.AutoTokenizer` (local files only), which converts slow
    tokenizer files such as `tokenizer.model` into a fast one where it can.
    """
    folder = Path(path)
    if (folder / TOKENIZER_FILE).is_file():
        return Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    try:
        hf_tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as error:
        raise HFCheckpointError(
            f"no usable tokenizer in {folder}: {error}; put the checkpoint's {TOKENIZER_FILE} in the folder"
        ) from error
    backend = getattr(hf_tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise HFCheckpointError(
            f"the tokenizer in {folder} ({type(hf_tokenizer).__name__}) has no fast `tokenizers` backend; "
            f"save it as {TOKENIZER_FILE} with a fast tokenizer first"
        )
    return backend


def without_template(tokenizer: Tokenizer) -> Tokenizer:
    """Return a copy of tokenizer whose `encode` adds no special tokens (no post-processor).

    The rail places the document token itself and encodes candidate
    continuations on their own, where a BOS added by the template would be wrong.
    """
    plain = Tokenizer.from_str(tokenizer.to_str())
    plain.post_processor = None
    return plain


def _first_id(value: int | list[int] | None) -> int | None:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def document_tokens(hf_config: PretrainedConfig) -> DocumentTokens:
    """Return the document start and end ids from the checkpoint's config (BOS and EOS)."""
    bos = _first_id(getattr(hf_config, "bos_token_id", None))
    eos = _first_id(getattr(hf_config, "eos_token_id", None))
    if bos is None and eos is None:
        raise HFCheckpointError(
            f"{type(hf_config).__name__} sets neither bos_token_id nor eos_token_id; "
            "set one in config.json so the rail can mark where a text starts"
        )
    start = bos if bos is not None else eos
    # NOTE: with several EOS ids (as in Llama 3 instruct configs) generation stops only at the first.
    return DocumentTokens(start=start, end=eos if eos is not None else start)
