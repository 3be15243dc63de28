"""The content rules of ``atelier check`` that read prose: citations, glossary, typography.

Rule: pure functions, a stored notebook in, problems out (:mod:`.content` runs them and sets their
severity). Prose is the text of markdown cells as a trainee reads it: :func:`prose_text` takes out
code blocks, code spans, HTML comments and tags, math, addresses and link targets (a link keeps its
text, an image its alt text) before any rule looks at it.

- ``citation``: every ``[n]`` (also ``[1, 3]``, ``[2-4]``) in the prose resolves to entry n of the
  numbered list in the ``## Sources`` cell; every entry is cited outside that cell; the list has as
  many entries as ``metadata.atelier.sources``.
- ``glossary`` (French notebooks): no term of the "Avoid in French" column of ``docs/glossary.md``,
  read from its machine-readable copy ``core/glossary.json`` (:func:`parse_glossary` makes it;
  ``tests/unit/test_check_content.py`` fails when the two drift apart). Matching: whole words,
  case- and accent-insensitive (``é`` matches ``e``, ``’`` matches ``'``), spaces inside a term
  match any run of spaces, and the last word may take a plural ``s`` or ``x``. The Sources cell is
  skipped (titles keep their original language).
- ``fr-typography`` (French notebooks): a non-breaking space (U+00A0 or U+202F, or ``&nbsp;``)
  before ``:`` ``;`` ``?`` ``!``, outside code, addresses, links' targets, times and ratios
  (``10:30``), table separator lines and the Sources cell.

Regenerate the glossary's copy after editing ``docs/glossary.md``:
``python -m atelier.authoring.check.prose docs/glossary.md > core/glossary.json``.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from functools import cache
from importlib import resources
from pathlib import Path

from atelier import workbook as wb
from atelier.authoring.check.static import TRANSLATE_MARKER
from atelier.workbook import Problem

# ------------------------------------------------------------------------------------------ prose

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})[^\n]*\n.*?(?:^ {0,3}\1[^\n]*$|\Z)", re.M | re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_CODE_SPAN = re.compile(r"(`+)[^`]*?\1")
_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_LINK_DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:\s*\S+.*$", re.M)
_AUTOLINK = re.compile(r"<(?:https?|ftp|mailto):[^>]*>", re.I)
_URL = re.compile(r"\b(?:(?:https?|ftp)://|www\.|mailto:)\S+", re.I)
_TAG = re.compile(r"</?[A-Za-z][^>\n]*>")
_MATH = re.compile(r"\$\$.*?\$\$|\$[^$\n]+\$", re.S)
_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
_NBSP_ENTITIES = {"&nbsp;": "\u00a0", "&#160;": "\u00a0", "&#8239;": "\u202f", "&#x202f;": "\u202f"}


def prose_text(source: str) -> str:
    """The text of a markdown cell as read: no code, comments, tags, math, addresses or targets."""
    text = _FENCE.sub("\n", source)
    text = _COMMENT.sub(" ", text)
    text = _CODE_SPAN.sub(" ", text)
    text = _LINK_DEFINITION.sub(" ", text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _AUTOLINK.sub(" ", text)
    text = _URL.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = _MATH.sub(" ", text)
    for entity, char in _NBSP_ENTITIES.items():
        text = re.sub(re.escape(entity), char, text, flags=re.I)
    return _ENTITY.sub("x", text)


#: The heading of the cell that lists the sources (the same in English and French).
SOURCES_HEADING = re.compile(r"^ {0,3}##\s+Sources\s*:?\s*$", re.M | re.I)


def sources_cell(nb) -> int | None:
    """The 1-based number of the ``## Sources`` markdown cell, or None."""
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "markdown" and SOURCES_HEADING.search(cell.source):
            return i
    return None


def cell_label(cell) -> str:
    """How a message names a cell besides its number: its id."""
    return f"cell id '{cell.get('id', '?')}'"


def is_french(nb, path: Path) -> bool:
    """Whether ``nb`` is a French version (its metadata, else its file name, says so)."""
    lang = wb.metadata(nb).get("language")
    return lang == "fr" if isinstance(lang, str) else Path(path).stem.endswith(".fr")


def _context(text: str, start: int, end: int, width: int = 25) -> str:
    """The words around ``text[start:end]`` on one line, for a message."""
    before = text[max(0, start - width) : start].rsplit("\n", 1)[-1]
    after = text[end : end + width].split("\n", 1)[0]
    return f"…{before}{text[start:end]}{after}…".replace("\u00a0", "⍽").replace("\u202f", "⍽")


# -------------------------------------------------------------------------------------- citations

