"""Root's ``atelier grade`` does nbgrader's file work in a cohort's course as its grader account.

The course folder belongs to the grader account ``<prefix>grader-C`` (formgrader runs as it, and a
facilitator's code there runs as it). Before issue 15, root's grading processes copied
``submitted/`` to ``autograded/`` following links, and wrote and deleted autograded folders, as
root: a link the grader account planted made root copy a root-only file into the autograded
folder (and into the sandbox, where the trainee's code printed it into feedback), or write and
delete where that account cannot. Each attack here is planted as the grader account (``runuser``);
one root-run ``atelier grade --cohort`` grades them all with an honest trainee, and each test
checks one of them: no root-only byte reaches the course, nothing outside it changes, the honest
trainee is graded and the attacked trainee gets a message naming the problem.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest
from harness import FIXTURES
from hubs import HUB_ROSTER, running_hub

pytestmark = pytest.mark.server

RUNUSER = "/usr/sbin/runuser"
ASSIGNMENT = "quiz-en"
SECRET = "root-only-" + uuid.uuid4().hex
#: A first cell added to every submission: prints every file the sandbox shows it, so a root-only
#: file copied into the sandbox would end up in the autograded notebook (and in feedback).
SHOW_ALL = """import os
for folder, _, names in os.walk('.', followlinks=True):
    for name in names:
        try:
            print(name, open(os.path.join(folder, name), errors='replace').read())
        except OSError as error:
            print(name, error)
"""
#: trainee -> what the grader account planted for them.
ATTACKS = {
    "honest": "nothing",
    "filelink": "submitted/<t>/quiz-en/notes.txt -> a root-only file",
    "dirlink": "submitted/<t>/quiz-en -> a root-only folder (holding a notebook)",
    "nblink": "submitted/<t>/quiz-en/quiz.en.ipynb -> a root-only notebook",
    "studentlink": "autograded/<t> -> a root-only folder",
}


def as_grader(course, code: str, stdin: str = "") -> None:
    """Run Python ``code`` as the course's grader account (what its own code could do)."""
    done = subprocess.run(
        [RUNUSER, "-u", course.grader_account, "--", sys.executable, "-c", code],
        input=stdin,
        capture_output=True,
        text=True,
        cwd="/",
        timeout=60,
    )
    assert done.returncode == 0, done.stderr


def secret_notebook(released: Path) -> str:
    """The released notebook with a root-only note: a notebook only root may read."""
    nb = nbformat.read(released, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_markdown_cell(SECRET))
    return nbformat.writes(nb)


def root_folder(files: dict[str, str]) -> Path:
    """A folder only root can enter, holding ``files`` (mode 0600)."""
    folder = Path(tempfile.mkdtemp(prefix="atelier-rootonly-"))
    folder.chmod(0o700)
    for name, text in files.items():
        (folder / name).write_text(text)
        (folder / name).chmod(0o600)
    return folder


def snapshot(folder: Path) -> dict:
    """Names, modes, owners and contents below ``folder`` (not following links)."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        st = path.lstat()
        seen[str(path.relative_to(folder))] = (
            st.st_mode,
            st.st_uid,
            path.read_bytes() if path.is_file() and not path.is_symlink() else None,
        )
    st = folder.lstat()
    seen["."] = (st.st_mode, st.st_uid, None)
    return seen


def all_bytes(folder: Path) -> bytes:
    """Every regular file's bytes below ``folder`` (not following links)."""
    data = b""
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data += path.read_bytes()
    return data


def plant(course, prefix: str, folders: dict[str, Path]) -> None:
    """As the grader account: one submission per trainee, then each trainee's attack."""
    released = course.root / "release" / ASSIGNMENT / "quiz.en.ipynb"
    nb = nbformat.read(released, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell(SHOW_ALL))
    text = nbformat.writes(nb)
    secret = folders["secret"] / "secret.txt"
    code = f"""
import os, sys
text = sys.stdin.read()
root = {str(course.root)!r}
def t(name):
    return {prefix!r} + name
for name in {list(ATTACKS)!r}:
    folder = os.path.join(root, "submitted", t(name), {ASSIGNMENT!r})
    if name == "dirlink":
        os.makedirs(os.path.dirname(folder))
        os.symlink({str(folders["secret"])!r}, folder)
        continue
    os.makedirs(folder)
    if name == "nblink":
        os.symlink({str(folders["secret"] / "quiz.en.ipynb")!r},
                   os.path.join(folder, "quiz.en.ipynb"))
        continue
    open(os.path.join(folder, "quiz.en.ipynb"), "w").write(text)
os.symlink({str(secret)!r}, os.path.join(root, "submitted", t("filelink"), {ASSIGNMENT!r},
           "notes.txt"))
os.symlink({str(folders["student"])!r}, os.path.join(root, "autograded", t("studentlink")))
"""
    as_grader(course, code, text)


