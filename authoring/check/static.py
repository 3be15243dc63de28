"""The static checks of ``atelier check``: what a stored workbook gets wrong, without running it.

Rule: pure functions, a notebook (or a workbook folder, or a workbooks root) in, problems out;
nothing is run. Each list holds its steps in the order :mod:`.pipeline` runs them, cheapest first:
:data:`NOTEBOOK_CHECKS` on each notebook as stored (metadata schema, stored outputs, nbgrader
metadata, solutions and hidden tests only where nbgrader expects them, alt text, local links and
data files, sizes, untranslated cells), :data:`FOLDER_CHECKS` on each workbook folder (languages
present, translations aligned, folder size), :data:`ROOT_CHECKS` on each workbooks root (the
catalogue is up to date).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from atelier import workbook as wb
from atelier.authoring.check.options import CheckOptions
from atelier.authoring.check.workdirs import GRADING_MODULE, check_key_answers, check_variants
from atelier.languages import LANGUAGES
from atelier.workbook import Problem

#: Markers nbgrader uses; a solution or hidden test outside its cell type would leak or break
#: release.
BEGIN_SOLUTION, END_SOLUTION = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


class MarkerPair(NamedTuple):
    """One of nbgrader's marker pairs: the cells it belongs in, and what leaks elsewhere."""

    begin: str
    end: str
    name: str
    belongs: Callable[[dict], bool]
    misplaced: str
    fix: str


#: The pairs :func:`check_nbgrader` checks in every cell, solutions first.
MARKER_PAIRS = (
    MarkerPair(
        BEGIN_SOLUTION,
        END_SOLUTION,
        "solution markers",
        wb.is_answer,
        "solution markers in a cell that is not an answer cell: the solution would leak",
        "mark the cell as an answer cell (nbgrader solution) or remove the markers",
    ),
    MarkerPair(
        BEGIN_HIDDEN,
        END_HIDDEN,
        "hidden-test markers",
        wb.is_test,
        "hidden tests in a cell that is not an autograded test: they would be shown",
        "move hidden tests into a locked autograded test cell",
    ),
)

#: Markdown images ``![alt](src)``, links ``[text](target)`` and HTML ``<img>`` tags.
MD_IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
HTML_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
HTML_ALT = re.compile(r"\balt\s*=\s*(\"([^\"]*)\"|'([^']*)')", re.IGNORECASE)
HTML_SRC = re.compile(r"\bsrc\s*=\s*(\"([^\"]*)\"|'([^']*)')", re.IGNORECASE)
#: String literals in code that name a file beside the notebook.
DATA_PATH = re.compile(r"[\"'](?:\./)?(?P<path>(?:data|images)/[^\"'\s]+)[\"']")
#: Marker ``atelier translate`` puts at the top of prose that still needs translating.
TRANSLATE_MARKER = "<!-- TRANSLATE"


# --------------------------------------------------------------------------------- notebook checks


