"""Every autograded workbook carries its prepared answer sets per language version.

``tests/servers/test_answer_sets.py`` grades the answer sets it finds (and a blank submission of
every workbook with an all-right set); this module makes sure none is missing, so a workbook
cannot gain autograded cells (nbgrader ``grade: true`` code cells) or a new language version
without the two sets that prove its assessment loop: the typical mistake and the all-right one
(docs/answer-sets.md). Since issue 18 every graded item is a widget, so every graded version has
both, and CI grades each workbook right, wrong and blank in each language.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

pytestmark = pytest.mark.unit

WORKBOOKS = Path(__file__).resolve().parents[2] / "workbooks"


def _autograded(notebook: Path) -> bool:
    nb = nbformat.read(notebook, as_version=4)
    return any(
        cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade") is True
        for cell in nb.cells
    )


def missing_answer_sets(folder: Path) -> list[str]:
    """Problems with the answer sets of one workbook folder, one line each (empty when complete).

    A notebook ``<id>.<lang>.ipynb`` with autograded cells needs ``answers/<id>.<lang>.json``
    (a typical mistake) and ``answers/<id>.<lang>.right.json`` (every item right), each naming
    that workbook, language and notebook.
    """
    problems = []
    for notebook in sorted(folder.glob("*.ipynb")):
        if not _autograded(notebook):
            continue
        workbook, _, lang = notebook.stem.rpartition(".")
        answer_set = folder / "answers" / f"{workbook}.{lang}.json"
        if not answer_set.is_file():
            expected = answer_set.relative_to(folder)
            problems.append(f"{notebook.name}: has autograded cells but no {expected}")
            continue
        right = folder / "answers" / f"{workbook}.{lang}.right.json"
        if not right.is_file():
            problems.append(
                f"{notebook.name}: has autograded cells but no {right.relative_to(folder)}"
            )
        data = json.loads(answer_set.read_text("utf-8"))
        wanted = {
            "format": "atelier-answer-set",
            "version": 1,
            "workbook": workbook,
            "language": lang,
            "notebook": notebook.name,
        }
        header = {key: data.get(key) for key in wanted}
        if header != wanted:
            problems.append(f"{answer_set.relative_to(folder)}: header {header}, expected {wanted}")
        # Named sets of the same version (``<id>.<lang>.right.json``) name it too.
        for named in sorted((folder / "answers").glob(f"{workbook}.{lang}.*.json")):
            data = json.loads(named.read_text("utf-8"))
            header = {key: data.get(key) for key in wanted}
            if header != wanted:
                problems.append(f"{named.relative_to(folder)}: header {header}, expected {wanted}")
    return problems


FOLDERS = sorted(path for path in WORKBOOKS.iterdir() if any(path.glob("*.ipynb")))


@pytest.mark.parametrize("folder", FOLDERS, ids=[path.name for path in FOLDERS])
def test_autograded_workbook_has_answer_set_per_language(folder):
    """Does every language version with autograded cells have its prepared answer set?"""
    assert missing_answer_sets(folder) == []


def test_missing_answer_set_is_reported(tmp_path):
    """Is a graded notebook without an answer set, or with a mislabelled one, caught?"""
    nb = nbformat.v4.new_notebook()
    test_cell = nbformat.v4.new_code_cell("assert True")
    test_cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t"}
    nb.cells = [nbformat.v4.new_markdown_cell("Not graded"), test_cell]
    nbformat.write(nb, tmp_path / "demo.en.ipynb")
    nbformat.write(nb, tmp_path / "demo.fr.ipynb")
    ungraded = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nbformat.write(ungraded, tmp_path / "other.en.ipynb")
    (tmp_path / "answers").mkdir()
    header = {"format": "atelier-answer-set", "version": 1, "workbook": "demo", "language": "en"}
    mislabelled = header | {"notebook": "demo.en.ipynb"}
    (tmp_path / "answers" / "demo.fr.json").write_text(json.dumps(mislabelled))

    problems = missing_answer_sets(tmp_path)

    assert len(problems) == 3, problems
    assert problems[0].startswith("demo.en.ipynb: has autograded cells but no answers/demo.en.json")
    assert problems[1] == "demo.fr.ipynb: has autograded cells but no answers/demo.fr.right.json"
    assert problems[2].startswith("answers/demo.fr.json: header")