@pytest.fixture(scope="module")
def graded():
    """One root-run ``atelier grade --cohort x`` over every planted attack."""
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    folders = {
        "secret": root_folder({"secret.txt": SECRET}),
        "student": root_folder({}),
    }
    try:
        with running_hub(roster=HUB_ROSTER, start=False) as hub:
            hub.atelier("release", str(FIXTURES / "grading" / "01-quiz"), "--cohort=x")
            course = Course.from_settings(load_settings(hub.settings_path), "x")
            released = course.root / "release" / ASSIGNMENT / "quiz.en.ipynb"
            notebook = folders["secret"] / "quiz.en.ipynb"
            notebook.write_text(secret_notebook(released))
            notebook.chmod(0o600)
            plant(course, hub.prefix, folders)
            before = {name: snapshot(folder) for name, folder in folders.items()}
            top = {path.name for path in course.root.iterdir()}
            outcomes_file = hub.root / "outcomes.json"
            result = hub.atelier(
                "grade",
                ASSIGNMENT,
                "--cohort=x",
                "--no-progress",
                f"--outcomes-json={outcomes_file}",
                check=False,
            )
            outcomes = {}
            if outcomes_file.exists():
                for outcome in json.loads(outcomes_file.read_text()):
                    outcomes[outcome["student"].removeprefix(hub.prefix)] = outcome
            yield {
                "hub": hub,
                "course": course,
                "result": result,
                "outcomes": outcomes,
                "folders": folders,
                "before": before,
                "top": top,
            }
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)


def no_secret(graded, trainee: str = "") -> None:
    """No root-only byte in ``trainee``'s autograded folder (all, if not given) or the gradebook."""
    course = graded["course"]
    where = [p for p in course.root.glob("gradebook.db*") if p.is_file() and not p.is_symlink()]
    folder = course.root / "autograded" / (graded["hub"].prefix + trainee if trainee else "")
    if trainee:
        where += [p for p in folder.rglob("*") if p.is_file() and not p.is_symlink()]
    else:
        where = [p for p in course.root.rglob("*") if p.is_file() and not p.is_symlink()]
    leaked = [str(path) for path in where if SECRET.encode() in path.read_bytes()]
    assert not leaked, f"root-only content copied into the course: {leaked}"


def unchanged(graded, name: str) -> None:
    folder = graded["folders"][name]
    assert snapshot(folder) == graded["before"][name], f"root changed {folder}"


def test_the_honest_trainee_is_graded(graded):
    """Are the other trainees graded, whatever the attacks next to them?"""
    assert "Traceback" not in graded["result"].stderr, graded["result"].stderr[-3000:]
    outcome = graded["outcomes"].get("honest")
    assert outcome and outcome["status"] == "graded", (graded["outcomes"], graded["result"])
    autograded = graded["course"].root / "autograded"
    assert any(autograded.glob(f"*honest/{ASSIGNMENT}/quiz.en.ipynb"))


def test_link_to_a_root_only_file_in_a_submission_is_not_copied(graded):
    """submitted/<t>/<a>/notes.txt -> root-only file: not in autograded/, sandbox or gradebook."""
    no_secret(graded, "filelink")
    unchanged(graded, "secret")
    outcome = graded["outcomes"]["filelink"]
    assert outcome["status"] == "error", outcome
    assert "notes.txt: permission denied" in outcome["reason"], outcome


def test_submission_folder_linked_to_a_root_only_folder_is_not_read(graded):
    """submitted/<t>/<a> -> root-only folder with a notebook: nothing of it read or copied."""
    no_secret(graded, "dirlink")
    unchanged(graded, "secret")
    outcome = graded["outcomes"]["dirlink"]
    assert outcome["status"] == "error", outcome
    assert f"{ASSIGNMENT}: no notebook found there by" in outcome["reason"], outcome


