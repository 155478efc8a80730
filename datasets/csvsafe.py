"""Every CSV the platform writes goes through here, so that no cell is read as a formula.

Text that people typed (a manifest's author or title, a comment, a labeler's name) is stored as
given; a spreadsheet that opens an export, though, runs a cell that starts with `=`, `+`, `-` or
`@` as a formula (`=HYPERLINK(...)`, `=cmd|' /c calc'!A1`). The OWASP rule is applied to every
text cell: one that starts with one of `= + - @`, a tab, a carriage return or a NUL gets a single
quote in front, which spreadsheets take as "this is text" and do not show.

Two choices beyond the letter of that rule, both because spreadsheets differ in what they strip
before they look for a formula:
- a cell whose first character after leading whitespace is one of those is quoted too
  (LibreOffice's text import can trim spaces, and " =1+1" then becomes a formula);
- the full-width forms `＝ ＋ － ＠`, which Korean and Japanese input methods type, count as well.

The quote changes the text a program reading the CSV sees ("'-3" for "-3"): numbers meant as
numbers should be passed as int, float or Decimal, which are written as they are. Written this
way rather than with defusedcsv, which leaves cells starting with a tab or carriage return alone
and rewrites every `|` in a quoted cell.
"""
from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0", "＝", "＋", "－", "＠")


def neutralise(value: Any) -> Any:
    """The value to write in a cell: text that a spreadsheet would run as a formula gets a
    leading single quote; anything that is not text is returned as it is."""
    if not isinstance(value, str) or not value:
        return value
    if value.startswith(TRIGGERS) or value.lstrip().startswith(TRIGGERS):
        return "'" + value
    return value


class SafeWriter:
    """csv.writer with every cell passed through `neutralise`."""

    def __init__(self, fileobj, dialect: str | csv.Dialect = "excel", **fmtparams):
        self._writer = csv.writer(fileobj, dialect, **fmtparams)

    @property
    def dialect(self):
        return self._writer.dialect

    def writerow(self, row: Iterable[Any]):
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(fileobj, dialect: str | csv.Dialect = "excel", **fmtparams) -> SafeWriter:
    """Like csv.writer (open the file with newline=""), for any CSV the platform writes."""
    return SafeWriter(fileobj, dialect, **fmtparams)


class DictWriter(csv.DictWriter):
    """Like csv.DictWriter; the header and every cell pass through `neutralise`."""

    def __init__(self, fileobj, fieldnames, *args, **kwargs):
        super().__init__(fileobj, fieldnames, *args, **kwargs)
        self.writer = SafeWriter(fileobj, self.writer.dialect)
