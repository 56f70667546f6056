"""LearnableRail: persistent learning, reset, ranking, task answers, checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tworail.rails.ttt.checkpoint import CheckpointError
from tworail.rails.ttt.config import ModelConfig
from tworail.rails.ttt.rail import LearnableRail
from tworail.records import LearnReport, RailAnswer, Task

TEXT_A = "[10:01] <ann> how do I mount an ISO image?\n[10:02] <bob> sudo mount -o loop file.iso /mnt"
TEXT_B = "[11:15] <cid> apt-get says the lock file is busy\n[11:16] <dee> another apt process is running"


@pytest.fixture
def rail(tiny_config: ModelConfig) -> LearnableRail:
    """A randomly initialized cpu-tiny rail with a byte-level tokenizer."""
    return LearnableRail.from_config(tiny_config, seed=0)


def assert_same_weights(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        torch.testing.assert_close(left[name], right[name], rtol=0, atol=0)


def test_learn_reports_and_lowers_loss(rail: LearnableRail) -> None:
    report = rail.learn(TEXT_A * 3)
    assert isinstance(report, LearnReport)
    assert report.tokens == len(rail.encode(TEXT_A * 3)) - 1
    assert report.mini_batches == -(-report.tokens // rail.model.config.mini_batch)
    assert report.update_norm > 0
    assert report.loss_after < report.loss_before


def test_learn_changes_only_prime_tensors(rail: LearnableRail) -> None:
    before = {name: value.clone() for name, value in rail.model.state_dict().items()}
    report = rail.learn(TEXT_A)
    assert sorted(report.parameters) == sorted(rail.model.fast_weight_names())
    assert all(".prime." in name for name in report.parameters)
    assert_same_weights(before, dict(rail.model.state_dict()))  # the model itself keeps W0
    changed = [name for name, value in rail.fast_weights().items() if not torch.equal(value, rail.w0()[name])]
    assert sorted(changed) == sorted(rail.model.fast_weight_names())


def test_reset_restores_w0(rail: LearnableRail) -> None:
    w0 = rail.w0()
    scores_w0 = rail.score(TEXT_B)
    rail.learn(TEXT_A)
    assert not torch.equal(rail.score(TEXT_B), scores_w0)
    rail.reset()
    assert_same_weights(rail.fast_weights(), w0)
    torch.testing.assert_close(rail.score(TEXT_B), scores_w0, rtol=0, atol=0)


def test_persistent_learning_equals_one_call(tiny_config: ModelConfig) -> None:
    sequential = LearnableRail.from_config(tiny_config, seed=0)
    sequential.learn(TEXT_A)
    sequential.learn(TEXT_B)
    together = LearnableRail.from_config(tiny_config, seed=0)
    together.learn_many([TEXT_A, TEXT_B])
    assert_same_weights(sequential.fast_weights(), together.fast_weights())
    only_b = LearnableRail.from_config(tiny_config, seed=0)
    only_b.learn(TEXT_B)
    assert not torch.equal(only_b.fast_weights()["blocks.3.prime.w_down"], together.fast_weights()["blocks.3.prime.w_down"])


def test_segments_equal_one_long_sequence(tiny_config: ModelConfig) -> None:
    """Text longer than seq_len is read in segments; carrying the cache makes that invisible."""
    short = LearnableRail.from_config(tiny_config, seed=0)
    long = LearnableRail.from_config(tiny_config.with_overrides(seq_len=512), seed=0)
    text = TEXT_A + "\n" + TEXT_B  # about 190 tokens: 6 segments of 32 for `short`
    assert len(short.encode(text)) > 4 * tiny_config.seq_len
    torch.testing.assert_close(short.score(text, test_time_training=True), long.score(text, test_time_training=True))
    short.learn(text)
    long.learn(text)
    for name, value in short.fast_weights().items():
        torch.testing.assert_close(value, long.fast_weights()[name])


def test_score_does_not_keep_updates(rail: LearnableRail) -> None:
    w0 = rail.w0()
    plain = rail.score(TEXT_A)
    with_ttt = rail.score(TEXT_A, test_time_training=True)
    assert plain.shape == with_ttt.shape == (len(rail.encode(TEXT_A)) - 1,)
    assert not torch.equal(plain, with_ttt)
    assert_same_weights(rail.fast_weights(), w0)


def test_rank_prefers_learned_string(rail: LearnableRail) -> None:
    secret = "the backup key is QX7-PLUM-4412"
    candidates = ["the backup key is ZR2-CORN-9087", secret, "the backup key is MV5-LIME-3356"]
    for _ in range(3):
        rail.learn(f"{secret}\n" * 6)
    ranked = rail.rank("note:", candidates)
    assert [candidate for candidate, _ in ranked][0] == secret
    scores = [score for _, score in ranked]
    assert scores == sorted(scores, reverse=True)


def test_answer_ranks_candidates(rail: LearnableRail) -> None:
    for _ in range(3):
        rail.learn("restart the daemon with systemctl\n" * 6)
    candidates = ["reinstall the kernel from source", "restart the daemon with systemctl"]
    task = Task(question="how do I apply the change?", candidates=candidates)
    answer = rail.answer(task)
    assert isinstance(answer, RailAnswer)
    assert answer.rail == "learnable"
    assert answer.answer == "restart the daemon with systemctl"
    assert answer.claims[0].provenance == "learned"
    rows = answer.details["candidates"]
    assert {row["candidate"] for row in rows} == set(task.candidates)
    assert sum(row["probability"] for row in rows) == pytest.approx(1.0)
    assert answer.claims[0].confidence == pytest.approx(rows[0]["probability"])
    assert rows[0]["change_vs_w0"] > 0


def test_answer_without_candidates_generates(rail: LearnableRail) -> None:
    answer = rail.answer(Task(question="hello"))
    assert answer.details["mode"] == "unranked_generation"
    assert all(claim.provenance == "learned" for claim in answer.claims)


def test_generate_is_deterministic_and_keeps_weights(rail: LearnableRail) -> None:
    w0 = rail.w0()
    prompt = TEXT_A * 2  # long enough for prefill updates and decode-time inner steps
    first = rail.generate(prompt, max_new_tokens=12)
    assert first == rail.generate(prompt, max_new_tokens=12)
    assert rail.generate(prompt, max_new_tokens=0) == ""
    assert_same_weights(rail.fast_weights(), w0)


def test_checkpoint_round_trip(rail: LearnableRail, tmp_path: Path) -> None:
    rail.save_pretrained(tmp_path / "model")
    loaded = LearnableRail.from_pretrained(tmp_path / "model")
    assert_same_weights(dict(rail.model.state_dict()), dict(loaded.model.state_dict()))
    assert loaded.model.config == rail.model.config
    torch.testing.assert_close(loaded.score(TEXT_B), rail.score(TEXT_B), rtol=0, atol=0)


def test_from_pretrained_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        LearnableRail.from_pretrained(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        LearnableRail.from_pretrained(tmp_path / "empty")


def test_load_fast_weights_validates(rail: LearnableRail) -> None:
    state = rail.fast_weights()
    state["blocks.3.prime.w_up"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="blocks.3.prime.w_up"):
        rail.load_fast_weights(state)
    with pytest.raises(KeyError, match="missing"):
        rail.load_fast_weights({})
    learned = LearnableRail.from_config(rail.model.config, seed=0)
    learned.learn(TEXT_A)
    rail.load_fast_weights(learned.fast_weights())
    torch.testing.assert_close(rail.score(TEXT_B), learned.score(TEXT_B), rtol=0, atol=0)


def test_rejects_empty_input(rail: LearnableRail) -> None:
    with pytest.raises(ValueError, match="empty"):
        rail.learn("")
    with pytest.raises(ValueError, match="non-empty"):
        rail.rank("prompt", [])


def test_from_config_rejects_small_vocab(tiny_config: ModelConfig) -> None:
    with pytest.raises(ValueError, match="vocab_size=100"):
        LearnableRail.from_config(tiny_config.with_overrides(vocab_size=100))


def test_bundled_checkpoint_loads() -> None:
    rail = LearnableRail.from_pretrained()
    assert rail.model.config.n_suffix == 2
    assert rail.tokenizer.get_vocab_size() == rail.model.config.vocab_size == 4096
    losses = rail.score(TEXT_A)
    assert losses.shape == (len(rail.encode(TEXT_A)) - 1,)
    assert bool(torch.isfinite(losses).all())
    # A trained model predicts IRC text far better than chance (ln 4096 = 8.3 nats).
    assert float(losses.mean()) < 7.0