def test_notebook_linked_to_a_root_only_notebook_is_not_read(graded):
    """submitted/<t>/<a>/quiz.en.ipynb -> root-only notebook: its content goes nowhere."""
    no_secret(graded, "nblink")
    outcome = graded["outcomes"]["nblink"]
    assert outcome["status"] == "error", outcome
    assert "quiz.en.ipynb: permission denied" in outcome["reason"], outcome


def test_trainee_autograded_folder_linked_elsewhere_gets_nothing_written(graded):
    """autograded/<t> -> root-only folder: root writes nothing there."""
    unchanged(graded, "student")
    outcome = graded["outcomes"]["studentlink"]
    assert outcome["status"] == "error", outcome
    assert outcome["reason"], outcome


def test_nothing_root_only_anywhere_in_the_course(graded):
    """Not one root-only byte anywhere in the course after grading every attack."""
    no_secret(graded)


@pytest.mark.parametrize("options", [[], ["--notebook=quiz.en"]], ids=["whole", "filtered"])
def test_autograded_folder_linked_elsewhere_is_not_written_or_deleted(graded, options):
    """autograded/<t>/<a> -> root-only folder (graded whole, or with --notebook): unchanged."""
    hub, course = graded["hub"], graded["course"]
    folder = root_folder({"quiz.en.ipynb": "root's notebook\n", "keep.txt": "root's own\n"})
    try:
        before = snapshot(folder)
        trainee = hub.prefix + "destlink" + str(len(options))
        released = course.root / "release" / ASSIGNMENT / "quiz.en.ipynb"
        code = f"""
import os, shutil
root = {str(course.root)!r}
os.makedirs(os.path.join(root, "submitted", {trainee!r}, {ASSIGNMENT!r}))
shutil.copy({str(released)!r}, os.path.join(root, "submitted", {trainee!r}, {ASSIGNMENT!r}))
os.makedirs(os.path.join(root, "autograded", {trainee!r}))
os.symlink({str(folder)!r}, os.path.join(root, "autograded", {trainee!r}, {ASSIGNMENT!r}))
"""
        as_grader(course, code)
        result = hub.atelier(
            "grade",
            ASSIGNMENT,
            "--cohort=x",
            "--no-progress",
            f"--students={trainee}",
            *options,
            check=False,
        )
        assert snapshot(folder) == before, "root deleted or wrote through the link"
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        assert trainee in result.stdout and "error" in result.stdout, result.stdout
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_link_in_the_assignment_source_is_not_copied_to_trainees(graded):
    """source/<a>/extra.csv -> root-only file: not copied into any autograded folder or sandbox."""
    hub, course = graded["hub"], graded["course"]
    trainee = hub.prefix + "sourcelink"
    released = course.root / "release" / ASSIGNMENT / "quiz.en.ipynb"
    link = course.root / "source" / ASSIGNMENT / "extra.csv"
    folder = course.root / "submitted" / trainee / ASSIGNMENT
    code = f"""
import os, shutil
os.makedirs({str(folder)!r})
shutil.copy({str(released)!r}, {str(folder)!r})
os.symlink({str(graded["folders"]["secret"] / "secret.txt")!r}, {str(link)!r})
"""
    as_grader(course, code)
    try:
        result = hub.atelier(
            "grade", ASSIGNMENT, "--cohort=x", "--no-progress", f"--students={trainee}", check=False
        )
    finally:
        as_grader(course, f"import os; os.unlink({str(link)!r})")
    no_secret(graded, "sourcelink")
    line = next((row for row in result.stdout.splitlines() if row.startswith(trainee)), "")
    assert "error" in line and "extra.csv: permission denied" in line, result.stdout


