"""The workbook format: where workbooks live, what their metadata says, how languages align.

Rule: a workbook is a folder ``workbooks/<nn>-<id>/`` holding one notebook per language,
``<id>.<lang>.ipynb``, with ``data/`` and ``images/`` beside them. The front matter lives in the
notebook metadata under ``metadata.atelier`` and follows ``workbook.schema.json``; ICT CFT cells are
checked against ``ictcft.json``. Language versions share the ids of their code and graded cells;
their code may differ only in string literals and comments, their graded cells not at all.
Everything here is pure (notebook in, problems out) so that ``atelier check``, ``atelier new`` and
``atelier translate`` agree.
"""

from __future__ import annotations

import copy
import io
import json
import re
import tokenize
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources
from pathlib import Path

from atelier.upstream import rfc3987_syntax

# jsonschema's optional IRI format checker compiles dozens of grammars at import (~1.3 s of CPU,
# jsonschema #1428); workbook metadata uses no IRI formats, so defer them until one is checked.
rfc3987_syntax.install()

import nbformat  # noqa: E402

from atelier.errors import AtelierError  # noqa: E402
from atelier.files import atomic_write  # noqa: E402

SCHEMA_VERSION = 1
#: ``<id>.<lang>.ipynb``: the id is kebab-case, the language one of
#: :data:`atelier.languages.LANGUAGES`.
NOTEBOOK_NAME = re.compile(r"^(?P<id>[a-z0-9]+(?:-[a-z0-9]+)*)\.(?P<lang>[a-z]{2})\.ipynb$")
#: ``<nn>-<id>``: a two-digit order prefix, then the workbook id.
FOLDER_NAME = re.compile(r"^(?P<order>[0-9]{2})-(?P<id>[a-z0-9]+(?:-[a-z0-9]+)*)$")
#: Catalogue (landing) notebooks at the top of the workbooks folder.
CATALOGUE_NAME = re.compile(r"^index\.(?P<lang>[a-z]{2})\.ipynb$")
HANDBOOK_DIMENSIONS = (
    "infrastructure",
    "learning-tools",
    "learning-resources",
    "teaching-and-learning-methods",
    "services-for-teachers-and-students",
    "cooperation",
)
#: Keys of ``metadata.atelier`` that are prose and may differ between languages.
TRANSLATED_KEYS = ("language", "title", "summary", "objectives", "questions", "key_points")
MIN_MINUTES, MAX_MINUTES = 45, 90


class WorkbookError(AtelierError):
    """A workbook file cannot be read or written."""


@dataclass(frozen=True)
class Problem:
    """One thing an author must fix (``error``) or should look at (``warning``).

    Printed as ``path: cell N: message — fix``; ``cell`` is the 1-based cell number as shown in
    JupyterLab, or None when the problem is about the whole file.
    """

    path: str
    message: str
    fix: str
    cell: int | None = None
    severity: str = "error"
    code: str = "problem"

    def __str__(self) -> str:
        where = f"{self.path}: cell {self.cell}" if self.cell is not None else self.path
        label = "" if self.severity == "error" else f"{self.severity}: "
        return f"{where}: {label}{self.message} — {self.fix}"

    def as_dict(self) -> dict:
        """The problem as a JSON-ready mapping (for ``atelier check --json``)."""
        return asdict(self)


# ----------------------------------------------------------------------------------------------
# files


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """Read a notebook as nbformat 4, raising :class:`WorkbookError` naming the file on failure."""
    path = Path(path)
    try:
        with path.open(encoding="utf-8") as f:
            return nbformat.read(f, as_version=4)
    except (OSError, UnicodeDecodeError, ValueError, KeyError) as exc:
        raise WorkbookError(
            f"{path}: cannot be read as a notebook ({exc}) — open and save it in JupyterLab"
        ) from exc


def write_notebook(nb: nbformat.NotebookNode, path: str | Path) -> None:
    """Write ``nb`` to ``path`` atomically (temporary file, then rename), never half-written."""
    text = nbformat.writes(nb)
    # What nbformat.write adds when it writes to a file: the file ends with a newline.
    atomic_write(path, text if text.endswith("\n") else text + "\n", fsync=False)


