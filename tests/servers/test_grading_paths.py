"""Root never follows a path another account can change: collect's race, the course's own files.

Real Unix accounts (two trainees and the course's grader account) and a real course on disk; the
root-run steps (collect, the course set-up every verb runs, returning feedback) are called in this
process, which is root, as ``atelier collect`` and ``atelier feedback`` call them. Each attack is
made by the account that could make it (``runuser``), except hard links and device files, which a
trainee cannot make here (``fs.protected_hardlinks``, no ``CAP_MKNOD``) and root plants for them to
stand for a machine where they could.

Races are made certain with collect's test hook
(:data:`atelier.grading.exchange.collect.before_copy`), which runs the attack after collect has
checked a submission and before it copies it; a bounded attacker loop (a trainee exchanging a folder
and a link with ``renameat2`` as fast as it can) checks the same without the hook.
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import yaml
from harness import BIN

pytestmark = pytest.mark.server

RUNUSER = "/usr/sbin/runuser"
SECRET = "root-only-" + uuid.uuid4().hex
ASSIGNMENT = "quiz-en"

#: Exchange two names atomically (renameat2 RENAME_EXCHANGE), what a racing trainee uses.
EXCHANGE = """
import ctypes, os
_libc = ctypes.CDLL(None, use_errno=True)
def exchange(a, b):
    if _libc.renameat2(-100, a.encode(), -100, b.encode(), 2) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), a)
