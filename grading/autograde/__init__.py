"""The autograding engine behind ``atelier grade`` (the verb is :mod:`atelier.grading.gradeapp`).

Rule: one concern per module: nbgrader's converter with execution in sandboxes (``converter.py``),
nbgrader's options honoured or refused (``grade_options.py``), the run's plan (``plan.py``), one
share graded with one pool (``share.py``), the forked grading processes (``processes.py``),
nbgrader's app for a course (``nbgrader_autograde.py``) and the course's account (``account.py``).
"""
