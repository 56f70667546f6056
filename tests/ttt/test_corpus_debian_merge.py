"""The Debian documentation corpus joins the training corpus through CorpusSpec."""

import json
from pathlib import Path

import pytest

from test_ttt_train import make_data_root

from tworail.rails.ttt.corpus import CorpusError, CorpusSpec, read_documents, write_corpus


def write_debian_corpus(folder: Path) -> Path:
    folder.mkdir(parents=True)
    rows = [
        {"source": "debian-docs", "id": "git-doc:usr/share/doc/git/a.html", "split": "train",
         "text": "git rebase replays commits", "package": "git-doc", "path": "a.html", "kind": "html"},
        {"source": "debian-docs", "id": "git-doc:usr/share/doc/git/b.html", "split": "held_out",
         "text": "git bisect finds a bad commit", "package": "git-doc", "path": "b.html", "kind": "html"},
        {"source": "debian-docs", "id": "sqlite3-doc:usr/share/doc/sqlite3/wal.html", "split": "train",
         "text": "a duplicate of a page the base corpus reads", "package": "sqlite3-doc", "path": "wal.html",
         "kind": "html"},
    ]
    (folder / "documents.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    package = {"name": "git-doc", "version": "1:2.39.5-0+deb12u2", "filename": "git-doc_2.39.5_all.deb",
               "sha256": "ab" * 32, "bytes": 1234, "license": {"files_license": "GPL-2"}, "skipped": {"asset": 3}}
    (folder / "manifest.json").write_text(json.dumps({"packages": [package]}))
    return folder


def test_debian_train_split_added(tmp_path):
    root = make_data_root(tmp_path / "data")
    debian = write_debian_corpus(tmp_path / "debian-corpus")
    manifest = write_corpus(CorpusSpec(root, debian_corpus_dir=debian), tmp_path / "corpus")
    rows = list(read_documents(tmp_path / "corpus" / "documents.jsonl"))
    split_of_text = {row["text"]: row["split"] for row in rows}
    assert split_of_text["git rebase replays commits"] in ("train", "validation")
    assert split_of_text["git bisect finds a bad commit"] == "held_out"
    assert "a duplicate of a page the base corpus reads" not in split_of_text
    paths = {entry["path"] for entry in manifest["inputs"]}
    assert "debian-corpus/manifest.json" in paths
    assert "debian-corpus/documents.jsonl" in paths
    (package,) = manifest["debian_packages"]
    assert package["version"] == "1:2.39.5-0+deb12u2"
    assert package["sha256"] == "ab" * 32
    assert "skipped" not in package


def test_without_debian_corpus_unchanged(tmp_path):
    root = make_data_root(tmp_path / "data")
    manifest = write_corpus(CorpusSpec(root), tmp_path / "corpus")
    assert not any("debian" in entry["path"] for entry in manifest["inputs"])


def test_debian_budget_keeps_every_nth_document(tmp_path):
    folder = tmp_path / "debian-corpus"
    folder.mkdir()
    rows = [
        {"source": "debian-docs", "id": f"git-doc:{i}.html", "split": "train", "text": f"page {i:02d} " * 10,
         "package": "git-doc", "path": f"{i}.html", "kind": "html"}
        for i in range(12)
    ]
    (folder / "documents.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (folder / "manifest.json").write_text(json.dumps({"packages": []}))
    root = make_data_root(tmp_path / "data")
    spec = CorpusSpec(root, debian_corpus_dir=folder, debian_max_characters=4 * len(rows[0]["text"]))
    write_corpus(spec, tmp_path / "corpus")
    kept = [row["id"] for row in read_documents(tmp_path / "corpus" / "documents.jsonl") if row["source"] == "debian-docs"]
    assert kept == ["git-doc:0.html", "git-doc:3.html", "git-doc:6.html", "git-doc:9.html"]


def test_debian_budget_must_be_positive(tmp_path):
    with pytest.raises(CorpusError, match="debian_max_characters=0"):
        CorpusSpec(tmp_path, debian_max_characters=0)
