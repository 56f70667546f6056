"""`tworail train` with bridge_from: a converted Hugging Face checkpoint meta-trained on the corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_hf_bridge import ARCHITECTURES, make_tokenizer
from test_ttt_train import make_data_root

from tworail.rails.ttt.config import ConfigError
from tworail.rails.ttt.hf_rail import HFLearnableRail
from tworail.rails.ttt.train import TrainConfig, train_from_config


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random tiny Llama checkpoint with a tokenizer, saved as Hugging Face files."""
    torch.manual_seed(0)
    model_class, hf_config = ARCHITECTURES["llama"]
    folder = tmp_path_factory.mktemp("llama")
    model_class(hf_config).save_pretrained(folder)
    make_tokenizer().save(str(folder / "tokenizer.json"))
    return folder


def write_bridge_config(path: Path, run_dir: Path, data_root: Path, checkpoint: Path, **changes: object) -> Path:
    config = {
        "run_dir": str(run_dir),
        "data_root": str(data_root),
        "bridge_from": str(checkpoint),
        "held_out_pages": [],
        "batch_size": 2,
        "pretrain_steps": 0,
        "meta_steps": 3,
        "checkpoint_every": 1,
        "model_overrides": {"window": 8, "mini_batch": 4, "seq_len": 16},
        "progress": False,
        **changes,
    }
    path.write_text(json.dumps(config))
    return path


def test_bridge_run_exports_a_converted_rail(tmp_path: Path, llama_folder: Path) -> None:
    data_root = make_data_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    config = write_bridge_config(tmp_path / "bridge.json", run_dir, data_root, llama_folder)
    export = train_from_config(config)
    rows = [json.loads(line) for line in (run_dir / "bridge" / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert (export / "corpus_manifest.json").is_file()
    manifest = json.loads((run_dir / "corpus" / "manifest.json").read_text())
    assert manifest["tokens"]["separator"] == "one '</s>' (id 2) after every document"
    rail = HFLearnableRail.from_pretrained(export)
    assert rail.model.config.window == 8
    losses = rail.score("sqlite stores rows in tables")
    assert bool(torch.isfinite(losses).all())
    # A second call finds the run finished and takes no more steps.
    train_from_config(config)
    assert len((run_dir / "bridge" / "log.jsonl").read_text().splitlines()) == 3


def test_bridge_rejects_pretraining_steps(tmp_path: Path, llama_folder: Path) -> None:
    config = write_bridge_config(tmp_path / "bridge.json", tmp_path / "run", tmp_path, llama_folder, pretrain_steps=5)
    with pytest.raises(ConfigError, match="pretrain_steps=5 with bridge_from set"):
        TrainConfig.load(config)


def test_bridge_rejects_shape_overrides(tmp_path: Path, llama_folder: Path) -> None:
    data_root = make_data_root(tmp_path / "data")
    overrides = {"window": 8, "mini_batch": 4, "d_model": 64}
    config = write_bridge_config(tmp_path / "b.json", tmp_path / "run", data_root, llama_folder, model_overrides=overrides)
    with pytest.raises(ConfigError, match=r"model_overrides \['d_model'\] do not apply to a bridge run"):
        train_from_config(config)
