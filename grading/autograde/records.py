"""Checking a sandboxed run's records: fail closed on anything missing, forged or out of order.

Rule: a code cell with no valid record of having run (the process died, exited early, was killed,
or its records are malformed, duplicated or out of order) gets an error output, so nbgrader's own
scoring gives a test cell 0 points. A test cell passes only if the sandbox's harness saw its code
run to the end (``passed`` in its record): one that did not, and showed no error (its error
swallowed, its outputs dropped), gets a ``TestFailed`` error output, so it scores 0 too. A
submission whose records look forged has every test cell scored 0.
"""

from __future__ import annotations

from nbformat.notebooknode import NotebookNode
from nbgrader import utils


def not_run_output(reason: str) -> NotebookNode:
    """The error output given to a code cell that has no valid record of having run."""
    return NotebookNode(
        output_type="error",
        ename="CellNotRun",
        evalue=reason,
        traceback=[f"CellNotRun: {reason}. This cell was not run to completion, so it scores 0."],
    )


def failed_test_output(status: str) -> NotebookNode:
    """The error output given to a test cell whose run did not finish, when it showed none."""
    reason = {
        "timeout": "the test ran past its time limit",
        "refused": "the test was not run",
    }.get(status, "the test did not run to its end")
    return NotebookNode(
        output_type="error",
        ename="TestFailed",
        evalue=reason,
        traceback=[f"TestFailed: {reason}, so it scores 0 (Atelier's grader)."],
    )


def scores_as_failed(outputs: list) -> bool:
    """Whether nbgrader would give no points for these outputs (its first deciding output)."""
    for output in outputs:
        kind = output.get("output_type")
        if kind == "error" or (kind == "stream" and output.get("name") == "stderr"):
            return True
        if kind == "execute_result":
            return False
    return False


def describe_stop(execution: dict) -> str:
    """Why a sandboxed process stopped before the end of the notebook, in words."""
    killed_for = execution.get("killed_for")
    code = execution.get("exit_code", 0)
    if killed_for == "timeout":
        return "a cell or the notebook ran past its time limit and the process was stopped"
    if killed_for == "output":
        return "the notebook printed more output than allowed and was stopped"
    if killed_for:
        return f"the notebook was stopped ({killed_for})"
    if code == -9:
        return "the notebook's process was killed (memory, CPU time or process limit)"
    if code < 0:
        import signal

        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = str(-code)
        return f"the notebook's process died from signal {name}"
    return f"the notebook's process ended early (exit status {code})"


def validate_records(execution: dict, expected: list[int]) -> tuple[dict[int, dict], str | None]:
    """Check the run's records and return the cell records by index, and a tampering reason if any.

    Records must carry the job's nonce, run in sequence ``start, cell`` per cell in the order sent,
    with no duplicate and nothing after ``end``. Anything else means the trainee's code wrote on the
    result channel.
    """
    nonce = execution.get("nonce")
    records = execution.get("records", [])
    if not execution.get("well_formed", True):
        return {}, "malformed result records"
    cells: dict[int, dict] = {}
    position = 0
    for seq, record in enumerate(records):
        if record.get("n") != nonce or record.get("seq") != seq:
            return {}, "result records out of sequence or not from the grader"
        kind = record.get("kind")
        if kind == "end":
            if seq != len(records) - 1 or len(cells) != len(expected):
                return {}, "result records continue after the end"
            break
        if position >= len(expected) or record.get("index") != expected[position]:
            return {}, "result records for unexpected cells"
        if kind == "start":
            if seq % 2 != 0:
                return {}, "result records out of order"
        elif kind == "cell":
            if seq % 2 != 1 or not isinstance(record.get("outputs"), list):
                return {}, "result records out of order"
            cells[record["index"]] = record
            position += 1
        else:
            return {}, "unknown result record"
    return cells, None


def cells_to_run(nb: NotebookNode) -> list[dict]:
    """The code cells nbclient would run (non-empty source), in order, tests marked."""
    run = []
    for index, cell in enumerate(nb.cells):
        # Sources are strings in memory, lists of lines in a notebook file's JSON.
        source = "".join(cell.source) if isinstance(cell.source, list) else cell.source
        if cell.cell_type != "code" or not source.strip():
            continue
        test = utils.is_grade(cell) and not utils.is_solution(cell)
        run.append({"index": index, "source": source, "test": bool(test)})
    return run
