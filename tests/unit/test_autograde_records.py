"""How the grader judges what a sandboxed run reports: fail closed on anything irregular."""

from __future__ import annotations

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from atelier.grading.autograde.preprocessor import ApplySandboxRun
from atelier.grading.autograde.records import cells_to_run, validate_records
from atelier.grading.sandbox.kernel import OutputRecorder, decode_frames, encode_frame

pytestmark = pytest.mark.unit
NONCE = "n0"


def _run(indices, stop_after=None, extra=()):
    """Records of a run over ``indices`` (cut short after ``stop_after`` cells), as bytes."""
    frames, seq = [], 0
    for position, index in enumerate(indices):
        if stop_after is not None and position >= stop_after:
            break
        frames.append({"n": NONCE, "seq": seq, "kind": "start", "index": index})
        frames.append({"n": NONCE, "seq": seq + 1, "kind": "cell", "index": index, "status": "ok",
                       "execution_count": position + 1, "outputs": [], "passed": True})  # fmt: skip
        seq += 2
    if stop_after is None:
        frames.append({"n": NONCE, "seq": seq, "kind": "end"})
    raw = b"".join(encode_frame(f) for f in [*frames, *extra])
    records, ok = decode_frames(raw)
    return {"records": records, "well_formed": ok, "nonce": NONCE, "exit_code": 0}


def _notebook():
    test = new_code_cell("assert answer == 42")
    test.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 1}
    return new_notebook(cells=[new_markdown_cell("x"), new_code_cell("answer = 42"), test])


def test_a_complete_run_is_accepted():
    """Are the records of a normal run accepted, cell by cell?"""
    cells, problem = validate_records(_run([1, 2]), [1, 2])
    assert problem is None and sorted(cells) == [1, 2]


@pytest.mark.parametrize(
    "run",
    [
        _run([1, 2], extra=[{"n": NONCE, "seq": 5, "kind": "cell", "index": 2, "outputs": []}]),
        _run([1, 2, 2]),
        {**_run([1, 2]), "nonce": "other"},
    ],
    ids=["records after the end", "duplicate cell", "wrong secret"],
)
def test_forged_or_duplicated_records_are_rejected(run):
    """Do extra, duplicated or unsigned records make the whole run rejected?"""
    cells, problem = validate_records(run, [1, 2])
    assert problem and cells == {}


def test_garbage_on_the_channel_is_rejected():
    """Are bytes that are not frames reported as malformed?"""
    records, ok = decode_frames(encode_frame({"a": 1}) + b"ATxx")
    assert not ok and records == [{"a": 1}]


def test_a_test_cell_that_never_ran_scores_zero():
    """Does a test cell with no record get an error output, hence 0 points from nbgrader?"""
    from nbgrader.utils import determine_grade

    nb = _notebook()
    execution = _run([1, 2], stop_after=1)
    nb, resources = ApplySandboxRun().preprocess(nb, {"atelier": {"execution": execution}})
    test = nb.cells[2]
    assert test.outputs[0]["ename"] == "CellNotRun"
    assert determine_grade(test)[0] == 0
    assert resources["atelier"]["summary"]["ran"] == 1


def test_a_rejected_run_scores_every_test_zero():
    """Does a run with forged records give every test cell 0, even ones that 'passed'?"""
    from nbgrader.utils import determine_grade

    nb = _notebook()
    execution = _run([1, 2, 2])
    nb, _ = ApplySandboxRun().preprocess(nb, {"atelier": {"execution": execution}})
    assert determine_grade(nb.cells[2])[0] == 0


def test_only_non_empty_code_cells_run_and_tests_are_marked():
    """Do we run what nbclient runs (non-empty code cells), marking test cells?"""
    nb = _notebook()
    nb.cells.append(new_code_cell("   "))
    nb = nbformat.from_dict(nb)
    assert [(c["index"], c["test"]) for c in cells_to_run(nb)] == [(1, False), (2, True)]


def test_output_beyond_the_budget_is_dropped_with_a_marker():
    """Is a flood cut at the budget, with a visible marker saying how much was dropped?"""
    recorder = OutputRecorder(cell_budget=100, notebook_budget=1000)
    for _ in range(50):
        recorder.stream("stdout", "0123456789")
    outputs = recorder.finish()
    assert len(outputs[0]["text"]) == 100
    assert "400 more characters" in outputs[-1]["text"]


@pytest.mark.parametrize("record", [{"passed": False}, {"passed": True, "status": "error"}, {}])
def test_a_test_that_did_not_finish_scores_zero_even_without_an_error_output(record):
    """Does a test whose run did not finish (its error swallowed, no output) still score 0?"""
    from nbgrader.utils import determine_grade

    nb = _notebook()
    execution = _run([1, 2])
    cell = next(r for r in execution["records"] if r.get("kind") == "cell" and r["index"] == 2)
    cell.pop("passed")
    cell.update(record)
    nb, _ = ApplySandboxRun().preprocess(nb, {"atelier": {"execution": execution}})
    assert nb.cells[2].outputs[0]["ename"] == "TestFailed"
    assert determine_grade(nb.cells[2])[0] == 0
    assert determine_grade(_passed_copy())[0] == 1


def _passed_copy():
    nb = _notebook()
    nb, _ = ApplySandboxRun().preprocess(nb, {"atelier": {"execution": _run([1, 2])}})
    return nb.cells[2]
