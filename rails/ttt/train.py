"""Train a TTT-E2E checkpoint: corpus, tokenizer, pretraining, then meta-learning.

`train_from_config(path)` reads a JSON file of `TrainConfig` fields and runs the
whole pipeline inside the run folder. Every stage is resumable. The corpus,
tokenizer and token stream are built once. The training loop checkpoints every
`checkpoint_every` steps and at exit (SIGTERM stops it after the current step),
and a restart continues from `checkpoints/last.pt`. Losses go to `log.jsonl`.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from tworail.rails.ttt.checkpoint import save_pretrained
from tworail.rails.ttt.config import ConfigError, InnerLoopConfig, ModelConfig, preset
from tworail.rails.ttt.corpus import CorpusSpec, bundled_sqlite_pages, write_corpus
from tworail.rails.ttt.evaluate import validation_losses
from tworail.rails.ttt.meta import inner_lr_multiplier, meta_loss, pretrain_loss
from tworail.rails.ttt.model import TTTModel
from tworail.rails.ttt.tokenizer import load_tokenizer
from tworail.rails.ttt.token_stream import TokenStream, build_token_stream

logger = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Everything a training run needs; read from JSON by `train_from_config`."""

    run_dir: str
    """Folder for the corpus, tokenizer, checkpoints, log and exported model."""
    data_root: str = "/work/shared/data"
    """Folder of the public data sets the corpus is built from."""
    preset: str = "cpu-small"
    """Name of the `ModelConfig` preset."""
    model_overrides: dict[str, int | float] = field(default_factory=dict)
    """Preset fields to replace, for example {"d_model": 128}."""
    bridge_from: str | None = None
    """Local Hugging Face Llama, Mistral, Qwen2 or Qwen3 folder to convert and meta-train (a bridge stage), or None.

    The preset and `model_overrides` then give only window, mini_batch and seq_len, the
    corpus is tokenized with the checkpoint's own tokenizer, and pretrain_steps must be 0.
    """
    bridge_trainable: str = "all"
    """Weights a bridge stage trains: 'all', or 'suffix' (the suffix layers and the prime MLPs)."""
    debian_corpus_dir: str | None = None
    """Folder of a built Debian documentation corpus to add to the training data, or None."""
    debian_max_characters: int | None = None
    """Budget of Debian training text in characters (every n-th document kept), or None for all of it."""
    hadoop_held_out_fraction: float = 0.05
    """Fraction of Hadoop issues, the latest by creation date, kept out of training."""
    held_out_pages: list[str] | str = "bundled"
    """SQLite pages kept out of training: a list of archive paths, or 'bundled' for the pages shipped in tworail."""
    batch_size: int = 4
    """Sequences per optimizer step."""
    pretrain_steps: int = 400
    """Steps of plain next-token training (prime MLPs trained as ordinary weights)."""
    meta_steps: int = 300
    """Steps of TTT-E2E meta-learning after pretraining."""
    meta_mode: str = "exact"
    """'exact' (gradients of gradients) or 'first_order' (first-order MAML)."""
    rematerialize: bool = True
    """Recompute each inner step in the outer backward pass (exact mode only): less memory, about one more forward."""
    pretrain_lr: float = 3e-3
    """Peak AdamW learning rate of pretraining."""
    meta_lr: float = 1e-3
    """Peak AdamW learning rate of meta-learning."""
    weight_decay: float = 0.1
    """AdamW weight decay on matrices (norm gains are not decayed)."""
    betas: tuple[float, float] = (0.9, 0.95)
    """AdamW betas."""
    grad_clip: float = 1.0
    """Global L2 norm clip of the outer gradient."""
    warmup_fraction: float = 0.1
    """Fraction of each stage's steps for linear learning-rate warm-up before the cosine decay."""
    min_lr_ratio: float = 0.1
    """Final learning rate of the cosine decay, relative to the peak."""
    inner_lr: float = 1.0
    """Inner SGD learning rate (multiplied by the warm-up multiplier during meta-learning)."""
    checkpoint_every: int = 25
    """Steps between checkpoints (one is also written at exit)."""
    eval_every: int = 50
    """Steps between validation evaluations."""
    eval_sequences: int = 4
    """Validation sequences per evaluation."""
    seed: int = 0
    """Seed of initialization and batch sampling."""
    num_threads: int = 1
    """torch intra-op threads."""
    progress: bool = True
    """Show a tqdm progress bar."""

    def __post_init__(self) -> None:
        """Validate every field and raise `ConfigError` naming the value and the fix."""
        self._validate_numbers()
        self._validate_options()

    def _validate_numbers(self) -> None:
        _check_int(self, ("batch_size", "checkpoint_every", "eval_every", "eval_sequences", "num_threads"), 1)
        _check_int(self, ("pretrain_steps", "meta_steps", "seed"), 0)
        if self.total_steps == 0:
            raise ConfigError("pretrain_steps and meta_steps are both 0; give at least one stage some steps")
        for name in ("pretrain_lr", "meta_lr", "inner_lr", "grad_clip"):
            if not _is_number(getattr(self, name)) or getattr(self, name) <= 0:
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid; set a positive number")
        if not _is_number(self.weight_decay) or self.weight_decay < 0:
            raise ConfigError(f"weight_decay={self.weight_decay!r} is invalid; set a number >= 0")
        for name in ("warmup_fraction", "min_lr_ratio"):
            if not _is_number(getattr(self, name)) or not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} is invalid; set a number from 0 to 1")
        if not (isinstance(self.betas, (list, tuple)) and len(self.betas) == 2 and all(map(_is_number, self.betas))):
            raise ConfigError(f"betas={self.betas!r} is invalid; set two numbers such as [0.9, 0.95]")
        self.betas = tuple(self.betas)  # type: ignore[assignment]

    def _validate_options(self) -> None:
        if self.meta_mode not in ("exact", "first_order"):
            raise ConfigError(f"meta_mode={self.meta_mode!r} is invalid; use 'exact' or 'first_order'")
        if self.bridge_trainable not in ("all", "suffix"):
            raise ConfigError(f"bridge_trainable={self.bridge_trainable!r} is invalid; use 'all' or 'suffix'")
        if self.bridge_from is not None and self.pretrain_steps != 0:
            raise ConfigError(
                f"pretrain_steps={self.pretrain_steps} with bridge_from set; a bridge run only meta-trains "
                "the converted checkpoint: set pretrain_steps to 0"
            )
        pages = self.held_out_pages
        if pages != "bundled" and not (isinstance(pages, list) and all(isinstance(page, str) for page in pages)):
            raise ConfigError(
                f"held_out_pages={pages!r} is invalid; use 'bundled' or a list of page paths such as ['wal.html']"
            )
        unknown = sorted(set(self.model_overrides) - set(ModelConfig.__dataclass_fields__))
        if unknown and self.bridge_from is None:
            raise ConfigError(f"model_overrides keys {unknown} are unknown; use ModelConfig fields such as 'd_model'")

    @property
    def vocab_size(self) -> int:
        """Tokenizer size: the preset's unless `model_overrides` sets vocab_size."""
        return int(self.model_overrides.get("vocab_size", preset(self.preset).vocab_size))

    def model_config(self, vocab_size: int) -> ModelConfig:
        """Return the model config of this run for a tokenizer of `vocab_size` ids."""
        overrides = {**self.model_overrides, "vocab_size": vocab_size}
        return preset(self.preset, **overrides)

    @property
    def total_steps(self) -> int:
        """Pretraining plus meta-learning steps."""
        return self.pretrain_steps + self.meta_steps

    @classmethod
    def load(cls, path: Path) -> "TrainConfig":
        """Read a JSON config, rejecting unknown keys."""
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"unknown training config keys {unknown} in {path}")
        return cls(**data)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_int(config: TrainConfig, names: tuple[str, ...], minimum: int) -> None:
    for name in names:
        value = getattr(config, name)
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigError(f"{name}={value!r} is invalid; set an integer >= {minimum}")


