"""ModelConfig presets and validation."""

from __future__ import annotations

import pytest

from tworail.rails.ttt.config import PRESETS, ConfigError, InnerLoopConfig, ModelConfig, preset, scaled_mlp_width


def test_window_smaller_than_minibatch_rejected() -> None:
    with pytest.raises(ConfigError, match=r"window k=32 is smaller than mini_batch b=64.*k >= b"):
        preset("cpu-small", window=32)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_heads": 5}, "not divisible by n_heads=5"),
        ({"seq_len": 1000}, "seq_len=1000 is not a multiple of mini_batch=64"),
        ({"d_model": 0}, "d_model=0 is invalid"),
        ({"d_model": 196, "n_heads": 4}, "head_dim=49 is odd"),
    ],
)
def test_invalid_shapes_rejected(changes: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        preset("cpu-small", **changes)


def test_paper_presets_derive_sizes() -> None:
    config = preset("125M")
    assert (config.d_model, config.n_layers, config.head_dim) == (768, 12, 64)
    assert (config.n_prefix, config.n_suffix) == (9, 3)
    assert config.mlp_width == scaled_mlp_width(768) == 1664  # 0.81 * 2048 = 1658.9, rounded to 32
    assert preset("1.3B").n_suffix == 6
    assert all(cfg.window >= cfg.mini_batch for cfg in PRESETS.values())


def test_suffix_has_at_least_one_block() -> None:
    assert preset("cpu-tiny", n_layers=2).n_suffix == 1
    assert preset("cpu-tiny", n_layers=2).n_prefix == 1


def test_round_trip_and_unknown_keys(tmp_path) -> None:
    config = preset("cpu-small")
    config.save(tmp_path / "config.json")
    assert ModelConfig.load(tmp_path / "config.json") == config
    with pytest.raises(ConfigError, match="unknown model config keys"):
        ModelConfig.from_dict({**config.to_dict(), "dropout": 0.1})


def test_unknown_preset_and_inner_config() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        preset("huge")
    with pytest.raises(ConfigError, match="grad_clip=0"):
        InnerLoopConfig(mini_batch=4, grad_clip=0)
    assert InnerLoopConfig.for_model(preset("cpu-tiny")).mini_batch == 4
