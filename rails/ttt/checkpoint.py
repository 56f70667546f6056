"""Save and load a TTT-E2E model folder: config.json, model.safetensors, tokenizer.json."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from tworail.rails.ttt.config import ModelConfig
from tworail.rails.ttt.model import TTTModel
from tworail.rails.ttt.tokenizer import load_tokenizer

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILE = "tokenizer.json"


class CheckpointError(FileNotFoundError):
    """Raised when a model folder lacks a required file."""


def save_pretrained(model: TTTModel, tokenizer: Tokenizer | None, out_dir: Path) -> None:
    """Write the model's config and weights (fp32 safetensors) and the tokenizer into out_dir."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.save(out_dir / CONFIG_FILE)
    state = {name: tensor.detach().to(torch.float32).contiguous() for name, tensor in model.state_dict().items()}
    save_file(state, str(out_dir / WEIGHTS_FILE))
    if tokenizer is not None:
        tokenizer.save(str(out_dir / TOKENIZER_FILE))
    logger.info("saved model to %s", out_dir)


def load_pretrained(model_dir: Path) -> tuple[TTTModel, Tokenizer]:
    """Load the model (fp32, eval mode) and tokenizer from a folder written by `save_pretrained`."""
    model_dir = Path(model_dir)
    for name in (CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE):
        if not (model_dir / name).is_file():
            raise CheckpointError(
                f"{model_dir / name} not found; a model folder needs {CONFIG_FILE}, {WEIGHTS_FILE} "
                f"and {TOKENIZER_FILE} (write one with save_pretrained or train_from_config)"
            )
    config = ModelConfig.load(model_dir / CONFIG_FILE)
    model = TTTModel(config)
    model.load_state_dict(load_file(str(model_dir / WEIGHTS_FILE)))
    model.eval()
    return model, load_tokenizer(model_dir / TOKENIZER_FILE)