RUN_FIXED_FIELDS = (
    "data_root", "preset", "model_overrides", "bridge_from", "debian_corpus_dir", "debian_max_characters",
    "hadoop_held_out_fraction", "held_out_pages", "batch_size", "seed",
)
"""Fields a run folder keeps for its whole life: its corpus, model shape and batches depend on them."""


class TrainingStopped(RuntimeError):
    """Raised when a run stops (SIGTERM or Ctrl-C) before its last step; its checkpoint is saved."""

    def __init__(self, step: int | None, total: int, checkpoint: Path) -> None:
        where = f"at step {step} of {total}" if step is not None else f"before its last step ({total})"
        super().__init__(
            f"training stopped {where} and wrote no model; the checkpoint is {checkpoint}. "
            "Run the same command again to resume"
        )
        self.step = step
        self.total = total


def check_run_folder(config: TrainConfig) -> None:
    """Record the run's fixed fields in `<run_dir>/train_config.json`, or raise if they changed since."""
    path = Path(config.run_dir) / "train_config.json"
    current = json.loads(json.dumps(asdict(config)))
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")
        return
    saved = json.loads(path.read_text(encoding="utf-8"))
    changed = [f"{name}: {saved.get(name)!r} -> {current[name]!r}" for name in RUN_FIXED_FIELDS
               if saved.get(name) != current[name]]
    if changed:
        raise ConfigError(
            f"run folder {config.run_dir} was started with other settings ({'; '.join(changed)}); "
            "restore them, or pass a new run_dir"
        )
    path.write_text(json.dumps(current, indent=2) + "\n", encoding="utf-8")


