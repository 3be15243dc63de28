"""Per-trainee variants on a real hub: each trainee's numbers, kept across restarts, and graded.

One hub (real JupyterHub, proxy, Unix accounts) with three trainees of one cohort. The hub's
variants secret is written by the test before the hub starts (the hub makes it only when it is
missing), so the test knows which numbers each trainee must get and picks three trainees whose
numbers for workbook 02's ``w2-data`` all differ. The servers must carry each trainee's seed, and
only it (never the secret), and the same seed after the server and the hub restart. Then workbook
02 is released to the cohort and graded by one root-run ``atelier grade --cohort``: each trainee's
right answer scores full marks, the first trainee's answer submitted by the third is wrong even
though the third's notebook sets the first's seed in its environment, pins it and replaces the
draw's functions, formgrader's notebook shows each trainee's numbers (the hidden test's message
names them), and the attempts log records each variant.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from harness import WORKBOOKS, execute_in_kernel
from hubs import running_hub

from atelier import variants
from atelier.widgets.items import code_variants

pytestmark = pytest.mark.server

RUNUSER = "/usr/sbin/runuser"
COHORT = "vary"
SECRET = "5e" * 32
WORKBOOK = WORKBOOKS / "02-low-bandwidth-planner"
ASSIGNMENT = "low-bandwidth-planner-en"
NOTEBOOK = "low-bandwidth-planner.en.ipynb"
RIGHT = json.loads((WORKBOOK / "answers" / "low-bandwidth-planner.en.right.json").read_text())
DECLARED = code_variants(
    cell.source for cell in nbformat.read(WORKBOOK / NOTEBOOK, 4).cells if cell.cell_type == "code"
)["w2-data"]


def seed(username: str) -> str:
    """What the hub must derive for ``username`` in the cohort, from the test's secret."""
    return variants.trainee_seed(variants.cohort_key(bytes.fromhex(SECRET), COHORT), username)


def numbers(username: str) -> dict:
    return variants.draw("w2-data", DECLARED, seed(username))


def megabytes(username: str) -> float:
    p = numbers(username)
    return (p["up"] + p["down"]) * p["minutes"] * 60 / 8000


def _three_different() -> list[str]:
    chosen: list[str] = []
    for name in ("ana", "ben", "cai", "dina", "eli", "femi", "gus", "hana", "ines", "jo", "kofi"):
        if all(abs(megabytes(name) - megabytes(other)) > 100 for other in chosen):
            chosen.append(name)
    return chosen[:3]


#: A (their own answer, right), B (their own answer, right), C (A's answer, with A's seed set).
A, B, C = _three_different()
ROSTER = "username,full name,email,institution,country,language,role,cohort\n" + "".join(
    f"{name},{name.title()} Test,{name}@example.org,University A,Kenya,en,trainee,{COHORT}\n"
    for name in (A, B, C)
)
#: What C's notebook runs before the tests: A's seed in its environment, pinned, and an HMAC
#: that always gives A's numbers.
CHEAT = f"""import os, hmac, atelier.variants as v
os.environ["ATELIER_VARIANT_SEED"] = {seed(A)!r}
v.pin({seed(A)!r})
v.current_seed = lambda: {seed(A)!r}
hmac.new = lambda *a, **k: hmac.HMAC(bytes.fromhex({seed(A)!r}), a[1], "sha256")
"""


def server_seed(hub, session, username: str) -> tuple[str, bytes]:
    """The seed a kernel of ``username``'s server has, and all their processes' environments.

    Read inside a kernel, as a widget reads it: a server forked from the hub's template, and a
    kernel forked from the server's kernel zygote, have their environment in Python only
    (``/proc/PID/environ`` is their template's). The environments returned are the kernel's
    and every process's of the account as /proc shows them.
    """
    base = f"{hub.url}/user/{username}/api/kernels"
    headers = {"X-XSRFToken": session.cookies.get("_xsrf", path=f"/user/{username}/") or ""}
    started = session.post(base, json={"name": "python3"}, headers=headers, timeout=60)
    assert started.status_code == 201, started.text
    kernel = started.json()["id"]
    try:
        shown = execute_in_kernel(
            hub, session, username, kernel, "import json, os; print(json.dumps(dict(os.environ)))"
        )
        environ = json.loads(shown)
        everything = shown.encode()
        for pid in hub.server_processes(username):
            with contextlib.suppress(OSError):
                everything += Path(f"/proc/{pid}/environ").read_bytes()
    finally:
        session.delete(f"{base}/{kernel}", headers=headers, timeout=30)
    return environ.get("ATELIER_VARIANT_SEED", ""), everything


