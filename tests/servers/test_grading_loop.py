"""The assessment loop with real Unix accounts and a real exchange, and what trainees cannot do.

Release, fetch, submit, collect, grade, manual grade, feedback and export, in that order.

The tests of this module form one scenario and run in file order, sharing one cohort: two trainees,
alice (English) and bruno (French), and one facilitator. Trainees act through nbgrader's own
commands run as their own Unix accounts (what JupyterLab's assignment list calls), with the
trainee configuration the hub installs. Every account carries a random prefix and is deleted.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest
import yaml
from harness import BIN, FIXTURES

pytestmark = pytest.mark.server

RUNUSER = "/usr/sbin/runuser"
WORKBOOK = FIXTURES / "grading" / "01-quiz"


class Loop:
    """The shared state of the scenario: settings, course, accounts and helpers to act as them."""

    def __init__(self, base: Path):
        self.base = base
        self.prefix = "g" + uuid.uuid4().hex[:4] + "-"
        self.cohort = "c" + uuid.uuid4().hex[:6]
        self.settings_file = base / "settings.yaml"
        self.accounts: list[str] = []

    def atelier(self, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
        """Run ``atelier`` as root (the facilitator's commands) with this scenario's settings."""
        command = [str(BIN / "atelier"), *args, f"--settings={self.settings_file}"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, **kwargs)
        if check:
            assert done.returncode == 0, f"{args}: {done.stdout}\n{done.stderr}"
        return done

    def account(self, username: str) -> str:
        return f"{self.prefix}{username}"

    def home(self, username: str) -> Path:
        return self.base / "home" / self.account(username)

    def as_trainee(self, username: str, *command: str, language: str = "en", check: bool = True):
        """Run ``command`` as the trainee's Unix account, in their home, with the hub's config."""
        env = {
            "HOME": str(self.home(username)),
            "USER": self.account(username),
            "PATH": f"{BIN}:/usr/bin:/bin",
            "JUPYTER_CONFIG_PATH": str(self.trainee_config),
            "JUPYTER_PLATFORM_DIRS": "1",
            "ATELIER_LANGUAGE": language,
            "LANG": "C.UTF-8",
        }
        done = subprocess.run(
            [RUNUSER, "-u", self.account(username), "--", *command],
            cwd=self.home(username),
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, f"{command}: {done.stdout}\n{done.stderr}"
        return done

    def python_as(self, username: str, code: str, **kwargs):
        return self.as_trainee(username, str(BIN / "python"), "-c", textwrap.dedent(code), **kwargs)

    def nbgrader_as(self, username: str, *args: str, **kwargs):
        return self.as_trainee(username, str(BIN / "nbgrader"), *args, **kwargs)


@pytest.fixture(scope="module")
def loop(test_database):
    """A cohort with two trainees and a facilitator, their accounts, settings and roster."""
    from atelier.accounts import AccountPolicy, create_account, save_people
    from atelier.roster import Person
    from atelier.settings import load_settings

    base = Path(tempfile.mkdtemp(prefix="atelier-grading-", dir="/tmp"))
    os.chmod(base, 0o755)
    lp = Loop(base)
    (base / "home").mkdir(mode=0o755)
    state = base / "state"
    state.mkdir(mode=0o700)
    settings = {
        "hub": {"state_dir": str(state)},
        "accounts": {"prefix": lp.prefix, "home_root": str(base / "home")},
        "grading": {
            "courses_root": str(base / "courses"),
            "exchange_root": str(base / "exchange"),
            "max_submissions": 6,
            "max_submission_bytes": 2_000_000,
        },
        **test_database(),  # the gradebook in PostgreSQL with --database=postgres
    }
    lp.settings_file.write_text(yaml.safe_dump(settings))
    lp.settings = load_settings(lp.settings_file)
    people = {
        "alice": ("Alice Martin", "alice@example.org", "en", "trainee"),
        "bruno": ("Bruno Diallo", "bruno@example.org", "fr", "trainee"),
        "fatou": ("Fatou Ndiaye", "fatou@example.org", "fr", "facilitator"),
    }
    roster = {
        name: Person(name, full, mail, "", "", lang, role, (lp.cohort,))
        for name, (full, mail, lang, role) in people.items()
    }
    save_people(state, roster)
    policy = AccountPolicy.from_settings(lp.settings)
    try:
        for name in people:
            create_account(policy, name)
            lp.accounts.append(lp.account(name))
        from atelier.grading.hubconfig import ensure_trainee_config, trainee_config_dir

        ensure_trainee_config(lp.settings)
        lp.trainee_config = trainee_config_dir(lp.settings)
        from atelier.grading.course import Course

        lp.course = Course.from_settings(lp.settings, lp.cohort)
        yield lp
    finally:
        for account in [*lp.accounts, f"{lp.prefix}grader-{lp.cohort}"]:
            subprocess.run(["userdel", "--remove", account], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _notebook(path: Path) -> dict:
    return json.loads(path.read_text("utf-8"))


def _sources(nb: dict) -> str:
    return "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"] for c in nb["cells"]
    )


def test_release_makes_student_versions_in_the_cohort_languages(loop):
    """Does release give each language its own assignment, without solutions or hidden tests?"""
    done = loop.atelier("release", str(WORKBOOK), f"--cohort={loop.cohort}")
    assert done.stdout.split() == ["quiz-en", "quiz-fr"]
    for lang in ("en", "fr"):
        released = loop.course.outbound / f"quiz-{lang}" / f"quiz.{lang}.ipynb"
        text = _sources(_notebook(released))
        assert "return x * x" not in text, "solution leaked into the student version"
        assert "square(-4)" not in text, "hidden test leaked into the student version"
        assert "check_choice" not in text, "the widget's answer key leaked"
        assert "assert square(3) == 9" in text
    with loop.course.gradebook() as gb:
        notebook = gb.find_notebook(f"quiz.{'en'}", "quiz-en")
        assert {c.name for c in notebook.source_cells if c.checksum} >= {"test-square", "square"}
        assert {s.id for s in gb.students} == {loop.account("alice"), loop.account("bruno")}
    # Nobody but root and the grader can list inbound or feedback.
    assert oct(loop.course.inbound.stat().st_mode & 0o777) == "0o711"


def test_each_trainee_sees_only_their_language(loop):
    """Does the assignment list show alice the English version and bruno the French one only?"""
    alice = loop.nbgrader_as("alice", "list", language="en")
    bruno = loop.nbgrader_as("bruno", "list", language="fr")
    assert "quiz-en" in alice.stderr + alice.stdout
    assert "quiz-fr" not in alice.stderr + alice.stdout
    assert "quiz-fr" in bruno.stderr + bruno.stdout
    assert "quiz-en" not in bruno.stderr + bruno.stdout


ANSWER = """
import json, sys
path, square, reflection = sys.argv[1], sys.argv[2], sys.argv[3]
nb = json.load(open(path))
for cell in nb["cells"]:
    grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
    if grade_id == "square":
        cell["source"] = "def square(x):\\n    return " + square
    if grade_id == "reflection":
        cell["source"] = reflection
json.dump(nb, open(path, "w"))
"""


def _answer(loop, user, lang, square, reflection):
    folder = loop.home(user) / loop.cohort / f"quiz-{lang}"
    loop.as_trainee(
        user,
        str(BIN / "python"),
        "-c",
        ANSWER,
        str(folder / f"quiz.{lang}.ipynb"),
        square,
        reflection,
        language=lang,
    )
    return folder


def test_trainees_fetch_answer_and_submit(loop):
    """Can two trainees fetch, answer (one through a widget) and submit from their own accounts?"""
    loop.nbgrader_as("alice", "fetch_assignment", f"--course={loop.cohort}", "quiz-en")
    loop.nbgrader_as(
        "bruno", "fetch_assignment", f"--course={loop.cohort}", "quiz-fr", language="fr"
    )
    alice_dir = _answer(loop, "alice", "en", "x * x", "I would use it offline.")
    _answer(loop, "bruno", "fr", "x + x", "Je ne sais pas.")
    # alice answers the multiple-choice question through the widget, in the notebook's folder.
    loop.python_as(
        "alice",
        f"""
        import os
        os.chdir({str(alice_dir)!r})
        from atelier.widgets.assessment import MultipleChoice
        MultipleChoice("quiz-q1", "Q", {{"a": "video", "b": "text"}}).value = "b"
        """,
    )
    assert (alice_dir / ".atelier-answers.json").exists()
    loop.nbgrader_as("alice", "validate", str(alice_dir / "quiz.en.ipynb"))
    loop.nbgrader_as("alice", "submit", f"--course={loop.cohort}", str(alice_dir))
    bruno_dir = loop.home("bruno") / loop.cohort / "quiz-fr"
    loop.nbgrader_as("bruno", "submit", f"--course={loop.cohort}", str(bruno_dir), language="fr")
    assert len(os.listdir(loop.course.inbound_of(loop.account("alice")))) == 1
    assert len(os.listdir(loop.course.inbound_of(loop.account("bruno")))) == 1


def test_a_trainee_cannot_read_or_list_another_trainees_submission(loop):
    """Can alice list the inbound folder, open bruno's submission, or reach the course files?"""
    bruno_inbound = loop.course.inbound_of(loop.account("bruno"))
    (folder,) = os.listdir(bruno_inbound)
    probe = loop.python_as(
        "alice",
        f"""
        import os
        results = []
        for action in (
            lambda: os.listdir({str(loop.course.inbound)!r}),
            lambda: os.listdir({str(bruno_inbound)!r}),
            lambda: open({str(bruno_inbound / folder / "quiz.fr.ipynb")!r}).read(),
            lambda: os.listdir({str(loop.course.exchange_feedback)!r}),
            lambda: open({str(bruno_inbound / "mine.txt")!r}, "w"),
            lambda: os.listdir({str(loop.course.root)!r}),
            lambda: open({str(loop.course.gradebook_path)!r}, "rb").read(1),
        ):
            try:
                action()
                results.append("allowed")
            except PermissionError:
                results.append("denied")
        print(" ".join(results))
        """,
    )
    assert probe.stdout.split() == ["denied"] * 7


def test_a_trainee_cannot_submit_as_another(loop):
    """Is alice's attempt to submit as bruno rejected, and bruno's record left alone?"""
    alice_dir = loop.home("alice") / loop.cohort / "quiz-en"
    forged = loop.nbgrader_as(
        "alice",
        "submit",
        f"--course={loop.cohort}",
        f"--student={loop.account('bruno')}",
        str(alice_dir),
        check=False,
    )
    assert forged.returncode != 0
    assert "only submit as yourself" in forged.stdout + forged.stderr
    # Bypassing nbgrader: alice crafts a folder named for bruno in her own inbound folder.
    stamp = "2020-01-01 00:00:00.000000 UTC"
    loop.python_as(
        "alice",
        f"""
        import os, shutil
        target = os.path.join({str(loop.course.inbound_of(loop.account("alice")))!r},
                              "{loop.account("bruno")}+quiz-fr+{stamp}")
        os.mkdir(target)
        open(os.path.join(target, "quiz.fr.ipynb"), "w").write("{{}}")
        open(os.path.join(target, "timestamp.txt"), "w").write("{stamp}")
        """,
    )
    assert len(os.listdir(loop.course.inbound_of(loop.account("bruno")))) == 1


def test_collect_keeps_one_checked_submission_per_trainee_with_server_time(loop):
    """Does collect keep each trainee's own submission, reject the forged one, use server time?"""
    # alice backdates her client timestamp and the folder's mtime: receipt time must ignore both.
    (alice_sub,) = [
        p
        for p in loop.course.inbound_of(loop.account("alice")).iterdir()
        if p.name.startswith(loop.account("alice"))
    ]
    loop.python_as(
        "alice",
        f"""
        import os
        p = {str(alice_sub)!r}
        open(os.path.join(p, "timestamp.txt"), "w").write("2001-01-01 00:00:00.000000 UTC")
        os.utime(p, (978307200, 978307200))
        """,
    )
    before = time.time()
    done = loop.atelier("collect", f"--cohort={loop.cohort}", "quiz")
    assert "quiz-en new=1 none=1" in done.stdout
    assert "quiz-fr new=1 none=1" in done.stdout or "quiz-fr new=1 rejected=1" in done.stdout
    assert "rejected" in done.stderr and "named for" in done.stderr
    alice = loop.course.submission_dir(loop.account("alice"), "quiz-en")
    bruno = loop.course.submission_dir(loop.account("bruno"), "quiz-fr")
    assert (alice / ".atelier-answers.json").exists(), "the widget answer did not travel"
    assert (alice / "client_timestamp.txt").read_text().startswith("2001")
    from nbgrader.utils import parse_utc

    received = parse_utc((alice / "timestamp.txt").read_text()).timestamp()
    assert before - 300 < received <= time.time()
    assert "Je ne sais pas" in _sources(_notebook(bruno / "quiz.fr.ipynb"))
    log = [json.loads(line) for line in loop.course.receipts_log.read_text().splitlines()]
    forged = [r for r in log if r["decision"] == "rejected"]
    assert forged and forged[0]["account"] == loop.account("alice")
    # Running it again changes nothing.
    again = loop.atelier("collect", f"--cohort={loop.cohort}", "quiz")
    assert "quiz-en none=1 unchanged=1" in again.stdout
    assert "quiz-fr" in again.stdout and "unchanged=1" in again.stdout.splitlines()[1]


def _grade(loop):
    """Autograde with ``atelier grade`` given the workbook id: every language version at once."""
    done = loop.atelier("grade", f"--cohort={loop.cohort}", "--force", "--no-progress", "quiz")
    # Both language versions: quiz-en (alice) and quiz-fr (bruno).
    assert "graded 2" in " ".join(done.stdout.split()), done.stdout


def _scores(loop):
    with loop.course.gradebook() as gb:
        alice = gb.find_submission("quiz-en", loop.account("alice"))
        bruno = gb.find_submission("quiz-fr", loop.account("bruno"))
        return (
            {g.name: g.score for g in alice.notebooks[0].grades},
            {g.name: g.score for g in bruno.notebooks[0].grades},
        )


def test_grading_scores_right_and_wrong_answers(loop):
    """Does autograde give alice full marks (including the widget answer) and bruno none?"""
    _grade(loop)
    alice, bruno = _scores(loop)
    assert alice["test-square"] == 2 and alice["test-q1"] == 1
    assert bruno["test-square"] == 0 and bruno["test-q1"] == 0


def test_item_report_counts_each_trainees_graded_attempt(loop):
    """Does `atelier report items` report each autograded item of the graded attempts as CSV?

    alice (English) got both items right, bruno (French) neither: facility 50 %, each language
    apart; alice's widget answer is counted among the options; two trainees raise no flag.
    """
    done = loop.atelier("report", "items", f"--cohort={loop.cohort}", "quiz")
    rows = {row["item"]: row for row in csv.DictReader(io.StringIO(done.stdout))}
    assert sorted(rows) == ["test-q1", "test-square"], done.stdout
    q1 = rows["test-q1"]
    assert (q1["workbook"], q1["trainees"], q1["max_points"], q1["facility_index"]) == (
        "quiz",
        "2",
        "1",
        "50.0",
    )
    assert "en: 1 trainees, facility 100.0" in q1["languages"]
    assert "fr: 1 trainees, facility 0.0" in q1["languages"]
    assert "b: 1" in q1["options"] and q1["flags"] == ""
    assert rows["test-square"]["facility_index"] == "50.0"
    unknown = loop.atelier("report", "items", f"--cohort={loop.cohort}", "nothing", check=False)
    assert unknown.returncode != 0 and "never released" in unknown.stderr


def test_a_manual_grade_survives_a_regrade(loop):
    """Is a facilitator's manual grade and comment kept when the cohort is graded again?"""
    with loop.course.gradebook() as gb:
        grade = gb.find_grade("reflection", "quiz.en", "quiz-en", loop.account("alice"))
        # What formgrader does when a facilitator types a score.
        grade.manual_score = 2.5
        grade.needs_manual_grade = False
        comment = gb.find_comment("reflection", "quiz.en", "quiz-en", loop.account("alice"))
        comment.manual_comment = "Good idea; say how you would check it."
        gb.db.commit()
    _grade(loop)
    with loop.course.gradebook() as gb:
        grade = gb.find_grade("reflection", "quiz.en", "quiz-en", loop.account("alice"))
        comment = gb.find_comment("reflection", "quiz.en", "quiz-en", loop.account("alice"))
        # nbgrader flags a re-graded manual grade for review, but keeps it.
        assert grade.manual_score == 2.5
        assert comment.manual_comment.startswith("Good idea")


def test_feedback_reaches_its_trainee_only(loop):
    """Does alice fetch and read her feedback, and can bruno not read it?"""
    done = loop.atelier("feedback", f"--cohort={loop.cohort}", "quiz")
    assert "quiz-en returned=1" in done.stdout
    loop.nbgrader_as("alice", "fetch_feedback", f"--course={loop.cohort}", "quiz-en")
    fetched = list((loop.home("alice") / loop.cohort / "quiz-en" / "feedback").rglob("*.html"))
    # What JupyterLab's assignment list shows for her submissions (nbgrader list --cached).
    listing = loop.nbgrader_as("alice", "list", "--cached", f"--course={loop.cohort}")
    assert "feedback already fetched" in listing.stdout + listing.stderr
    assert len(fetched) == 1
    html = loop.python_as("alice", f"print(open({str(fetched[0])!r}).read())").stdout
    assert "Good idea; say how you would check it." in html
    assert "2.5" in html
    # The answer key stays hidden: no hidden test, no widget key, in what the trainee reads.
    assert "square(-4)" not in html and "check_choice" not in html
    # The page loads nothing from off the machine (nbconvert's default MathJax is a CDN's).
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", html)
    assert "static/jupyter_server_mathjax/MathJax.js" in html
    from atelier.grading.exchange.feedback import feedback_files

    (released,) = feedback_files(loop.course, loop.account("alice"))
    probe = loop.python_as(
        "bruno",
        f"""
        try:
            open({str(released)!r}).read()
            print("allowed")
        except PermissionError:
            print("denied")
        """,
        language="fr",
    )
    assert probe.stdout.strip() == "denied"


def test_export_has_one_line_per_trainee(loop):
    """Is the export exactly one row per trainee with the right scores, and Moodle-importable?"""
    full = loop.atelier("grades", "export", f"--cohort={loop.cohort}").stdout
    rows = list(csv.DictReader(io.StringIO(full)))
    assert [r["username"] for r in rows] == ["alice", "bruno"]
    alice, bruno = rows
    # alice: 2 (function) + 1 (widget) + 2.5 (manual reflection) of 2 + 1 + 3.
    assert (alice["quiz score"], alice["quiz max"], alice["quiz status"]) == ("5.5", "6", "graded")
    assert alice["quiz late"] == "no" and alice["language"] == "en"
    assert bruno["quiz score"] == "0" and bruno["quiz status"] == "needs grading"
    moodle = loop.atelier("grades", "export", f"--cohort={loop.cohort}", "--moodle").stdout
    assert moodle.splitlines() == [
        "Email address,quiz",
        "alice@example.org,5.5",
        "bruno@example.org,0",
    ]


def test_late_work_is_flagged_without_penalty_by_default(loop):
    """With a due date in the past, is the work flagged late in the export, its score unchanged?"""
    loop.atelier(
        "release", str(WORKBOOK), f"--cohort={loop.cohort}", "--due=2000-01-01T00:00+00:00"
    )
    rows = list(
        csv.DictReader(
            io.StringIO(loop.atelier("grades", "export", f"--cohort={loop.cohort}").stdout)
        )
    )
    alice = rows[0]
    assert alice["quiz late"] == "yes" and float(alice["quiz minutes late"]) > 0
    assert alice["quiz score"] == "5.5"


def _own_submissions(loop, user):
    account = loop.account(user)
    return sorted(
        p.name for p in loop.course.inbound_of(account).iterdir() if p.name.startswith(account)
    )


def test_a_burst_of_submissions_loses_nothing(loop):
    """When the whole cohort submits three times at once, is every submission stored once?"""
    before = {user: _own_submissions(loop, user) for user in ("alice", "bruno")}
    env_of = {"alice": "en", "bruno": "fr"}
    procs = []
    for user, lang in env_of.items():
        folder = loop.home(user) / loop.cohort / f"quiz-{lang}"
        for _ in range(3):
            command = [str(BIN / "nbgrader"), "submit", f"--course={loop.cohort}", str(folder)]
            env = {
                "HOME": str(loop.home(user)),
                "PATH": f"{BIN}:/usr/bin:/bin",
                "JUPYTER_CONFIG_PATH": str(loop.trainee_config),
                "ATELIER_LANGUAGE": lang,
            }
            procs.append(
                subprocess.Popen(
                    [RUNUSER, "-u", loop.account(user), "--", *command],
                    cwd=loop.home(user),
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
    assert [p.wait(120) for p in procs] == [0] * len(procs)
    for user in env_of:
        after = _own_submissions(loop, user)
        assert len(after) == len(before[user]) + 3 and set(before[user]) <= set(after)


def test_collect_killed_midway_loses_and_doubles_nothing(loop):
    """After collect is killed with SIGKILL mid-run, does a rerun leave one whole copy each?"""
    # Practice: the newest submission counts (an assessed workbook, the default, keeps the first
    # one allowed: tests/servers/test_instant_grading.py holds attempts).
    loop.atelier("release", str(WORKBOOK), f"--cohort={loop.cohort}", "--mode=practice")
    for user, lang in (("alice", "en"), ("bruno", "fr")):
        folder = loop.home(user) / loop.cohort / f"quiz-{lang}"
        loop.nbgrader_as(user, "submit", f"--course={loop.cohort}", str(folder), language=lang)
    command = [str(BIN / "atelier"), "collect", f"--cohort={loop.cohort}", "quiz"]
    proc = subprocess.Popen(
        [*command, f"--settings={loop.settings_file}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    proc.stderr.readline()  # "Collecting quiz-en ..." : the run is under way
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    proc.stderr.close()
    loop.atelier("collect", f"--cohort={loop.cohort}", "quiz")
    for user, assignment in (("alice", "quiz-en"), ("bruno", "quiz-fr")):
        student_dir = loop.course.submitted / loop.account(user)
        assert sorted(os.listdir(student_dir)) == [assignment]
        kept = json.loads((student_dir / assignment / "atelier_receipt.json").read_text())
        newest = max(
            p.name
            for p in loop.course.inbound_of(loop.account(user)).iterdir()
            if p.name.startswith(loop.account(user))
        )
        assert kept["folder"] == newest
    # The manual grade is still there after collecting newer submissions.
    with loop.course.gradebook() as gb:
        grade = gb.find_grade("reflection", "quiz.en", "quiz-en", loop.account("alice"))
        assert grade.manual_score == 2.5


def test_the_number_of_submissions_is_bounded(loop):
    """Is a submission beyond grading.max_submissions (6 here) refused with a clear message?"""
    folder = loop.home("alice") / loop.cohort / "quiz-en"
    while len(_own_submissions(loop, "alice")) < 6:
        loop.nbgrader_as("alice", "submit", f"--course={loop.cohort}", str(folder))
    refused = loop.nbgrader_as(
        "alice", "submit", f"--course={loop.cohort}", str(folder), check=False
    )
    assert refused.returncode != 0
    assert "the most allowed (6)" in refused.stdout + refused.stderr
    assert len(_own_submissions(loop, "alice")) == 6


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-v"]))