def workbook_notebooks(folder: Path) -> dict[str, Path]:
    """The language versions in a workbook folder, by language code."""
    found = {}
    for path in sorted(folder.glob("*.ipynb")):
        match = NOTEBOOK_NAME.match(path.name)
        if match and not CATALOGUE_NAME.match(path.name):
            found[match["lang"]] = path
    return found


def is_workbooks_root(folder: Path) -> bool:
    """Whether ``folder`` holds workbook folders (``<nn>-<id>/``) or catalogue notebooks."""
    if any(CATALOGUE_NAME.match(p.name) for p in folder.glob("index.*.ipynb")):
        return True
    return any(p.is_dir() and FOLDER_NAME.match(p.name) for p in folder.iterdir())


def find_workbooks(paths: list[str | Path]) -> tuple[list[Path], list[Path]]:
    """Expand command-line paths into workbook folders and workbooks roots (catalogue check).

    A path may be a notebook, a workbook folder, or a folder of workbook folders.
    """
    folders: list[Path] = []
    roots: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise WorkbookError(
                f"{path}: no such file or folder — give a workbook folder or notebook"
            )
        if path.is_file():
            folders.append(path.parent)
        elif is_workbooks_root(path):
            roots.append(path)
            folders.extend(
                p
                for p in sorted(path.iterdir())
                if p.is_dir() and (FOLDER_NAME.match(p.name) or workbook_notebooks(p))
            )
        elif workbook_notebooks(path) or FOLDER_NAME.match(path.name):
            folders.append(path)
        else:
            raise WorkbookError(
                f"{path}: holds no workbook notebook (<id>.<lang>.ipynb) — give a workbook folder"
            )
    unique: dict[Path, Path] = {}
    for folder in folders:
        unique.setdefault(folder.resolve(), folder)
    return list(unique.values()), roots


# ------------------------------------------------------------------------------------------
# metadata


@cache
def schema() -> dict:
    """The workbook metadata schema (JSON Schema 2020-12)."""
    return json.loads(
        resources.files("atelier").joinpath("workbook.schema.json").read_text("utf-8")
    )


@cache
def ictcft() -> dict:
    """The UNESCO ICT CFT v3 table: levels, aspects and the 18 cells (``core/ictcft.json``)."""
    return json.loads(resources.files("atelier").joinpath("ictcft.json").read_text("utf-8"))


def ictcft_names(language: str = "en") -> dict:
    """The ICT CFT's names in ``language``: UNESCO's official edition in that language.

    Returns ``{"framework", "source", "levels", "aspects", "competencies"}``: ``levels`` maps each
    English level name to its name, ``aspects`` each aspect number (int) to its name,
    ``competencies`` each English competency name to its name; ``source`` is the edition cited.
    A language with no official edition in ``core/ictcft.json`` gets the English names (the
    framework's reference edition), never an unofficial translation.
    """
    table = ictcft()
    english = {
        "framework": table["framework"],
        "source": table["source"],
        "levels": {level: level for level in table["levels"]},
        "aspects": {a["aspect"]: a["name"] for a in table["aspects"]},
        "competencies": {c["competency"]: c["competency"] for c in table["cells"]},
    }
    names = table.get("names", {}).get(language)
    if not names:
        return english
    return {
        "framework": names["framework"],
        "source": names["source"],
        "levels": {**english["levels"], **names["levels"]},
        "aspects": {**english["aspects"], **{int(a): n for a, n in names["aspects"].items()}},
        "competencies": {**english["competencies"], **names["competencies"]},
    }


def ictcft_cell(aspect: int, level: str) -> str | None:
    """The competency name of an ICT CFT cell, or None if there is no such cell."""
    for cell in ictcft()["cells"]:
        if cell["aspect"] == aspect and cell["level"] == level:
            return cell["competency"]
    return None


def metadata(nb: nbformat.NotebookNode) -> dict:
    """The workbook front matter of ``nb`` (``metadata.atelier``), or an empty dict."""
    value = nb.metadata.get("atelier")
    return value if isinstance(value, dict) else {}


