"""Tests of the Debian documentation corpus builder on small .deb files built here with dpkg-deb.

apt is replaced by shell scripts in tmp_path that copy the built packages or
fail the way apt does, so only the test marked `network` reaches the archive
(and it runs only with TWORAIL_NETWORK_TESTS=1).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
import shutil
import stat
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from tworail.rails.ttt.corpus import Document
from tworail.rails.ttt.debian_copyright import license_summary
from tworail.rails.ttt.debian_corpus import (
    build_debian_corpus,
    bundled_sqlite_held_out_paths,
    debian_documents,
    is_held_out,
    main,
)
from tworail.rails.ttt.debian_extract import extract_text, info_to_text, is_translation
from tworail.rails.ttt.debian_html import html_to_text
from tworail.rails.ttt.debian_packages import PackageNotFoundError, download_packages
from tworail.rails.ttt.debian_roff import roff_to_text

pytestmark = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb is not installed")

PACKAGE = "tworail-fake-doc"
OTHER_PACKAGE = "tworail-other-doc"
SHARED_TEXT = "This paragraph appears in both packages, so the corpus keeps only its first copy. " * 4

GUIDE_HTML = """<html><head><title>Head title</title><style>p { color: red }</style></head>
<body><nav class="menu">Home | Next</nav>
<div class="sphinxsidebar">Sidebar search box</div>
<h1>Write-ahead logging<a class="headerlink" href="#wal">\u00b6</a></h1>
<p>The <b>journal</b> records every change before the database file is written.</p>
<script>document.write("tracking code")</script>
<ul><li>First item</li><li>Second item</li></ul>
<pre>
def checkpoint():
    return "flushed"
