"""Save and load a converted (and possibly bridged) Hugging Face TTT-E2E model folder.

The folder is a Hugging Face checkpoint of the original architecture, written by
`save_pretrained` with the bridged weights, plus three files:

- `ttt_config.json`: the `HFTTTConfig` (window, mini-batch, segment length, prime width);
- `ttt_prime.safetensors`: the prime MLPs and their norms (W0 of the fast weights);
- `tokenizer.json`: the checkpoint's tokenizer, when one is given.

Transformers tools can still open the folder as a plain causal LM, which then
runs with full attention and without the prime MLPs.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from tworail.rails.ttt.hf_load import HFCheckpointError, checkpoint_folder, load_hf_as_ttt
from tworail.rails.ttt.hf_model import HFTTTConfig, HFTTTModel
from tworail.rails.ttt.hf_tokenizer import TOKENIZER_FILE

logger = logging.getLogger(__name__)

TTT_CONFIG_FILE = "ttt_config.json"
PRIME_WEIGHTS_FILE = "ttt_prime.safetensors"
PRIME_PREFIX = "blocks."


def save_converted(model: HFTTTModel, out_dir: Path | str, tokenizer: Tokenizer | None = None) -> Path:
    """Write the model's Hugging Face weights, TTT config, prime MLPs and tokenizer into out_dir."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model.hf.save_pretrained(folder)
    (folder / TTT_CONFIG_FILE).write_text(json.dumps(model.config.to_dict(), indent=2) + "\n", encoding="utf-8")
    prime_state = {
        PRIME_PREFIX + name: tensor.detach().contiguous() for name, tensor in model.blocks.state_dict().items()
    }
    save_file(prime_state, str(folder / PRIME_WEIGHTS_FILE))
    if tokenizer is not None:
        tokenizer.save(str(folder / TOKENIZER_FILE))
    logger.info("saved converted model to %s", folder)
    return folder


def load_converted(model_dir: Path | str, dtype: torch.dtype = torch.float32) -> HFTTTModel:
    """Load a folder written by `save_converted` as an `HFTTTModel` in eval mode."""
    folder = checkpoint_folder(model_dir)
    for name in (TTT_CONFIG_FILE, PRIME_WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise HFCheckpointError(
                f"{folder / name} not found; {folder} is not a converted TTT-E2E folder: "
                "convert a checkpoint with load_hf_as_ttt and write it with save_converted"
            )
    config = HFTTTConfig.from_dict(json.loads((folder / TTT_CONFIG_FILE).read_text(encoding="utf-8")))
    model = load_hf_as_ttt(
        folder,
        window=config.window,
        mini_batch=config.mini_batch,
        prime_width=config.prime_width,
        seq_len=config.seq_len,
        dtype=dtype,
    )
    state = load_file(str(folder / PRIME_WEIGHTS_FILE))
    prime_state = {name.removeprefix(PRIME_PREFIX): tensor.to(dtype) for name, tensor in state.items()}
    model.blocks.load_state_dict(prime_state)
    return model
