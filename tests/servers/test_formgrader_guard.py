"""A facilitator gets formgrader from a cohort's formgrader service, and nothing else.

The service is a Jupyter server run as the course's grader account (the owner of the course and
its gradebook). Before issue 15 it answered kernels and terminals: a facilitator's shell as that
account. Each test tries one way in with fiona's real session (facilitator of cohort x, the
session hub's), with the XSRF token a browser page would send, and checks it is refused and that
no process started as the grader account; then that manual grading through formgrader's API
still works.
"""

from __future__ import annotations

import http.client
import json
import pwd
import uuid

import pytest
from harness import process_owners as _process_owners
from seeds import seed_gradebook

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def fiona(hub):
    """Fiona's session, through the hub's login and formgrader's OAuth, with its XSRF header."""
    session = hub.login("fiona")
    page = session.get(f"{hub.url}/services/x/formgrader", timeout=120)
    assert page.status_code == 200, page.text[:500]
    xsrf = session.cookies.get("_xsrf", path="/services/x/") or session.cookies.get("_xsrf")
    session.headers["X-XSRFToken"] = xsrf
    session.base = f"{hub.url}/services/x"
    return session


def grader_processes(hub) -> int:
    uid = pwd.getpwnam(hub.account("grader-x")).pw_uid
    return sum(1 for owner in _process_owners().values() if owner == uid)


def refused(response) -> bool:
    return response.status_code == 403 and "Forbidden" in response.text


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "api/kernels", {"name": "python3"}),
        ("POST", "api/terminals", {}),
        ("POST", "api/sessions", {"path": "a.ipynb", "type": "notebook", "name": "a",
                                  "kernel": {"name": "python3"}}),
        ("GET", "api/kernels", None),
        ("GET", "api/kernelspecs", None),
        ("GET", "api/contents", None),
        ("GET", "api/contents/nbgrader_config.py", None),
        ("GET", "files/nbgrader_config.py", None),
        ("GET", "lab", None),
        ("GET", "tree", None),
        ("GET", "edit/nbgrader_config.py", None),
        ("GET", "terminals/1", None),
        ("POST", "api/shutdown", None),
        ("POST", "formgrader/api/submission/quiz-en/at-alice/autograde", None),
    ],
)  # fmt: skip
def test_the_formgrader_service_refuses_what_would_run_code_or_read_files(
    hub, fiona, method, path, body
):
    """Are kernels, terminals, sessions, contents, files, Lab, shutdown and autograde refused?"""
    before = grader_processes(hub)
    response = fiona.request(
        method, f"{fiona.base}/{path}", data=None if body is None else json.dumps(body), timeout=60
    )
    assert refused(response), (path, response.status_code, response.text[:300])
    assert grader_processes(hub) == before, "a process started as the grader account"


@pytest.mark.parametrize(
    "path",
    [".jupyter/jupyter_server_config.py", "nbgrader_config.py", "jupyterhub.py", "x.py"],
)
def test_a_facilitator_cannot_write_a_python_file_into_the_course(hub, fiona, path):
    """Is a contents PUT of a .py into a config path (or anywhere) refused, the file untouched?"""
    from atelier.grading.course import Course
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(hub.settings_path), "x")
    target = course.root / path
    before = target.read_bytes() if target.exists() else None
    model = {"type": "file", "format": "text", "content": "import os; os.system('id')\n"}
    response = fiona.put(f"{fiona.base}/api/contents/{path}", data=json.dumps(model), timeout=60)
    assert refused(response), (response.status_code, response.text[:300])
    assert (target.read_bytes() if target.exists() else None) == before


def test_a_kernel_websocket_is_refused(hub, fiona):
    """Is the websocket upgrade to a kernel's channels refused before it reaches a handler?"""
    response = fiona.get(
        f"{fiona.base}/api/kernels/{uuid.uuid4()}/channels",
        headers={
            "Connection": "Upgrade",
            "Upgrade": "websocket",
            "Sec-WebSocket-Version": "13",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        },
        timeout=60,
        stream=True,
    )
    assert response.status_code == 403, response.status_code


@pytest.mark.parametrize(
    "raw",
    [
        "/services/x/formgrader/../api/kernels",
        "/services/x/formgrader/%2e%2e/api/kernels",
        "/services/x/api%2Fkernels",
        "/services/x//api/kernels",
        "/services/x/./api/kernels",
        "/services/x/static/../api/kernels",
    ],
)
def test_path_tricks_do_not_reach_the_kernels_api(hub, fiona, raw):
    """Sent as written (no client normalisation), do dot segments and escapes stay refused?"""
    cookies = "; ".join(f"{c.name}={c.value}" for c in fiona.cookies)
    connection = http.client.HTTPConnection("127.0.0.1", hub.port, timeout=60)
    try:
        connection.request(
            "POST",
            raw,
            body=json.dumps({"name": "python3"}),
            headers={"Cookie": cookies, "X-XSRFToken": fiona.headers["X-XSRFToken"]},
        )
        response = connection.getresponse()
        text = response.read().decode(errors="replace")
    finally:
        connection.close()
    assert response.status not in (200, 201), (raw, response.status, text[:300])
    assert '"execution_state"' not in text


def test_manual_grading_still_works_through_formgrader(hub, fiona):
    """Do formgrader's pages and its grade API work: a facilitator gives a manual score?"""
    import os

    from atelier.grading.course import Course
    from atelier.settings import load_settings

    course = Course.from_settings(load_settings(hub.settings_path), "x")
    student = hub.account("bob")
    seed_gradebook(course, {student: {"alpha-en": "needs grading"}})
    grader = pwd.getpwnam(course.grader_account)
    for suffix in ("", "-wal", "-shm"):  # root seeded it: the grader account keeps it writable
        path = f"{course.gradebook_path}{suffix}"
        if os.path.exists(path) and not os.path.islink(path):
            os.chown(path, grader.pw_uid, grader.pw_gid)
    for page in (
        "manage_assignments",
        "gradebook",
        "manage_students",
        "manage_submissions/alpha-en",
    ):
        response = fiona.get(f"{fiona.base}/formgrader/{page}", timeout=60)
        assert response.status_code == 200, (page, response.status_code)
    with course.gradebook() as gb:
        submission_id = gb.find_submission_notebook("alpha.en", "alpha-en", student).id
    grades = fiona.get(
        f"{fiona.base}/formgrader/api/grades", params={"submission_id": submission_id}, timeout=60
    )
    (grade,) = grades.json()
    saved = fiona.put(
        f"{fiona.base}/formgrader/api/grade/{grade['id']}",
        data=json.dumps({"manual_score": 1.5}),
        timeout=60,
    )
    assert saved.status_code == 200, saved.text[:300]
    with course.gradebook() as gb:
        assert gb.find_grade_by_id(grade["id"]).manual_score == 1.5


def test_the_services_menu_link_opens_formgrader(hub, fiona):
    """Does the hub's Services link (the service's own address) still lead to formgrader?"""
    page = fiona.get(f"{fiona.base}/", timeout=60)
    assert page.status_code == 200 and page.url.startswith(f"{fiona.base}/formgrader"), page.url