def metadata_problems(nb: nbformat.NotebookNode, path: Path) -> list[Problem]:
    """Check ``metadata.atelier``: schema, ICT CFT table, duration, file and folder names."""
    import jsonschema

    where = str(path)
    if "atelier" not in nb.metadata:
        return [
            Problem(
                where,
                "has no workbook metadata (metadata.atelier)",
                "start from `atelier new ID` or copy metadata.atelier from the reference workbook",
                code="metadata",
            )
        ]
    meta = nb.metadata["atelier"]
    problems = []
    validator = jsonschema.Draft202012Validator(schema())
    for error in sorted(validator.iter_errors(meta), key=lambda e: list(map(str, e.absolute_path))):
        key = ".".join(["metadata.atelier", *map(str, error.absolute_path)])
        problems.append(
            Problem(
                where,
                f"{key}: {error.message}",
                "fix the value as docs/workbook-format.md describes",
                code="metadata",
            )
        )
    if problems or not isinstance(meta, dict):
        return problems
    for i, cell in enumerate(meta["ictcft"]):
        expected = ictcft_cell(cell["aspect"], cell["level"])
        if expected != cell["competency"]:
            problems.append(
                Problem(
                    where,
                    f"metadata.atelier.ictcft.{i}: '{cell['competency']}' is not the competency of "
                    f"aspect {cell['aspect']} at level {cell['level']}",
                    f"use '{expected}' (see core/ictcft.json)",
                    code="metadata",
                )
            )
    total = meta["minutes"]["teaching"] + meta["minutes"]["exercises"]
    if not MIN_MINUTES <= total <= MAX_MINUTES:
        problems.append(
            Problem(
                where,
                f"metadata.atelier.minutes: {total} minutes in all",
                f"plan {MIN_MINUTES} to {MAX_MINUTES} minutes (teaching + exercises)",
                code="metadata",
            )
        )
    match = NOTEBOOK_NAME.match(path.name)
    if match and (match["id"], match["lang"]) != (meta["id"], meta["language"]):
        problems.append(
            Problem(
                where,
                f"file name says id '{match['id']}', language '{match['lang']}' but metadata says "
                f"'{meta['id']}', '{meta['language']}'",
                "rename the file <id>.<language>.ipynb or fix metadata.atelier",
                code="metadata",
            )
        )
    folder = FOLDER_NAME.match(path.parent.name)
    if folder and folder["id"] != meta["id"]:
        problems.append(
            Problem(
                where,
                f"folder '{path.parent.name}' does not end with the workbook id '{meta['id']}'",
                f"rename the folder <nn>-{meta['id']}",
                code="metadata",
            )
        )
    return problems


# ----------------------------------------------------------------------------------- nbgrader cells


def nbgrader(cell) -> dict:
    """The nbgrader metadata of a cell (empty when the cell is not an nbgrader cell)."""
    value = cell.get("metadata", {}).get("nbgrader")
    return value if isinstance(value, dict) else {}


def is_answer(cell) -> bool:
    """Whether the trainee writes in this cell (an nbgrader solution cell)."""
    return bool(nbgrader(cell).get("solution"))


def is_test(cell) -> bool:
    """Whether this is an autograded test cell (graded, not a solution, code)."""
    meta = nbgrader(cell)
    return bool(meta.get("grade")) and not meta.get("solution") and cell.cell_type == "code"


def is_aligned(cell) -> bool:
    """Whether a cell must be the same in every language: code and nbgrader cells."""
    return cell.cell_type == "code" or bool(nbgrader(cell))


