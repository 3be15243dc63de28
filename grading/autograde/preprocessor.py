"""The step that replaces nbgrader's ``Execute``: the sandbox's outputs put into the notebook.

Rule: :class:`ApplySandboxRun` runs nothing; it takes the outputs of a run made in a sandbox
(:mod:`atelier.grading.sandbox.sandbox`) and merges them into the notebook, failing closed through
the record checks of :mod:`atelier.grading.autograde.records`.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from atelier.grading.autograde.records import (
    cells_to_run,
    describe_stop,
    failed_test_output,
    not_run_output,
    scores_as_failed,
    validate_records,
)


class ApplySandboxRun(NbGraderPreprocessor):
    """Put the outputs of the sandboxed run into the notebook, in place of nbgrader's ``Execute``.

    Each code cell gets the outputs its run recorded; a cell with no valid record gets a
    ``CellNotRun`` error output (see the module rule). The run is found in
    ``resources["atelier"]["execution"]`` (put there by :class:`SandboxedAutograde`).
    """

    def preprocess(self, nb, resources):
        """Merge the run's outputs into ``nb``, failing closed."""
        execution = resources.get("atelier", {}).get("execution")
        wanted = cells_to_run(nb)
        expected = [c["index"] for c in wanted]
        tests = {c["index"] for c in wanted if c["test"]}
        if execution is None:
            records, tampered = {}, "the notebook was not run"
        else:
            records, tampered = validate_records(execution, expected)
        stopped = describe_stop(execution or {})
        summary = {"cells": len(expected), "ran": 0, "timeouts": 0, "reason": ""}
        for index in expected:
            cell = nb.cells[index]
            record = None if tampered else records.get(index)
            if record is None:
                cell.outputs = [not_run_output(tampered or stopped)]
                cell.execution_count = None
                summary["reason"] = summary["reason"] or (tampered or stopped)
                continue
            summary["ran"] += 1
            if record.get("status") == "timeout":
                summary["timeouts"] += 1
            cell.outputs = [NotebookNode(o) for o in record["outputs"] if isinstance(o, dict)]
            for output in cell.outputs:
                for key in ("data", "metadata"):
                    if key in output and not isinstance(output[key], dict):
                        output[key] = {}
            # A test passed only if the grader's own wrapper saw its code finish: a test that
            # failed without showing an error (its error swallowed) still scores 0.
            passed = record.get("passed") is True and record.get("status") == "ok"
            if index in tests and not passed and not scores_as_failed(cell.outputs):
                cell.outputs.insert(0, failed_test_output(str(record.get("status"))))
            count = record.get("execution_count")
            cell.execution_count = count if isinstance(count, int) else None
        resources.setdefault("atelier", {})["summary"] = summary
        return nb, resources
