"""The bridge stage: meta-train a converted Hugging Face checkpoint so that test-time updates help.

A pretrained full-attention model with a sliding window and prime MLPs does not
yet profit from inner-loop updates. TTT-E2E (Tandon et al., arXiv 2512.23675)
closes that gap with a short meta-learning stage. Its outer loss is the
project's `meta_loss`, the mean of the pre-update mini-batch losses,
differentiated through the inner SGD steps, exactly ("exact") or first-order
("first_order").

Each step is the meta-learning step of `train.py`, with these defaults. The outer
optimizer is AdamW (betas 0.9/0.95, weight decay 0.1 on matrices, global-norm
clip 1.0) with a linear warm-up over the first 10% of steps, then cosine decay
to 10% of the peak. The inner learning-rate multiplier rises from 0.1 to 1 over
the first 10% of steps. Runs resume from `checkpoint_dir/last.pt` and append
one JSON row per step to `checkpoint_dir/log.jsonl`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import torch
from torch import Tensor
from tqdm import tqdm

from tworail.rails.ttt.config import ConfigError
from tworail.rails.ttt.hf_model import HFTTTModel
from tworail.rails.ttt.train import TrainConfig, TrainState, learning_rate, make_optimizer, save_checkpoint, train_step

logger = logging.getLogger(__name__)

TRAINABLE_CHOICES = ("all", "suffix")
"""Parameter sets the bridge can train: every weight, or the suffix layers plus the prime MLPs."""

BRIDGE_MODES = ("exact", "first_order")

CHECKPOINT_FILE = "last.pt"
LOG_FILE = "log.jsonl"
SETTINGS_FILE = "bridge.json"

TokenBatches = Sequence[Tensor] | Callable[[int], Tensor]
"""Token batches (B, T + 1): a sequence used in turn (step % len), or a function of the step."""


@dataclass
class BridgeResult:
    """Outcome of one `bridge_meta_train` call."""

    step: int
    """Optimizer steps taken so far, including those of earlier, resumed calls."""
    rows: list[dict[str, float | int | str]] = field(default_factory=list)
    """Log rows of the steps this call took, as written to log.jsonl."""
    checkpoint: Path | None = None
    """Path of the resumable checkpoint."""


class BridgeError(ValueError):
    """Raised when bridge inputs are invalid or a checkpoint folder belongs to another run."""


def set_trainable(model: HFTTTModel, trainable: str) -> list[str]:
    """Turn gradients on for the chosen parameter set and off elsewhere; return the trained names."""
    if trainable not in TRAINABLE_CHOICES:
        raise ConfigError(f"trainable={trainable!r} is invalid; choose one of {TRAINABLE_CHOICES}")
    model.requires_grad_(trainable == "all")
    if trainable == "suffix":
        for index in range(model.config.n_prefix, model.config.n_layers):
            model.hf.model.layers[index].requires_grad_(True)
        model.blocks.requires_grad_(True)
    return [name for name, parameter in model.named_parameters() if parameter.requires_grad]


def _batch_for_step(token_batches: TokenBatches, step: int, model: HFTTTModel) -> Tensor:
    """Return the validated batch of `step`, on the model's device."""
    if callable(token_batches):
        batch = token_batches(step)
    else:
        batch = token_batches[step % len(token_batches)]
    if not isinstance(batch, Tensor):
        raise BridgeError(f"batch of step {step} is a {type(batch).__name__}; pass a torch.Tensor of token ids")
    if batch.dim() != 2 or batch.dtype != torch.long:
        description = f"{batch.dtype} tensor of shape {tuple(batch.shape)}"
        raise BridgeError(f"batch of step {step} is a {description}; pass int64 token ids of shape (B, T + 1)")
    if batch.shape[1] < 2:
        raise BridgeError(
            f"batch of step {step} has {batch.shape[1]} tokens per row; pass at least 2 (inputs plus targets)"
        )
    if int(batch.min()) < 0 or int(batch.max()) >= model.config.vocab_size:
        raise BridgeError(
            f"batch of step {step} has ids in [{int(batch.min())}, {int(batch.max())}] outside the vocabulary "
            f"[0, {model.config.vocab_size}); tokenize with the checkpoint's tokenizer"
        )
    return batch.to(model.hf.device)


