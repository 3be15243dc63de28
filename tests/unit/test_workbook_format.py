"""The workbook format and the static half of ``atelier check`` (no kernel is started here)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import nbformat
import pytest

from atelier import workbook as wb
from atelier.authoring import catalogue, newapp, translateapp
from atelier.authoring.check import pipeline
from atelier.authoring.check.options import CheckOptions

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "workbooks"
REFERENCE = REPO / "workbooks" / "02-low-bandwidth-planner"
# The fixtures here were made from `atelier new`'s template (make_fixtures.py), drafts with a
# graded code cell: they test the other static rules, so the content rules are off
# (test_check_content.py has the content rules' own fixtures).
STATIC = CheckOptions(execute=False, voila=False, content="off")


def codes(report) -> set[str]:
    return {p.code for p in report.errors}


@pytest.mark.parametrize(
    ("fixture", "code", "options"),
    [
        ("00-bad-metadata", "metadata", STATIC),
        ("00-stored-outputs", "stored-output", STATIC),
        ("00-duplicate-grade-id", "duplicate-grade-id", STATIC),
        ("00-test-without-answer", "test-without-answer", STATIC),
        ("00-missing-alt-text", "alt-text", STATIC),
        ("00-missing-data-file", "missing-file", STATIC),
        ("00-translation-drift-code", "translation-drift", STATIC),
        ("00-translation-drift-points", "translation-drift", STATIC),
        ("00-hidden-tests-unmarked", "leaks-solution", STATIC),
        (
            "00-oversize",
            "oversize",
            CheckOptions(execute=False, voila=False, content="off", max_notebook_bytes=20_000),
        ),
        ("stale-catalogue", "stale-catalogue", STATIC),
    ],
)
def test_static_fixture_fails_with_its_own_problem(fixture, code, options):
    """Does each failure-mode fixture fail the check with exactly the problem it was made for?"""
    report = pipeline.check([FIXTURES / fixture], options)
    assert codes(report) == {code}, report.lines()


def test_valid_fixture_and_reference_pass_static_checks():
    """Do the template-made fixture and the reference workbook pass every static check?"""
    report = pipeline.check([FIXTURES / "00-valid", REFERENCE], STATIC)
    assert not report.errors, report.lines()


def test_reference_workbook_passes_the_content_rules():
    """Does the reference workbook pass the content rules too (graded items, sources, minutes)?"""
    report = pipeline.check([REFERENCE], CheckOptions(execute=False, voila=False))
    assert not report.errors, report.lines()


def test_widget_graded_workbook_needs_a_readable_right_answer_set(tmp_path):
    """Is a workbook whose tests grade widgets, without its all-right answer set, caught?"""
    folder = tmp_path / REFERENCE.name
    shutil.copytree(REFERENCE, folder)
    (folder / "answers" / "low-bandwidth-planner.en.right.json").unlink()
    (folder / "answers" / "low-bandwidth-planner.fr.right.json").write_text("{not json")
    report = pipeline.check([folder], STATIC)
    assert codes(report) == {"answer-set"}, report.lines()
    lines = "\n".join(report.lines())
    assert "no answers/low-bandwidth-planner.en.right.json" in lines
    assert "low-bandwidth-planner.fr.right.json: cannot be read as an answer set" in lines


def test_a_reflection_task_needs_its_rubric_and_a_journal_below(tmp_path):
    """Is a reflection task left without its rubric, or with nothing to write in below, caught?

    Workbook 02's reflection is a task (prompt and rubric) then a journal; the check accepts it
    as it is, and names the task's cell when the journal is gone or the rubric is left out.
    """
    folder = tmp_path / REFERENCE.name
    shutil.copytree(REFERENCE, folder)
    path = folder / "low-bandwidth-planner.en.ipynb"
    nb = nbformat.read(path, as_version=4)
    ids = [cell.metadata.get("nbgrader", {}).get("grade_id") for cell in nb.cells]
    task = ids.index("reflect-answer")
    assert nb.cells[task].metadata.nbgrader["task"]
    assert "ReflectionJournal" in nb.cells[task + 1].source
    del nb.cells[task + 1]
    nb.cells[task].source = nb.cells[task].source.split("**Rubric")[0]
    nbformat.write(nb, path)
    (folder / "low-bandwidth-planner.fr.ipynb").unlink()
    report = pipeline.check([folder], STATIC)
    problems = [p for p in report.errors if p.code == "task-without-answer"]
    assert sorted(p.message for p in problems) == [
        "manually graded task has no answer below it",
        "manually graded task has no rubric",
    ]
    assert {p.cell for p in problems} == {task + 1}


def test_problem_lines_name_file_cell_and_fix():
    """Does a problem read `path: cell N: problem — what to do`?"""
    report = pipeline.check([FIXTURES / "00-duplicate-grade-id"], STATIC)
    (line,) = [str(p) for p in report.errors]
    assert line.startswith(
        str(FIXTURES / "00-duplicate-grade-id" / "duplicate-grade-id.en.ipynb") + ": cell 10: "
    )
    assert (
        "grade_id 'apply-answer' is also used by cell 9 — give every nbgrader cell its own grade_id"
        in line
    )


def test_json_report_is_machine_readable():
    """Does the JSON report carry the verdict and each problem's file, cell, code and fix?"""
    data = json.loads(
        json.dumps(pipeline.check([FIXTURES / "00-stored-outputs"], STATIC).as_dict())
    )
    assert data["ok"] is False and data["errors"] == 1
    problem = next(p for p in data["problems"] if p["severity"] == "error")
    assert problem["code"] == "stored-output" and problem["cell"] == 5 and problem["fix"]


