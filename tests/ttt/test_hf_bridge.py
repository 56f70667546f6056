"""Bring your own model: Hugging Face checkpoints converted to TTT-E2E, bridged and used as a rail.

Every checkpoint here is a tiny random model built from a config and saved with
`save_pretrained` into a temporary folder; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedModel,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from tworail.rails.ttt.config import InnerLoopConfig, preset
from tworail.rails.ttt.decode import feed_token, start_decode
from tworail.rails.ttt.hf_bridge import BridgeError, bridge_meta_train
from tworail.rails.ttt.hf_checkpoint import load_converted, save_converted
from tworail.rails.ttt.hf_load import HFCheckpointError, UnsupportedArchitectureError, load_hf_as_ttt
from tworail.rails.ttt.hf_model import HFTTTModel
from tworail.rails.ttt.hf_rail import HFLearnableRail
from tworail.rails.ttt.inner_loop import batch_fast_weights, run_inner_loop
from tworail.rails.ttt.meta import meta_loss
from tworail.rails.ttt.model import KVCache, TTTModel, window_mask

os.environ.setdefault("HF_HUB_OFFLINE", "1")

VOCAB = 64
SEQ = 24
# A large init range makes attention patterns and logits far from uniform, so a
# wrong mask or a wrong RoPE changes the logits by much more than the tolerance.
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=4,
    num_attention_heads=4,
    initializer_range=0.1,
    bos_token_id=1,
    eos_token_id=2,
)
ARCHITECTURES = {
    "llama": (LlamaForCausalLM, LlamaConfig(**COMMON, num_key_value_heads=2, tie_word_embeddings=False)),
    "qwen2": (Qwen2ForCausalLM, Qwen2Config(**COMMON, num_key_value_heads=1, tie_word_embeddings=True)),
    # head_dim 16 with 4 heads differs from hidden_size / heads = 8, as in real Qwen3 shapes.
    "qwen3": (Qwen3ForCausalLM, Qwen3Config(**COMMON, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True)),
    "mistral": (MistralForCausalLM, MistralConfig(**COMMON, num_key_value_heads=2, tie_word_embeddings=False)),
}
TEXTS = [
    "the quick brown fox jumps over the lazy dog",
    "sqlite stores rows in tables and finds them through indexes",
    "a pragma changes how the database engine behaves",
]


def make_tokenizer() -> Tokenizer:
    """Train a tiny Llama-like BPE tokenizer whose template adds <s> to every encoding."""
    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=["<unk>", "<s>", "</s>"], show_progress=False)
    tokenizer.train_from_iterator(TEXTS * 4, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", 1)]
    )
    return tokenizer


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, PreTrainedModel]]:
    """Save one random checkpoint (with a tokenizer) per architecture; return folder and HF model."""
    torch.manual_seed(0)
    saved = {}
    for name, (model_class, config) in ARCHITECTURES.items():
        folder = tmp_path_factory.mktemp(name)
        hf_model = model_class(config).eval()
        hf_model.save_pretrained(folder)
        make_tokenizer().save(str(folder / "tokenizer.json"))
        saved[name] = (folder, hf_model)
    return saved


def tokens(batch: int = 2, length: int = SEQ, seed: int = 1) -> torch.Tensor:
    """Return random token ids (batch, length)."""
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


def repeated_batch() -> torch.Tensor:
    """Return (2, 33) ids: a random 8-token pattern repeated, which test-time updates can pick up."""
    pattern = torch.randint(3, VOCAB, (2, 8), generator=torch.Generator().manual_seed(5))
    return pattern.repeat(1, 5)[:, :33]


def open_gains(model: HFTTTModel, value: float = 1.0) -> None:
    """Set every prime post-norm gain, as a bridged model would have them away from zero."""
    with torch.no_grad():
        for prime in model.blocks.values():
            prime.prime_post.weight.fill_(value)


def hf_window_logits(hf_model: PreTrainedModel, ids: torch.Tensor, window: int, mini_batch: int) -> torch.Tensor:
    """Run the original HF model (eager attention) under an explicit TTT-E2E sliding-window mask."""
    positions = torch.arange(ids.shape[1])
    allowed = window_mask(positions, positions, window, mini_batch)
    additive = torch.zeros(allowed.shape).masked_fill(~allowed, torch.finfo(torch.float32).min)
    hf_model.config._attn_implementation = "eager"
    with torch.no_grad():
        return hf_model(ids, attention_mask=additive.expand(ids.shape[0], 1, -1, -1)).logits


# -- conversion ---------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_conversion_matches_full_attention(checkpoints, name: str) -> None:
    folder, hf_model = checkpoints[name]
    model = load_hf_as_ttt(folder, window=SEQ, mini_batch=4)
    ids = tokens()
    with torch.no_grad():
        expected = hf_model(ids).logits
        fused = model(ids)
        explicit = model(ids, explicit=True)
    assert expected.std() > 0.1
    torch.testing.assert_close(fused, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(explicit, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_window_matches_explicit_hf_mask(checkpoints, name: str) -> None:
    folder, hf_model = checkpoints[name]
    model = load_hf_as_ttt(folder, window=4, mini_batch=4)
    ids = tokens()
    expected = hf_window_logits(hf_model, ids, window=4, mini_batch=4)
    with torch.no_grad():
        actual = model(ids)
        full = hf_model(ids).logits
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    assert (actual - full).abs().max() > 1e-2, "the window must change the logits at this length"


def test_lm_head_tied_as_checkpoint(checkpoints) -> None:
    untied = load_hf_as_ttt(checkpoints["llama"][0], window=8, mini_batch=4)
    tied = load_hf_as_ttt(checkpoints["qwen2"][0], window=8, mini_batch=4)
    assert not untied.tied_embeddings
    assert tied.tied_embeddings


def test_fast_weight_names_match_ttt_model(checkpoints) -> None:
    model = load_hf_as_ttt(checkpoints["llama"][0], window=8, mini_batch=4)
    reference = TTTModel(preset("cpu-tiny"))  # 4 blocks, like the checkpoint
    assert model.fast_weight_names() == reference.fast_weight_names()
    assert list(model.w0()) == model.fast_weight_names()
    assert model.config.n_prefix == 3


def test_prime_width_defaults_to_mlp_width(checkpoints) -> None:
    default = load_hf_as_ttt(checkpoints["qwen3"][0], window=8, mini_batch=4)
    narrow = load_hf_as_ttt(checkpoints["qwen3"][0], window=8, mini_batch=4, prime_width=16)
    assert default.w0()["blocks.3.prime.w_gate"].shape == (32, 64)
    assert narrow.w0()["blocks.3.prime.w_gate"].shape == (32, 16)


def test_decode_cache_matches_forward(checkpoints) -> None:
    model = load_hf_as_ttt(checkpoints["qwen3"][0], window=8, mini_batch=4)
    open_gains(model, 0.5)
    ids = tokens(batch=1)
    with torch.no_grad():
        expected = model(ids)[0]
        state = start_decode(model, [None] * model.config.n_layers, batch_fast_weights(model.w0(), 1), 0)
        stepped = torch.stack([feed_token(model, state, token) for token in ids[0].tolist()])
    torch.testing.assert_close(stepped, expected, atol=1e-5, rtol=0)


def test_segmented_read_matches_one_pass(checkpoints) -> None:
    model = load_hf_as_ttt(checkpoints["llama"][0], window=8, mini_batch=4)
    model.requires_grad_(False)
    open_gains(model)
    ids = tokens(batch=1, length=SEQ + 1)
    inner = InnerLoopConfig.for_model(model.config)
    whole = run_inner_loop(model, ids[:, :-1], ids[:, 1:], batch_fast_weights(model.w0(), 1), inner)
    fast = batch_fast_weights(model.w0(), 1)
    caches: list[KVCache | None] | None = None
    losses = []
    for start in (0, 12):
        part = run_inner_loop(
            model, ids[:, start : start + 12], ids[:, start + 1 : start + 13], fast, inner,
            caches=caches, start_position=start,
        )
        fast, caches = part.fast_weights, part.caches
        losses.append(part.token_losses)
    torch.testing.assert_close(torch.cat(losses, dim=1), whole.token_losses, atol=1e-5, rtol=0)


# -- inner loop ---------------------------------------------------------------


def test_inner_loop_updates_only_prime_matrices(checkpoints) -> None:
    model = load_hf_as_ttt(checkpoints["qwen2"][0], window=8, mini_batch=4)
    model.requires_grad_(False)
    open_gains(model)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    w0 = {name: value.clone() for name, value in model.w0().items()}
    ids = tokens(batch=1, length=SEQ + 1)
    result = run_inner_loop(
        model, ids[:, :-1], ids[:, 1:], batch_fast_weights(model.w0(), 1), InnerLoopConfig.for_model(model.config)
    )
    assert sorted(result.fast_weights) == sorted(model.fast_weight_names())
    for name, value in result.fast_weights.items():
        assert not torch.equal(value[0], w0[name]), f"{name} was not updated"
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), f"model tensor {name} changed"


def test_zero_gain_inner_loop_is_identity(checkpoints) -> None:
    model = load_hf_as_ttt(checkpoints["qwen2"][0], window=8, mini_batch=4)
    model.requires_grad_(False)
    ids = tokens(batch=1, length=SEQ + 1)
    result = run_inner_loop(
        model, ids[:, :-1], ids[:, 1:], batch_fast_weights(model.w0(), 1), InnerLoopConfig.for_model(model.config)
    )
    for name, value in result.fast_weights.items():
        assert torch.equal(value[0], model.w0()[name]), f"{name} moved before the bridge"


# -- bridge -------------------------------------------------------------------


def _meta_loss_value(model: HFTTTModel, batch: torch.Tensor) -> float:
    inner = InnerLoopConfig.for_model(model.config)
    return meta_loss(model, batch, inner, "first_order", 1.0).item()


def _stop_at(step_to_stop: int, batch: torch.Tensor):
    def batch_for(step: int) -> torch.Tensor:
        if step == step_to_stop:
            raise RuntimeError("simulated interruption")
        return batch

    return batch_for


def test_bridge_reduces_meta_loss_and_resumes(checkpoints, tmp_path: Path) -> None:
    folder = checkpoints["llama"][0]
    batch = repeated_batch()
    settings = dict(steps=6, lr=1e-2, mode="exact", progress=False, checkpoint_every=2)

    straight = load_hf_as_ttt(folder, window=8, mini_batch=4)
    initial = _meta_loss_value(straight, batch)
    result = bridge_meta_train(straight, [batch], checkpoint_dir=tmp_path / "straight", **settings)
    assert result.step == 6
    assert len(result.rows) == 6
    assert _meta_loss_value(straight, batch) < initial - 0.1
    logged = (tmp_path / "straight" / "log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in logged] == [1, 2, 3, 4, 5, 6]
    assert json.loads(logged[0])["inner_lr_multiplier"] == pytest.approx(0.1)

    interrupted = load_hf_as_ttt(folder, window=8, mini_batch=4)
    with pytest.raises(RuntimeError, match="simulated"):
        bridge_meta_train(interrupted, _stop_at(3, batch), checkpoint_dir=tmp_path / "resumed", **settings)
    resumed = load_hf_as_ttt(folder, window=8, mini_batch=4)
    result = bridge_meta_train(resumed, [batch], checkpoint_dir=tmp_path / "resumed", **settings)
    assert [row["step"] for row in result.rows] == [4, 5, 6]
    for name, value in straight.state_dict().items():
        torch.testing.assert_close(resumed.state_dict()[name], value, atol=1e-6, rtol=0, msg=name)


def test_bridge_suffix_only_freezes_prefix(checkpoints, tmp_path: Path) -> None:
    model = load_hf_as_ttt(checkpoints["qwen2"][0], window=8, mini_batch=4)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    bridge_meta_train(
        model, [repeated_batch()], steps=2, lr=1e-2, mode="first_order", trainable="suffix",
        checkpoint_dir=tmp_path, progress=False,
    )
    after = model.state_dict()
    assert torch.equal(after["hf.model.embed_tokens.weight"], before["hf.model.embed_tokens.weight"])
    assert torch.equal(
        after["hf.model.layers.0.self_attn.q_proj.weight"], before["hf.model.layers.0.self_attn.q_proj.weight"]
    )
    assert not torch.equal(
        after["hf.model.layers.3.self_attn.q_proj.weight"], before["hf.model.layers.3.self_attn.q_proj.weight"]
    )
    assert not torch.equal(after["blocks.3.prime_post.weight"], before["blocks.3.prime_post.weight"])
    assert model.tied_embeddings


def test_bridge_resume_rejects_other_settings(checkpoints, tmp_path: Path) -> None:
    model = load_hf_as_ttt(checkpoints["llama"][0], window=8, mini_batch=4)
    common = dict(steps=1, mode="first_order", checkpoint_dir=tmp_path, progress=False)
    bridge_meta_train(model, [repeated_batch()], lr=1e-2, **common)
    with pytest.raises(BridgeError, match="lr"):
        bridge_meta_train(model, [repeated_batch()], lr=5e-3, **common)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ([[1, 2, 3]], "torch.Tensor"),
        (torch.zeros(2, 9), "int64"),
        (torch.zeros(9, dtype=torch.long), "shape"),
        (torch.zeros(2, 1, dtype=torch.long), "at least 2"),
        (torch.full((2, 9), VOCAB, dtype=torch.long), "outside the vocabulary"),
    ],
)
def test_bridge_rejects_bad_batch(checkpoints, tmp_path: Path, batch: torch.Tensor, message: str) -> None:
    model = load_hf_as_ttt(checkpoints["llama"][0], window=8, mini_batch=4)
    with pytest.raises(BridgeError, match=message):
        bridge_meta_train(model, [batch], steps=1, lr=1e-3, checkpoint_dir=tmp_path, progress=False)


# -- loading errors -----------------------------------------------------------


def test_folder_without_config_rejected(checkpoints, tmp_path: Path) -> None:
    weights = next(checkpoints["llama"][0].glob("*.safetensors"))
    (tmp_path / weights.name).write_bytes(weights.read_bytes())
    with pytest.raises(HFCheckpointError, match="config.json"):
        load_hf_as_ttt(tmp_path, window=8, mini_batch=4)


def test_missing_folder_rejected(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(HFCheckpointError, match="no-such-model"):
        load_hf_as_ttt(missing, window=8, mini_batch=4)


def test_folder_without_weights_rejected(checkpoints, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text((checkpoints["llama"][0] / "config.json").read_text())
    with pytest.raises(HFCheckpointError, match="no weights"):
        load_hf_as_ttt(tmp_path, window=8, mini_batch=4)


def test_unsupported_architecture_rejected(tmp_path: Path) -> None:
    GPT2LMHeadModel(GPT2Config(vocab_size=VOCAB, n_embd=32, n_layer=2, n_head=2)).save_pretrained(tmp_path)
    with pytest.raises(UnsupportedArchitectureError, match="GPT2LMHeadModel") as error:
        load_hf_as_ttt(tmp_path, window=8, mini_batch=4)
    assert "LlamaForCausalLM" in str(error.value)
    assert "Qwen2ForCausalLM" in str(error.value)


def test_unknown_model_type_rejected(checkpoints, tmp_path: Path) -> None:
    for source in checkpoints["llama"][0].iterdir():
        (tmp_path / source.name).write_bytes(source.read_bytes())
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(model_type="my-custom-lm", architectures=["MyCustomForCausalLM"])
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnsupportedArchitectureError, match="MyCustomForCausalLM"):
        load_hf_as_ttt(tmp_path, window=8, mini_batch=4)


def test_invalid_config_json_rejected(checkpoints, tmp_path: Path) -> None:
    weights = next(checkpoints["llama"][0].glob("*.safetensors"))
    (tmp_path / weights.name).write_bytes(weights.read_bytes())
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(HFCheckpointError, match="JSON"):
        load_hf_as_ttt(tmp_path, window=8, mini_batch=4)


def test_window_smaller_than_mini_batch_rejected(checkpoints) -> None:
    with pytest.raises(ValueError, match="window"):
        load_hf_as_ttt(checkpoints["llama"][0], window=2, mini_batch=4)


# -- saving and the rail ------------------------------------------------------


def test_save_load_roundtrip(checkpoints, tmp_path: Path) -> None:
    model = load_hf_as_ttt(checkpoints["qwen2"][0], window=8, mini_batch=4, seq_len=12)
    open_gains(model, 0.7)
    save_converted(model, tmp_path)
    loaded = load_converted(tmp_path)
    ids = tokens()
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids), model(ids), atol=0, rtol=0)
    assert loaded.config == model.config
    assert loaded.tied_embeddings


def test_plain_folder_is_not_converted(checkpoints) -> None:
    with pytest.raises(HFCheckpointError, match="ttt_config.json"):
        load_converted(checkpoints["llama"][0])


def test_rail_learns_scores_and_ranks(checkpoints, tmp_path: Path) -> None:
    folder = checkpoints["llama"][0]
    model = load_hf_as_ttt(folder, window=8, mini_batch=4, seq_len=8)
    open_gains(model, 0.5)
    rail = HFLearnableRail.from_model(model, folder)

    ids = rail.encode(TEXTS[0])
    assert ids[0] == 1
    assert ids.count(1) == 1, "the tokenizer template must not add a second <s>"

    report = rail.learn(" ".join(TEXTS))
    assert report.tokens > 8
    assert report.update_norm > 0
    assert sorted(report.parameters) == sorted(model.fast_weight_names())

    losses = rail.score(TEXTS[1])
    assert losses.shape == (len(ids_of(rail, TEXTS[1])) - 1,)
    assert torch.isfinite(losses).all()

    ranked = rail.rank("the quick brown fox", ["jumps", "pragma", "rows"])
    assert sorted(candidate for candidate, _ in ranked) == ["jumps", "pragma", "rows"]
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)

    rail.save_pretrained(tmp_path / "rail")
    reloaded = HFLearnableRail.from_pretrained(tmp_path / "rail")
    rail.reset()
    torch.testing.assert_close(reloaded.score(TEXTS[2]), rail.score(TEXTS[2]), atol=1e-6, rtol=0)


def ids_of(rail: HFLearnableRail, text: str) -> list[int]:
    """Return the ids the rail reads for text."""
    return rail.encode(text)


def test_rail_generate_uses_updates(checkpoints) -> None:
    folder = checkpoints["llama"][0]
    model = load_hf_as_ttt(folder, window=8, mini_batch=4)
    open_gains(model, 0.5)
    rail = HFLearnableRail.from_model(model, folder)
    text = rail.generate(TEXTS[0], max_new_tokens=6)
    assert isinstance(text, str)
    assert rail.fast_weights().keys() == rail.w0().keys()
    for name, value in rail.fast_weights().items():
        assert torch.equal(value, rail.w0()[name]), "generate must not keep its inner updates"


def test_zero_gain_blocks_matrix_gradients(checkpoints) -> None:
    model = load_hf_as_ttt(checkpoints["mistral"][0], window=8, mini_batch=4)
    ids = tokens(batch=1, length=9)
    loss = F.cross_entropy(model(ids[:, :-1]).flatten(0, 1), ids[:, 1:].flatten())
    loss.backward()
    gain_grad = model.blocks["3"].prime_post.weight.grad
    assert gain_grad is not None and gain_grad.abs().max() > 0
    assert model.blocks["3"].prime.w_gate.grad.abs().max() == 0, "zero gain blocks the matrices' gradient"
