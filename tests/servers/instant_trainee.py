"""A trainee on the real hub, as the workbook view drives their server: fetch, answer, submit, poll.

What the instant-grading tests and the feedback benchmark both do with a trainee's browser
session (``requests`` with the hub's login cookies): nothing here knows about pytest.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import nbformat


class Trainee:
    """One logged-in trainee with a running server on a :class:`hubs.Hub`."""

    def __init__(self, hub, username: str, start: bool = True):
        self.hub, self.username = hub, username
        self.session = hub.login(username)
        self.base = f"{hub.url}/user/{username}"
        if start:
            hub.start_server(self.session, username)

    @property
    def headers(self) -> dict:
        """The XSRF header a browser page sends with a POST or PUT."""
        xsrf = self.session.cookies.get("_xsrf", path=f"/user/{self.username}/")
        return {"X-XSRFToken": xsrf or self.session.cookies.get("_xsrf") or ""}

    def fetch(self, course: str, assignment: str) -> None:
        """Fetch the released workbook (what opening it from the home page does)."""
        form = {"course_id": course, "assignment_id": assignment}
        done = self.session.post(f"{self.base}/assignments/fetch", data=form,
                                 headers=self.headers, timeout=120)  # fmt: skip
        assert done.status_code == 200, done.text[:500]

    def answer(self, course: str, assignment: str, notebook: str, cells: dict, widgets=None,
               raw: bytes | None = None) -> None:  # fmt: skip
        """Write answers into the trainee's copy: cell sources by grade id, widget values."""
        path = f"{course}/{assignment}/{notebook}"
        if raw is not None:
            content = json.loads(raw)
        else:
            model = self.session.get(f"{self.base}/api/contents/{path}", timeout=60).json()
            content = model["content"]
            for cell in content["cells"]:
                grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
                if grade_id in cells:
                    cell["source"] = cells[grade_id]
        saved = self.session.put(
            f"{self.base}/api/contents/{path}",
            data=json.dumps({"type": "notebook", "content": content}),
            headers=self.headers,
            timeout=60,
        )
        assert saved.status_code in (200, 201), saved.text[:500]
        if widgets:
            answers = {
                widget: {"value": value, "kind": "test", "saved": "2026-12-01T10:00:00Z"}
                for widget, value in widgets.items()
            }
            document = {"format": "atelier-answers", "version": 1, "answers": answers}
            # What the widgets write beside the notebook (Jupyter's contents API refuses hidden
            # files): written here as the trainee's own file.
            self.write_own(f"{course}/{assignment}/.atelier-answers.json", json.dumps(document))

    def write_own(self, relative: str, text: str) -> None:
        """Write a file into the trainee's home, owned by the trainee, as their kernel would."""
        import pwd

        entry = pwd.getpwnam(self.hub.account(self.username))
        path = Path(entry.pw_dir) / relative
        path.write_text(text, "utf-8")
        os.chown(path, entry.pw_uid, entry.pw_gid)

    def submit(self, assignment: str, confirm: bool = True, course: str = ""):
        """Press Submit (and confirm) in the workbook view; the response."""
        query = f"?course={course}" if course else ""
        return self.session.post(
            f"{self.base}/atelier/submit/{assignment}{query}",
            data=json.dumps({"confirm": confirm}),
            headers={**self.headers, "Content-Type": "application/json"},
            timeout=120,
        )

    def feedback(self, assignment: str, course: str = ""):
        """The feedback the workbook view shows now (one request)."""
        query = f"?course={course}" if course else ""
        return self.session.get(f"{self.base}/atelier/feedback/{assignment}{query}", timeout=60)

    def wait_feedback(self, assignment: str, states=("graded",), timeout: float = 120,
                      course: str = "", interval: float = 0.25) -> dict:  # fmt: skip
        """Poll the feedback as the view does, until its state is one of ``states``."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            response = self.feedback(assignment, course)
            if response.status_code == 200:
                last = response.json()
                if last.get("state") in states:
                    return last
            time.sleep(interval)
        raise AssertionError(f"{self.username} {assignment}: no feedback in {states}: {last}")


def copy_workbook(source: Path, target_root: Path, order: str, new_id: str) -> Path:
    """A copy of a workbook folder under a new id (``NN-id/id.<lang>.ipynb``)."""
    old_id = source.name.split("-", 1)[1]
    folder = target_root / f"{order}-{new_id}"
    folder.mkdir(parents=True)
    for path in source.iterdir():
        if path.suffix == ".ipynb":
            nb = nbformat.read(path, as_version=4)
            nb.metadata.setdefault("atelier", {})["id"] = new_id
            nbformat.write(nb, folder / path.name.replace(old_id, new_id, 1))
    return folder