@pytest.fixture(scope="module")
def hub():
    """The hub, with the test's secret in its state directory before anything could make one."""
    with running_hub(roster=ROSTER, start=False) as instance:
        secret = instance.state_dir / variants.SECRET_FILE
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, (SECRET + "\n").encode())
        os.close(fd)
        instance.launch()
        yield instance


def test_each_trainee_server_carries_their_own_seed_and_keeps_it_across_restarts(hub):
    """Two trainees get different numbers; a restarted server and hub give the same seed."""
    sessions = {}
    for name in (A, B):
        sessions[name] = hub.login(name)
        hub.start_server(sessions[name], name)
    found = {name: server_seed(hub, sessions[name], name) for name in (A, B)}
    assert found[A][0] == seed(A) and found[B][0] == seed(B)
    assert numbers(A) != numbers(B)
    for _, environ in found.values():
        assert SECRET.encode() not in environ, "the secret reached a trainee's process"
    assert oct((hub.state_dir / variants.SECRET_FILE).stat().st_mode & 0o777) == "0o600"
    response = hub.api(sessions[A], "DELETE", f"/users/{A}/server")
    assert response.status_code in (202, 204), response.text
    hub.restart()
    again = hub.login(A)
    hub.start_server(again, A)
    assert server_seed(hub, again, A)[0] == seed(A)
    hub.api(again, "DELETE", f"/users/{A}/server")
    hub.api(sessions[B], "DELETE", f"/users/{B}/server")


def _submission(folder: Path, released: Path, w2_data: float, cheat: bool = False) -> None:
    nb = nbformat.read(released, as_version=4)
    if cheat:
        nb.cells.insert(0, nbformat.v4.new_code_cell(CHEAT))
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / NOTEBOOK)
    (folder / "timestamp.txt").write_text("2026-11-20 10:00:00.000000 UTC")
    values = {**RIGHT["widgets"], "w2-data": w2_data}
    answers = {
        item: {"value": value, "kind": "answer-set", "saved": "2026-11-20T10:00:00Z"}
        for item, value in values.items()
    }
    document = {"format": "atelier-answers", "version": 1, "answers": answers}
    (folder / ".atelier-answers.json").write_text(json.dumps(document))