"""


class Course:
    """A cohort's course, two trainees (alice attacks, bruno is honest) and a root-only folder."""

    def __init__(self, base: Path):
        self.base = base
        self.prefix = "p" + uuid.uuid4().hex[:4] + "-"
        self.cohort = "c" + uuid.uuid4().hex[:6]
        self.accounts: list[str] = []

    def account(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def run_as(self, account: str, code: str, wait: bool = True):
        """Run Python ``code`` as ``account`` (the attacker's own process)."""
        command = [RUNUSER, "-u", account, "--", str(BIN / "python"), "-c", textwrap.dedent(code)]
        if not wait:  # its own session, so that stop() ends runuser and the Python it runs
            return subprocess.Popen(
                command, cwd="/", stdout=subprocess.PIPE, text=True, start_new_session=True
            )
        done = subprocess.run(command, cwd="/", capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done

    def submit(self, name: str, files: dict[str, str], folders: tuple[str, ...] = ()) -> Path:
        """A submission folder in ``name``'s inbound folder, owned by that trainee."""
        account = self.account(name)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S.000000 UTC", time.gmtime())
        folder = (
            self.course.inbound_of(account)
            / f"{account}+{ASSIGNMENT}+{stamp}+{uuid.uuid4().hex[:6]}"
        )
        folder.mkdir(0o750)
        for sub in folders:
            (folder / sub).mkdir(0o750, parents=True)
        for relpath, text in files.items():
            (folder / relpath).parent.mkdir(0o750, parents=True, exist_ok=True)
            (folder / relpath).write_text(text)
        uid, _ = self.ids[account]
        for path in [folder, *folder.rglob("*")]:
            os.lchown(path, uid, -1)  # the group stays the grader's, as the inbound folder sets
        return folder

    def collect(self):
        from atelier.grading.exchange.collect import collect

        messages: list[str] = []
        result = collect(self.course, ASSIGNMENT, self.trainees, self.limits, messages.append)
        return result, messages

    def collected(self, name: str) -> Path:
        return self.course.submission_dir(self.account(name), ASSIGNMENT)


@pytest.fixture(scope="module")
def course():
    """A course on disk (grader account, folders, gradebook) and two trainees' exchange folders."""
    from atelier.accounts import AccountPolicy, create_account
    from atelier.grading.course import Course as GradingCourse
    from atelier.grading.courses.folders import ensure
    from atelier.grading.courses.graderaccount import account_ids
    from atelier.grading.courses.people import Trainee
    from atelier.grading.exchange.collect import Limits
    from atelier.settings import load_settings

    base = Path(tempfile.mkdtemp(prefix="atelier-paths-", dir="/tmp"))
    os.chmod(base, 0o755)
    c = Course(base)
    settings_file = base / "settings.yaml"
    settings_file.write_text(
        yaml.safe_dump(
            {
                "hub": {"state_dir": str(base / "state")},
                "accounts": {"prefix": c.prefix, "home_root": str(base / "home")},
                "grading": {
                    "courses_root": str(base / "courses"),
                    "exchange_root": str(base / "exchange"),
                },
            }
        )
    )
    settings = load_settings(settings_file)
    policy = AccountPolicy.from_settings(settings)
    c.course = GradingCourse.from_settings(settings, c.cohort)
    try:
        for name in ("alice", "bruno"):
            create_account(policy, name)
            c.accounts.append(c.account(name))
        ensure(c.course)
        c.accounts.append(c.course.grader_account)
        c.ids = {a: account_ids(a) for a in c.accounts}
        grader_uid, grader_gid = c.ids[c.course.grader_account]
        for name in ("alice", "bruno"):
            uid, gid = c.ids[c.account(name)]
            inbound = c.course.inbound_of(c.account(name))
            inbound.mkdir()
            os.chown(inbound, uid, grader_gid)
            os.chmod(inbound, 0o2770)
            feedback = c.course.feedback_of(c.account(name))
            feedback.mkdir()
            os.chown(feedback, grader_uid, gid)
            os.chmod(feedback, 0o2750)
        c.trainees = [Trainee(n, c.account(n), "en") for n in ("alice", "bruno")]
        c.limits = Limits(max_bytes=100_000, max_files=20, max_submissions=50)
        c.secret_dir = base / "root-only"
        c.secret_dir.mkdir(0o700)
        (c.secret_dir / "secret.txt").write_text(SECRET)
        os.chmod(c.secret_dir / "secret.txt", 0o600)
        c.submit("bruno", {"quiz.en.ipynb": "bruno's answers"})
        yield c
    finally:
        for account in c.accounts:
            subprocess.run(["userdel", "--remove", account], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def fresh(course):
    """Alice starts with an empty inbound folder and nothing collected; the hook is unset."""
    import atelier.grading.exchange.collect as collect_module

    inbound = course.course.inbound_of(course.account("alice"))
    for entry in inbound.iterdir():
        if entry.is_symlink() or not entry.is_dir():
            entry.unlink()
        else:
            shutil.rmtree(entry)
    shutil.rmtree(course.course.submitted / course.account("alice"), ignore_errors=True)
    yield course
    collect_module.before_copy = None
    for entry in course.secret_dir.iterdir():
        if entry.name != "secret.txt":
            entry.unlink()


def _nothing_of_root_in(folder: Path) -> None:
    """Nothing collected is a link, a special file, or holds the root-only file's content."""
    if not folder.exists():
        return
    for path in [folder, *folder.rglob("*")]:
        info = os.lstat(path)
        assert stat.S_ISDIR(info.st_mode) or stat.S_ISREG(info.st_mode), f"{path} was collected"
        if stat.S_ISREG(info.st_mode):
            assert SECRET not in path.read_text(errors="replace"), f"{path} holds a root-only file"


def _refused_alone(course, result, messages, where: str) -> None:
    """Alice is refused with a message naming her and the path; bruno is still collected."""
    alice = course.account("alice")
    assert result.outcome[alice] == "rejected", messages
    (refused,) = [c for c in result.rejected if c.account == alice]
    assert where in refused.problem, refused.problem
    assert any(alice in m and "rejected" in m for m in messages), messages
    assert result.outcome[course.account("bruno")] in ("new", "unchanged")
    assert "bruno's answers" in (course.collected("bruno") / "quiz.en.ipynb").read_text()
    _nothing_of_root_in(course.collected("alice"))


def _trainee_swap(course, code: str):
    """A before_copy hook that runs ``code`` as alice (``sub`` is her submission's path)."""

    def hook(candidate):
        if candidate.account == course.account("alice"):
            course.run_as(
                course.account("alice"),
                EXCHANGE
                + f"sub = {str(candidate.path)!r}\nsecret = {str(course.secret_dir)!r}\n"
                + textwrap.dedent(code),
            )

    return hook


#: Attacks a trainee runs between collect's check and its copy: (id, setup, attack, path named).
TRAINEE_RACES = [
    (
        "top-level-folder-becomes-a-link",
        {},
        """
        os.symlink(secret, sub + ".l")
        exchange(sub, sub + ".l")
        """,
        "is a symbolic link",
    ),
    (
        "nested-folder-becomes-a-link",
        {"work/data/notes.txt": "mine"},
        """
        os.symlink(secret, os.path.dirname(sub) + "/l")
        exchange(sub + "/work/data", os.path.dirname(sub) + "/l")
        """,
        "work/data",
    ),
    (
        "file-becomes-a-link",
        {},
        """
        os.symlink(secret + "/secret.txt", os.path.dirname(sub) + "/l")
        exchange(sub + "/quiz.en.ipynb", os.path.dirname(sub) + "/l")
        """,
        "quiz.en.ipynb",
    ),
    (
        "file-becomes-a-named-pipe",
        {},
        """
        os.mkfifo(sub + "/answers.txt")
        """,
        "answers.txt",
    ),
    (
        "folder-becomes-a-file",
        {"work/notes.txt": "mine"},
        """
        import shutil
        shutil.rmtree(sub + "/work")
        open(sub + "/work", "w").write("now a file")
        """,
        "work",
    ),
    (
        "entry-vanishes",
        {"work/notes.txt": "mine"},
        """
        import shutil
        shutil.rmtree(sub)
        """,
        "does not exist",
    ),
    (
        "file-grows-beyond-the-limit",
        {},
        """
        open(sub + "/quiz.en.ipynb", "a").write("x" * 200_000)
        """,
        "100000 bytes",
    ),
    (
        "files-added-beyond-the-limit",
        {},
        """
        for i in range(30):
            open(sub + f"/extra{i}.txt", "w").write("x")
        """,
        "extra0.txt",
    ),
]


@pytest.mark.parametrize(
    "setup, attack, where", [r[1:] for r in TRAINEE_RACES], ids=[r[0] for r in TRAINEE_RACES]
)
def test_a_submission_changed_between_check_and_copy_is_refused_for_that_trainee_alone(
    fresh, setup, attack, where
):
    """Does a submission a trainee changes after collect checked it get refused, alone, by name?"""
    import atelier.grading.exchange.collect as collect_module

    fresh.submit("alice", {"quiz.en.ipynb": "alice's answers", **setup}, ("work",))
    collect_module.before_copy = _trainee_swap(fresh, attack)
    result, messages = fresh.collect()
    _refused_alone(fresh, result, messages, where)
    assert not fresh.collected("alice").exists()


def _root_plants(course, make):
    def hook(candidate):
        if candidate.account == course.account("alice"):
            make(candidate.path)

    return hook


def test_a_hard_link_to_a_root_only_file_is_refused(fresh):
    """Is a hard link to a file the trainee does not own, added after the check, never copied?"""
    import atelier.grading.exchange.collect as collect_module

    fresh.submit("alice", {"quiz.en.ipynb": "alice's answers"})
    collect_module.before_copy = _root_plants(
        fresh, lambda sub: os.link(fresh.secret_dir / "secret.txt", sub / "notes.txt")
    )
    result, messages = fresh.collect()
    _refused_alone(fresh, result, messages, "notes.txt")


def test_a_hard_link_the_trainee_owns_is_refused(fresh):
    """Is a second name for one file refused (collect reads a file it saw through one name only)?"""
    import atelier.grading.exchange.collect as collect_module

    sub = fresh.submit("alice", {"quiz.en.ipynb": "alice's answers"})
    outside = fresh.course.inbound_of(fresh.account("alice")) / "elsewhere.txt"
    collect_module.before_copy = _root_plants(
        fresh, lambda sub: os.link(sub / "quiz.en.ipynb", outside)
    )
    result, messages = fresh.collect()
    _refused_alone(fresh, result, messages, "hard links")
    assert sub.exists()


def test_a_device_file_is_refused_without_being_opened(fresh):
    """Is a device node (here /dev/null's) in a submission refused, never opened or read?"""
    import atelier.grading.exchange.collect as collect_module

    fresh.submit("alice", {"quiz.en.ipynb": "alice's answers"})
    uid, gid = fresh.ids[fresh.account("alice")]

    def plant(sub):
        os.mknod(sub / "zero", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
        os.lchown(sub / "zero", uid, gid)

    collect_module.before_copy = _root_plants(fresh, plant)
    result, messages = fresh.collect()
    _refused_alone(fresh, result, messages, "character device")


def test_nesting_too_deep_for_a_path_is_refused_and_the_rest_collected(fresh):
    """Is a submission nested deeper than any path can name refused, without a traceback?"""
    sub = fresh.submit("alice", {"quiz.en.ipynb": "alice's answers"})
    uid, gid = fresh.ids[fresh.account("alice")]
    fd = os.open(sub, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(800):  # 800 levels of 'level/': longer than PATH_MAX
        os.mkdir("level", 0o750, dir_fd=fd)
        os.chown("level", uid, gid, dir_fd=fd, follow_symlinks=False)
        child = os.open("level", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.close(fd)
    result, messages = fresh.collect()
    _refused_alone(fresh, result, messages, "nested deeper than")


def test_a_trainee_racing_with_renames_never_gets_a_root_file_in(fresh):
    """With a trainee exchanging a sub-folder and a link in a loop, does collect hold every run?"""
    sub = fresh.submit(
        "alice", {"quiz.en.ipynb": "alice's answers", "work/a.txt": "mine"}, ("work",)
    )
    attacker = fresh.run_as(
        fresh.account("alice"),
        EXCHANGE
        + f"""
import time
sub, secret = {str(sub)!r}, {str(fresh.secret_dir)!r}
link = os.path.dirname(sub) + "/l"  # beside the submission: its checks see no link
os.symlink(secret, link)
print("ready", flush=True)
end = time.monotonic() + 20
while time.monotonic() < end:
    exchange(sub + "/work", link)
""",
        wait=False,
    )
    try:
        assert attacker.stdout.readline().strip() == "ready"
        outcomes = []
        for _ in range(40):
            result, _messages = fresh.collect()
            outcomes.append(result.outcome[fresh.account("alice")])
            assert result.outcome[fresh.account("bruno")] in ("new", "unchanged")
            _nothing_of_root_in(fresh.collected("alice"))
    finally:
        _stop(attacker)
    assert set(outcomes) <= {"new", "rejected", "unchanged"}


# --- the course's own files: what the grader account can change -----------------------------


def _stop(process) -> None:
    """End an attacker started by :meth:`Course.run_as` (its whole process group)."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    process.stdout.close()


def _as_grader(course, code: str):
    return course.run_as(
        course.course.grader_account,
        f"secret = {str(course.secret_dir)!r}\nroot = {str(course.course.root)!r}\n"
        + textwrap.dedent(code),
    )


def _root_only_folder_untouched(course) -> None:
    info = os.stat(course.secret_dir)
    assert (info.st_uid, stat.S_IMODE(info.st_mode)) == (0, 0o700), "root-only folder was changed"
    assert sorted(os.listdir(course.secret_dir)) == ["secret.txt"], "root made a file in it"
    secret = os.stat(course.secret_dir / "secret.txt")
    assert secret.st_uid == 0 and (course.secret_dir / "secret.txt").read_text() == SECRET


@pytest.fixture
def repaired(fresh):
    """Whatever a test's grader did to the course is undone afterwards (as a facilitator would)."""
    yield fresh
    from atelier.grading.courses.folders import ensure

    root = fresh.course.root
    for name in ("log", "submitted"):
        if (root / name).is_symlink():
            (root / name).unlink()
    for path in (root / "log" / "receipts.jsonl", root / "gradebook.db-shm"):
        if path.is_symlink():
            path.unlink()
    for path in (fresh.course.submitted / fresh.account("alice"),):
        if path.is_symlink():
            path.unlink()
    ensure(fresh.course)
    _root_only_folder_untouched(fresh)


def test_a_receipts_log_replaced_by_a_link_is_not_followed(repaired):
    """Does collect refuse, naming the log, when the grader replaced it with a link?"""
    from atelier.errors import AtelierError

    repaired.submit("alice", {"quiz.en.ipynb": "alice's answers"})
    _as_grader(
        repaired,
        """
        import os
        os.replace(root + "/log/receipts.jsonl", root + "/log/old.jsonl") if os.path.exists(
            root + "/log/receipts.jsonl") else None
        os.symlink(secret + "/made-by-root.jsonl", root + "/log/receipts.jsonl")
        """,
    )
    with pytest.raises(AtelierError, match=r"receipts\.jsonl: is a symbolic link"):
        repaired.collect()
    _root_only_folder_untouched(repaired)


def test_a_log_folder_replaced_by_a_link_is_not_followed(repaired):
    """Does the course set-up refuse a log folder the grader replaced with a link to root's?"""
    from atelier.errors import AtelierError

    _as_grader(
        repaired,
        """
        import os
        os.rename(root + "/log", root + "/log.old")
        os.symlink(secret, root + "/log")
        """,
    )
    with pytest.raises(AtelierError, match="/log: is a symbolic link"):
        repaired.collect()
    _root_only_folder_untouched(repaired)
    shutil.rmtree(repaired.course.root / "log.old")


def test_a_trainees_submitted_folder_replaced_by_a_link_is_not_followed(repaired):
    """Is a collected copy never written through a link the grader put in submitted/?"""
    repaired.submit("alice", {"quiz.en.ipynb": "alice's answers"})
    _as_grader(
        repaired,
        f"""
        import os, shutil
        target = root + "/submitted/{repaired.account("alice")}"
        shutil.rmtree(target, ignore_errors=True)
        os.symlink(secret, target)
        """,
    )
    result, messages = repaired.collect()
    assert result.outcome[repaired.account("alice")] == "rejected", messages
    (refused,) = [c for c in result.rejected if c.account == repaired.account("alice")]
    assert "is a symbolic link" in refused.problem
    assert result.outcome[repaired.account("bruno")] in ("new", "unchanged")
    _root_only_folder_untouched(repaired)


def test_a_gradebook_file_replaced_by_a_link_is_not_chowned(repaired):
    """Does the course set-up refuse a gradebook -shm file the grader linked to a root file?"""
    from atelier.errors import AtelierError
    from atelier.grading.courses.folders import ensure

    _as_grader(
        repaired,
        """
        import os
        shm = root + "/gradebook.db-shm"
        if os.path.lexists(shm):
            os.unlink(shm)
        os.symlink(secret + "/secret.txt", shm)
        """,
    )
    with pytest.raises(AtelierError, match=r"gradebook\.db-shm: is a symbolic link"):
        ensure(repaired.course)
    _root_only_folder_untouched(repaired)


def _feedback_ready(course):
    """Alice's collected submission with its secret and a generated feedback file."""
    from atelier.grading.courses.graderaccount import account_ids

    submission = course.collected("alice")
    submission.mkdir(parents=True, exist_ok=True)
    (submission / "submission_secret.txt").write_text("s3cret")
    generated = course.course.feedback / course.account("alice") / ASSIGNMENT
    generated.mkdir(parents=True, exist_ok=True)
    uid, gid = account_ids(course.course.grader_account)
    for path in (generated.parent, generated):
        os.chown(path, uid, gid)
    return generated


def test_feedback_never_returns_a_file_the_grader_linked_to_root_s(repaired):
    """Is a generated feedback file the grader replaced with a link to root's never returned?"""
    from atelier.grading.exchange.feedback import feedback_files, return_feedback

    generated = _feedback_ready(repaired)
    _as_grader(
        repaired,
        f"""
        import os
        os.symlink(secret + "/secret.txt", {str(generated / "quiz.en.html")!r})
        """,
    )
    trainees = [t for t in repaired.trainees if t.username == "alice"]
    messages: list[str] = []
    returned = return_feedback(repaired.course, ASSIGNMENT, trainees, messages.append)
    assert returned[repaired.account("alice")] == 0
    assert any("quiz.en.html: is a symbolic link" in m for m in messages), messages
    for path in feedback_files(repaired.course, repaired.account("alice")):
        assert SECRET not in path.read_text()
    os.unlink(generated / "quiz.en.html")


def test_feedback_never_changes_the_owner_of_what_the_grader_links_in(repaired):
    """Does root never hand a root-only file to the grader, racing with feedback's owner change?

    The grader swaps a link into the trainee's feedback folder in a loop while root returns
    feedback (which sets each file's owner) again and again.
    """
    from nbgrader.utils import notebook_hash

    from atelier.grading.exchange.feedback import return_feedback

    generated = _feedback_ready(repaired)
    (generated / "quiz.en.html").write_text("<p>well done</p>")
    name = notebook_hash(secret="s3cret", notebook_id="quiz.en") + ".html"
    target = repaired.course.feedback_of(repaired.account("alice")) / name
    attacker = _as_grader_loop(repaired, target)
    try:
        trainees = [t for t in repaired.trainees if t.username == "alice"]
        for _ in range(300):
            return_feedback(repaired.course, ASSIGNMENT, trainees, lambda _: None)
            assert os.stat(repaired.secret_dir / "secret.txt").st_uid == 0, "chowned root's file"
    finally:
        _stop(attacker)
    os.unlink(generated / "quiz.en.html")


def _as_grader_loop(course, target: Path):
    """The grader, in a loop, puts a link to root's file where feedback is being written."""
    return course.run_as(
        course.course.grader_account,
        f"""
import os, time
target, link = {str(target)!r}, {str(target) + ".l"!r}
end = time.monotonic() + 30
while time.monotonic() < end:
    try:
        os.symlink({str(course.secret_dir / "secret.txt")!r}, link)
        os.rename(link, target)
    except OSError:
        pass
""",
        wait=False,
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))


def test_release_never_publishes_a_file_the_grader_linked_to_root_s(repaired):
    """Does publishing refuse a link in release/ rather than show root's file to everyone?"""
    from atelier.errors import AtelierError
    from atelier.grading.exchange.release import Release, publish

    course = repaired.course
    student = course.release / ASSIGNMENT
    _as_grader(
        repaired,
        f"""
        import os
        os.makedirs({str(student)!r}, exist_ok=True)
        open({str(student / "quiz.en.ipynb")!r}, "w").write("{{}}")
        os.symlink(secret + "/secret.txt", {str(student / "notes.txt")!r})
        """,
    )
    release = Release(course, course.source / ASSIGNMENT, [], progress=lambda _: None)
    release.workbook, release.languages = "quiz", ["en"]
    with pytest.raises(AtelierError, match=r"notes\.txt: is a symbolic link"):
        publish(release)
    published = course.outbound / ASSIGNMENT
    _nothing_of_root_in(published)
    assert not any(p.name.startswith(".") for p in course.outbound.iterdir()), "staging left"
    os.unlink(student / "notes.txt")
    publish(release)
    assert (published / "quiz.en.ipynb").read_text() == "{}"
    assert stat.S_IMODE(os.stat(published / "quiz.en.ipynb").st_mode) == 0o644


def test_collect_as_the_grader_account_still_works(fresh):
    """Does collect run by the grader account (formgrader's button) take a checked submission?"""
    fresh.submit("alice", {"quiz.en.ipynb": "alice's answers"})
    course = fresh.course
    done = _as_grader(
        fresh,
        f"""
        from pathlib import Path
        from atelier.grading.exchange.collect import Limits, collect
        from atelier.grading.course import Course
        from atelier.grading.courses.people import Trainee
        course = Course({course.cohort!r}, Path({str(course.courses_root)!r}),
                        Path({str(course.exchange_root)!r}), {course.account_prefix!r})
        trainees = [Trainee(a, a, "en") for a in {[t.account for t in fresh.trainees]!r}]
        result = collect(course, {ASSIGNMENT!r}, trainees, Limits(), lambda _: None)
        print(result.outcome[{fresh.account("alice")!r}], *[c.problem for c in result.rejected])
        """,
    )
    assert done.stdout.split() == ["new"], done.stdout
    assert "alice's answers" in (fresh.collected("alice") / "quiz.en.ipynb").read_text()
