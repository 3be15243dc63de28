"""The autograding engine behind ``atelier grade`` (the verb is :mod:`atelier.grading.gradeapp`).

Rule: one concern per module: nbgrader's converter with execution in sandboxes (``converter.py``),
the step replacing ``Execute`` (``preprocessor.py``), the checks of a run's records
(``records.py``), the grading journal (``journal.py``), a submission's outcome (``outcome.py``),
nbgrader's options honoured or refused (``grade_options.py``), the run's plan (``plan.py``), one
share graded with one pool (``share.py``), the forked grading processes (``processes.py``),
nbgrader's app for a course (``nbgrader_autograde.py``) and the course's account (``account.py``).
"""