</pre>
<p>Readers keep working while a writer appends to the log, which raises concurrency.</p>
</body></html>
"""

MAN_PAGE = r""".\" Comment line that must not appear in the text.
.TH FAKECMD 1 2024-01-01 "tworail" "User Commands"
.SH NAME
fakecmd \- convert fake documents
.SH SYNOPSIS
.B fakecmd
[\fB\-v\fR] \fIfile\fP
.SH DESCRIPTION
.B fakecmd
reads a document and writes its text\(emwithout markup.
It accepts
.BR gzip (1)
compressed input.
.TP
.B \-v
Print each file name.
"""

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: tworail-fake-doc

Files: *
Copyright: 2024 The tworail authors
License: Apache-2.0
 The full text of the Apache License 2.0 is in /usr/share/common-licenses/Apache-2.0.

Files: debian/*
Copyright: 2024 The tworail authors
License: MIT
 Permission is hereby granted, free of charge, to any person obtaining a copy.
"""


def _write(root: Path, relative: str, data: bytes) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _build_deb(folder: Path, out_dir: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """Build a .deb named as apt names it ('%3a' for the epoch colon) with dpkg-deb --build."""
    control = f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <test@example.org>\nDescription: fake docs\n"
    _write(folder, "DEBIAN/control", control.encode())
    for relative, data in files.items():
        _write(folder, relative, data)
    deb = out_dir / f"{package}_{version.replace(':', '%3a')}_all.deb"
    subprocess.run(["dpkg-deb", "-Zgzip", "--root-owner-group", "--build", str(folder), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture(scope="module")
def deb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the two fake documentation packages."""
    base = tmp_path_factory.mktemp("debs")
    out = base / "pool"
    out.mkdir()
    doc = f"usr/share/doc/{PACKAGE}"
    _build_deb(base / "fake", out, PACKAGE, "1:1.2-3", {
        f"{doc}/guide.html": GUIDE_HTML.encode(),
        f"{doc}/notes.txt.gz": gzip.compress(("Compressed notes about checkpoints and recovery. " * 8).encode()),
        f"{doc}/shared.txt": SHARED_TEXT.encode(),
        f"{doc}/blob.dat": b"\x00\x01\x02binary" * 100,
        f"{doc}/logo.png": b"\x89PNG\r\n" + b"x" * 400,
        f"{doc}/tiny.txt": b"too short to keep",
        f"{doc}/copyright": COPYRIGHT.encode(),
        f"{doc}/changelog.Debian.gz": gzip.compress(b"tworail-fake-doc (1:1.2-3) unstable; urgency=low\n" * 10),
        f"{doc}/de-DE/guide.txt": ("Eine deutsche \u00dcbersetzung des Handbuchs. " * 10).encode(),
        "usr/share/man/man1/fakecmd.1.gz": gzip.compress(MAN_PAGE.encode()),
        "usr/bin/fakecmd": b"#!/bin/sh\necho not documentation\n" * 10,
    })
    _build_deb(base / "other", out, OTHER_PACKAGE, "0.9-1", {
        f"usr/share/doc/{OTHER_PACKAGE}/shared.txt": SHARED_TEXT.encode(),
        f"usr/share/doc/{OTHER_PACKAGE}/unique.txt": ("Only the other package has this text about vacuuming. " * 6).encode(),
    })
    return out


def _executable(path: Path, script: str) -> str:
    path.write_text(script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def fake_apt(tmp_path: Path, deb_dir: Path) -> dict[str, object]:
    """Fake apt-get and apt-cache serving the packages in deb_dir; calls are logged to apt.log."""
    log = tmp_path / "apt.log"
    apt_get = _executable(tmp_path / "apt-get", f"""#!/bin/sh
echo "apt-get $*" >> "{log}"
case "$1" in
  update) exit 0 ;;
  download)
    for deb in "{deb_dir}/$2"_*.deb; do
      if [ -e "$deb" ]; then cp "$deb" .; exit 0; fi
    done
    echo "E: Unable to locate package $2" >&2
    exit 100 ;;
esac
exit 1
""")
    apt_cache = _executable(tmp_path / "apt-cache", f"""#!/bin/sh
echo "apt-cache $*" >> "{log}"
for deb in "{deb_dir}/$2"_*.deb; do
  if [ -e "$deb" ]; then printf '%s:\\n  Installed: (none)\\n  Candidate: 1.0\\n' "$2"; exit 0; fi
done
exit 0
""")
    return {"apt_get": apt_get, "apt_cache": apt_cache, "log": log}


def _fake_deb(deb_dir: Path, package: str = PACKAGE) -> Path:
    return next(deb_dir.glob(f"{package}_*.deb"))


# Extraction


def test_extract_text_formats_and_paths(deb_dir: Path) -> None:
    skipped: Counter[str] = Counter()
    documents = {doc.path: doc for doc in extract_text(_fake_deb(deb_dir), skipped=skipped)}
    doc = f"usr/share/doc/{PACKAGE}"
    assert set(documents) == {
        f"{doc}/guide.html", f"{doc}/notes.txt.gz", f"{doc}/shared.txt", f"{doc}/copyright",
        "usr/share/man/man1/fakecmd.1.gz",
    }
    assert all(document.package == PACKAGE for document in documents.values())
    assert documents[f"{doc}/guide.html"].kind == "html"
    assert documents["usr/share/man/man1/fakecmd.1.gz"].kind == "man"
    assert documents[f"{doc}/copyright"].kind == "copyright"
    assert "Compressed notes about checkpoints" in documents[f"{doc}/notes.txt.gz"].text
    assert documents[f"{doc}/guide.html"].id == f"{PACKAGE}:{doc}/guide.html"
    assert skipped == Counter({"binary": 1, "asset": 1, "too small": 1, "change log": 1, "translation": 1})


def test_extract_text_html_without_markup(deb_dir: Path) -> None:
    html = next(d for d in extract_text(_fake_deb(deb_dir)) if d.kind == "html").text
    assert "The journal records every change before the database file is written." in html
    assert "<" not in html
    assert "tracking code" not in html
    assert "color: red" not in html
    assert "Sidebar search box" not in html
    assert "Home | Next" not in html
    assert "\u00b6" not in html


def test_extract_text_man_without_macros(deb_dir: Path) -> None:
    man = next(d for d in extract_text(_fake_deb(deb_dir)) if d.kind == "man").text
    assert "fakecmd - convert fake documents" in man
    assert "writes its text\u2014without markup." in man
    assert "It accepts gzip(1) compressed input." in man
    assert "Comment line" not in man
    assert "\\f" not in man
    assert ".TH" not in man
    assert ".B" not in man


def test_extract_text_all_languages_keeps_translation(deb_dir: Path) -> None:
    paths = [d.path for d in extract_text(_fake_deb(deb_dir), english_only=False)]
    assert f"usr/share/doc/{PACKAGE}/de-DE/guide.txt" in paths


def test_extract_text_missing_file(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="not found"):
        next(extract_text(tmp_path / "absent.deb"))


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("usr/share/man/de/man1/ls.1.gz", True),
        ("usr/share/man/man1/ls.1.gz", False),
        ("usr/share/doc/debian-handbook/html/en-US/apt.html", False),
        ("usr/share/doc/debian-handbook/html/zh-CN/apt.html", True),
        ("usr/share/doc/linux-doc-6.1/html/translations/it_IT/index.html", True),
    ],
)
def test_is_translation_paths(path: str, expected: bool) -> None:
    from pathlib import PurePosixPath

    assert is_translation(PurePosixPath(path)) is expected


# Format converters


def test_roff_to_text_definitions_conditions_tables() -> None:
    source = r""".TH DEMO 7
.de q
\\$2\*(lq\\$1\*(rq
..
.ie n .ds Mark terminal
.el .ds Mark typeset
.if t \{\
Only on a typesetter.
.\}
.SH DESCRIPTION
Quoted with a macro:
.q "WAL mode" see
and the mark is \*[Mark].
.PP
.nf
line one
    line two
.fi
.TS
tab(@);
l l.
Name@Meaning
WAL@write-ahead log
.TE
"""
    text = roff_to_text(source)
    assert "Quoted with a macro: see\u201cWAL mode\u201d and the mark is terminal." in text
    assert "Only on a typesetter" not in text
    assert "line one\n    line two" in text
    assert "WAL  write-ahead log" in text
    assert "\\" not in text


def test_html_to_text_keeps_pre_layout() -> None:
    text = html_to_text("<p>Intro</p><pre>a = 1\n    b = 2</pre><div id='footer'>Copyright notice</div>")
    assert text == "Intro\na = 1\n    b = 2"


def test_info_to_text_drops_nodes_and_menus() -> None:
    source = (
        "This is fake.info, produced by makeinfo.\n\nINFO-DIR-SECTION Databases\nSTART-INFO-DIR-ENTRY\n"
        "* Fake: (fake).  A fake manual.\nEND-INFO-DIR-ENTRY\n\x1f\n"
        "File: fake.info,  Node: Top,  Next: Usage,  Up: (dir)\n\nFake manual\n***********\n\n"
        "* Menu:\n\n* Usage::          How to use it.\n\n\x1f\n"
        "File: fake.info,  Node: Usage,  Prev: Top,  Up: Top\n\n1 Usage\n*******\n\nRun the fake command.\n"
        "\x1f\nTag Table:\nNode: Top\x7f100\n\x1f\nEnd Tag Table\n"
    )
    text = info_to_text(source)
    assert "Fake manual" in text
    assert "Run the fake command." in text
    assert "Node:" not in text
    assert "Menu" not in text
    assert "INFO-DIR-SECTION" not in text
    assert "\x1f" not in text


def test_license_summary_fields() -> None:
    summary = license_summary(COPYRIGHT)
    assert summary["machine_readable"] is True
    assert summary["files_license"] == "Apache-2.0"
    assert summary["licenses"] == ["Apache-2.0", "MIT"]
    assert license_summary("Copyright 1999 someone, free-form text.\n")["machine_readable"] is False


# Downloading


def test_download_packages_records_control_fields(tmp_path: Path, deb_dir: Path, fake_apt: dict) -> None:
    records = download_packages(
        [PACKAGE], tmp_path / "out", apt_get=fake_apt["apt_get"], apt_cache=fake_apt["apt_cache"], progress=False
    )
    assert len(records) == 1
    record = records[0]
    downloaded = tmp_path / "out" / record.filename
    assert record.name == PACKAGE
    assert record.version == "1:1.2-3"
    assert record.architecture == "all"
    assert record.filename == "tworail-fake-doc_1%3a1.2-3_all.deb"
    assert record.bytes == downloaded.stat().st_size
    assert record.sha256 == hashlib.sha256(downloaded.read_bytes()).hexdigest()
    assert "apt-get update" not in fake_apt["log"].read_text()


def test_download_missing_package_names_it(tmp_path: Path, fake_apt: dict, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with pytest.raises(PackageNotFoundError, match="no-such-doc") as raised:
        download_packages(
            [PACKAGE, "no-such-doc"], tmp_path, apt_get=fake_apt["apt_get"], apt_cache=fake_apt["apt_cache"], progress=False
        )
    assert raised.value.name == "no-such-doc"
    assert "apt-get update" in fake_apt["log"].read_text()
    assert any("no candidate for no-such-doc" in record.getMessage() for record in caplog.records)


def test_download_locate_error_names_package(tmp_path: Path, fake_apt: dict) -> None:
    # apt-cache shows a candidate, but apt-get download still cannot locate the package.
    apt_cache = _executable(tmp_path / "apt-cache-yes", "#!/bin/sh\nprintf 'x:\\n  Candidate: 1.0\\n'\n")
    with pytest.raises(PackageNotFoundError, match="Unable to locate package ghost-doc"):
        download_packages(["ghost-doc"], tmp_path, apt_get=fake_apt["apt_get"], apt_cache=apt_cache, progress=False)


def test_download_packages_rejects_empty_list(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no package names"):
        download_packages([], tmp_path)


# Building


def _build(tmp_path: Path, fake_apt: dict, **options: object) -> dict:
    return build_debian_corpus(
        [PACKAGE, OTHER_PACKAGE], tmp_path / "corpus",
        apt_get=fake_apt["apt_get"], apt_cache=fake_apt["apt_cache"], progress=False, **options,
    )


def _rows(tmp_path: Path) -> list[dict]:
    lines = (tmp_path / "corpus" / "documents.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def test_build_manifest_fields(tmp_path: Path, fake_apt: dict) -> None:
    manifest = _build(tmp_path, fake_apt)
    assert manifest == json.loads((tmp_path / "corpus" / "manifest.json").read_text())
    first, second = manifest["packages"]
    deb = tmp_path / "corpus" / "debs" / first["filename"]
    assert first["name"] == PACKAGE
    assert first["version"] == "1:1.2-3"
    assert second["name"] == OTHER_PACKAGE
    assert second["version"] == "0.9-1"
    assert first["sha256"] == hashlib.sha256(deb.read_bytes()).hexdigest()
    assert first["bytes"] == deb.stat().st_size
    assert first["license"]["files_license"] == "Apache-2.0"
    assert second["license"] == {"machine_readable": False, "reason": "no copyright file"}
    assert sum(first["documents"].values()) == 5
    assert sum(second["documents"].values()) == 1
    assert second["duplicates"] == 1
    assert first["skipped"]["binary"] == 1
    assert len(_rows(tmp_path)) == 6
    assert manifest["totals"]["documents"] == 6
    assert manifest["totals"]["text_bytes"] == sum(len(row["text"].encode()) for row in _rows(tmp_path))
    assert manifest["truncated"] is False


def test_build_deduplicates_and_records_rows(tmp_path: Path, fake_apt: dict) -> None:
    _build(tmp_path, fake_apt)
    rows = _rows(tmp_path)
    assert [row["text"] for row in rows].count(SHARED_TEXT.strip()) == 1
    shared = next(row for row in rows if row["text"] == SHARED_TEXT.strip())
    assert shared["package"] == PACKAGE
    assert shared["id"] == f"{PACKAGE}:usr/share/doc/{PACKAGE}/shared.txt"
    assert {row["source"] for row in rows} == {"debian-docs"}
    assert {row["split"] for row in rows} <= {"train", "held_out"}


def test_build_forced_held_out_path(tmp_path: Path, fake_apt: dict) -> None:
    manifest = _build(tmp_path, fake_apt, held_out_paths=["usr/share/doc/*/guide.html"])
    splits = {row["path"]: row["split"] for row in _rows(tmp_path)}
    assert splits[f"usr/share/doc/{PACKAGE}/guide.html"] == "held_out"
    assert manifest["splits"]["held_out"]["forced_paths"] == ["usr/share/doc/*/guide.html"]
    assert manifest["counts"]["debian-docs/held_out"]["documents"] >= 1


def test_build_max_bytes_truncates(tmp_path: Path, fake_apt: dict) -> None:
    manifest = _build(tmp_path, fake_apt, max_bytes=700)
    rows = _rows(tmp_path)
    assert manifest["truncated"] is True
    assert sum(len(row["text"].encode()) for row in rows) <= 700
    assert 0 < len(rows) < 6
    assert manifest["packages"][1]["documents"] == {"train": 0, "held_out": 0}
    assert manifest["packages"][1]["license"]["machine_readable"] is False


def test_build_rejects_nonpositive_max_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes=0"):
        build_debian_corpus([PACKAGE], tmp_path, max_bytes=0)


def test_held_out_split_is_stable(tmp_path: Path, fake_apt: dict) -> None:
    ids = [f"pkg:usr/share/doc/pkg/page{i}.html" for i in range(5000)]
    first = [is_held_out(document_id) for document_id in ids]
    assert first == [is_held_out(document_id) for document_id in reversed(ids)][::-1]
    assert 50 <= sum(first) <= 150  # about 1 in 50
    _build(tmp_path / "a", fake_apt)
    _build(tmp_path / "b", fake_apt)
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    assert all((row["split"] == "held_out") == is_held_out(row["id"]) for row in _rows(tmp_path / "a"))


def test_debian_documents_train_only(tmp_path: Path, fake_apt: dict) -> None:
    _build(tmp_path, fake_apt, held_out_paths=["usr/share/doc/*/guide.html"])
    documents = list(debian_documents(tmp_path / "corpus", exclude_packages=[OTHER_PACKAGE]))
    train_rows = [row for row in _rows(tmp_path) if row["split"] == "train" and row["package"] == PACKAGE]
    assert documents == [Document("debian-docs", row["id"], row["text"]) for row in train_rows]
    assert all(not document.id.endswith("guide.html") for document in documents)


def test_bundled_sqlite_held_out_paths() -> None:
    paths = bundled_sqlite_held_out_paths()
    assert "usr/share/doc/sqlite3/wal.html" in paths
    assert all(path.startswith("usr/share/doc/sqlite3/") for path in paths)


def test_main_exit_status(tmp_path: Path, fake_apt: dict) -> None:
    common = ["--apt-get", fake_apt["apt_get"], "--apt-cache", fake_apt["apt_cache"], "--no-progress"]
    assert main([str(tmp_path / "ok"), "--packages", PACKAGE, *common]) == 0
    assert (tmp_path / "ok" / "manifest.json").is_file()
    assert main([str(tmp_path / "missing"), "--packages", "no-such-doc", *common]) == 1
    assert not (tmp_path / "missing" / "manifest.json").exists()


@pytest.mark.network
@pytest.mark.skipif(os.environ.get("TWORAIL_NETWORK_TESTS") != "1", reason="set TWORAIL_NETWORK_TESTS=1 to call apt")
def test_real_manpages_package(tmp_path: Path) -> None:
    records = download_packages(["manpages"], tmp_path, progress=False)
    assert records[0].name == "manpages"
    documents = {doc.path: doc for doc in extract_text(tmp_path / records[0].filename)}
    assert "usr/share/man/man7/man.7.gz" in documents
    assert "man - macros to format man pages" in documents["usr/share/man/man7/man.7.gz"].text
