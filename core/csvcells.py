"""Every CSV Atelier writes neutralises cells a spreadsheet would run as a formula.

Rule: a cell whose first character that is not white space is ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return is written with a leading ``'`` (OWASP's advice for CSV injection), so Excel,
LibreOffice and Google Sheets show it as text. Leading white space does not protect a cell
(LibreOffice and some import dialogs trim it before reading a formula), so ``"  =1+1"`` is
neutralised too. A cell that is exactly a number (``-1``, ``+2.5``, ``-3e2``), or a Python number,
is kept as it is: it cannot call anything, and scores must stay numbers in the spreadsheet.

Writers use :func:`writer` (a ``csv.writer`` whose rows pass through :func:`neutralise`); headers
go through it too, since roster column names and workbook ids are typed by people. A carriage
return inside a cell becomes a line feed, which ``csv`` then quotes (it leaves a lone CR bare, and a
spreadsheet would start a new row there).
"""

from __future__ import annotations

import csv
import re

#: First characters that make a spreadsheet read a cell as a formula (or a DDE call).
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: A plain decimal number, which a spreadsheet reads as that number and nothing else.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def neutralise(value):
    """``value`` as a CSV cell no spreadsheet runs: ``'`` before a formula's first character."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    stripped = text.lstrip(" \t\r\n\x0b\x0c")
    first = text[:1] if text[:1] in ("\t", "\r") else stripped[:1]
    if first in TRIGGERS and not _NUMBER.fullmatch(text.strip()):
        return "'" + text
    return text


def _one_newline(cell):
    """``cell`` with CR and CRLF as LF, which ``csv`` quotes.

    ``csv`` quotes a cell holding its line terminator (LF here) but not a lone CR, which a
    spreadsheet reads as a new row: a row injected by a name.
    """
    if isinstance(cell, str) and "\r" in cell:
        return cell.replace("\r\n", "\n").replace("\r", "\n")
    return cell


class _NeutralisingWriter:
    """A ``csv.writer`` whose every cell goes through :func:`neutralise`."""

    def __init__(self, out, **kwargs):
        self._writer = csv.writer(out, **kwargs)

    def writerow(self, row):
        """Write one row, each cell neutralised, carriage returns inside a cell made line feeds."""
        return self._writer.writerow([_one_newline(neutralise(cell)) for cell in row])

    def writerows(self, rows):
        """Write rows, each cell neutralised."""
        for row in rows:
            self.writerow(row)


def writer(out, **kwargs) -> _NeutralisingWriter:
    """A CSV writer on ``out`` (``csv.writer``'s keyword arguments) that neutralises formulas."""
    return _NeutralisingWriter(out, **kwargs)
