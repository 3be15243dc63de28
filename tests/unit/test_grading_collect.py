"""Grading as pure functions: collect's checks, language choice, export format, hub config.

Submission folders are made in temporary folders owned by the test's own account.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from traitlets.config import Config

from atelier.grading.course import Course, GradingError, split_assignment
from atelier.grading.courses.people import Trainee
from atelier.grading.exchange.collect import Candidate, Limits, choose, receipt_text
from atelier.grading.exchange.trainee import assignment_language, trainee_language
from atelier.grading.export import Row, WorkbookGrade, full_csv, moodle_csv

pytestmark = pytest.mark.unit

ME = os.getuid()


def _submission(inbound, account, name, files=None):
    folder = inbound / name
    folder.mkdir(parents=True)
    for filename, content in (files or {"quiz.en.ipynb": "{}"}).items():
        (folder / filename).write_text(content)
    return Candidate(account, name, folder)


def test_a_folder_named_for_someone_else_is_rejected(tmp_path):
    """Is a folder named for bruno, found in alice's inbound folder, rejected as impersonation?"""
    forged = _submission(tmp_path, "alice", "bruno+quiz-en+2026-01-01 00:00:00 UTC")
    assert choose([forged], ME, Limits()) is None
    assert forged.decision == "rejected" and "named for 'bruno'" in forged.problem


def test_a_folder_owned_by_another_account_is_rejected(tmp_path):
    """Is a correctly named folder that another account owns rejected?"""
    other = _submission(tmp_path, "alice", "alice+quiz-en+t")
    assert choose([other], ME + 1, Limits()) is None
    assert "owned by uid" in other.problem


def test_links_and_pipes_are_rejected(tmp_path):
    """Are symbolic links and named pipes refused (a root-run copy could follow or block)?"""
    link = _submission(tmp_path, "alice", "alice+quiz-en+1")
    (link.path / "secret").symlink_to("/etc/shadow")
    pipe = _submission(tmp_path, "alice", "alice+quiz-en+2")
    os.mkfifo(pipe.path / "fifo")
    assert choose([link, pipe], ME, Limits()) is None
    assert "not a plain file" in link.problem and "not a plain file" in pipe.problem


def test_oversize_and_overcount_submissions_are_rejected(tmp_path):
    """Are submissions with too many bytes or too many files rejected with the reason?"""
    big = _submission(tmp_path, "alice", "alice+quiz-en+1", {"a": "x" * 5000})
    many = _submission(tmp_path, "alice", "alice+quiz-en+2", {f"f{i}": "x" for i in range(12)})
    assert choose([big, many], ME, Limits(max_bytes=4000, max_files=10)) is None
    assert "larger than 4000 bytes" in big.problem
    assert "more than 10 files" in many.problem


def test_the_newest_valid_submission_is_kept_and_extras_beyond_the_limit_ignored(tmp_path):
    """Among valid submissions, is the newest kept, and those beyond max_submissions ignored?"""
    found = []
    for i in range(4):
        found.append(_submission(tmp_path, "alice", f"alice+quiz-en+{i}"))
        time.sleep(0.01)  # distinct change times
    kept = choose(found, ME, Limits(max_submissions=3))
    assert kept is found[2]
    assert [c.decision for c in found] == ["superseded", "superseded", "kept", "ignored"]


def test_receipt_time_ignores_a_backdated_modification_time(tmp_path):
    """Does the receipt time come from change times, which a trainee cannot set back?"""
    sub = _submission(tmp_path, "alice", "alice+quiz-en+1")
    os.utime(sub.path / "quiz.en.ipynb", (0, 0))
    os.utime(sub.path, (0, 0))
    before = time.time() - 5
    choose([sub], ME, Limits())
    assert sub.received > before
    assert receipt_text(sub.received).endswith(" UTC")


def test_trainee_language_comes_from_the_hub_then_the_locale():
    """Is ATELIER_LANGUAGE used first, then the locale, then English?"""
    assert trainee_language({"ATELIER_LANGUAGE": "fr"}) == "fr"
    assert trainee_language({"LANG": "fr_FR.UTF-8"}) == "fr"
    assert trainee_language({"LANG": "de_DE.UTF-8"}) == "en"
    assert assignment_language("continuity-fr") == "fr"
    assert assignment_language("ps1") is None


def test_assignment_names_are_workbook_and_language():
    """Is an assignment id W-L split back, and anything else refused with a message?"""
    assert split_assignment("low-bandwidth-fr") == ("low-bandwidth", "fr")
    with pytest.raises(GradingError, match="<workbook>-<language>"):
        split_assignment("ps1")


def test_cohort_ids_that_cannot_name_a_course_are_refused():
    """Is a cohort id with capitals or slashes refused before any path is built?"""
    from atelier.settings import load_settings

    with pytest.raises(GradingError, match="cohort id"):
        Course.from_settings(load_settings(None), "../Etc")


def _rows():
    alice = Trainee("alice", "at-alice", "en", "Alice Martin", "alice@example.org")
    bruno = Trainee("bruno", "at-bruno", "fr", "Bruno, Diallo", "bruno@example.org")
    return [
        Row(alice, {"quiz": WorkbookGrade(5.5, 6.0, "graded", 0.0)}),
        Row(bruno, {"quiz": WorkbookGrade(None, 6.0, "missing", 0.0)}),
    ]


