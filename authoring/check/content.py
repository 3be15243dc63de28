"""The content rules of ``atelier check``: what a workbook teaches and assesses, not how it runs.

Rule: :data:`CONTENT_CHECKS` is an ordered list of small pure steps, a stored notebook in,
problems out, run by :mod:`.pipeline` after the static checks of each notebook;
:func:`content_problems` runs them at the level the author chose (``--content``, settings
``workbooks.check_content``): ``error`` (the default: the rules fail the check as they say),
``warn`` (every problem they find is a warning, while drafting) or ``off``.

- ``code-graded``: no graded point requires trainee-written code (an nbgrader answer cell of type
  code, or an autograded test that grades no widget answer, i.e. does not use
  ``atelier.widgets.grading``).
- ``item-tag``, ``ictcft-untested``, ``apply-items``: every graded cell (autograded test, manually
  graded task or answer) carries cell metadata ``atelier.item`` (``core/cell.schema.json``) naming
  the ICT CFT cells it assesses, all claimed by the notebook, and its cognitive level; every claim
  of ``metadata.atelier.ictcft`` has a graded cell tagged with it; at least two graded cells are at
  the apply level or above.
- ``reading-time``: ``metadata.atelier.minutes`` against what the notebook holds: reading minutes
  are the words of its markdown cells over :data:`WORDS_PER_MINUTE`, exercise minutes the sum of
  its cells' ``atelier.minutes``; a claim more than :data:`TOLERANCE` off is an error.
- ``citation``, ``glossary``, ``fr-typography``: the prose rules of :mod:`.prose`.

Across a workbook's language versions (:func:`content_folder_problems`), each cell carries the same
``atelier.item`` and ``atelier.minutes`` as in the reference language.
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources
from pathlib import Path

from atelier import workbook as wb
from atelier.authoring.check.options import CheckOptions
from atelier.authoring.check.prose import PROSE_CHECKS, cell_label, prose_text
from atelier.authoring.check.workdirs import GRADING_MODULE
from atelier.workbook import Problem

#: Cognitive levels (revised Bloom) a graded item may be tagged with, lowest first.
COGNITIVE = ("remember", "understand", "apply", "analyse", "evaluate", "create")
#: The levels that count as "apply level" (a decision in a case, not recall).
APPLY_LEVELS = COGNITIVE[2:]
#: Graded items a workbook needs at the apply level or above.
MIN_APPLY_ITEMS = 2
#: Words a trainee reads in a minute: many read in a second language.
WORDS_PER_MINUTE = 150
#: How far a declared duration may be from the computed one, as a share of the computed one.
TOLERANCE = 0.30
#: The problem codes of these rules (``--content`` sets their severity).
CONTENT_CODES = frozenset(
    {
        "code-graded",
        "item-tag",
        "ictcft-untested",
        "apply-items",
        "citation",
        "glossary",
        "reading-time",
        "fr-typography",
    }
)
LEVELS = ("error", "warn", "off")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")


def _atelier(cell) -> dict:
    value = cell.get("metadata", {}).get("atelier")
    return value if isinstance(value, dict) else {}


def is_graded(cell) -> bool:
    """Whether a cell earns points: an autograded test, a manually graded task or answer."""
    meta = wb.nbgrader(cell)
    return bool(meta.get("grade") or meta.get("task"))


@cache
def cell_schema() -> dict:
    """The schema of a cell's ``metadata.atelier`` (``core/cell.schema.json``)."""
    return json.loads(resources.files("atelier").joinpath("cell.schema.json").read_text("utf-8"))


# ------------------------------------------------------------------------------------ code-graded


def check_code_graded(nb, path: Path) -> list[Problem]:
    """No graded point requires trainee-written code: graded items are widgets or tasks."""
    problems = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type != "code":
            continue
        if wb.is_answer(cell):
            markers = " with solution markers" if "### BEGIN SOLUTION" in cell.source else ""
            problems.append(
                Problem(
                    str(path),
                    f"{cell_label(cell)}: nbgrader answer cell of type code{markers}: a graded "
                    "point requires trainee-written code",
                    "grade the point with a widget item (docs/widgets.md) and a test of "
                    "atelier.widgets.grading; keep code only under 'Going further', with no "
                    "nbgrader metadata",
                    i,
                    code="code-graded",
                )
            )
        elif wb.is_test(cell) and GRADING_MODULE not in cell.source:
            problems.append(
                Problem(
                    str(path),
                    f"{cell_label(cell)}: autograded test grades no widget answer (it does not "
                    f"use {GRADING_MODULE}): a graded point requires trainee-written code",
                    "grade a widget's answer with atelier.widgets.grading (check_choice, "
                    "check_numeric, score_order, ...) or make the point a manually graded task",
                    i,
                    code="code-graded",
                )
            )
    return problems


# ------------------------------------------------------------------------------- items and claims


