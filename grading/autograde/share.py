"""Grading one share of the submissions: one sandbox pool, nbgrader's converter per assignment.

Rule: a share ((assignment, students) pairs) is graded in turn with one pool for all of it, each
assignment by :class:`atelier.grading.autograde.converter.SandboxedAutograde`; outcomes are
reported as they finish. In a forked grading process, root is given up as soon as the pool's
sandboxes run, before nbgrader touches the course.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path

from atelier.errors import AtelierError
from atelier.grading.autograde.account import become
from atelier.grading.autograde.nbgrader_autograde import nbgrader_app
from atelier.grading.sandbox.sandbox import SandboxLimits, SandboxOptions


def only_students(converter, students) -> None:
    """Have an nbgrader converter find the notebooks of ``students`` only.

    nbgrader's converters take one student or all (``student_id``, a glob); grading a list of
    trainees (a batch, ``--student``) narrows what ``init_notebooks`` found, by the student part
    of each folder as the converter itself names it.
    """
    wanted = set(students)
    pattern = re.compile(
        converter._format_source("(?P<assignment_id>.*)", "(?P<student_id>.*)", escape=True)
    )
    original = converter.init_notebooks

    def init_only_wanted():
        original()
        converter.assignments = {
            path: notebooks
            for path, notebooks in converter.assignments.items()
            if (found := pattern.match(path)) and found.group("student_id") in wanted
        }

    converter.init_notebooks = init_only_wanted


def _isolating(app, config) -> bool:
    """Whether sandboxes made with this app's and the command line's options isolate."""
    from traitlets.config import Config

    merged = Config(app.config)
    if config is not None:
        merged.merge(config)
    return SandboxOptions(config=merged).isolate


def _make_pool(app, course_root: Path, workers: int, dask_address: str, config, extra_hidden):
    """The execution pool for a course, with the course's limits and hidden paths."""
    from traitlets.config import Config

    from atelier.grading.sandbox.pool import DaskPool, LocalPool

    merged = Config(app.config)
    if config is not None:
        merged.merge(config)
    limits = SandboxLimits(config=merged)
    if "cell_timeout" not in merged.get("SandboxLimits", {}):
        # nbgrader's per-cell timeout (Execute.timeout, ExecutePreprocessor.timeout; from the
        # course's configuration or the command line) applies unless overridden; None means none.
        from atelier.grading.autograde.grade_options import cell_timeout

        limits.cell_timeout = cell_timeout(app.config)
    options = SandboxOptions(config=merged)
    hidden = [str(course_root), *extra_hidden]
    db_url = app.coursedir.db_url
    if db_url.startswith("sqlite:///"):
        hidden.append(db_url[len("sqlite:///") :].split("?")[0])
    exchange_root = merged.get("Exchange", {}).get("root")
    hidden.append(exchange_root if isinstance(exchange_root, str) else "/usr/local/share/nbgrader")
    if dask_address:
        return DaskPool(dask_address, limits, options, hidden)
    return LocalPool(workers, limits, options, hidden)


def grade_share(course_root: Path, units, *, workers, dask_address, force, progress, config,
                 extra_hidden, log_level, nbgrader_config=None, report=None, run_as=None,
                 errors_as_outcomes=False, variants=None) -> list:  # fmt: skip
    """Grade ``units`` ((assignment, students) pairs) in turn, with one pool for all of them.

    ``students`` empty means everyone. ``report`` is called with each finished outcome. With
    ``run_as`` (in a forked grading process only) this process becomes that account as soon as
    the pool's sandboxes run, before nbgrader touches the course. With ``errors_as_outcomes``, an
    assignment that cannot be graded makes an error outcome for each of its students instead of
    stopping the others. ``variants`` (:class:`atelier.variants.CohortVariants`, loaded as root
    before this process gives root up) gives each submission its trainee's seed.
    """
    import warnings

    from atelier.grading.autograde.outcome import Outcome

    # nbgrader's own gradebook code triggers SQLAlchemy autoflush warnings that say nothing to
    # users.
    warnings.filterwarnings("ignore", module="nbgrader.api")
    warnings.filterwarnings("ignore", message=".*not in session.*")
    outcomes = []
    pool = None
    try:
        for assignment, students in units:
            try:
                app = nbgrader_app(course_root, assignment, log_level, nbgrader_config)
                if pool is None:
                    # Isolating slots need root to start; without isolation (--no-sandbox) the
                    # code runs as whoever starts the slot: then root is given up first.
                    early = run_as is not None and not _isolating(app, config)
                    if early:
                        become(run_as)
                    pool = _make_pool(app, course_root, workers, dask_address, config, extra_hidden)
                    if run_as is not None and not early:
                        become(run_as)
                outcomes += _grade_assignment(
                    app, assignment, students, pool, force, progress, report, errors_as_outcomes,
                    variants,
                )  # fmt: skip
            except AtelierError as error:
                if not errors_as_outcomes:
                    raise
                outcomes += [Outcome(s, assignment, "error", str(error)[:200]) for s in students]
    finally:
        if pool is not None:
            pool.close()
    return outcomes


def _grade_assignment(app, assignment, students, pool, force, progress, report,
                      planned=False, variants=None) -> list:  # fmt: skip
    """Run the sandboxed converter on one assignment; return its outcomes.

    ``planned``: ``students`` are those the command found submissions of; any not graded here
    gets an error outcome rather than none. ``variants``: the cohort's variant keys (None: the
    default variant for everyone).
    """
    from nbgrader.converters.base import NbGraderException

    from atelier.grading.autograde.converter import SandboxedAutograde

    course_root = app.coursedir.root
    converter = SandboxedAutograde(coursedir=app.coursedir, parent=app)
    converter.pool = pool
    converter.variants = variants
    converter.regrade = force
    if students:
        only_students(converter, students)
    bar = None
    if progress:
        from tqdm import tqdm

        def on_start(total):
            nonlocal bar
            bar = tqdm(total=total, unit="trainee", desc=f"grading {assignment}", file=sys.stderr)

    def on_progress(outcome):
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{outcome.student}: {outcome.status}", refresh=False)
        if report is not None:
            report(outcome)

    if progress:
        converter.on_start = on_start
    converter.on_progress = on_progress
    started = time.monotonic()
    try:
        converter.start()
    except NbGraderException as error:
        raise AtelierError(
            f"nothing to grade for '{assignment}' in {course_root}: {error} "
            "(are submissions in submitted/<student>/<assignment>/ and was the assignment "
            "generated?)"
        ) from None
    finally:
        converter.elapsed = time.monotonic() - started
        if bar is not None:
            bar.close()
    if planned:
        _report_unseen(converter, assignment, students, on_progress)
    return converter.outcomes


def _report_unseen(converter, assignment: str, students, on_progress) -> None:
    """An error for each of ``students`` whose submission this process found no notebook in.

    The command found one: gone since, or a folder the course's account may not read (a link to a
    folder of another account), which it must not grade.
    """
    import pwd

    from atelier.grading.autograde.outcome import Outcome

    seen = {outcome.student for outcome in converter.outcomes}
    account = pwd.getpwuid(os.geteuid()).pw_name
    for student in sorted(set(students) - seen):
        folder = converter._format_source(assignment, student)
        folder = os.path.relpath(folder, converter.coursedir.root)
        outcome = Outcome(
            student,
            assignment,
            "error",
            f"{folder}: no notebook found there by {account}, the account grading this course "
            "(removed since, or a link to a folder it may not read?)",
        )
        converter.outcomes.append(outcome)
        on_progress(outcome)