def test_full_export_has_a_header_and_one_line_per_trainee():
    """Is every trainee one CSV line, with commas in names quoted and missing work empty?"""
    lines = full_csv(["quiz"], _rows()).splitlines()
    assert lines[0] == (
        "username,account,full name,email,language,quiz score,quiz max,quiz percent,"
        "quiz status,quiz late,quiz minutes late"
    )
    assert lines[1] == "alice,at-alice,Alice Martin,alice@example.org,en,5.5,6,91.67,graded,no,0"
    assert lines[2] == 'bruno,at-bruno,"Bruno, Diallo",bruno@example.org,fr,,6,,missing,no,0'


def test_moodle_export_identifies_people_by_email():
    """Does the Moodle CSV start with 'Email address' and hold one score column per workbook?"""
    assert moodle_csv(["quiz"], _rows()).splitlines() == [
        "Email address,quiz",
        "alice@example.org,5.5",
        "bruno@example.org,",
    ]


def test_hub_config_gives_each_cohort_a_formgrader_only_its_facilitators_reach(tmp_path):
    """Does a cohort get nbgrader groups, a formgrader service and a role scoped to that service?"""
    from atelier.grading.hubconfig import (
        cohort_groups_and_roles,
        formgrader_service,
        trainee_config_files,
    )
    from atelier.settings import load_settings

    settings = load_settings(None, {"grading": {"exchange_root": str(tmp_path / "x")}})
    course = Course.from_settings(settings, "spring26")
    groups, role = cohort_groups_and_roles(course, ["bob", "alice"], ["fiona"])
    assert groups == {
        "nbgrader-spring26": {"users": ["alice", "bob"]},
        "formgrade-spring26": {"users": ["fiona"]},
    }
    assert role["scopes"] == ["access:services!service=spring26"]
    assert role["groups"] == ["formgrade-spring26"]
    service = formgrader_service(course, 12345)
    assert service["name"] == "spring26" and service["user"] == "at-grader-spring26"
    assert service["url"] == "http://127.0.0.1:12345"
    assert "--ServerApp.default_url=/formgrader" in service["command"]
    files = trainee_config_files(settings)
    assert "atelier.grading.exchange.trainee.AtelierSubmit" in files["nbgrader_config.py"]
    server = json.loads(files["jupyter_server_config.d/zz-atelier-grading.json"])
    assert (
        server["ServerApp"]["jpserver_extensions"]["nbgrader.server_extensions.formgrader"] is False
    )


def test_hub_config_without_disk_skips_courses_not_yet_created(tmp_path):
    """Without touching the disk, are cohorts whose grader account does not exist left out?"""
    from atelier.accounts import save_people
    from atelier.grading.hubconfig import apply
    from atelier.roster import Person
    from atelier.settings import load_settings

    save_people(
        tmp_path,
        {"zed": Person("zed", "Zed", "z@example.org", "", "", "en", "trainee", ("nocohort",))},
    )
    settings = load_settings(
        None, {"hub": {"state_dir": str(tmp_path)}, "accounts": {"prefix": "qzx-"}}
    )
    c = Config()
    c.JupyterHub.services = [{"name": "idle-culler"}]
    assert apply(c, settings, touch_disk=False) == []
    assert c.JupyterHub.services == [{"name": "idle-culler"}]
    assert c.Spawner.environment["JUPYTER_CONFIG_PATH"].endswith(".jupyter")


def test_trainee_markdown_is_shown_as_text_with_links_disarmed():
    """Is HTML in editable Markdown escaped, a javascript: link disarmed, locked text kept?"""
    from nbformat.v4 import new_markdown_cell

    from atelier.grading.sanitize import SanitizeTraineeMarkdown

    hostile = new_markdown_cell("<img src=x onerror=alert(1)> [a](JavaScript:alert(1))")
    hostile.metadata["nbgrader"] = {"solution": True, "locked": False}
    author = new_markdown_cell("<b>Read</b> this")
    author.metadata["nbgrader"] = {"locked": True}
    step = SanitizeTraineeMarkdown()
    cleaned, _ = step.preprocess_cell(hostile, {}, 0)
    assert cleaned.source == "&lt;img src=x onerror=alert(1)&gt; [a](blocked:alert(1))"
    assert step.preprocess_cell(author, {}, 1)[0].source == "<b>Read</b> this"