def check_metadata(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """The front matter follows the schema, names real ICT CFT cells and a 45–90 minute plan."""
    return wb.metadata_problems(nb, path)


def check_stored_outputs(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Notebooks are committed without outputs, execution counts or widget state."""
    problems = []
    for i, cell in enumerate(nb.cells, 1):
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count")):
            problems.append(
                Problem(
                    str(path),
                    "has stored outputs",
                    "clear outputs before committing (JupyterLab: Edit > Clear Outputs of All "
                    "Cells, then save)",
                    cell=i,
                    code="stored-output",
                )
            )
    if "widgets" in nb.metadata:
        problems.append(
            Problem(
                str(path),
                "stores widget state (metadata.widgets)",
                "save without widget state (JupyterLab: Settings > Save Widget State "
                "Automatically off) or delete metadata.widgets",
                code="stored-output",
            )
        )
    return problems


def check_nbgrader(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Grade ids unique, points given, tests after answers, markers only where they belong."""
    problems = []
    where = str(path)
    seen: dict[str, int] = {}
    last_answer_kind = None  # "code" or "markdown" of the nearest answer cell above
    for i, cell in enumerate(nb.cells, 1):
        meta = wb.nbgrader(cell)
        source = cell.source
        if meta:
            grade_id = meta.get("grade_id")
            if not grade_id:
                problems.append(
                    Problem(
                        where,
                        "nbgrader cell has no grade_id",
                        "give it a unique grade_id",
                        i,
                        code="nbgrader",
                    )
                )
            elif grade_id in seen:
                problems.append(
                    Problem(
                        where,
                        f"grade_id '{grade_id}' is also used by cell {seen[grade_id]}",
                        "give every nbgrader cell its own grade_id",
                        i,
                        code="duplicate-grade-id",
                    )
                )
            else:
                seen[grade_id] = i
            if meta.get("schema_version") != 3:
                problems.append(
                    Problem(
                        where,
                        f"nbgrader schema_version is {meta.get('schema_version')!r}",
                        "use nbgrader 0.9's schema_version 3 (Create Assignment toolbar sets it)",
                        i,
                        code="nbgrader",
                    )
                )
            if meta.get("grade"):
                points = meta.get("points")
                if not isinstance(points, int | float) or isinstance(points, bool) or points <= 0:
                    problems.append(
                        Problem(
                            where,
                            f"graded cell has points {points!r}",
                            "give graded cells a positive number of points",
                            i,
                            code="nbgrader",
                        )
                    )
        if wb.is_answer(cell):
            last_answer_kind = cell.cell_type
        # A test of widget answers reads the answers file: the widget above it is the answer.
        grades_widget = wb.is_test(cell) and GRADING_MODULE in source
        if wb.is_test(cell) and last_answer_kind != "code" and not grades_widget:
            problems.append(
                Problem(
                    where,
                    "autograded test has no answer cell before it",
                    "put an autograded answer cell (solution, code) above the test, or grade a "
                    "widget's answer with atelier.widgets.grading",
                    i,
                    code="test-without-answer",
                )
            )
        for pair in MARKER_PAIRS:
            if (pair.begin in source or pair.end in source) and not pair.belongs(cell):
                problems.append(Problem(where, pair.misplaced, pair.fix, i, code="leaks-solution"))
            if source.count(pair.begin) != source.count(pair.end):
                problems.append(
                    Problem(
                        where,
                        f"unbalanced {pair.name}",
                        f"close every '{pair.begin}' with '{pair.end}'",
                        i,
                        code="leaks-solution",
                    )
                )
        if meta.get("task"):
            problems += _task_problems(nb.cells, i, where)
        if wb.is_test(cell) and not meta.get("locked"):
            problems.append(
                Problem(
                    where,
                    "autograded test is not locked",
                    "set nbgrader locked: true so trainees cannot edit the test",
                    i,
                    code="nbgrader",
                )
            )
    return problems


#: A widget made with its id in a code cell: ``ReflectionJournal("w7-reflect", ...)``.
WIDGET_MADE = re.compile(r"\b[A-Z]\w*\(\s*['\"][A-Za-z0-9][A-Za-z0-9_.-]{0,63}['\"]")


def _task_problems(cells, number: int, where: str) -> list[Problem]:
    """A manually graded task (cell ``number``, from 1) holds its rubric and has an answer below.

    The task is what the facilitator grades against (the prompt and the rubric), never the
    trainee's answer: the trainee writes in the widget right below it (a reflection journal, saved
    in the answers file and shown to formgrader as text) or, off the workbook view, a written
    answer cell. A task with nothing under it is one no trainee can answer.
    """
    problems = []
    task = cells[number - 1]
    # A rubric says what earns each point ("1 point: ...", "Rubric (4 points)"), in any language.
    if not re.search(r"\bpoints?\b", task.source, re.I):
        problems.append(
            Problem(
                where,
                "manually graded task has no rubric",
                "write the prompt and its rubric (what earns each point) in the task cell",
                number,
                code="task-without-answer",
            )
        )
    below = cells[number] if number < len(cells) else None
    answered = below is not None and (
        (below.cell_type == "code" and WIDGET_MADE.search(below.source) and not wb.is_test(below))
        or wb.is_answer(below)
    )
    if not answered:
        problems.append(
            Problem(
                where,
                "manually graded task has no answer below it",
                "put the widget the trainee writes in (ReflectionJournal with an id, in a locked "
                "cell) right below the task",
                number,
                code="task-without-answer",
            )
        )
    return problems


def _local(target: str) -> str | None:
    """The local file a link or image points to, or None for web, mail, anchor and data links."""
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("#", "//")):
        return None
    return target.split("#", 1)[0].split("?", 1)[0] or None


def check_images_and_links(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Images have alt text; local links, images and data files named in code exist."""
    problems = []
    folder = path.parent
    for i, cell in enumerate(nb.cells, 1):
        source = cell.source
        targets: list[str] = []
        if cell.cell_type == "markdown":
            for match in MD_IMAGE.finditer(source):
                if not match["alt"].strip():
                    problems.append(
                        Problem(
                            str(path),
                            f"image '{match['src']}' has no alt text",
                            "describe the image in the brackets: ![what it shows](...)",
                            i,
                            code="alt-text",
                        )
                    )
                targets.append(match["src"])
            for tag in HTML_IMG.findall(source):
                alt = HTML_ALT.search(tag)
                src = HTML_SRC.search(tag)
                src_value = (src.group(2) or src.group(3) or "") if src else ""
                if not alt or not (alt.group(2) or alt.group(3) or "").strip():
                    problems.append(
                        Problem(
                            str(path),
                            f"image '{src_value}' has no alt text",
                            'add alt="what it shows" to the <img> tag',
                            i,
                            code="alt-text",
                        )
                    )
                if src_value:
                    targets.append(src_value)
            targets.extend(m["target"] for m in MD_LINK.finditer(source))
        elif cell.cell_type == "code":
            targets.extend(m["path"] for m in DATA_PATH.finditer(source))
        for target in targets:
            local = _local(target)
            if local and local.startswith("attachment:"):
                continue
            if local and not (folder / local).exists():
                problems.append(
                    Problem(
                        str(path),
                        f"'{local}' does not exist beside the notebook",
                        "add the file (data/ or images/) or fix the path",
                        i,
                        code="missing-file",
                    )
                )
    return problems


def check_notebook_size(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """A notebook stays small enough for a phone on a slow link."""
    size = path.stat().st_size
    if size > options.max_notebook_bytes:
        return [
            Problem(
                str(path),
                f"notebook is {size // 1000} kB (cap {options.max_notebook_bytes // 1000} kB)",
                "move images and data into images/ and data/ files, shrink embedded attachments",
                code="oversize",
            )
        ]
    return []


def check_untranslated(nb, path: Path, options: CheckOptions) -> list[Problem]:
    """Prose ``atelier translate`` copied from the source is still waiting for a translator."""
    return [
        Problem(
            str(path),
            "prose not translated yet (or its source changed)",
            "translate the text, then delete the <!-- TRANSLATE ... --> line",
            i,
            severity="warning",
            code="untranslated",
        )
        for i, cell in enumerate(nb.cells, 1)
        if (cell.cell_type == "markdown" and TRANSLATE_MARKER in cell.source)
        or (cell.cell_type == "code" and cell.source.startswith("# TRANSLATE:"))
    ]


NotebookCheck = Callable[..., list[Problem]]
#: Checks of one stored notebook, cheapest first.
NOTEBOOK_CHECKS: list[NotebookCheck] = [
    check_metadata,
    check_stored_outputs,
    check_nbgrader,
    check_images_and_links,
    check_notebook_size,
    check_untranslated,
    check_key_answers,
    check_variants,
]


# ----------------------------------------------------------------------------------- folder checks


def reference_language(versions: dict[str, Path]) -> str:
    """The language other versions are compared with: English when present, else the first."""
    return "en" if "en" in versions else sorted(versions)[0]


def check_languages(folder: Path, notebooks: dict, options: CheckOptions) -> list[Problem]:
    """A workbook folder holds notebooks, ideally in every language."""
    if not notebooks:
        return [
            Problem(
                str(folder),
                "workbook folder holds no <id>.<lang>.ipynb notebook",
                "create one with `atelier new ID --lang en`",
                code="layout",
            )
        ]
    problems = []
    ids = {wb.NOTEBOOK_NAME.match(p.name)["id"] for p in notebooks.values()}
    if len(ids) > 1:
        problems.append(
            Problem(
                str(folder),
                f"notebooks of different workbooks in one folder: {', '.join(sorted(ids))}",
                "keep one workbook per folder",
                code="layout",
            )
        )
    for lang in LANGUAGES:
        if lang not in notebooks:
            problems.append(
                Problem(
                    str(folder),
                    f"no '{lang}' version",
                    f"create it with `atelier translate {sorted(ids)[0]} --to {lang}`",
                    severity="warning",
                    code="layout",
                )
            )
    return problems


def check_alignment(folder: Path, notebooks: dict, options: CheckOptions) -> list[Problem]:
    """Every translation has the reference's code, graded cells, points and shared metadata."""
    if len(notebooks) < 2:
        return []
    ref = reference_language({lang: p for lang, (p, _) in notebooks.items()})
    ref_path, ref_nb = notebooks[ref]
    problems = []
    for lang, (path, nb) in notebooks.items():
        if lang != ref:
            problems.extend(wb.alignment_problems(ref_nb, ref_path, nb, path))
    return problems


def check_folder_size(folder: Path, notebooks: dict, options: CheckOptions) -> list[Problem]:
    """Files and the folder as a whole stay under their caps."""
    problems = []
    total = 0
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or any(
            part.startswith(".") for part in path.relative_to(folder).parts
        ):
            continue
        size = path.stat().st_size
        total += size
        if path.suffix != ".ipynb" and size > options.max_file_bytes:
            problems.append(
                Problem(
                    str(path),
                    f"file is {size // 1000} kB (cap {options.max_file_bytes // 1000} kB)",
                    "compress it, sample the data, or link to it with a cited address",
                    code="oversize",
                )
            )
    if total > options.max_folder_bytes:
        problems.append(
            Problem(
                str(folder),
                f"workbook folder is {total // 1000} kB "
                f"(cap {options.max_folder_bytes // 1000} kB)",
                "shrink images and data: trainees download all of it",
                code="oversize",
            )
        )
    return problems


FOLDER_CHECKS = [check_languages, check_alignment, check_folder_size]


def check_catalogue_fresh(root: Path, options: CheckOptions) -> list[Problem]:
    """The landing notebooks list the workbooks as their metadata says today."""
    from atelier.authoring.catalogue import catalogue_problems

    return catalogue_problems(root)


ROOT_CHECKS = [check_catalogue_fresh]
