"""The grading sandbox: where a submission's code runs, seen from the grader and from inside.

Rule: trainee code never runs with the grader's rights: a slot is an account and namespaces of its
own (:mod:`.sandbox`), fed by a pool (:mod:`.pool`), forking a limited child per notebook
(:mod:`.zygote`) that runs the cells and reports in framed records (:mod:`.kernel`).
"""
