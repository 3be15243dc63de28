"""Release: a graded workbook becomes an nbgrader assignment per language, released to a cohort.

Rule: the graded workbook notebook is the nbgrader source; the student version is always made by
nbgrader's own ``generate_assignment`` (solutions stripped, hidden tests removed, checksums recorded
in the gradebook), never by hand. Release is an ordered list of steps (:data:`STEPS`), each
idempotent, so running it again repairs a half-done release and only replaces what changed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from atelier.grading import safefs
from atelier.grading.course import Course, GradingError, assignment_id, nbgrader_api, notebook_name
from atelier.grading.courses.folders import course_umask, ensure, ensure_dir
from atelier.grading.courses.graderaccount import account_ids, as_grader, course_owners
from atelier.grading.courses.people import Trainee
from atelier.grading.exchange.policy import POLICY_FILE, Policy

#: Folders beside a workbook notebook that travel with it into the assignment.
SIDE_FOLDERS = ("data", "images")


@dataclass
class Release:
    """What one release works on, filled in step by step."""

    course: Course
    workbook_dir: Path
    trainees: list[Trainee]
    duedate: datetime | None = None
    progress: Callable[[str], None] = print
    #: How trainees may submit and see feedback (``policy.json`` beside the student version).
    policy: Policy = field(default_factory=Policy)
    workbook: str = ""
    notebooks: dict[str, Path] = field(default_factory=dict)
    languages: list[str] = field(default_factory=list)

    @property
    def assignments(self) -> list[str]:
        """The assignment ids released, one per language."""
        return [assignment_id(self.workbook, lang) for lang in self.languages]


def resolve_workbook(spec: str, search: list[Path]) -> Path:
    """The workbook folder named by ``spec``: a folder path, or an id found in ``search`` roots."""
    from atelier.workbook import FOLDER_NAME

    path = Path(spec)
    if path.is_dir():
        return path.resolve()
    if path.suffix == ".ipynb" and path.is_file():
        return path.parent.resolve()
    for root in search:
        for candidate in sorted(root.glob("*-*")):
            match = FOLDER_NAME.match(candidate.name)
            if match and match["id"] == spec and candidate.is_dir():
                return candidate.resolve()
    roots = ", ".join(str(r) for r in search) or "(none)"
    raise GradingError(f"workbook '{spec}' not found: give its folder, or an id under {roots}")


def read_workbook(release: Release) -> None:
    """Find the workbook's language versions and the languages the cohort needs."""
    from atelier.workbook import FOLDER_NAME, workbook_notebooks

    match = FOLDER_NAME.match(release.workbook_dir.name)
    release.notebooks = workbook_notebooks(release.workbook_dir)
    if not release.notebooks:
        raise GradingError(f"{release.workbook_dir}: no <id>.<lang>.ipynb notebook in this folder")
    first = next(iter(release.notebooks.values()))
    release.workbook = match["id"] if match else first.name.split(".")[0]
    wanted = sorted({t.language for t in release.trainees}) or sorted(release.notebooks)
    missing = [lang for lang in wanted if lang not in release.notebooks]
    if missing:
        raise GradingError(
            f"{release.workbook_dir}: cohort {release.course.cohort} has trainees in "
            f"{', '.join(missing)} but the workbook has no such version; translate it first "
            "(atelier translate) or release to a cohort in the languages it has"
        )
    release.languages = wanted


def prepare_course(release: Release) -> None:
    """Create or repair the course folders, grader account, config and gradebook."""
    course = release.course
    ensure(course)
    with safefs.opened_dir(course.root, ["source"], _owners(course)) as source:
        safefs.recover_swaps_at(source)
    with safefs.opened_dir(course.exchange, ["outbound"]) as outbound:
        safefs.recover_swaps_at(outbound)


def _owners(course: Course) -> set[int]:
    """Who may own what release reads in the course (root, the grader account)."""
    return course_owners(course)


def copy_sources(release: Release) -> None:
    """Copy each language version (and its data/images folders) into ``source/<assignment>/``.

    ``source/`` is the grader account's: the copy is made in a folder only root can enter, by
    descriptor, then renamed into place; nothing there is looked up by path.
    """
    course = release.course
    with safefs.opened_dir(course.root, ["source"], _owners(course)) as source:
        for lang in release.languages:
            aid = assignment_id(release.workbook, lang)
            with safefs.replacing_dir_at(source, aid, course.source / aid) as target:
                name = notebook_name(release.workbook, lang)
                data = release.notebooks[lang].read_bytes()
                safefs.write_at(target, name, data, 0o660, course.source / aid / name)
                for side in SIDE_FOLDERS:
                    if (release.workbook_dir / side).is_dir():
                        _copy_side_folder(release.workbook_dir / side, target, side)
                os.fchmod(target, 0o2770)
            release.progress(f"  source    {aid}")


def _copy_side_folder(folder: Path, target: int, name: str) -> None:
    """Copy a workbook's side folder (the author's, read by path) into an open staged folder."""
    with safefs.opened_dir(folder) as src:
        os.mkdir(name, 0o700, dir_fd=target)
        out = safefs.open_dir_at(target, name, name)
        try:
            safefs.copy_tree_at(src, out, folder, modes=(0o660, 0o2770))
            os.fchmod(out, 0o2770)
        finally:
            os.close(out)