#: ``[3]``, ``[1, 3]``, ``[2-4]``, ``[1; 4–6]``: numbers and ranges, in prose (links removed).
CITATION = re.compile(r"\[(\s*\d+(?:\s*[-–]\s*\d+)?(?:\s*[,;]\s*\d+(?:\s*[-–]\s*\d+)?)*\s*)\]")
#: An entry of the Sources cell's numbered list: ``1. ...``, ``1) ...`` or ``[1] ...``.
SOURCE_ENTRY = re.compile(r"^ {0,3}(?:(\d+)[.)]|\[(\d+)\])\s+\S", re.M)


def cited_numbers(group: str) -> list[int]:
    """The source numbers a citation's brackets hold: ``"1, 3-5"`` gives 1, 3, 4, 5."""
    numbers = []
    for part in re.split(r"[,;]", group):
        bounds = [int(n) for n in re.findall(r"\d+", part)]
        if len(bounds) == 2:
            low, high = sorted(bounds)
            numbers.extend(range(low, high + 1))
        else:
            numbers.extend(bounds)
    return numbers


def check_citations(nb, path: Path) -> list[Problem]:
    """Every ``[n]`` resolves to a listed source, every source is cited, the list fits metadata."""
    where = str(path)
    number = sources_cell(nb)
    declared = wb.metadata(nb).get("sources")
    declared = declared if isinstance(declared, list) else []
    cited: dict[int, list[int]] = {}  # source number -> cells citing it
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "markdown" or i == number:
            continue
        for match in CITATION.finditer(prose_text(cell.source)):
            for n in cited_numbers(match[1]):
                cited.setdefault(n, []).append(i)
    if number is None:
        if not cited and not declared:
            return []
        return [
            Problem(
                where,
                f"no '## Sources' cell, but the prose cites {len(cited)} source number(s) and "
                f"metadata.atelier.sources lists {len(declared)}",
                "end the workbook with a '## Sources' cell listing the sources 1. to N., in the "
                "order of metadata.atelier.sources",
                code="citation",
            )
        ]
    cell = nb.cells[number - 1]
    listed = [int(m[1] or m[2]) for m in SOURCE_ENTRY.finditer(prose_text(cell.source))]
    problems = []
    if listed != list(range(1, len(listed) + 1)):
        problems.append(
            Problem(
                where,
                f"{cell_label(cell)}: the Sources list is numbered "
                f"{', '.join(map(str, listed)) or '(no numbered entry)'}",
                "number the sources 1., 2., 3. ... in order, one entry per line",
                number,
                code="citation",
            )
        )
    if len(listed) != len(declared):
        problems.append(
            Problem(
                where,
                f"{cell_label(cell)}: the Sources cell lists {len(listed)} numbered source(s) but "
                f"metadata.atelier.sources has {len(declared)}",
                "list every source of metadata.atelier.sources in the Sources cell, in the same "
                "order, and no other",
                number,
                code="citation",
            )
        )
    for n, cells in sorted(cited.items()):
        if n not in listed:
            for i in sorted(set(cells)):
                problems.append(
                    Problem(
                        where,
                        f"{cell_label(nb.cells[i - 1])}: [{n}] resolves to no source (the Sources "
                        f"cell, cell {number}, lists {_span(listed)})",
                        "cite a number of the Sources list, or add the source to the list and to "
                        "metadata.atelier.sources",
                        i,
                        code="citation",
                    )
                )
    for n in listed:
        if n not in cited:
            problems.append(
                Problem(
                    where,
                    f"{cell_label(cell)}: source {n} of the Sources list is cited nowhere in the "
                    "prose",
                    f"cite it as [{n}] where the workbook uses it, or remove it from the list and "
                    "from metadata.atelier.sources",
                    number,
                    code="citation",
                )
            )
    return problems


def _span(numbers: list[int]) -> str:
    if not numbers:
        return "no numbered source"
    return f"{numbers[0]} to {numbers[-1]}" if len(numbers) > 1 else str(numbers[0])


# --------------------------------------------------------------------------------------- glossary

#: The column of docs/glossary.md's tables that lists the terms a French notebook avoids.
AVOID_HEADER = "Avoid in French"


