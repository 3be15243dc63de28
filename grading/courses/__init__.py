"""Around a cohort's :class:`atelier.grading.course.Course`: making it, its gradebook, its accounts.

Rule: one concern per module: the course on disk (``folders.py``), its gradebook
(``gradebook.py``), loading its config only from where no other account can change it
(``trustedconfig.py``), its grader account (``graderaccount.py``) and who is in the cohort
(``people.py``).
"""