def test_ictcft_table_has_the_18_cells_of_the_framework():
    """Does core/ictcft.json hold 6 aspects x 3 levels with unique competency names?"""
    table = wb.ictcft()
    assert len(table["cells"]) == 18
    assert len({c["competency"] for c in table["cells"]}) == 18
    assert wb.ictcft_cell(4, "Knowledge Deepening") == "Infusion"
    assert wb.ictcft_cell(6, "Knowledge Creation") == "Teacher as Innovator"


def test_ictcft_names_per_language():
    """Are the French names UNESCO's French edition's, keyed like the English, with its source?"""
    english, french = wb.ictcft_names("en"), wb.ictcft_names("fr")
    assert english["competencies"]["Infusion"] == "Infusion"
    assert french["competencies"]["Infusion"] == "Imprégnation"
    assert french["competencies"]["Teacher as Innovator"] == "Enseignant en tant qu'innovateur"
    assert french["competencies"]["Collaborative Groups"] == "Travail collaboratif"
    assert french["levels"]["Knowledge Acquisition"] == "Acquisition des connaissances"
    assert french["aspects"][6] == "Formation professionnelle des enseignants"
    assert french["source"]["address"].endswith("pf0000368966")
    assert french["source"]["licence"] == "CC BY-SA 3.0 IGO"
    for names in (english, french):
        assert len(names["competencies"]) == 18 and all(names["competencies"].values())
        assert sorted(names["aspects"]) == [1, 2, 3, 4, 5, 6] and len(names["levels"]) == 3
    assert set(french["competencies"]) == {c["competency"] for c in wb.ictcft()["cells"]}
    # No official edition in that language: the English (reference) names, not a guess.
    assert wb.ictcft_names("xx") == english


def coverage_root(tmp_path, claims):
    """A checkout with ``widgets/data/`` and one workbook per ``claims`` item (its ICT CFT list)."""
    (tmp_path / "widgets" / "data").mkdir(parents=True)
    root = tmp_path / "workbooks"
    for number, ictcft in enumerate(claims):
        folder = root / f"{number:02d}-demo-{number}"
        for lang in ("en", "fr"):
            nb = newapp.template(lang)
            nb.metadata.atelier.update(
                id=f"demo-{number}", title=f"Demo {number} ({lang})", ictcft=ictcft
            )
            wb.write_notebook(nb, folder / f"demo-{number}.{lang}.ipynb")
    return root


def test_catalogue_writes_the_ictcft_coverage_and_it_goes_stale(tmp_path):
    """Does `atelier catalogue` write which workbooks claim each cell, and check see it stale?"""
    digital = {"aspect": 6, "level": "Knowledge Acquisition", "competency": "Digital Literacy"}
    policy = {"aspect": 1, "level": "Knowledge Deepening", "competency": "Policy Application"}
    root = coverage_root(tmp_path, [[digital], [digital, policy]])
    catalogue.write_catalogue(root)
    path = tmp_path / "widgets" / "data" / "ictcft_coverage.json"
    coverage = json.loads(path.read_text("utf-8"))
    assert len(coverage["cells"]) == 18
    assert [w["id"] for w in coverage["cells"]["6.KA"]] == ["demo-0", "demo-1"]
    assert coverage["cells"]["1.KD"] == [
        {
            "number": "01",
            "id": "demo-1",
            "folder": "01-demo-1",
            "titles": {"en": "Demo 1 (en)", "fr": "Demo 1 (fr)"},
        }
    ]
    assert coverage["cells"]["2.KC"] == []  # Knowledge Society Skills: beyond the programme
    assert not catalogue.catalogue_problems(root)

    # A workbook drops a claim: the coverage no longer says what the metadata says.
    for lang in ("en", "fr"):
        nb_path = root / "01-demo-1" / f"demo-1.{lang}.ipynb"
        nb = wb.read_notebook(nb_path)
        nb.metadata.atelier["ictcft"] = [digital]
        wb.write_notebook(nb, nb_path)
        # The index notebooks are made fresh: only the coverage is left stale.
        index = catalogue.build_catalogue(root, lang)
        wb.write_notebook(index, catalogue.catalogue_path(root, lang))
    problems = catalogue.catalogue_problems(root)
    assert [(p.code, Path(p.path).name) for p in problems] == [
        ("stale-catalogue", "ictcft_coverage.json")
    ]
    path.unlink()
    assert [p.code for p in catalogue.catalogue_problems(root)] == ["stale-catalogue"]
    catalogue.write_catalogue(root)
    assert not catalogue.catalogue_problems(root)


