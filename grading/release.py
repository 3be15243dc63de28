"""Release: a graded workbook becomes an nbgrader assignment per language, released to a cohort.

Rule: the graded workbook notebook is the nbgrader source; the student version is always made by
nbgrader's own ``generate_assignment`` (solutions stripped, hidden tests removed, checksums recorded
in the gradebook), never by hand. Release is an ordered list of steps (:data:`STEPS`), each
idempotent, so running it again repairs a half-done release and only replaces what changed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from atelier.grading.course import (
    Course,
    GradingError,
    Trainee,
    account_ids,
    assignment_id,
    course_umask,
    ensure,
    nbgrader_api,
    notebook_name,
)

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
    ensure(release.course)
    for parent in (release.course.source, release.course.outbound):
        recover_swaps(parent)


def copy_sources(release: Release) -> None:
    """Copy each language version (and its data/images folders) into ``source/<assignment>/``."""
    for lang in release.languages:
        aid = assignment_id(release.workbook, lang)
        staged = _staging(release.course.source, aid)
        staged.mkdir()
        shutil.copy2(release.notebooks[lang], staged / notebook_name(release.workbook, lang))
        for side in SIDE_FOLDERS:
            if (release.workbook_dir / side).is_dir():
                shutil.copytree(release.workbook_dir / side, staged / side)
        swap_into_place(staged, release.course.source / aid)
        release.progress(f"  source    {aid}")


def generate_student_versions(release: Release) -> None:
    """Run nbgrader's generate_assignment for each language (records checksums and cell ids)."""
    api = nbgrader_api(release.course)
    for aid in release.assignments:
        result = api.generate_assignment(aid, force=True, create=True)
        if not result["success"]:
            raise GradingError(
                f"nbgrader could not make the student version of {aid}:\n"
                f"{result.get('log', '')}{result.get('error', '')}"
            )
        release.progress(f"  student   {aid}")
    if release.duedate is not None:
        with release.course.gradebook() as gb:
            for aid in release.assignments:
                gb.update_or_create_assignment(aid, duedate=release.duedate)


def register_trainees(release: Release) -> None:
    """Add the cohort's trainees to the gradebook and give each their own exchange folders."""
    course = release.course
    grader_uid, grader_gid = account_ids(course.grader_account)
    with course.gradebook() as gb:
        for trainee in release.trainees:
            first, _, last = trainee.full_name.partition(" ")
            gb.update_or_create_student(
                trainee.account, first_name=first, last_name=last, email=trainee.email or None
            )
    for trainee in release.trainees:
        uid, gid = account_ids(trainee.account)
        # inbound/<account>: the trainee writes, the grader group reads, nobody else can enter.
        _own_dir(course.inbound_of(trainee.account), uid, grader_gid, 0o2770)
        # feedback/<account>: the grader writes, the trainee's own group only reads.
        _own_dir(course.feedback_of(trainee.account), grader_uid, gid, 0o2750)
    release.progress(f"  trainees  {len(release.trainees)} with their own exchange folders")


def publish(release: Release) -> None:
    """Replace ``outbound/<assignment>/`` with the student version, readable by everyone."""
    course = release.course
    grader_uid, grader_gid = account_ids(course.grader_account)
    for aid in release.assignments:
        staged = _staging(course.outbound, aid)
        shutil.copytree(course.release / aid, staged)
        for dirpath, dirnames, filenames in os.walk(staged):
            for name in filenames:
                _chown_chmod(Path(dirpath) / name, grader_uid, grader_gid, 0o644)
            for name in dirnames:
                _chown_chmod(Path(dirpath) / name, grader_uid, grader_gid, 0o755)
        _chown_chmod(staged, grader_uid, grader_gid, 0o755)
        swap_into_place(staged, course.outbound / aid)
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


def _staging(parent: Path, name: str) -> Path:
    return parent / f".{name}.tmp-{uuid.uuid4().hex[:8]}"


def swap_into_place(staged: Path, final: Path) -> None:
    """Move the ``staged`` folder to ``final``, replacing what was there.

    Two renames: the old folder is moved aside first, then the new one in. A crash between them
    leaves the old folder under ``.<name>.old-*``; :func:`recover_swaps` puts it back.
    """
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.old-{uuid.uuid4().hex[:8]}")
        os.rename(final, old)
    os.rename(staged, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def recover_swaps(parent: Path) -> None:
    """Clean up after a crash: drop staged folders, put back an old one that lost its successor."""
    if not parent.is_dir():
        return
    for entry in parent.iterdir():
        name = entry.name
        if not name.startswith("."):
            continue
        if ".tmp-" in name:
            shutil.rmtree(entry, ignore_errors=True)
        elif ".old-" in name:
            final = parent / name[1:].rsplit(".old-", 1)[0]
            if final.exists():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                os.rename(entry, final)


def _own_dir(path: Path, uid: int, gid: int, mode: int) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _chown_chmod(path, uid, gid, mode)


def _chown_chmod(path: Path, uid: int, gid: int, mode: int) -> None:
    if os.geteuid() == 0:
        os.lchown(path, uid, gid)
    os.chmod(path, mode)
