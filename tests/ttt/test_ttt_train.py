"""Corpus builder and resumable training on a small fake data root."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from pathlib import Path

import pytest

import tworail.rails.ttt.train as train_module
from tworail.rails.ttt.config import ConfigError
from tworail.rails.ttt.corpus import CorpusError, CorpusSpec, html_to_text, read_documents, write_corpus
from tworail.rails.ttt.rail import LearnableRail
from tworail.rails.ttt.train import TrainConfig, TrainingStopped, learning_rate, train_from_config

THREADS = 60


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_data_root(root: Path) -> Path:
    """Write a data root with the layout the corpus builder reads, small enough for seconds of training."""
    irc = root / "ubuntu-irc-disentanglement"
    irc.mkdir(parents=True)
    lines = []
    clusters = []
    for thread in range(THREADS):
        first = len(lines)
        lines.append(f"[10:{thread % 60:02d}] <user{thread}> how do I fix error {thread} in apt?")
        lines.append("=== someone has joined #ubuntu")
        lines.append(f"[10:{thread % 60:02d}] <helper> run sudo apt-get -f install for case {thread}")
        clusters.append(f"2004-12-25:{first} {first + 1} {first + 2}")
    with tarfile.open(irc / "train.tar.xz", "w:xz") as tar:
        _add_bytes(tar, "train/2004-12-25.train-c.raw.txt", ("\n".join(lines) + "\n").encode())
    (irc / "gold.train.clusters.txt").write_text("\n".join(clusters) + "\n")

    pages = {
        "./wal.html": "<html><head><title>WAL</title><style>p{}</style></head><body><h1>Write-Ahead Log</h1>"
        "<p>The WAL file&nbsp;is <b>appended</b>.</p><script>var x=1;</script></body></html>",
        "./lang_upsert.html": "<html><body><p>UPSERT is a clause added to INSERT.</p></body></html>",
    }
    (root / "sqlite-docs").mkdir()
    with tarfile.open(root / "sqlite-docs" / "sqlite-doc-3.40.1-html.tar.xz", "w:xz") as tar:
        for name, html in pages.items():
            _add_bytes(tar, name, html.encode())

    (root / "gitbugs" / "hadoop").mkdir(parents=True)
    with open(root / "gitbugs" / "hadoop" / "hadoop_bugs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Summary", "Issue id", "Created", "Description"])
        writer.writerow(["NameNode crashes on restart", "1", "04/Mar/14 09:15", "Stack trace shows an NPE in FSImage."])
    return root


def test_html_to_text_drops_markup() -> None:
    text = html_to_text("<head><title>T</title></head><p>a &amp; b</p><script>x()</script><p>c  d</p>")
    assert text == "a & b\nc d"


def test_corpus_threads_pages_and_holdout(tmp_path: Path) -> None:
    root = make_data_root(tmp_path / "data")
    manifest = write_corpus(CorpusSpec(root, held_out_pages=["lang_upsert.html"]), tmp_path / "corpus")
    rows = list(read_documents(tmp_path / "corpus" / "documents.jsonl"))
    threads = [row for row in rows if row["source"] == "ubuntu-irc"]
    assert len(threads) == THREADS
    assert all("===" not in row["text"] for row in threads)
    assert threads[0]["text"].splitlines()[1].startswith("[10:00] <helper>")
    pages = [row for row in rows if row["source"] == "sqlite-docs"]
    assert [row["id"] for row in pages] == ["wal.html"]
    assert pages[0]["text"] == "Write-Ahead Log\nThe WAL file is appended."  # nbsp collapses too
    assert [row["source"] for row in rows].count("hadoop-issues") == 1
    assert {entry["path"] for entry in manifest["inputs"]} == {
        "ubuntu-irc-disentanglement/train.tar.xz",
        "ubuntu-irc-disentanglement/gold.train.clusters.txt",
        "sqlite-docs/sqlite-doc-3.40.1-html.tar.xz",
        "gitbugs/hadoop/hadoop_bugs.csv",
    }
    assert all(len(entry["sha256"]) == 64 and entry["bytes"] > 0 for entry in manifest["inputs"])
    assert manifest["splits"]["held_out"]["sqlite-docs"] == ["lang_upsert.html"]
    assert sum(1 for row in rows if row["split"] == "validation") == len(rows) // 50


def test_learning_rate_schedule() -> None:
    config = TrainConfig(run_dir="unused")
    assert learning_rate(0, 100, 1.0, config) == pytest.approx(0.1)
    assert learning_rate(9, 100, 1.0, config) == pytest.approx(1.0)
    assert learning_rate(99, 100, 1.0, config) == pytest.approx(0.1, abs=1e-3)


def write_config(path: Path, run_dir: Path, data_root: Path, pretrain: int, meta: int) -> Path:
    config = {
        "run_dir": str(run_dir),
        "data_root": str(data_root),
        "preset": "cpu-tiny",
        "held_out_pages": [],
        "batch_size": 2,
        "pretrain_steps": pretrain,
        "meta_steps": meta,
        "checkpoint_every": 1,
        "eval_every": 2,
        "eval_sequences": 1,
        "progress": False,
    }
    path.write_text(json.dumps(config))
    return path


def test_training_resumes_and_exports(tmp_path: Path) -> None:
    root = make_data_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    short = write_config(tmp_path / "short.json", run_dir, root, pretrain=2, meta=0)
    train_from_config(short)
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2]

    longer = write_config(tmp_path / "long.json", run_dir, root, pretrain=2, meta=2)
    export = train_from_config(longer)
    rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in rows] == [1, 2, 3, 4]
    assert [row["stage"] for row in rows] == ["pretrain", "pretrain", "meta", "meta"]
    assert rows[2]["inner_lr_multiplier"] == pytest.approx(0.1)
    assert "val_loss_ttt" in rows[3]
    manifest = json.loads((run_dir / "corpus" / "manifest.json").read_text())
    assert manifest["tokens"]["train"] > 0
    rail = LearnableRail.from_pretrained(export)
    assert rail.learn("[10:00] <user1> how do I fix error 1 in apt?").tokens > 0


def test_unknown_config_key_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"run_dir": "x", "epochs": 3}))
    with pytest.raises(ValueError, match=r"unknown training config keys \['epochs'\]"):
        TrainConfig.load(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"held_out_pages": "bundle"}, "held_out_pages='bundle' is invalid; use 'bundled'"),
        ({"checkpoint_every": 0}, "checkpoint_every=0 is invalid; set an integer >= 1"),
        ({"batch_size": "two"}, "batch_size='two' is invalid"),
        ({"pretrain_steps": -3}, "pretrain_steps=-3 is invalid; set an integer >= 0"),
        ({"pretrain_steps": 0, "meta_steps": 0}, "both 0"),
        ({"meta_mode": "bogus"}, "meta_mode='bogus' is invalid"),
        ({"model_overrides": {"d_modle": 64}}, r"model_overrides keys \['d_modle'\] are unknown"),
        ({"betas": 0.9}, "betas=0.9 is invalid; set two numbers"),
        ({"warmup_fraction": 1.5}, "warmup_fraction=1.5 is invalid"),
    ],
)
def test_invalid_config_values_rejected(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TrainConfig(run_dir="unused", **changes)


def test_missing_held_out_page_rejected(tmp_path: Path) -> None:
    root = make_data_root(tmp_path / "data")
    with pytest.raises(CorpusError, match=r"held-out pages \['wall.html'\] are not in"):
        write_corpus(CorpusSpec(root, held_out_pages=["wall.html"]), tmp_path / "corpus")


def test_run_folder_rejects_changed_settings(tmp_path: Path) -> None:
    root = make_data_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    train_from_config(write_config(tmp_path / "a.json", run_dir, root, pretrain=1, meta=0))
    config = json.loads((tmp_path / "a.json").read_text())
    config["model_overrides"] = {"d_model": 32}
    (tmp_path / "b.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=r"model_overrides: \{\} -> \{'d_model': 32\}"):
        train_from_config(tmp_path / "b.json")


def test_stopped_run_writes_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_data_root(tmp_path / "data")
    run_dir = tmp_path / "run"
    config = write_config(tmp_path / "a.json", run_dir, root, pretrain=3, meta=0)
    original = train_module._train_one

    def stop_after_one_step(model, optimizer, stream, state, train_config, log):
        original(model, optimizer, stream, state, train_config, log)
        if state.step == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(train_module, "_train_one", stop_after_one_step)
    with pytest.raises(TrainingStopped, match="stopped at step 1 of 3 and wrote no model"):
        train_from_config(config)
    assert not (run_dir / "export").exists()
    monkeypatch.setattr(train_module, "_train_one", original)
    assert train_from_config(config) == run_dir / "export"