def test_catalogue_names_competencies_in_the_official_french(tmp_path):
    """Does the French index name competencies and levels as UNESCO's French edition does?"""
    infusion = {"aspect": 4, "level": "Knowledge Deepening", "competency": "Infusion"}
    root = coverage_root(tmp_path, [[infusion]])
    catalogue.write_catalogue(root)
    french = "\n".join(c.source for c in wb.read_notebook(root / "index.fr.ipynb").cells)
    english = "\n".join(c.source for c in wb.read_notebook(root / "index.en.ipynb").cells)
    assert "Imprégnation (4, Approfondissement des connaissances)" in french
    assert "Infusion" not in french and "Knowledge Deepening" not in french
    assert "Infusion (4, Knowledge Deepening)" in english


def test_catalogue_outside_a_checkout_writes_no_coverage(tmp_path):
    """A workbooks folder with no widgets/data/ beside it: index notebooks only, no coverage?"""
    root = tmp_path / "workbooks"
    shutil.copytree(REFERENCE, root / REFERENCE.name)
    written = catalogue.write_catalogue(root)
    assert [p.name for p in written] == ["index.en.ipynb", "index.fr.ipynb"]
    assert not catalogue.catalogue_problems(root)


def test_metadata_rejects_a_competency_in_the_wrong_cell(tmp_path):
    """Is a competency name that belongs to another aspect/level reported with the right name?"""
    nb = newapp.template("en")
    nb.metadata.atelier["id"] = "demo"
    nb.metadata.atelier["ictcft"] = [
        {"aspect": 4, "level": "Knowledge Acquisition", "competency": "Infusion"}
    ]
    problems = wb.metadata_problems(nb, tmp_path / "demo.en.ipynb")
    assert [p.code for p in problems] == ["metadata"]
    assert "use 'Application'" in problems[0].fix


def test_code_signature_ignores_strings_and_comments_only():
    """May translators change strings and comments, and nothing else?"""
    en = 'x = 2 * 60  # minutes\nprint(f"{x} minutes")'
    fr = 'x = 2 * 60  # minutes en français\nprint(f"{x} minutes en tout")'
    assert wb.code_signature(en) == wb.code_signature(fr)
    assert wb.code_signature(en) != wb.code_signature(en.replace("60", "61"))


def test_student_version_strips_solutions_and_hidden_tests():
    """Does student_version() strip solutions and hidden tests, keep visible tests and its input?

    A notebook with a solution code cell (a fixture: workbooks themselves no longer grade code).
    """
    source = nbformat.read(FIXTURES / "00-warning-cell" / "warning-cell.en.ipynb", as_version=4)
    before = copy.deepcopy(source)
    student = wb.student_version(source)
    assert source == before
    text = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text
    assert "hours * 60" not in text and "raise NotImplementedError()" in text
    assert "minutes(2) == 120" in text and "minutes(1.5)" not in text


