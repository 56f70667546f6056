"""Load a local Hugging Face Llama/Qwen/Mistral checkpoint and convert it into a TTT-E2E model.

Only local folders are read (`local_files_only=True`): nothing is downloaded.
The supported classes share one decoder-layer layout, pre-norm
`input_layernorm -> self_attn -> post_attention_layernorm -> mlp` with
`q_proj/k_proj/v_proj/o_proj`, a shared rotary embedding module and no
embedding scaling, which `HFTTTModel` re-runs layer by layer. Other
architectures with similar attribute names would silently compute something
else, so they are rejected. In transformers 5.25, for example, Gemma scales its
embeddings and OLMo-2 normalizes after the sub-layers.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, PreTrainedModel

from tworail.rails.ttt.checkpoint import CheckpointError
from tworail.rails.ttt.hf_model import HFTTTConfig, HFTTTModel, default_seq_len

logger = logging.getLogger(__name__)

SUPPORTED_ARCHITECTURES: dict[str, str] = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
}
"""Hugging Face `model_type` -> causal-LM class that `load_hf_as_ttt` converts."""

WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")
"""File names that hold Hugging Face weights, sharded or not."""

_LAYER_MODULES = ("self_attn", "mlp", "input_layernorm", "post_attention_layernorm")
_ATTENTION_ATTRIBUTES = ("q_proj", "k_proj", "v_proj", "o_proj", "head_dim", "scaling")


class HFCheckpointError(CheckpointError):
    """Raised when a path is not a local Hugging Face checkpoint folder or its weights do not load."""


class UnsupportedArchitectureError(ValueError):
    """Raised when a checkpoint's architecture is not one `load_hf_as_ttt` can convert."""


def checkpoint_folder(path: Path | str) -> Path:
    """Return `path` as a folder that contains config.json and weights, or raise `HFCheckpointError`."""
    folder = Path(path)
    if not folder.is_dir():
        raise HFCheckpointError(
            f"{folder} is not a local folder; pass the folder of a downloaded Hugging Face checkpoint "
            "(for example one written by save_pretrained or by `huggingface-cli download --local-dir`)"
        )
    if not (folder / "config.json").is_file():
        raise HFCheckpointError(
            f"{folder / 'config.json'} not found; a Hugging Face checkpoint folder needs config.json"
        )
    if not any(any(folder.glob(pattern)) for pattern in WEIGHT_PATTERNS):
        raise HFCheckpointError(
            f"no weights in {folder}; expected files matching {' or '.join(WEIGHT_PATTERNS)}"
        )
    return folder


def read_config_json(folder: Path) -> dict[str, object]:
    """Return the parsed config.json of a checkpoint folder, or raise `HFCheckpointError`."""
    path = folder / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise HFCheckpointError(
            f"{path} could not be read as JSON ({error}); restore the checkpoint's config.json"
        ) from error
    if not isinstance(data, dict):
        raise HFCheckpointError(f"{path} does not contain a JSON object; restore the checkpoint's config.json")
    return data


def check_architecture(config: dict[str, object]) -> None:
    """Raise `UnsupportedArchitectureError` unless config.json describes a supported causal LM.

    The raw JSON is checked before transformers parses it, so a model type that
    transformers does not know gets the same message.
    """
    model_type = config.get("model_type")
    architectures = config.get("architectures") or []
    expected = SUPPORTED_ARCHITECTURES.get(str(model_type))
    if expected is None or (architectures and expected not in architectures):
        name = architectures[0] if architectures else f"model_type {model_type!r}"
        raise UnsupportedArchitectureError(
            f"architecture {name} is not supported for TTT-E2E conversion; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES.values())}"
        )


def check_layers(causal_lm: PreTrainedModel) -> None:
    """Raise `UnsupportedArchitectureError` if a decoder layer lacks a module the adapter calls."""
    base = getattr(causal_lm, "model", None)
    if base is None or not all(hasattr(base, name) for name in ("layers", "norm", "rotary_emb")):
        raise UnsupportedArchitectureError(
            f"{type(causal_lm).__name__} has no model.layers, model.norm and model.rotary_emb; "
            f"supported: {', '.join(SUPPORTED_ARCHITECTURES.values())}"
        )
    for index, layer in enumerate(base.layers):
        missing = [name for name in _LAYER_MODULES if not hasattr(layer, name)]
        missing += [f"self_attn.{name}" for name in _ATTENTION_ATTRIBUTES if not hasattr(layer.self_attn, name)]
        if missing:
            raise UnsupportedArchitectureError(
                f"decoder layer {index} of {type(causal_lm).__name__} lacks {missing}; "
                f"supported: {', '.join(SUPPORTED_ARCHITECTURES.values())}"
            )


def load_causal_lm(path: Path | str, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """Load a supported causal LM from a local folder; raise if any of its weights are missing."""
    folder = checkpoint_folder(path)
    check_architecture(read_config_json(folder))
    causal_lm, info = AutoModelForCausalLM.from_pretrained(
        folder, local_files_only=True, dtype=dtype, output_loading_info=True
    )
    if info["missing_keys"]:
        raise HFCheckpointError(
            f"checkpoint {folder} is missing weights {sorted(info['missing_keys'])}; "
            "they would be random: pass a complete causal-LM checkpoint"
        )
    if info["unexpected_keys"]:
        logger.warning("ignored %d unused weights of %s", len(info["unexpected_keys"]), folder)
    check_layers(causal_lm)
    return causal_lm


def load_hf_as_ttt(
    path: Path | str,
    *,
    window: int,
    mini_batch: int,
    prime_width: int | None = None,
    seq_len: int | None = None,
    dtype: torch.dtype = torch.float32,
    prime_seed: int = 0,
) -> HFTTTModel:
    """Load a local Llama/Qwen2/Qwen3/Mistral checkpoint as a TTT-E2E model in eval mode.

    `window` is the sliding-window size k and `mini_batch` the inner-loop
    mini-batch b (k >= b). `prime_width` defaults to the checkpoint's
    `intermediate_size`. `seq_len` is the segment length `LearnableRail` reads at
    once and defaults to the smallest multiple of b that is at least k. The prime
    MLPs start with zero post-norm gain, so the model computes what the original
    computes under the same sliding-window mask until it is bridged. The prime
    matrices are drawn with `prime_seed`, so one checkpoint always converts alike.
    """
    causal_lm = load_causal_lm(path, dtype)
    hf_config = causal_lm.config
    config = HFTTTConfig(
        vocab_size=hf_config.vocab_size,
        n_layers=hf_config.num_hidden_layers,
        window=window,
        mini_batch=mini_batch,
        seq_len=seq_len if seq_len is not None else default_seq_len(window, mini_batch),
        prime_width=prime_width if prime_width is not None else hf_config.intermediate_size,
    )
    own_window = getattr(hf_config, "sliding_window", None)
    if own_window:
        logger.info("checkpoint's sliding_window=%s is replaced by the TTT-E2E window %d", own_window, window)
    model = HFTTTModel(causal_lm, config, prime_seed)
    model.eval()
    logger.info(
        "converted %s from %s: %d prefix + %d suffix layers, window %d, mini-batch %d, tied head %s",
        type(causal_lm).__name__,
        path,
        config.n_prefix,
        config.n_suffix,
        window,
        mini_batch,
        model.tied_embeddings,
    )
    return model