def learning_rate(step: int, total: int, peak: float, config: TrainConfig) -> float:
    """Return the AdamW learning rate: linear warm-up, then cosine decay to min_lr_ratio * peak."""
    warmup = max(1, int(config.warmup_fraction * total))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
    return peak * (config.min_lr_ratio + (1.0 - config.min_lr_ratio) * cosine)


def make_optimizer(model: TTTModel, config: TrainConfig) -> torch.optim.AdamW:
    """Return AdamW with weight decay on matrices only."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=0.0, betas=config.betas)


def prepare_data(config: TrainConfig, vocab_size: int, separator: int | None = None) -> TokenStream:
    """Build (once) the corpus, the tokenizer and the token stream inside the run folder.

    A `tokenizer.json` already in the run folder is used instead of training one;
    `separator` is then the id placed between documents (see `build_token_stream`).
    """
    run_dir = Path(config.run_dir)
    corpus_dir = run_dir / "corpus"
    if not (corpus_dir / "manifest.json").is_file():
        pages = bundled_sqlite_pages() if config.held_out_pages == "bundled" else list(config.held_out_pages)
        debian = Path(config.debian_corpus_dir) if config.debian_corpus_dir else None
        spec = CorpusSpec(
            Path(config.data_root),
            held_out_pages=pages,
            hadoop_held_out_fraction=config.hadoop_held_out_fraction,
            debian_corpus_dir=debian,
            debian_max_characters=config.debian_max_characters,
        )
        write_corpus(spec, corpus_dir)
    return build_token_stream(corpus_dir, vocab_size, separator)


@dataclass
class TrainState:
    """Mutable position of a run, saved in every checkpoint."""

    step: int = 0
    """Optimizer steps taken so far, over both stages."""
    elapsed_seconds: float = 0.0
    """Wall time spent in the training loop over all restarts."""


def save_checkpoint(path: Path, model: TTTModel, optimizer: torch.optim.Optimizer, state: TrainState) -> None:
    """Write model, optimizer and state atomically (temporary file, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "state": asdict(state)}, tmp)
    tmp.replace(path)