def test_the_template_grades_widgets_and_keeps_no_key_in_the_student_version():
    """Does `atelier new`'s template grade widget items only, their keys gone for trainees?"""
    source = newapp.template("en")
    graded = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert graded and all("atelier.widgets.grading" in c.source for c in graded)
    assert not [c for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")]
    text = "\n".join(c.source for c in wb.student_version(source).cells)
    assert 'check_answered("__ID__-decide", language="en")' in text
    assert "check_choice" not in text and "check_numeric" not in text and "360" not in text


def test_student_version_keeps_no_key_of_a_graded_widget():
    """Is every key, diagnostic and explanation of the reference's graded widgets left out?"""
    source = nbformat.read(REFERENCE / "low-bandwidth-planner.en.ipynb", as_version=4)
    text = "\n".join(c.source for c in wb.student_version(source).cells)
    assert 'check_answered("w2-plan", language="en")' in text
    for key in ("check_choice", "check_numeric", "score_order", "check_text", '"group720"]'):
        assert key not in text
    assert "You counted only what the student receives" not in text


def test_new_then_translate_keeps_translations_and_marks_changes(tmp_path):
    """Does translate sync code and grading, keep translated prose, and flag changed prose?"""
    root = tmp_path / "workbooks"
    en_path = newapp.new_workbook(root, "demo-unit", "en")
    assert en_path == root / "00-demo-unit" / "demo-unit.en.ipynb"
    fr_path = translateapp.translate_workbook(root, "demo-unit", "fr")
    fr = wb.read_notebook(fr_path)
    assert all("TRANSLATE" in c.source for c in fr.cells if c.cell_type == "markdown")
    # The translator translates two cells; the author then edits one prose cell and one test's
    # points.
    by_id = {c.id: c for c in fr.cells}
    by_id["why"].source = "## Pourquoi c'est important\n\nUn cas réel."
    by_id["concept"].source = "## Concept\n\nL'idée."
    wb.write_notebook(fr, fr_path)
    en = wb.read_notebook(en_path)
    src = {c.id: c for c in en.cells}
    src["concept"].source += "\n\nA new paragraph."
    src["apply-test"].metadata.nbgrader["points"] = 3
    wb.write_notebook(en, en_path)
    fr = {
        c.id: c
        for c in wb.read_notebook(translateapp.translate_workbook(root, "demo-unit", "fr")).cells
    }
    assert fr["why"].source == "## Pourquoi c'est important\n\nUn cas réel."
    assert fr["concept"].source.startswith("<!-- TRANSLATE: the source changed")
    assert fr["concept"].source.endswith("L'idée.")
    assert fr["apply-test"].metadata.nbgrader["points"] == 3
    report = pipeline.check([root / "00-demo-unit"], STATIC)
    assert not report.errors, report.lines()
    assert {p.code for p in report.warnings} == {"untranslated"}
    # The template's items come answered: right and typical, in each language version.
    answers = root / "00-demo-unit" / "answers"
    for lang in ("en", "fr"):
        right = json.loads((answers / f"demo-unit.{lang}.right.json").read_text())
        typical = json.loads((answers / f"demo-unit.{lang}.json").read_text())
        assert (right["language"], right["notebook"]) == (lang, f"demo-unit.{lang}.ipynb")
        assert right["widgets"]["demo-unit-estimate"] == 360 and right["expected_score"] == 4
        assert typical["expected"]["failing_tests"] == ["apply-test-2"]


def test_new_refuses_bad_ids_and_existing_workbooks(tmp_path):
    """Are a non-kebab-case id and an id already used refused with a message saying what to do?"""
    with pytest.raises(wb.WorkbookError, match="kebab-case"):
        newapp.new_workbook(tmp_path, "Bad_Id")
    newapp.new_workbook(tmp_path, "taken")
    with pytest.raises(wb.WorkbookError, match="atelier translate taken"):
        newapp.new_workbook(tmp_path, "taken")


def test_catalogue_lists_workbooks_and_goes_stale(tmp_path):
    """Does the catalogue list duration and competencies, and fail the check once stale?"""
    root = tmp_path / "workbooks"
    shutil.copytree(REFERENCE, root / REFERENCE.name)
    catalogue.write_catalogue(root)
    assert not catalogue.catalogue_problems(root)
    text = "\n".join(c.source for c in wb.read_notebook(root / "index.fr.ipynb").cells)
    assert "low-bandwidth-planner.fr.ipynb" in text and "13 min de lecture + 43 min" in text
    assert "Classe standard" in text and "Standard Classroom" not in text
    path = root / REFERENCE.name / "low-bandwidth-planner.en.ipynb"
    nb = wb.read_notebook(path)
    nb.metadata.atelier["minutes"]["exercises"] = 45
    wb.write_notebook(nb, path)
    assert [p.code for p in catalogue.catalogue_problems(root)] == ["stale-catalogue"]


def test_real_catalogue_is_fresh():
    """Is workbooks/index.<lang>.ipynb what the workbooks' metadata says today?"""
    assert not catalogue.catalogue_problems(REPO / "workbooks")


def test_check_steps_run_inside_a_running_event_loop():
    """Can check's asynchronous steps run when the caller already runs a loop (a notebook)?"""
    import asyncio
    import concurrent.futures

    async def step():
        await asyncio.sleep(0)
        return "done"

    async def notebook_cell():
        return pipeline._run_coroutine(step())

    # The "notebook" runs its loop in a thread of its own, whatever loop this test session runs.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as kernel:
        assert kernel.submit(asyncio.run, notebook_cell()).result() == "done"
