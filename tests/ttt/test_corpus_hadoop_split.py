"""The latest Hadoop issues by creation date are held out of training."""

import csv
from pathlib import Path

import pytest

from tworail.rails.ttt.corpus import CorpusError, hadoop_issues

ISSUES = [  # (id, created), deliberately out of date order
    ("3", "02/Jan/21 10:00"),
    ("1", "15/Mar/09 08:30"),
    ("4", "30/Sep/21 17:20"),
    ("2", "01/Feb/14 23:59"),
]


def write_issues(path: Path, issues: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Summary", "Issue id", "Created", "Description"])
        for issue_id, created in issues:
            writer.writerow([f"issue {issue_id}", issue_id, created, f"description of {issue_id}"])
    return path


def test_latest_issues_held_out(tmp_path):
    documents = list(hadoop_issues(write_issues(tmp_path / "bugs.csv", ISSUES), held_out_fraction=0.5))
    assert [doc.id for doc in documents] == ["1", "2", "3", "4"]
    assert [doc.held_out for doc in documents] == [False, False, True, True]
    assert documents[0].text == "issue 1\n\ndescription of 1"


def test_no_fraction_holds_nothing_out(tmp_path):
    documents = list(hadoop_issues(write_issues(tmp_path / "bugs.csv", ISSUES)))
    assert not any(doc.held_out for doc in documents)


def test_bad_creation_date_names_the_issue(tmp_path):
    path = write_issues(tmp_path / "bugs.csv", [("7", "2021-09-30")])
    with pytest.raises(CorpusError, match=r"'7' has Created='2021-09-30'"):
        list(hadoop_issues(path, held_out_fraction=0.1))


def test_blank_summary_keeps_description(tmp_path):
    path = tmp_path / "bugs.csv"
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Summary", "Issue id", "Created", "Description"])
        writer.writerow(["   ", "9", "01/Feb/14 23:59", "only a description"])
        writer.writerow(["", "10", "02/Feb/14 10:00", ""])
    documents = list(hadoop_issues(path))
    assert [doc.id for doc in documents] == ["9"]
    assert documents[0].text == "only a description"
