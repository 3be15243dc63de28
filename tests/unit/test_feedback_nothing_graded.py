"""``atelier feedback`` on a workbook whose other language nobody has been graded on yet."""

from __future__ import annotations

import types

from atelier.grading.exchange.feedback import _generate


def test_a_language_version_without_graded_work_is_skipped_not_an_error(tmp_path):
    """Does feedback succeed for held-fr when only held-en has graded submissions?

    A cohort with one French trainee gets the French version released too; until someone
    submits it, nbgrader has nothing to read and failed the whole command.
    """
    (tmp_path / "autograded" / "t-bob" / "held-en").mkdir(parents=True)
    course = types.SimpleNamespace(root=tmp_path)
    done = _generate(course, "held-fr")
    assert done["success"] and "nothing graded yet" in done["log"]