def student_version(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return the student version of a workbook source notebook, as nbgrader releases it.

    Solution regions and solution cells are replaced by nbgrader's stubs (``ClearSolutions``),
    hidden tests removed (``ClearHiddenTests``), marking schemes and outputs cleared. ``nb`` is not
    changed. Raises :class:`WorkbookError` if nbgrader refuses the notebook (for example a solution
    region in a cell that is not a solution cell).
    """
    from nbgrader.preprocessors import (
        ClearHiddenTests,
        ClearMarkScheme,
        ClearOutput,
        ClearSolutions,
    )

    student = copy.deepcopy(nb)
    resources: dict = {}
    # Order matters as in nbgrader's GenerateAssignment: solutions before hidden tests.
    for step in (ClearSolutions(), ClearHiddenTests(), ClearMarkScheme(), ClearOutput()):
        try:
            student, resources = step.preprocess(student, resources)
        except RuntimeError as exc:
            raise WorkbookError(str(exc)) from exc
    return student


# --------------------------------------------------------------------------------------- alignment


def code_signature(source: str) -> tuple:
    """The code of a cell, string literals and comments blanked: what translations keep.

    Falls back to the whitespace-normalised text for code Python cannot tokenize (IPython magics).
    """
    try:
        tokens = []
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENCODING):
                continue
            if tok.type == tokenize.STRING or tok.type in _FSTRING_TOKENS:
                tokens.append((tokenize.STRING, "…"))
                continue
            tokens.append((tok.type, tok.string))
        # f-strings tokenise into several tokens on 3.12+; collapse runs of string placeholders.
        collapsed = [t for i, t in enumerate(tokens) if i == 0 or t != tokens[i - 1] or t[1] != "…"]
        return tuple(collapsed)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        return tuple(source.split())


_FSTRING_TOKENS = {
    getattr(tokenize, name)
    for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END")
    if hasattr(tokenize, name)
}


def alignment_problems(source_nb, source_path: Path, other_nb, other_path: Path) -> list[Problem]:
    """Compare a translation with its source: same aligned cells, code, grading and facts."""
    problems = []
    where = str(other_path)
    src_cells = [(i, c) for i, c in enumerate(source_nb.cells, 1) if is_aligned(c)]
    dst_cells = [(i, c) for i, c in enumerate(other_nb.cells, 1) if is_aligned(c)]
    dst_by_id = {c.get("id"): (i, c) for i, c in dst_cells}
    src_ids = {c.get("id") for _, c in src_cells}
    for i, cell in src_cells:
        cid = cell.get("id")
        if cid not in dst_by_id:
            problems.append(
                Problem(
                    where,
                    f"cell '{cid}' ({source_path.name} cell {i}) is missing",
                    f"run `atelier translate ID --to {metadata(other_nb).get('language', 'xx')}`",
                    code="translation-drift",
                )
            )
            continue
        j, other = dst_by_id[cid]
        if other.cell_type != cell.cell_type:
            problems.append(
                Problem(
                    where,
                    f"cell '{cid}' is {other.cell_type} but {cell.cell_type} in {source_path.name}",
                    "make both the same cell type",
                    cell=j,
                    code="translation-drift",
                )
            )
        elif cell.cell_type == "code" and code_signature(cell.source) != code_signature(
            other.source
        ):
            problems.append(
                Problem(
                    where,
                    f"code differs from {source_path.name} cell {i} beyond strings and comments",
                    "translate only strings and comments; copy code changes from the source "
                    "(atelier translate does it)",
                    cell=j,
                    code="translation-drift",
                )
            )
        src_grade, dst_grade = nbgrader(cell), nbgrader(other)
        for key in ("grade", "solution", "locked", "grade_id", "points", "task"):
            if src_grade.get(key) != dst_grade.get(key):
                problems.append(
                    Problem(
                        where,
                        f"nbgrader {key} is {dst_grade.get(key)!r} but {src_grade.get(key)!r} in "
                        f"{source_path.name} cell {i}",
                        "graded cells must be identical in every language; copy the source's value",
                        cell=j,
                        code="translation-drift",
                    )
                )
                break
    for j, other in dst_cells:
        if other.get("id") not in src_ids:
            problems.append(
                Problem(
                    where,
                    f"{'graded' if nbgrader(other) else 'code'} cell '{other.get('id')}' "
                    "does not exist "
                    f"in {source_path.name}",
                    "add it to the source first, then run atelier translate",
                    cell=j,
                    code="translation-drift",
                )
            )
    order_src = [c.get("id") for _, c in src_cells if c.get("id") in dst_by_id]
    order_dst = [c.get("id") for _, c in dst_cells if c.get("id") in src_ids]
    if order_src != order_dst:
        problems.append(
            Problem(
                where,
                f"code and graded cells are in a different order than in {source_path.name}",
                "keep the source's order",
                code="translation-drift",
            )
        )
    src_meta, dst_meta = metadata(source_nb), metadata(other_nb)
    for key in sorted(set(src_meta) | set(dst_meta)):
        if key in TRANSLATED_KEYS:
            continue
        if src_meta.get(key) != dst_meta.get(key):
            problems.append(
                Problem(
                    where,
                    f"metadata.atelier.{key} differs from {source_path.name}",
                    "only prose keys (title, summary, objectives, questions, key_points) are "
                    "translated; copy the rest from the source",
                    code="translation-drift",
                )
            )
    return problems