def _schema_problems(nb, path: Path) -> tuple[list[Problem], set[int]]:
    """Cells' ``atelier`` metadata against ``core/cell.schema.json``; cells with a broken item."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(cell_schema())
    problems, bad = [], set()
    for i, cell in enumerate(nb.cells, 1):
        if "atelier" not in cell.get("metadata", {}):
            continue
        for error in validator.iter_errors(cell.metadata["atelier"]):
            keys = [str(k) for k in error.absolute_path]
            code = "reading-time" if keys[:1] == ["minutes"] else "item-tag"
            if code == "item-tag":
                bad.add(i)
            problems.append(
                Problem(
                    str(path),
                    f"{cell_label(cell)}: metadata atelier.{'.'.join(keys)}: {error.message}",
                    "fix it as docs/workbook-format.md (cell metadata) describes",
                    i,
                    code=code,
                )
            )
    return problems, bad


def check_items(nb, path: Path) -> list[Problem]:
    """Graded cells tag what they assess; every ICT CFT claim is assessed; two apply-level items."""
    where = str(path)
    problems, bad = _schema_problems(nb, path)
    claims_meta = wb.metadata(nb).get("ictcft")
    claims = {
        (c.get("aspect"), c.get("level")): c.get("competency")
        for c in (claims_meta if isinstance(claims_meta, list) else [])
        if isinstance(c, dict)
    }
    tested: set[tuple] = set()
    apply_cells = []
    for i, cell in enumerate(nb.cells, 1):
        item = _atelier(cell).get("item")
        graded = is_graded(cell)
        if item is not None and not graded:
            problems.append(
                Problem(
                    where,
                    f"{cell_label(cell)}: atelier.item tags a cell that earns no points",
                    "tag the graded cell (the autograded test or the manually graded task) instead",
                    i,
                    code="item-tag",
                )
            )
            continue
        if not graded:
            continue
        if item is None:
            problems.append(
                Problem(
                    where,
                    f"{cell_label(cell)}: graded cell has no atelier.item tag",
                    'add cell metadata "atelier": {"item": {"ictcft": [{"aspect": N, "level": '
                    '"..."}], "cognitive": "apply"}} (docs/workbook-format.md)',
                    i,
                    code="item-tag",
                )
            )
            continue
        if i in bad:
            continue
        if item["cognitive"] in APPLY_LEVELS:
            apply_cells.append(i)
        for tag in item["ictcft"]:
            key = (tag["aspect"], tag["level"])
            competency = wb.ictcft_cell(*key)
            named = f"aspect {key[0]} at level {key[1]}"
            if competency is None:
                problems.append(
                    Problem(
                        where,
                        f"{cell_label(cell)}: atelier.item.ictcft names {named}, not a cell of "
                        "the ICT CFT",
                        "name an aspect (1-6) and a level as in core/ictcft.json",
                        i,
                        code="item-tag",
                    )
                )
            elif key not in claims:
                problems.append(
                    Problem(
                        where,
                        f"{cell_label(cell)}: atelier.item.ictcft names {named} ({competency}), "
                        "which metadata.atelier.ictcft does not claim",
                        "claim it in metadata.atelier.ictcft if the workbook teaches it, or tag "
                        "the item with a claimed cell",
                        i,
                        code="item-tag",
                    )
                )
            else:
                tested.add(key)
    for key, competency in claims.items():
        if key not in tested:
            problems.append(
                Problem(
                    where,
                    f"metadata.atelier.ictcft claims aspect {key[0]} at level {key[1]} "
                    f"({competency}), but no graded cell is tagged with it (cell metadata "
                    "atelier.item.ictcft)",
                    "tag the graded item that assesses it, write one, or drop the claim",
                    code="ictcft-untested",
                )
            )
    if len(apply_cells) < MIN_APPLY_ITEMS and not bad:
        cells = f" (cell {', '.join(map(str, apply_cells))})" if apply_cells else ""
        problems.append(
            Problem(
                where,
                f"{len(apply_cells)} graded item(s) at the apply level or above{cells}; "
                f"{MIN_APPLY_ITEMS} needed (atelier.item.cognitive {', '.join(APPLY_LEVELS)})",
                "make graded items decisions in a realistic (fictional) teaching case, tagged "
                '"cognitive": "apply" or higher',
                code="apply-items",
            )
        )
    return problems


# ---------------------------------------------------------------------------------- reading time


def reading_words(nb) -> int:
    """Words a trainee reads: every markdown cell, without code, addresses or markup."""
    return sum(
        len(_WORD.findall(prose_text(cell.source)))
        for cell in nb.cells
        if cell.cell_type == "markdown"
    )


def exercise_minutes(nb) -> int:
    """The exercise minutes the cells declare (cell metadata ``atelier.minutes``)."""
    total = 0
    for cell in nb.cells:
        minutes = _atelier(cell).get("minutes")
        if isinstance(minutes, int) and not isinstance(minutes, bool):
            total += minutes
    return total


def _off(declared: float, computed: float) -> bool:
    return abs(declared - computed) > TOLERANCE * computed


def check_reading_time(nb, path: Path) -> list[Problem]:
    """``metadata.atelier.minutes`` is within 30% of the reading and exercise minutes computed."""
    minutes = wb.metadata(nb).get("minutes")
    if not isinstance(minutes, dict):
        return []  # the metadata schema check reports it
    teaching, exercises = minutes.get("teaching"), minutes.get("exercises")
    words = reading_words(nb)
    reading = words / WORDS_PER_MINUTE
    declared = exercise_minutes(nb)
    deeper = (
        "; if the workbook then falls under 45 minutes in all, make it deeper (more concept, "
        "another case, another item), not a larger number"
    )
    problems = []
    if isinstance(teaching, int) and _off(teaching, reading):
        fix = (
            f"declare about {round(reading)} minutes of teaching{deeper}"
            if teaching > reading
            else f"declare about {round(reading)} minutes of teaching, or shorten the prose"
        )
        problems.append(
            Problem(
                str(path),
                f"metadata.atelier.minutes.teaching is {teaching}, but the prose reads in about "
                f"{reading:.0f} minutes ({words:,} words at {WORDS_PER_MINUTE} words a minute): "
                f"more than {TOLERANCE:.0%} off",
                fix,
                code="reading-time",
            )
        )
    if declared == 0:
        problems.append(
            Problem(
                str(path),
                "no cell declares its exercise minutes (cell metadata atelier.minutes), so "
                f"metadata.atelier.minutes.exercises ({exercises}) cannot be checked",
                "give every exercise cell (try-it, check, graded item, reflection journal) "
                '"atelier": {"minutes": N}',
                code="reading-time",
            )
        )
    elif isinstance(exercises, int) and _off(exercises, declared):
        fix = (
            f"declare about {declared} minutes of exercises{deeper}"
            if exercises > declared
            else f"declare about {declared} minutes of exercises, or check the cells' minutes"
        )
        problems.append(
            Problem(
                str(path),
                f"metadata.atelier.minutes.exercises is {exercises}, but the exercise cells "
                f"declare {declared} minutes in all (cell metadata atelier.minutes): more than "
                f"{TOLERANCE:.0%} off",
                fix,
                code="reading-time",
            )
        )
    return problems


# ------------------------------------------------------------------------------------ languages


def check_tags_aligned(notebooks: dict) -> list[Problem]:
    """Each language version tags its cells as the reference does (same item, same minutes).

    ``notebooks`` maps a language to ``(path, notebook)``; the reference is English when present.
    A cell missing in a translation is ``translation-drift``'s to report.
    """
    if len(notebooks) < 2:
        return []
    ref = "en" if "en" in notebooks else sorted(notebooks)[0]
    ref_path, ref_nb = notebooks[ref]
    tags = {c.get("id"): (i, _atelier(c)) for i, c in enumerate(ref_nb.cells, 1)}
    problems = []
    for lang, (path, nb) in sorted(notebooks.items()):
        if lang == ref:
            continue
        for j, other in enumerate(nb.cells, 1):
            if other.get("id") not in tags:
                continue
            i, meta = tags[other.get("id")]
            for key, code in (("item", "item-tag"), ("minutes", "reading-time")):
                if meta.get(key) != _atelier(other).get(key):
                    problems.append(
                        Problem(
                            str(path),
                            f"{cell_label(other)}: atelier.{key} is "
                            f"{json.dumps(_atelier(other).get(key))} but "
                            f"{json.dumps(meta.get(key))} in {ref_path.name} cell {i}",
                            "tag the cell as in the reference language: the same item and "
                            "minutes in every language",
                            j,
                            code=code,
                        )
                    )
    return problems


# --------------------------------------------------------------------------------------- pipeline

#: The content rules, in the order they run (cheapest first, prose last).
CONTENT_CHECKS = [check_code_graded, check_items, check_reading_time, *PROSE_CHECKS]


def at_level(problems: list[Problem], options: CheckOptions) -> list[Problem]:
    """The content problems as ``options.content`` reports them: errors, warnings or none."""
    if options.content == "off":
        return []
    if options.content == "warn":
        return [Problem(p.path, p.message, p.fix, p.cell, "warning", p.code) for p in problems]
    return problems


def content_problems(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Run :data:`CONTENT_CHECKS` on a notebook at the level ``options.content`` sets."""
    if options.content == "off":
        return []
    return at_level([problem for step in CONTENT_CHECKS for problem in step(nb, path)], options)


def content_folder_problems(notebooks: dict, options: CheckOptions) -> list[Problem]:
    """The content rules across a workbook's language versions (``lang -> (path, notebook)``)."""
    return at_level(check_tags_aligned(notebooks), options)
