"""`tworail train` for a bridge stage: meta-train a converted Hugging Face checkpoint on the corpus.

A pretrained Transformer that was never meta-trained gains almost nothing from
test-time updates. The bridge stage converts it (sliding window, prime MLPs in the
last quarter of its layers) and runs TTT-E2E meta-learning on the training corpus,
tokenized with the checkpoint's own tokenizer. The run folder contains the corpus, the
token stream, `bridge/` (checkpoint and log, resumable) and `export/`, a converted
folder that `HFLearnableRail.from_pretrained` loads.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from tworail.rails.ttt.config import ConfigError, preset
from tworail.rails.ttt.hf_bridge import bridge_meta_train
from tworail.rails.ttt.hf_checkpoint import save_converted
from tworail.rails.ttt.hf_load import load_hf_as_ttt
from tworail.rails.ttt.hf_tokenizer import document_tokens, load_hf_tokenizer, without_template
from tworail.rails.ttt.train import TrainConfig, TrainingStopped, check_run_folder, prepare_data

logger = logging.getLogger(__name__)

BRIDGE_SHAPE_KEYS = ("window", "mini_batch", "seq_len")
"""Model settings a bridge run takes from the preset and `model_overrides`; the checkpoint fixes the rest."""


def bridge_shape(config: TrainConfig) -> dict[str, int]:
    """Return window, mini_batch and seq_len: the preset's, replaced by `model_overrides`."""
    unknown = sorted(set(config.model_overrides) - set(BRIDGE_SHAPE_KEYS))
    if unknown:
        raise ConfigError(
            f"model_overrides {unknown} do not apply to a bridge run, whose checkpoint fixes its shape; "
            f"override only {list(BRIDGE_SHAPE_KEYS)}"
        )
    base = preset(config.preset)
    return {key: int(config.model_overrides.get(key, getattr(base, key))) for key in BRIDGE_SHAPE_KEYS}


def run_bridge(config: TrainConfig) -> Path:
    """Convert `config.bridge_from`, meta-train it for `meta_steps` steps (resumable); return the export folder."""
    if config.bridge_from is None:
        raise ConfigError("run_bridge needs bridge_from: the folder of a local Hugging Face checkpoint")
    run_dir = Path(config.run_dir)
    shape = bridge_shape(config)
    check_run_folder(config)
    model = load_hf_as_ttt(config.bridge_from, **shape)
    tokenizer = without_template(load_hf_tokenizer(config.bridge_from))
    tokenizer_path = run_dir / "tokenizer.json"
    if not tokenizer_path.is_file():
        tokenizer.save(str(tokenizer_path))
    end = document_tokens(model.hf.config).end
    stream = prepare_data(config, tokenizer.get_vocab_size(), separator=end)
    length = shape["seq_len"] + 1

    def batch(step: int):
        return stream.sample_batch(config.batch_size, length, seed=config.seed * 1_000_003 + step)

    checkpoint_dir = run_dir / "bridge"
    try:
        result = bridge_meta_train(
            model,
            batch,
            steps=config.meta_steps,
            lr=config.meta_lr,
            checkpoint_dir=checkpoint_dir,
            mode=config.meta_mode,
            trainable=config.bridge_trainable,
            inner_lr=config.inner_lr,
            weight_decay=config.weight_decay,
            betas=config.betas,
            grad_clip=config.grad_clip,
            warmup_fraction=config.warmup_fraction,
            min_lr_ratio=config.min_lr_ratio,
            checkpoint_every=config.checkpoint_every,
            progress=config.progress,
        )
    except KeyboardInterrupt:
        raise TrainingStopped(None, config.meta_steps, checkpoint_dir / "last.pt") from None
    if result.step < config.meta_steps:
        raise TrainingStopped(result.step, config.meta_steps, checkpoint_dir / "last.pt")
    logger.info("bridge stage at step %d of %d", result.step, config.meta_steps)
    export_dir = run_dir / "export"
    save_converted(model, export_dir, load_hf_tokenizer(config.bridge_from))
    shutil.copyfile(run_dir / "corpus" / "manifest.json", export_dir / "corpus_manifest.json")
    return export_dir