def _check_settings(checkpoint_dir: Path, settings: dict[str, object]) -> None:
    """Store the run's settings, or raise `BridgeError` if the folder contains another run's."""
    path = checkpoint_dir / SETTINGS_FILE
    if path.is_file():
        stored = json.loads(path.read_text(encoding="utf-8"))
        changed = sorted(key for key in set(stored) | set(settings) if stored.get(key) != settings.get(key))
        if changed:
            raise BridgeError(
                f"{checkpoint_dir} contains a bridge run with different settings ({', '.join(changed)}: "
                f"{ {key: stored.get(key) for key in changed} }); pass the same settings to resume, "
                "or use a new checkpoint_dir"
            )
        return
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _bridge_step(
    model: HFTTTModel,
    optimizer: torch.optim.Optimizer,
    batch: Tensor,
    state: TrainState,
    config: TrainConfig,
) -> dict[str, float | int | str]:
    """Take one meta-learning step and return its log row."""
    started = time.perf_counter()
    lr = learning_rate(state.step, config.meta_steps, config.meta_lr, config)
    for group in optimizer.param_groups:
        group["lr"] = lr
    model.train()
    loss, multiplier = train_step(model, batch, state.step, config)  # type: ignore[arg-type]
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    trained = [parameter for parameter in model.parameters() if parameter.requires_grad]
    grad_norm = torch.nn.utils.clip_grad_norm_(trained, config.grad_clip)
    optimizer.step()
    state.step += 1
    state.elapsed_seconds += time.perf_counter() - started
    return {
        "step": state.step,
        "stage": "bridge",
        "loss": round(loss.item(), 5),
        "lr": lr,
        "inner_lr_multiplier": multiplier,
        "grad_norm": round(float(grad_norm), 4),
        "seconds": round(state.elapsed_seconds, 1),
    }


def _resume(path: Path, model: HFTTTModel, optimizer: torch.optim.Optimizer) -> TrainState:
    """Load model, optimizer and step from a checkpoint written by `save_checkpoint`."""
    saved = torch.load(path, map_location=model.hf.device, weights_only=False)
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    state = TrainState(**saved["state"])
    logger.info("resumed bridge from %s at step %d", path, state.step)
    return state


def _write_row(log: IO[str], row: dict[str, float | int | str]) -> None:
    log.write(json.dumps(row) + "\n")
    log.flush()


def bridge_meta_train(
    model: HFTTTModel,
    token_batches: TokenBatches,
    *,
    steps: int,
    lr: float,
    checkpoint_dir: Path | str,
    mode: str = "exact",
    trainable: str = "all",
    inner_lr: float = 1.0,
    weight_decay: float = 0.1,
    betas: tuple[float, float] = (0.9, 0.95),
    grad_clip: float = 1.0,
    warmup_fraction: float = 0.1,
    min_lr_ratio: float = 0.1,
    checkpoint_every: int = 25,
    progress: bool = True,
) -> BridgeResult:
    """Meta-train `model` for `steps` optimizer steps in total, resuming from `checkpoint_dir`.

    `lr` is the peak AdamW learning rate. `trainable` is "all" or "suffix" (the
    suffix decoder layers and the prime MLPs). Step s uses `token_batches[s % len]`,
    or `token_batches(s)` when it is callable, so a resumed run gets the same
    batches. A resumed call must pass the same settings. The model is left in eval
    mode, with gradients on for the trained parameters only.
    """
    if mode not in BRIDGE_MODES:
        raise ConfigError(f"mode={mode!r} is invalid; choose one of {BRIDGE_MODES}")
    if not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps={steps!r} is invalid; pass a positive integer")
    if checkpoint_every < 1:
        raise ConfigError(f"checkpoint_every={checkpoint_every} is invalid; pass a positive integer")
    if not callable(token_batches) and len(token_batches) == 0:
        raise BridgeError("token_batches is empty; pass at least one (B, T + 1) batch")
    folder = Path(checkpoint_dir)
    folder.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(
        run_dir=str(folder),
        pretrain_steps=0,
        meta_steps=steps,
        meta_mode=mode,
        meta_lr=lr,
        weight_decay=weight_decay,
        betas=betas,
        grad_clip=grad_clip,
        warmup_fraction=warmup_fraction,
        min_lr_ratio=min_lr_ratio,
        inner_lr=inner_lr,
    )
    settings = {
        **model.config.to_dict(),
        "steps": steps,
        "lr": lr,
        "mode": mode,
        "trainable": trainable,
        "inner_lr": inner_lr,
        "weight_decay": weight_decay,
        "betas": list(betas),
        "grad_clip": grad_clip,
        "warmup_fraction": warmup_fraction,
        "min_lr_ratio": min_lr_ratio,
    }
    _check_settings(folder, settings)

    trained = set_trainable(model, trainable)
    logger.info("bridge trains %d parameter tensors (%s)", len(trained), trainable)
    optimizer = make_optimizer(model, config)  # type: ignore[arg-type]
    checkpoint = folder / CHECKPOINT_FILE
    state = _resume(checkpoint, model, optimizer) if checkpoint.is_file() else TrainState()

    result = BridgeResult(step=state.step, checkpoint=checkpoint)
    bar = tqdm(total=steps, initial=state.step, disable=not progress, desc="ttt bridge")
    try:
        with open(folder / LOG_FILE, "a", encoding="utf-8") as log:
            while state.step < steps:
                row = _bridge_step(model, optimizer, _batch_for_step(token_batches, state.step, model), state, config)
                _write_row(log, row)
                result.rows.append(row)
                bar.update(1)
                if state.step % checkpoint_every == 0:
                    save_checkpoint(checkpoint, model, optimizer, state)
    finally:
        save_checkpoint(checkpoint, model, optimizer, state)
        bar.close()
        model.eval()
    result.step = state.step
    return result
