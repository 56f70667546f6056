"""The Debian documentation corpus joins the training corpus through CorpusSpec."""

import json
from pathlib import Path

from test_ttt_train import make_data_root

from tworail.rails.ttt.corpus import CorpusSpec, read_documents, write_corpus


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
    (folder / "manifest.json").write_text(json.dumps({"packages": []}))
    return folder


def test_debian_train_split_added(tmp_path):
    root = make_data_root(tmp_path / "data")
    debian = write_debian_corpus(tmp_path / "debian-corpus")
    manifest = write_corpus(CorpusSpec(root, debian_corpus_dir=debian), tmp_path / "corpus")
    texts = [row["text"] for row in read_documents(tmp_path / "corpus" / "documents.jsonl")]
    assert "git rebase replays commits" in texts
    assert "git bisect finds a bad commit" not in texts
    assert "a duplicate of a page the base corpus reads" not in texts
    paths = {entry["path"] for entry in manifest["inputs"]}
    assert "debian-corpus/manifest.json" in paths
    assert "debian-corpus/documents.jsonl" in paths


def test_without_debian_corpus_unchanged(tmp_path):
    root = make_data_root(tmp_path / "data")
    manifest = write_corpus(CorpusSpec(root), tmp_path / "corpus")
    assert not any("debian" in entry["path"] for entry in manifest["inputs"])
