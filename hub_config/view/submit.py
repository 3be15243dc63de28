"""Submit from the workbook view, and the trainee's own feedback, on the trainee's own server.

Rule: this runs as the trainee (their server, their account) and reaches only what the trainee
may: their copy of the workbook, the exchange through the hardened trainee class
(:class:`atelier.grading.exchange.trainee.AtelierSubmit`, the same as JupyterLab's assignment
list uses), and their own feedback folder. Nothing here is trusted by the facilitators' side:
collect checks every submission again, and the instant grading service
(:mod:`atelier.grading.instant.service`) takes the trainee's identity from the hub, from this
server's own API token.

- ``POST /atelier/submit/<assignment>`` (XSRF, logged in): with ``{"confirm": false}`` the confirm
  step (the unanswered items, the attempts left); with ``{"confirm": true}`` the submission, a
  receipt, then a call to the instant grading service.
- ``GET /atelier/feedback/<assignment>``: the trainee's per-item results as the workbook's policy
  lets them see them now (score, each item right or wrong, the diagnostic of the option chosen;
  reflections "waiting for your facilitator" until marked), in the trainee's language.
"""

from __future__ import annotations

import ast
import asyncio
import getpass
import json
import os
import re
from pathlib import Path

from jupyter_server.base.handlers import JupyterHandler
from tornado import web

from atelier import languages
from atelier.grading.exchange.policy import POLICY_FILE, read_policy_file
from atelier.grading.exchange.trainee import trainee_language
from atelier.grading.instant.items import read_results

ROOM = "atelier.hub_config.view"
ASSIGNMENT = r"([a-z0-9][a-z0-9-]*-[a-z]{2})"
#: The instant grading service's path on its own port (the hub's prefix for it).
INSTANT_PATH = "/services/atelier-instant/submissions"


def words(language: str | None = None) -> dict[str, str]:
    """The submit and feedback words in the trainee's language."""
    return languages.words(ROOM, "submit", language or trainee_language())


# --- what the trainee's server reads ------------------------------------------------------------


def exchange_root() -> Path:
    """The exchange root, from the trainees' nbgrader configuration (the hub writes it)."""
    from jupyter_core.paths import jupyter_config_path
    from traitlets.config.loader import PyFileConfigLoader

    for folder in jupyter_config_path():
        if os.path.isfile(os.path.join(folder, "nbgrader_config.py")):
            config = PyFileConfigLoader("nbgrader_config.py", path=folder).load_config()
            if "root" in config.get("Exchange", {}):
                return Path(config.Exchange.root)
    return Path("/srv/atelier/exchange")


def my_courses(assignment: str, root: Path | None = None) -> list[str]:
    """The courses that released ``assignment`` and in which I have an inbound folder."""
    root = root or exchange_root()
    me = getpass.getuser()
    found = []
    try:
        names = sorted(os.listdir(root))
    except OSError:
        return []
    for course in names:
        if (root / course / "inbound" / me).is_dir() and (
            root / course / "outbound" / assignment
        ).is_dir():
            found.append(course)
    return found


def my_submissions(root: Path, course: str, assignment: str) -> list[str]:
    """My submission folders of ``assignment`` in my own inbound folder, oldest name first."""
    me = getpass.getuser()
    try:
        names = os.listdir(root / course / "inbound" / me)
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(f"{me}+{assignment}+"))