def test_without_sandbox_submissions_run_as_the_grader_account_not_root(graded):
    """--no-sandbox on a cohort: the submission's code runs as the grader account, never root."""
    import pwd

    hub, course = graded["hub"], graded["course"]
    trainee = hub.prefix + "nosandbox"
    released = course.root / "release" / ASSIGNMENT / "quiz.en.ipynb"
    nb = nbformat.read(released, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("import os\nprint('uid', os.geteuid())"))
    folder = course.root / "submitted" / trainee / ASSIGNMENT
    as_grader(
        course,
        f"import os, sys; os.makedirs({str(folder)!r}); "
        f"open({str(folder / 'quiz.en.ipynb')!r}, 'w').write(sys.stdin.read())",
        nbformat.writes(nb),
    )
    result = hub.atelier(
        "grade",
        ASSIGNMENT,
        "--cohort=x",
        "--no-progress",
        "--no-sandbox",
        f"--students={trainee}",
        check=False,
    )
    autograded = course.root / "autograded" / trainee / ASSIGNMENT / "quiz.en.ipynb"
    assert autograded.exists(), (result.stdout, result.stderr[-3000:])
    printed = nbformat.read(autograded, as_version=4).cells[0].outputs[0]["text"]
    assert printed.split() == ["uid", str(pwd.getpwnam(course.grader_account).pw_uid)], printed


def test_grading_processes_are_not_root(graded):
    """Autograded files are the grader account's: the copying and writing were done as it."""
    import pwd

    course = graded["course"]
    grader = pwd.getpwnam(course.grader_account).pw_uid
    written = list((course.root / "autograded").glob(f"*honest/{ASSIGNMENT}/*"))
    assert written
    assert {path.lstat().st_uid for path in written} == {grader}
    # Its home is the course: nothing of its own (caches, settings) is left there.
    assert {path.name for path in course.root.iterdir()} - graded["top"] <= {"autograded"}
    assert os.geteuid() == 0


def test_gradebook_linked_to_a_root_only_database_is_not_opened_by_root(graded):
    """gradebook.db -> root's own SQLite file: left as it was; the run stops, naming the cause."""
    import sqlite3

    hub, course = graded["hub"], graded["course"]
    folder = root_folder({})
    database = folder / "hub.sqlite"
    with sqlite3.connect(database) as con:
        con.execute("CREATE TABLE users (name TEXT)")
        con.execute("INSERT INTO users VALUES ('admin')")
    con.close()
    database.chmod(0o600)
    before = snapshot(folder)
    saved = course.gradebook_path.with_name("gradebook.saved")
    code = f"""
import os
os.rename({str(course.gradebook_path)!r}, {str(saved)!r})
os.symlink({str(database)!r}, {str(course.gradebook_path)!r})
"""
    as_grader(course, code)
    try:
        result = hub.atelier(
            "grade", ASSIGNMENT, "--cohort=x", "--no-progress", "--force", check=False
        )
        assert snapshot(folder) == before, "root opened the database the link points to"
        assert result.returncode != 0
        assert "gradebook" in (result.stdout + result.stderr), result
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
    finally:
        as_grader(
            course,
            f"import os; os.unlink({str(course.gradebook_path)!r}); "
            f"os.rename({str(saved)!r}, {str(course.gradebook_path)!r})",
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_root_lists_no_folder_the_grader_account_linked_to(graded):
    """Is nothing of a root-only folder listed when submitted/ is a link to it?

    Root's command only reads the names the grader account reports (it lists the course as that
    account), so a link cannot make it reveal what a root-only folder holds.
    """
    hub, course = graded["hub"], graded["course"]
    hidden = hub.prefix + "hidden" + uuid.uuid4().hex[:8]
    folder = root_folder({})
    (folder / hidden / ASSIGNMENT).mkdir(parents=True)
    released = course.root / "release" / ASSIGNMENT / "quiz.en.ipynb"
    shutil.copy(released, folder / hidden / ASSIGNMENT / "quiz.en.ipynb")
    submitted = course.root / "submitted"
    saved = course.root / "submitted.saved"
    as_grader(
        course,
        f"import os; os.rename({str(submitted)!r}, {str(saved)!r}); "
        f"os.symlink({str(folder)!r}, {str(submitted)!r})",
    )
    try:
        before = snapshot(folder)
        result = hub.atelier("grade", ASSIGNMENT, "--cohort=x", "--no-progress", check=False)
        assert hidden not in result.stdout + result.stderr, result.stdout
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
        assert snapshot(folder) == before
    finally:
        as_grader(
            course,
            f"import os; os.unlink({str(submitted)!r}); "
            f"os.rename({str(saved)!r}, {str(submitted)!r})",
        )
        shutil.rmtree(folder, ignore_errors=True)