def _generate(course: Course, assignments: list[str], duedate: str | None) -> list[str]:
    api = nbgrader_api(course)
    for aid in assignments:
        result = api.generate_assignment(aid, force=True, create=True)
        if not result["success"]:
            raise GradingError(
                f"nbgrader could not make the student version of {aid}:\n"
                f"{result.get('log', '')}{result.get('error', '')}"
            )
    if duedate is not None:
        with course.gradebook() as gb:
            for aid in assignments:
                gb.update_or_create_assignment(aid, duedate=datetime.fromisoformat(duedate))
    return assignments


def generate_student_versions(release: Release) -> None:
    """Run nbgrader's generate_assignment for each language (records checksums and cell ids).

    nbgrader reads ``source/`` and writes ``release/`` and the gradebook, all the grader
    account's: it runs as that account (:func:`atelier.grading.courses.graderaccount.as_grader`).
    """
    due = release.duedate.isoformat() if release.duedate is not None else None
    if os.geteuid() == 0:
        with safefs.opened_dir(release.course.root, ["release"], _owners(release.course)) as done:
            for aid in release.assignments:
                safefs.remove_roots_leftover(done, aid)
    for aid in as_grader(release.course, _generate, release.course, release.assignments, due):
        release.progress(f"  student   {aid}")


def _register(course: Course, people: list[list[str]]) -> int:
    with course.gradebook() as gb:
        for account, first, last, email in people:
            gb.update_or_create_student(
                account, first_name=first, last_name=last, email=email or None
            )
    return len(people)


def register_trainees(release: Release) -> None:
    """Add the cohort's trainees to the gradebook and give each their own exchange folders.

    The gradebook is the grader account's file: it is written as that account.
    """
    course = release.course
    grader_uid, grader_gid = account_ids(course.grader_account)
    people = []
    for trainee in release.trainees:
        first, _, last = trainee.full_name.partition(" ")
        people.append([trainee.account, first, last, trainee.email])
    as_grader(course, _register, course, people)
    for trainee in release.trainees:
        uid, gid = account_ids(trainee.account)
        # inbound/<account>: the trainee writes, the grader group reads, nobody else can enter.
        ensure_dir(course.inbound_of(trainee.account), 0o2770, uid, grader_gid)
        # feedback/<account>: the grader writes, the trainee's own group only reads.
        ensure_dir(course.feedback_of(trainee.account), 0o2750, grader_uid, gid)
    release.progress(f"  trainees  {len(release.trainees)} with their own exchange folders")


def publish(release: Release) -> None:
    """Replace ``outbound/<assignment>/`` with the student version, readable by everyone.

    ``release/`` is the grader account's: it is read by descriptor, following no link (a link
    there could publish a root-only file to everyone), into a folder only root can enter in
    ``outbound/``, then renamed into place. The workbook's ``policy.json`` is written into the
    same staged folder, owned by the grader account, so the policy changes with the files.
    """
    course = release.course
    grader_uid, grader_gid = account_ids(course.grader_account)
    owners = _owners(course)
    with safefs.opened_dir(course.exchange, ["outbound"]) as outbound:
        for aid in release.assignments:
            with safefs.replacing_dir_at(outbound, aid, course.outbound / aid) as target:
                with safefs.opened_dir(course.root, ["release", aid], owners) as src:
                    safefs.copy_tree_at(
                        src, target, course.release / aid, owners, (0o644, 0o755),
                        grader_uid, grader_gid,
                    )  # fmt: skip
                shown = course.outbound / aid / POLICY_FILE
                policy = release.policy.text(aid)
                safefs.write_at(target, POLICY_FILE, policy, 0o644, shown, grader_uid, grader_gid)
                safefs._set_owner_mode(target, 0o755, grader_uid, grader_gid)
            release.progress(f"  released  {aid} -> {course.outbound / aid}")


#: The release pipeline, in order. Sources must exist before nbgrader generates the student
#: version; trainees are registered before publishing so that nobody sees an assignment they
#: cannot submit yet.
STEPS: list[Callable[[Release], None]] = [
    read_workbook,
    prepare_course,
    copy_sources,
    generate_student_versions,
    register_trainees,
    publish,
]


def release(release: Release) -> Release:
    """Run every release step in order."""
    with course_umask():
        for step in STEPS:
            step(release)
    return release


# --- small file-system helpers -----------------------------------------------------------------


def swap_into_place(staged: Path, final: Path) -> None:
    """Move the ``staged`` folder to ``final`` (same parent), replacing what was there.

    Two renames: the old folder is moved aside first, then the new one in. A crash between them
    leaves the old folder under ``.<name>.old-*``; :func:`recover_swaps` puts it back. The parent
    is opened once and the renames name entries of it (:func:`atelier.grading.safefs.swap_at`).
    """
    with safefs.opened_dir(final.parent) as parent:
        safefs.swap_at(parent, staged.name, final.name)


def recover_swaps(parent: Path) -> None:
    """Clean up after a crash: drop staged folders, put back an old one that lost its successor."""
    if not parent.is_dir():
        return
    with safefs.opened_dir(parent) as folder:
        safefs.recover_swaps_at(folder)