#: Calls that make a widget with an id: ``MultipleChoice("w5-q1", ...)`` or ``...(widget_id=...)``.
def widget_ids(source: str) -> list[str]:
    """The ids of the widgets a code cell makes (first string argument of a class's call)."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", "")
        if not name[:1].isupper():
            continue
        value = None
        if node.args and isinstance(node.args[0], ast.Constant):
            value = node.args[0].value
        for keyword in node.keywords:
            if keyword.arg in ("widget_id", "id") and isinstance(keyword.value, ast.Constant):
                value = keyword.value.value
        if isinstance(value, str) and re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", value):
            found.append(value)
    return found


def unanswered(folder: Path, released: Path) -> list[dict]:
    """The items of the workbook in ``folder`` not answered yet, in the notebook's order.

    A widget item is answered when the answers file holds a value for it; a written answer
    (nbgrader's solution cell) when it differs from the released text.
    """
    from atelier.widgets.store import AnswerStore

    try:
        answers = AnswerStore(folder, notebook="").answers()
    except Exception:
        answers = {}
    missing = []
    for path in sorted(folder.glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text("utf-8"))
            original = json.loads((released / path.name).read_text("utf-8"))
        except (OSError, ValueError):
            continue
        given = {_grade_id(c): _source(c) for c in original.get("cells", []) if _grade_id(c)}
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution") and _grade_id(cell):
                if _source(cell).strip() == given.get(_grade_id(cell), "").strip():
                    missing.append({"id": _grade_id(cell), "kind": "written"})
            elif cell.get("cell_type") == "code":
                for widget in widget_ids(_source(cell)):
                    entry = answers.get(widget)
                    if not entry or entry.get("value") in (None, "", [], {}):
                        missing.append({"id": widget, "kind": "widget"})
    return missing


#: A Markdown heading line; its text names the items below it for the trainee.
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)[ \t#]*$", re.M)
#: A Markdown link or image: its text is kept, the address dropped.
LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")


def item_labels(folder: Path) -> dict[str, str]:
    """By item id (grade id or widget id): the heading a trainee reads above the item.

    Grade ids and widget ids mean nothing to a trainee; the heading of the part of the workbook
    that holds the item ("2. A student who works too much (2 points)") is what they recognise.
    Read from the trainee's own copy; an item under no heading has none.
    """
    labels: dict[str, str] = {}
    for path in sorted(folder.glob("*.ipynb")):
        try:
            nb = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError):
            continue
        heading = ""
        for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
            if not isinstance(cell, dict):
                continue
            source = _source(cell)
            if cell.get("cell_type") == "markdown":
                found = HEADING.findall(source)
                if found:
                    heading = plain(found[-1])
            ids = [_grade_id(cell)] if _grade_id(cell) else []
            if cell.get("cell_type") == "code":
                ids += widget_ids(source)
            for item in ids:
                labels.setdefault(item, heading)
    return labels


def plain(markdown: str, most: int = 120) -> str:
    """A heading's text without Markdown marks or HTML tags, at most ``most`` characters."""
    text = LINK.sub(r"\1", markdown)
    text = re.sub(r"<[^>]*>", "", text)
    text = re.sub(r"[*_`]+", "", text)
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


def _grade_id(cell: dict) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else source


def submit_now(root_dir: str, course: str, assignment: str) -> dict:
    """Submit my copy through the hardened exchange; the receipt (folder, time received)."""
    from nbgrader.auth import Authenticator
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.exchange import ExchangeError

    from atelier.grading.exchange.trainee import AtelierSubmit

    config = _nbgrader_config()
    config.CourseDirectory.course_id = course
    config.CourseDirectory.assignment_id = assignment
    config.Exchange.assignment_dir = root_dir
    submit = AtelierSubmit(
        coursedir=CourseDirectory(config=config),
        authenticator=Authenticator(config=config),
        config=config,
    )
    try:
        submit.start()
    except ExchangeError as error:
        raise SubmitRefused(str(error) or "the exchange refused the submission") from None
    folder = Path(submit.inbound_path) / submit.assignment_filename
    # The receipt time is the server's: the newest change time of what was written, as collect
    # reads it (a trainee cannot set a change time back).
    newest = max((p.lstat().st_ctime for p in [folder, *folder.rglob("*")]), default=0.0)
    from atelier.grading.exchange.collect import receipt_text

    return {"folder": folder.name, "submitted": submit.timestamp, "received": receipt_text(newest)}


def _nbgrader_config():
    """The trainees' nbgrader configuration, as JupyterLab's assignment list loads it."""
    from jupyter_core.paths import jupyter_config_path
    from nbgrader.apps import NbGrader

    app = NbGrader()
    app.config_file_paths.append(jupyter_config_path())
    app.load_config_file()
    return app.config


class SubmitRefused(Exception):
    """The exchange, the policy or the limits refused a submission: the message says why."""


async def call_instant(course: str, assignment: str) -> dict:
    """Ask the instant grading service to grade my newest submission (this server's token)."""
    from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

    base = os.environ.get("ATELIER_INSTANT_URL", "")
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if not base or not token:
        return {"state": "off"}
    request = HTTPRequest(
        f"{base.rstrip('/')}{INSTANT_PATH}/{course}/{assignment}",
        method="POST",
        body=b"",
        headers={"Authorization": f"token {token}"},
        request_timeout=30,
    )
    try:
        response = await AsyncHTTPClient().fetch(request, raise_error=False)
    except (OSError, HTTPClientError) as error:
        return {"state": "unreachable", "reason": str(error)}
    try:
        reply = json.loads(response.body or b"{}")
    except ValueError:
        reply = {}
    return reply if isinstance(reply, dict) else {}


# --- the handlers --------------------------------------------------------------------------------


class _Base(JupyterHandler):
    """Answers in JSON, in the trainee's language."""

    def course_of(self, assignment: str) -> str:
        """The course of ``assignment`` I belong to (``?course=`` picks one if several)."""
        courses = my_courses(assignment)
        wanted = self.get_argument("course", "")
        if wanted:
            courses = [c for c in courses if c == wanted]
        if not courses:
            raise web.HTTPError(404, words()["not_released"].format(assignment=assignment))
        return courses[0]

    def write_error(self, status_code, **kwargs):
        """Errors as JSON with a sentence for the trainee, never a traceback.

        The sentence is the refusal's own (raised with ``HTTPError(status, sentence)``, in the
        trainee's language); anything unforeseen gets the general one.
        """
        error = kwargs.get("exc_info", (None, None, None))[1]
        message = ""
        if isinstance(error, web.HTTPError) and status_code < 500 and error.log_message:
            message = error.log_message % error.args if error.args else error.log_message
        self.set_header("Content-Type", "application/json")
        self.finish({"state": "refused", "status": status_code,
                     "message": message or words()["failed"]})  # fmt: skip


class SubmitHandler(_Base):
    """``POST /atelier/submit/<assignment>``: the confirm step, then the submission."""

    @web.authenticated
    async def post(self, assignment: str):
        """Without ``confirm``: what is unanswered; with it: submit, receipt, instant grading."""
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError:
            raise web.HTTPError(400, "the request is not JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, "the request is not a JSON object")
        text = words()
        course = self.course_of(assignment)
        root = exchange_root()
        root_dir = self.settings.get("server_root_dir", os.path.expanduser("~"))
        folder = Path(root_dir) / course / assignment
        if not folder.is_dir():
            raise web.HTTPError(404, text["not_fetched"].format(assignment=assignment))
        released = root / course / "outbound" / assignment
        policy = read_policy_file(released / POLICY_FILE)
        used = len(my_submissions(root, course, assignment))
        if policy.closed():
            raise web.HTTPError(409, text["closed"])
        if policy.attempts and used >= policy.attempts:
            raise web.HTTPError(409, text["no_attempts"].format(attempts=policy.attempts))
        loop = asyncio.get_running_loop()
        missing = await loop.run_in_executor(None, unanswered, folder, released)
        labels = await loop.run_in_executor(None, item_labels, folder)
        for item in missing:
            item["label"] = labels.get(item["id"], "")
        left = policy.attempts_left(used)
        if not body.get("confirm"):
            self.finish({"state": "confirm", "assignment": assignment, "course": course,
                         "unanswered": missing, "attempt": used + 1,
                         "attempts_left": left, "due": policy.due})  # fmt: skip
            return
        try:
            receipt = await loop.run_in_executor(None, submit_now, root_dir, course, assignment)
        except SubmitRefused as refused:
            raise web.HTTPError(409, text["refused"].format(reason=str(refused))) from None
        grading = await call_instant(course, assignment)
        self.finish({
            "state": "submitted", "assignment": assignment, "course": course,
            "receipt": receipt, "attempt": used + 1,
            "attempts_left": None if left is None else max(0, left - 1),
            "unanswered": missing, "grading": grading.get("state", ""),
            "message": text["received"].format(received=receipt["received"]),
        })  # fmt: skip


class FeedbackHandler(_Base):
    """``GET /atelier/feedback/<assignment>``: my results, as the policy lets me see them now."""

    @web.authenticated
    async def get(self, assignment: str):
        """My own results file, with a sentence per state and per item in my language."""
        text = words()
        course = self.course_of(assignment)
        root = exchange_root()
        me = getpass.getuser()
        results = read_results(root / course / "feedback" / me, assignment)
        policy = read_policy_file(root / course / "outbound" / assignment / POLICY_FILE)
        submitted = my_submissions(root, course, assignment)
        stale = results is None or (
            results.get("state") == "graded" and not results.get("diagnostics")
            and policy.past_due()
        )  # fmt: skip
        if submitted and stale:
            # Never graded (the service was busy or down), or the due date has passed since:
            # ask again; the service collects my newest submission and releases what it may.
            await call_instant(course, assignment)
        if results is None:
            state = "grading" if submitted else "none"
            self.finish({"state": state, "assignment": assignment, "message": text[state]})
            return
        state = results.get("state", "")
        results["message"] = text.get(state, "").format(**_numbers(results))
        root_dir = self.settings.get("server_root_dir", os.path.expanduser("~"))
        labels = await asyncio.get_running_loop().run_in_executor(
            None, item_labels, Path(root_dir) / course / assignment
        )
        for item in results.get("items", []):
            if item.get("status") == "waiting":
                item["note"] = text["waiting"]
            # The heading above the graded cell, else above the widget it grades.
            named = [labels.get(item.get("id", ""))] + [
                labels.get(w) for w in item.get("widgets", [])
            ]
            item["label"] = next((n for n in named if n), "")
        self.finish(results)


def _numbers(results: dict) -> dict:
    score, most = results.get("score"), results.get("max_score")
    return {
        "score": "" if score is None else f"{score:g}",
        "max_score": "" if most is None else f"{most:g}",
        "reason": results.get("reason", ""),
    }


HANDLERS = [
    (rf"/atelier/submit/{ASSIGNMENT}", SubmitHandler),
    (rf"/atelier/feedback/{ASSIGNMENT}", FeedbackHandler),
]
