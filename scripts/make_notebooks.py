"""Write the tutorial notebooks under notebooks/ from the cell sources below.

Usage: python scripts/make_notebooks.py
The notebooks are executed by tests/test_notebooks.py; edit them here so the
source of every cell stays reviewable as plain Python.
"""

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

QUICKSTART = [
    ("markdown", """# tworail quick start

This notebook builds an agent on the bundled real data: a slice of the SQLite 3.40.1
documentation and real Ubuntu IRC support threads. It asks an exact question (answered with
verbatim citations by the reference rail), learns support threads into the learnable rail's
fast weights, asks a pattern question, and reads the audit log. Everything runs offline on
the CPU."""),
    ("code", """import os, tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tworail.agent import TwoRail
from tworail.datasets import sqlite_docs_dir, support_threads
from tworail.records import Task

data_dir = Path(tempfile.mkdtemp(prefix="tworail-notebook-"))
agent = TwoRail(data_dir)
chunks = agent.ingest([sqlite_docs_dir()])
print(f"{chunks} chunks indexed in {data_dir}")"""),
    ("markdown", """## An exact question

The router sends questions with exact values (codes, versions, prices) to the reference
rail. Each citation carries the document, the anchor, the character range in the stored
text and the quote itself."""),
    ("code", """answer = agent.ask("What is the numeric value of the SQLite result code SQLITE_FULL?")
print(answer.route.explain())
for claim in answer.claims:
    print(claim.provenance, "|", claim.text[:200])
    for citation in claim.citations:
        print("   ", citation.source + citation.anchor, citation.start, citation.end, repr(citation.quote[:120]))
assert answer.claims and answer.claims[0].citations"""),
    ("markdown", """## Learning support threads

`learn` sends the text through the governed learn path: the data contract, the learn
policy (the built-in one learns the bundled threads after redaction), redaction, rate
limits and budgets, a shadow update checked by the acceptance gate, then the commit. The
update itself is the TTT-E2E inner loop: one SGD step on the fast weights per mini-batch.
Every outcome, rejections included, is an audit event."""),
    ("code", """threads = support_threads("learn")[:10]
for thread in threads:
    outcome = agent.learn(thread.text, thread.provenance())
    event = outcome.event
    print(f"{outcome.status} {event.source}: {event.tokens} tokens, loss {event.loss_before:.3f} -> "
          f"{event.loss_after:.3f}, update norm {event.update_norm:.3f}")
committed = agent.audit.events(kind="learn")
print(f"{len(committed)} of {len(threads)} threads committed")
assert committed, "no thread was committed"
"""),
    ("markdown", """## A pattern question

Questions about what usually happens go to the learnable rail. With candidate answers it
ranks them by likelihood under the current fast weights; its claims are marked as learned
and uncited."""),
    ("code", """task = Task(
    question="What do users in the support channel usually ask about?",
    candidates=["how do I install a package with apt-get", "what is a good recipe for bread"],
)
answer = agent.ask(task)
print(answer.route.explain())
for claim in answer.claims:
    print(claim.provenance, claim.confidence, "|", claim.text)"""),
    ("markdown", "## The audit log\n\nEvery learning event is a row in a hash-chained log; `verify` detects edits."),
    ("code", """print(agent.audit.summary())
print(agent.audit.verify())
agent.close()"""),
]


def build(cells) -> nbformat.NotebookNode:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for kind, source in cells:
        maker = nbformat.v4.new_markdown_cell if kind == "markdown" else nbformat.v4.new_code_cell
        notebook.cells.append(maker(source))
    return notebook


def main() -> None:
    NOTEBOOKS.mkdir(exist_ok=True)
    nbformat.write(build(QUICKSTART), NOTEBOOKS / "quickstart.ipynb")
    print(f"wrote {NOTEBOOKS / 'quickstart.ipynb'}")


if __name__ == "__main__":
    main()