@pytest.fixture(scope="module")
def graded(hub):
    """Workbook 02 released to the cohort, three submissions, one ``atelier grade --cohort``."""
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    hub.atelier("release", str(WORKBOOK), f"--cohort={COHORT}")
    course = Course.from_settings(load_settings(hub.settings_path), COHORT)
    staging = Path(tempfile.mkdtemp(prefix="atelier-variants-", dir="/tmp"))
    try:
        released = course.root / "release" / ASSIGNMENT / NOTEBOOK
        answers = {A: megabytes(A), B: megabytes(B), C: megabytes(A)}
        for name, value in answers.items():
            _submission(staging / hub.account(name) / ASSIGNMENT, released, value, name == C)
        subprocess.run(["chmod", "-R", "a+rX", str(staging)], check=True)
        # Placed as the grader account, as `atelier collect` leaves them.
        copy = (
            "import shutil, sys\n"
            "for name in sys.argv[2:]:\n"
            "    shutil.copytree(f'{sys.argv[1]}/{name}', f'" + str(course.root) + "/submitted/"
            "{name}', dirs_exist_ok=True)\n"
        )
        accounts = [hub.account(name) for name in answers]
        done = subprocess.run(
            [RUNUSER, "-u", course.grader_account, "--", sys.executable, "-c", copy,
             str(staging), *accounts],
            capture_output=True, text=True, cwd="/", timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        result = hub.atelier("grade", ASSIGNMENT, f"--cohort={COHORT}", "--no-progress")
        assert "error" not in result.stdout.lower(), result.stdout
        yield hub, course
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _grade(course, hub, name: str, grade_id: str = "test-w2-data") -> float:
    with course.gradebook() as gb:
        notebook = NOTEBOOK.removesuffix(".ipynb")
        return gb.find_grade(grade_id, notebook, ASSIGNMENT, hub.account(name)).score


def test_each_right_answer_scores_full_marks_and_a_classmates_answer_does_not(graded):
    """A and B right with their own numbers; C, with A's answer and A's seed forced, wrong."""
    hub, course = graded
    assert _grade(course, hub, A) == 2 and _grade(course, hub, B) == 2
    assert _grade(course, hub, C) == 0
    with course.gradebook() as gb:
        for name in (A, B):
            submission = gb.find_submission(ASSIGNMENT, hub.account(name))
            assert submission.score == RIGHT["expected_score"]


def _graded_cells(course, hub, name: str):
    autograded = course.root / "autograded" / hub.account(name) / ASSIGNMENT / NOTEBOOK
    nb = nbformat.read(autograded, as_version=4)
    widget = next(c for c in nb.cells if c.get("id") == "w2-data")
    test = next(c for c in nb.cells if c.get("id") == "test-w2-data")
    return widget, json.dumps(test.outputs)


def test_formgrader_shows_each_trainees_numbers_and_the_log_keeps_them(graded):
    """The graded notebook names the trainee's numbers; the attempts log records the variant."""
    hub, course = graded
    widget, test = _graded_cells(course, hub, B)
    shown = "".join(o.get("data", {}).get("text/plain", "") for o in widget.outputs)
    assert f"minutes = {numbers(B)['minutes']}" in shown
    assert f"a {numbers(B)['minutes']}-minute group session" in shown
    assert f"Your numbers: minutes = {numbers(B)['minutes']}" in test
    # C's own code could change what its widget displays, not what its test graded and says.
    _widget, test = _graded_cells(course, hub, C)
    mine = numbers(C)
    assert f"Your numbers: minutes = {mine['minutes']}" in test
    log = course.root / "log" / "item-attempts.jsonl"
    records = [json.loads(line) for line in log.read_text().splitlines()]
    logged = {
        r["student"]: r["items"]["test-w2-data"].get("variant")
        for r in records
        if r["assignment"] == ASSIGNMENT
    }
    assert logged[hub.account(B)] == numbers(B) and logged[hub.account(C)] == mine


def test_formgraders_page_shows_the_trainees_numbers_and_question(graded):
    """Does formgrader's page of B's submission say B's numbers, question and "Your numbers"?

    The page as formgrader serves it: nbgrader's exporter and formgrade template.
    """
    from nbconvert.exporters import HTMLExporter
    from nbgrader.server_extensions.formgrader import handlers
    from traitlets.config.loader import PyFileConfigLoader

    hub, course = graded
    config = PyFileConfigLoader(course.config_file.name, path=str(course.config_file.parent))
    config = config.load_config()
    config.HTMLExporter.template_name = "formgrade"
    config.HTMLExporter.extra_template_basedirs = [handlers.template_path]
    student = hub.account(B)
    resources = {
        "assignment_id": ASSIGNMENT, "notebook_id": NOTEBOOK.removesuffix(".ipynb"),
        "submission_id": "s", "index": 0, "total": 1, "base_url": f"/services/{COHORT}",
        "student": student, "last_name": "", "first_name": "",
        "notebook_path": f"autograded/{student}/{ASSIGNMENT}/{NOTEBOOK}",
    }  # fmt: skip
    path = course.root / "autograded" / student / ASSIGNMENT / NOTEBOOK
    page, _ = HTMLExporter(config=config).from_filename(str(path), resources=resources)
    mine = numbers(B)
    up = f"{mine['up']:,}"
    assert "Numbers drawn for this trainee:" in page
    assert f"minutes = {mine['minutes']}, up = {up}, down = {mine['down']:,}" in page
    assert (
        f"a {mine['minutes']}-minute group session where each participant sends {up} kbps" in page
    )
    assert f"Your numbers: minutes = {mine['minutes']}" in page