class _StopRequest:
    """SIGTERM handler that asks the loop to stop after the current step, so no step is half-logged."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum: int, frame: object) -> None:
        logger.warning("received signal %d; stopping after the current step", signum)
        self.requested = True


def train_step(model: TTTModel, batch: torch.Tensor, step: int, config: TrainConfig) -> tuple[torch.Tensor, float]:
    """Return the outer loss of one step and the inner learning-rate multiplier used (0 in pretraining)."""
    if step < config.pretrain_steps:
        return pretrain_loss(model, batch), 0.0
    multiplier = inner_lr_multiplier(step - config.pretrain_steps, config.meta_steps)
    inner = InnerLoopConfig.for_model(model.config, learning_rate=config.inner_lr)
    rematerialize = config.rematerialize and config.meta_mode == "exact"
    loss = meta_loss(model, batch, inner, config.meta_mode, multiplier, rematerialize)  # type: ignore[arg-type]
    return loss, multiplier


def run_training(config: TrainConfig) -> Path:
    """Train (or resume) the run described by `config`; return the exported model folder.

    Raises `TrainingStopped` (after checkpointing, without exporting) when a signal or
    Ctrl-C stops the run early, and `ConfigError` when the run folder was started with
    other fixed settings (`RUN_FIXED_FIELDS`).
    """
    torch.set_num_threads(config.num_threads)
    run_dir = Path(config.run_dir)
    check_run_folder(config)
    stream = prepare_data(config, config.vocab_size)
    model_config = config.model_config(stream.vocab_size)
    torch.manual_seed(config.seed)
    model = TTTModel(model_config)
    optimizer = make_optimizer(model, config)
    state = TrainState()
    last = run_dir / "checkpoints" / "last.pt"
    if last.is_file():
        saved = torch.load(last, weights_only=False)
        model.load_state_dict(saved["model"])
        state = TrainState(**saved["state"])
        if state.step != config.pretrain_steps:  # a fresh optimizer starts the meta stage
            optimizer.load_state_dict(saved["optimizer"])
        logger.info("resumed %s at step %d", last, state.step)

    stop = _StopRequest()
    previous_handler = signal.signal(signal.SIGTERM, stop)
    log = open(run_dir / "log.jsonl", "a", encoding="utf-8")
    bar = tqdm(total=config.total_steps, initial=state.step, disable=not config.progress, desc="ttt train")
    try:
        while state.step < config.total_steps and not stop.requested:
            _train_one(model, optimizer, stream, state, config, log)
            bar.update(1)
            if state.step == config.pretrain_steps:
                save_pretrained(model, stream.tokenizer, run_dir / "pretrained")
                optimizer = make_optimizer(model, config)
            if state.step % config.checkpoint_every == 0:
                save_checkpoint(last, model, optimizer, state)
    except KeyboardInterrupt:
        logger.warning("training stopped at step %d; checkpointing", state.step)
    finally:
        save_checkpoint(last, model, optimizer, state)
        bar.close()
        log.close()
        signal.signal(signal.SIGTERM, previous_handler)
    if state.step < config.total_steps:
        raise TrainingStopped(state.step, config.total_steps, last)
    export_dir = run_dir / "export"
    save_pretrained(model, stream.tokenizer, export_dir)
    shutil.copyfile(run_dir / "corpus" / "manifest.json", export_dir / "corpus_manifest.json")
    return export_dir


def _train_one(
    model: TTTModel,
    optimizer: torch.optim.Optimizer,
    stream: TokenStream,
    state: TrainState,
    config: TrainConfig,
    log,
) -> None:
    """Take one optimizer step, append its row (and any evaluation) to the log."""
    started = time.perf_counter()
    step = state.step
    in_meta = step >= config.pretrain_steps
    stage_step = step - config.pretrain_steps if in_meta else step
    stage_total = config.meta_steps if in_meta else config.pretrain_steps
    lr = learning_rate(stage_step, stage_total, config.meta_lr if in_meta else config.pretrain_lr, config)
    for group in optimizer.param_groups:
        group["lr"] = lr

    batch = stream.sample_batch(config.batch_size, model.config.seq_len + 1, seed=config.seed * 1_000_003 + step)
    model.train()
    loss, multiplier = train_step(model, batch, step, config)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()

    state.step += 1
    state.elapsed_seconds += time.perf_counter() - started
    row = {
        "step": state.step,
        "stage": "meta" if in_meta else "pretrain",
        "loss": round(loss.item(), 5),
        "lr": lr,
        "inner_lr_multiplier": multiplier,
        "grad_norm": round(float(grad_norm), 4),
        "seconds": round(state.elapsed_seconds, 1),
    }
    if state.step % config.eval_every == 0 or state.step == config.total_steps:
        model.eval()
        row.update(validation_losses(model, stream, config.eval_sequences))
    log.write(json.dumps(row) + "\n")
    log.flush()


def export_latest_checkpoint(config_path: Path | str, out_dir: Path) -> TrainState:
    """Write the run's latest checkpoint as a model folder (with the corpus manifest); return its state.

    This works while the run is still training, to publish an early model.
    """
    config = TrainConfig.load(Path(config_path))
    run_dir = Path(config.run_dir)
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
    saved = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=False)
    model = TTTModel(config.model_config(tokenizer.get_vocab_size()))
    model.load_state_dict(saved["model"])
    save_pretrained(model, tokenizer, out_dir)
    shutil.copyfile(run_dir / "corpus" / "manifest.json", Path(out_dir) / "corpus_manifest.json")
    return TrainState(**saved["state"])


def train_from_config(path: Path | str) -> Path:
    """Run or resume the training described by a JSON `TrainConfig` file; return the model folder.

    The model folder (`<run_dir>/export`) contains config.json, model.safetensors and
    tokenizer.json, ready for `LearnableRail.from_pretrained`. With `bridge_from` set it
    is a converted Hugging Face folder for `HFLearnableRail.from_pretrained`.
    """
    config = TrainConfig.load(Path(path))
    logger.info("training from %s into %s", path, config.run_dir)
    if config.bridge_from is not None:
        # Imported here because the bridge imports this module.
        from tworail.rails.ttt.train_bridge import run_bridge

        return run_bridge(config)
    return run_training(config)


if __name__ == "__main__":
    import os
    import sys

    # The tokenizer's thread pool would take the second core; one thread is enough.
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tworail.rails.ttt.train CONFIG.json")
    print(train_from_config(sys.argv[1]))
