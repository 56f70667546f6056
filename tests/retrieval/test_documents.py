from pathlib import Path

import pytest

from tworail.datasets import support_threads
from tworail.retrieval.documents import load_document, load_documents, make_doc_id, thread_document
from tworail.retrieval.errors import IngestError


def write(path: Path, content: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def test_folder_walk_sorted_relative_sources(tmp_path):
    write(tmp_path / "b.html", "<p>b</p>")
    write(tmp_path / "a.md", "# A\ntext")
    write(tmp_path / "releaselog" / "3_35_0.html", "<p>release</p>")
    write(tmp_path / "logo.gif", b"GIF89a")
    write(tmp_path / ".hidden" / "x.txt", "secret")
    documents = load_documents([tmp_path])
    assert [document.source for document in documents] == ["a.md", "b.html", "releaselog/3_35_0.html"]


def test_file_given_directly_uses_name(tmp_path):
    path = write(tmp_path / "deep" / "notes.txt", "first line\nsecond line")
    (document,) = load_documents([path], tenant="acme", owner="ops")
    assert document.source == "notes.txt"
    assert document.content_type == "text/plain"
    assert document.provenance.tenant == "acme"
    assert document.provenance.owner == "ops"
    assert document.provenance.uri.startswith("file://")
    assert document.sections[0].title == "first line"


def test_doc_id_stable_per_tenant_and_source(tmp_path):
    path = write(tmp_path / "page.html", "<p>x</p>")
    first = load_document(path, tmp_path)
    again = load_document(path, tmp_path)
    other = load_document(path, tmp_path, tenant="other")
    assert first.doc_id == again.doc_id == make_doc_id("default", "page.html")
    assert len(first.doc_id) == 16
    assert other.doc_id != first.doc_id


def test_markdown_sections_from_headings(tmp_path):
    text = "intro\n# Getting Started\nstep one\n```\n# not a heading\n```\n## Getting Started\nagain\n"
    document = load_document(write(tmp_path / "guide.md", text), tmp_path)
    assert [(s.anchor, s.title) for s in document.sections] == [
        ("", "intro"),
        ("#getting-started", "Getting Started"),
        ("#getting-started-1", "Getting Started"),
    ]
    assert document.text == text
    assert document.title == "Getting Started"


def test_missing_path_raises(tmp_path):
    with pytest.raises(IngestError, match="not found.*nothere.html"):
        load_documents([tmp_path / "nothere.html"])


def test_unsupported_extension_raises(tmp_path):
    path = write(tmp_path / "table.csv", "a,b")
    with pytest.raises(IngestError, match=r"unsupported file type '\.csv'.*supported extensions"):
        load_document(path)


def test_undecodable_bytes_raise(tmp_path):
    path = write(tmp_path / "latin.txt", "café".encode("latin-1"))
    with pytest.raises(IngestError, match="cannot decode .*latin.txt as UTF-8"):
        load_document(path)


def test_declared_html_charset_decodes(tmp_path):
    html = '<meta charset="iso-8859-1"><p>café</p>'.encode("latin-1")
    document = load_document(write(tmp_path / "page.html", html))
    assert document.text == "café"


def test_unreadable_file_raises(tmp_path, monkeypatch):
    path = write(tmp_path / "locked.txt", "x")

    def raise_permission_error(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "read_bytes", raise_permission_error)
    with pytest.raises(IngestError, match="cannot read .*locked.txt: Permission denied"):
        load_document(path)


def test_file_outside_root_raises(tmp_path):
    path = write(tmp_path / "a" / "x.txt", "x")
    with pytest.raises(IngestError, match="not inside the root folder"):
        load_document(path, tmp_path / "b")


def test_thread_document():
    thread = support_threads("learn")[0]
    document = thread_document(thread)
    assert document.source == f"ubuntu-irc/{thread.id}"
    assert document.content_type == "text/x-irc-log"
    assert document.text == thread.text
    (section,) = document.sections
    assert (section.start, section.end) == (0, len(thread.text))


def test_section_at_finds_containing_section(bundled_documents):
    document = bundled_documents["faq.html"]
    q2 = next(section for section in document.sections if section.anchor == "#q2")
    assert document.section_at(q2.start) == q2
    assert document.section_at(q2.end - 1) == q2
    assert document.section_at(len(document.text) + 5) is None