def test_a_swap_cut_short_by_a_crash_is_repaired(tmp_path):
    """After a crash between the two renames of a swap, is the old copy back and the staged gone?"""
    from atelier.grading.exchange.release import recover_swaps, swap_into_place

    (tmp_path / ".quiz-en.tmp-1234abcd").mkdir()  # staged, never moved in
    old = tmp_path / ".quiz-fr.old-1234abcd"  # moved aside, successor never moved in
    old.mkdir()
    (old / "quiz.fr.ipynb").write_text("{}")
    recover_swaps(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiz-fr"]
    assert (tmp_path / "quiz-fr" / "quiz.fr.ipynb").exists()
    staged = tmp_path / ".quiz-fr.tmp-feedbeef"
    staged.mkdir()
    (staged / "new.txt").write_text("new")
    swap_into_place(staged, tmp_path / "quiz-fr")
    assert sorted(p.name for p in (tmp_path / "quiz-fr").iterdir()) == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["quiz-fr"]


# --- grading.identity: "folder" (Kubernetes: every pod runs as one uid) ------------------------


def _folder_mode(uid=ME):
    return Limits(identity="folder", exchange_uid=uid)


def test_folder_mode_accepts_a_submission_owned_by_the_exchange_uid_in_its_own_folder(tmp_path):
    """In folder mode, is a submission in inbound/<account>/ owned by the exchange uid kept?"""
    inbound = tmp_path / "inbound" / "alice"
    kept = _submission(inbound, "alice", "alice+quiz-en+1")
    assert choose([kept], _folder_mode().owner_uid("alice"), _folder_mode()) is kept
    assert kept.decision == "kept" and not kept.problem


def test_folder_mode_needs_no_unix_account_per_trainee():
    """In folder mode, is the expected owner the exchange uid, whatever the trainee's name?"""
    assert Limits(identity="folder", exchange_uid=1000).owner_uid("no-such-account-xyz") == 1000
    with pytest.raises(GradingError):
        Limits().owner_uid("no-such-account-xyz")


def test_folder_mode_still_rejects_a_folder_named_for_another_trainee(tmp_path):
    """In folder mode, is a folder claiming bruno's name inside alice's folder still rejected?"""
    inbound = tmp_path / "inbound" / "alice"
    forged = _submission(inbound, "alice", "bruno+quiz-en+1")
    assert choose([forged], ME, _folder_mode()) is None
    assert "named for 'bruno'" in forged.problem


def test_folder_mode_rejects_files_not_owned_by_the_exchange_uid(tmp_path):
    """In folder mode, is a submission whose owner is not grading.exchange_uid rejected?"""
    inbound = tmp_path / "inbound" / "alice"
    other = _submission(inbound, "alice", "alice+quiz-en+1")
    assert choose([other], ME + 1, _folder_mode(ME + 1)) is None
    assert "exchange's own" in other.problem or "owned by uid" in other.problem


def test_folder_mode_rejects_an_inbound_folder_that_is_a_link(tmp_path):
    """In folder mode, is inbound/<account> as a symbolic link (to another folder) refused?"""
    real = tmp_path / "elsewhere"
    _submission(real, "alice", "alice+quiz-en+1")
    (tmp_path / "inbound").mkdir()
    (tmp_path / "inbound" / "alice").symlink_to(real)
    linked = Candidate(
        "alice", "alice+quiz-en+1", tmp_path / "inbound" / "alice" / "alice+quiz-en+1"
    )
    assert choose([linked], ME, _folder_mode()) is None
    assert "exchange's own" in linked.problem


def test_folder_mode_still_rejects_links_and_pipes(tmp_path):
    """In folder mode, are symbolic links and named pipes inside a submission still refused?"""
    inbound = tmp_path / "inbound" / "alice"
    link = _submission(inbound, "alice", "alice+quiz-en+1")
    (link.path / "secret").symlink_to("/etc/shadow")
    pipe = _submission(inbound, "alice", "alice+quiz-en+2")
    os.mkfifo(pipe.path / "fifo")
    assert choose([link, pipe], ME, _folder_mode()) is None
    assert "not a plain file" in link.problem and "not a plain file" in pipe.problem


def test_identity_settings_reach_collect_and_formgrader(tmp_path):
    """Do grading.identity and grading.exchange_uid reach the CLI's and formgrader's collect?"""
    from atelier.settings import load_settings

    settings_file = tmp_path / "settings.yaml"
    settings_file.write_text("grading:\n  identity: folder\n  exchange_uid: 1234\n")
    settings = load_settings(settings_file)
    limits = Limits.from_settings(settings)
    assert (limits.identity, limits.exchange_uid) == ("folder", 1234)
    config = Course.from_settings(settings, "c1").nbgrader_config()
    assert (config.AtelierCollect.identity, config.AtelierCollect.exchange_uid) == ("folder", 1234)
    assert Limits.from_settings(load_settings()).identity == "owner"


def test_grade_expands_a_workbook_id_to_its_released_language_versions(tmp_path):
    """Does `atelier grade` read W as every released W-L, and leave assignment ids as they are?"""
    from atelier.grading.gradeapp import expand_assignments

    for name in ("quiz-en", "quiz-fr", "ps1", "other-en"):
        (tmp_path / "source" / name).mkdir(parents=True)
    assert expand_assignments(tmp_path, ["quiz"]) == ["quiz-en", "quiz-fr"]
    assert expand_assignments(tmp_path, ["quiz-fr", "quiz", "ps1"]) == ["quiz-fr", "quiz-en", "ps1"]
    assert expand_assignments(tmp_path, ["other"]) == ["other-en"]
    assert expand_assignments(tmp_path, ["missing"]) == ["missing"]  # nbgrader will say so