def _row(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def parse_glossary(markdown: str) -> list[dict]:
    """The avoided terms of ``docs/glossary.md``: one entry per term, with the term to use instead.

    Only the tables whose last column header is exactly "Avoid in French" count; a cell may list
    several terms separated by commas.
    """
    entries = []
    header: list[str] | None = None
    for line in markdown.splitlines():
        if not line.lstrip().startswith("|"):
            header = None
            continue
        cells = _row(line)
        if header is None:
            header = cells
            continue
        if all(re.fullmatch(r":?-+:?", c) for c in cells) or header[-1] != AVOID_HEADER:
            continue
        cells += [""] * (len(header) - len(cells))
        for term in (t.strip() for t in cells[len(header) - 1].split(",")):
            if term:
                entries.append({"avoid": term, "english": cells[0], "french": cells[1]})
    return entries


@cache
def glossary() -> list[dict]:
    """The avoided terms, as shipped with the package (``core/glossary.json``)."""
    text = resources.files("atelier").joinpath("glossary.json").read_text("utf-8")
    return json.loads(text)["terms"]


def fold(text: str) -> str:
    """Text compared case- and accent-insensitively: no accents, casefolded, one apostrophe."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return plain.replace("’", "'").replace("‘", "'").replace("\u00a0", " ").replace("\u202f", " ")


def french_prose(nb, path: Path):
    """(number, cell, prose) of a French notebook's markdown cells, its Sources cell aside.

    A cell still marked ``<!-- TRANSLATE`` holds the English text ``atelier translate`` copied:
    the "not translated yet" warning covers it, French rules would only repeat it.
    """
    if not is_french(nb, path):
        return
    skip = sources_cell(nb)
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "markdown" and i != skip and TRANSLATE_MARKER not in cell.source:
            yield i, cell, prose_text(cell.source)


@cache
def _term_pattern(term: str) -> re.Pattern:
    words = [re.escape(w) for w in fold(term).split()]
    return re.compile(r"(?<!\w)" + r"\s+".join(words) + r"[sx]?(?!\w)")


def check_glossary(nb, path: Path) -> list[Problem]:
    """A French notebook uses none of the glossary's terms to avoid (Sources and code aside)."""
    problems = []
    for i, cell, text in french_prose(nb, path):
        # NFKD keeps one folded character per original one for Latin text: positions still match.
        folded = fold(text)
        for entry in glossary():
            match = _term_pattern(entry["avoid"]).search(folded)
            if match is None:
                continue
            found = text[match.start() : match.end()] if len(text) == len(folded) else match[0]
            problems.append(
                Problem(
                    str(path),
                    f"{cell_label(cell)}: « {found} » is a term to avoid in French "
                    f"(docs/glossary.md: {entry['english']} = {entry['french']})",
                    f"write « {entry['french']} »",
                    i,
                    severity="warning",
                    code="glossary",
                )
            )
    return problems


# ------------------------------------------------------------------------------------- typography

_NBSP = "\u00a0\u202f"
#: A table's separator line: ``|---|:---:|``.
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")
#: Times and ratios, ``10:30``, ``1:3``: no space there.
_DIGIT_COLON = re.compile(r"(?<=\d):(?=\d)")
_HIGH_PUNCTUATION = re.compile(r"[:;?!]")


def typography_faults(text: str) -> list[str]:
    """Where French prose lacks a non-breaking space before ``: ; ? !``, each with its context."""
    faults = []
    for line in text.splitlines():
        if _TABLE_RULE.match(line):
            continue
        line = _DIGIT_COLON.sub("\x00", line)
        for match in _HIGH_PUNCTUATION.finditer(line):
            start = match.start()
            if start == 0:
                continue
            before = line[start - 1]
            if before in _NBSP or before in "?!.…:;\x00":
                continue
            if before.isspace():
                if not line[:start].strip():
                    continue  # the line starts with it: nothing to keep it with
                kind = "a regular space"
            else:
                kind = "no space"
            where = _context(line.replace("\x00", ":"), start, match.end())
            faults.append(f"{kind} before '{match[0]}' in « {where} »")
    return faults


def check_fr_typography(nb, path: Path) -> list[Problem]:
    """French prose puts a non-breaking space before ``: ; ? !`` (one warning per cell)."""
    problems = []
    for i, cell, text in french_prose(nb, path):
        faults = typography_faults(text)
        if faults:
            more = f" (and {len(faults) - 2} more)" if len(faults) > 2 else ""
            problems.append(
                Problem(
                    str(path),
                    f"{cell_label(cell)}: {'; '.join(faults[:2])}{more}",
                    "put a non-breaking space (U+00A0, or the narrow U+202F) before : ; ? ! in "
                    "French (JupyterLab: type it, or write &nbsp;)",
                    i,
                    severity="warning",
                    code="fr-typography",
                )
            )
    return problems


PROSE_CHECKS = [check_citations, check_glossary, check_fr_typography]


def main(argv: list[str]) -> None:
    """Print ``core/glossary.json`` made from the ``docs/glossary.md`` at ``argv[0]``."""
    terms = parse_glossary(Path(argv[0]).read_text("utf-8"))
    document = {
        "note": "Generated from docs/glossary.md by `python -m atelier.authoring.check.prose "
        "docs/glossary.md > core/glossary.json`; do not edit by hand.",
        "terms": terms,
    }
    print(json.dumps(document, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
