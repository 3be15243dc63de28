"""The trainee's home page, "My workbooks": where the hub sends a trainee after login.

Rule: the page lists every workbook released to the trainee's cohorts with where they stand
(:mod:`atelier.hub_config.view.progress`), its due date and one button to open it in the workbook
view, with a small link to the same files in JupyterLab. It runs in the trainee's own server, as
the trainee, in the trainee's language (``ATELIER_LANGUAGE``), and shows no code.

Opening a workbook that is not in the trainee's home yet fetches it first, with the hardened
exchange's own fetch (:class:`atelier.grading.exchange.trainee.AtelierFetchAssignment`, what
JupyterLab's assignment list runs), then goes to the view. That step is a GET (a link, so it
opens in a new tab and works without JavaScript): it only copies the trainee's own released
workbook into their own home, never over a file already there, so a forged link can do nothing
the trainee would not want.
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

from atelier.grading.exchange.trainee import trainee_language
from atelier.hub_config.view.progress import Workbook, my_workbooks
from atelier.languages import words
from atelier.pages import render

PACKAGE = "atelier.hub_config.view"


def account() -> str:
    """The trainee's account: nbgrader's student id, the name its submit gives submissions."""
    from nbgrader.utils import get_username

    return get_username()


def nbgrader_config():
    """The trainees' nbgrader config, as the hub installed it (not a file in the trainee's home)."""
    from nbgrader.apps import NbGrader

    app = NbGrader()
    # Only the installation's config (JUPYTER_CONFIG_PATH): the home page lists what the hub
    # released, whatever a file in the trainee's home says.
    app.load_cwd_config = False
    app.load_config_file()
    return app.config


def exchange_root(config) -> Path:
    """The exchange root of ``config`` (nbgrader's default when unset)."""
    from nbgrader.exchange.default import Exchange

    return Path(Exchange(config=config).root)


def format_time(moment: datetime, text: dict[str, str]) -> str:
    """A time in the trainee's words, in UTC (``3 Dec 2026, 17:00 UTC``)."""
    moment = moment.astimezone(UTC)
    months = text["months"].split("|")
    return text["date"].format(
        day=moment.day,
        month=months[moment.month - 1],
        year=moment.year,
        time=moment.strftime("%H:%M"),
    )


def format_score(value: float, text: dict[str, str]) -> str:
    """A score without a useless ``.0``, with the trainee's decimal mark (``2,5`` in French)."""
    return f"{value:g}".replace(".", text["decimal"])


def links(base_url: str, workbook: Workbook) -> dict[str, str]:
    """Where the workbook's button (``view``) and its JupyterLab link (``lab``) go."""
    if workbook.fetched:
        view = url_path_join(base_url, "atelier/view", quote(workbook.path))
        lab = url_path_join(base_url, "lab/tree", quote(workbook.path))
    else:
        opener = url_path_join(
            base_url, "atelier/home/open", quote(workbook.course), quote(workbook.assignment)
        )
        view, lab = opener, f"{opener}?to=lab"
    return {"view": view, "lab": lab}


def home_page(base_url: str, language: str, workbooks: list[Workbook], notice: str = "") -> str:
    """The page, from ``home.html.j2`` (every value escaped by the template)."""
    text = words(PACKAGE, "home", language)
    rows = []
    for workbook in workbooks:
        submitted, due = workbook.submitted, workbook.due
        has_score = workbook.score is not None and workbook.max_score is not None
        rows.append(
            {
                "workbook": workbook,
                "links": links(base_url, workbook),
                "submitted": format_time(submitted, text) if submitted else "",
                "due": format_time(due, text) if due else "",
                "score": format_score(workbook.score, text) if has_score else "",
                "max_score": format_score(workbook.max_score, text) if has_score else "",
            }
        )
    return render(
        PACKAGE,
        "home.html.j2",
        language=language,
        text=text,
        rows=rows,
        notice=notice,
        lab_url=url_path_join(base_url, "lab/tree/workbooks"),
        logout_url=url_path_join(base_url, "logout"),
        # The peer review pages are the hub service atelier-peer's (grading/peerreview/), set by
        # grading's hub plugin when the service runs.
        peer_url=os.environ.get("ATELIER_PEER_URL", ""),
    )


class HomeHandler(JupyterHandler):
    """``GET /atelier/home``: the trainee's workbooks and where they stand."""

    def render_home(self, language: str, workbooks: list[Workbook], notice: str = "") -> str:
        """The page for this server's base URL."""
        return home_page(self.base_url, language, workbooks, notice)

    def _finish_page(self, html: str) -> None:
        # Status changes as the trainee works: never show a stale copy after Back.
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.finish(html)

    async def workbooks(self, language: str) -> list[Workbook]:
        """The trainee's workbooks (file reads run off the server's event loop)."""
        config = await asyncio.to_thread(nbgrader_config)
        home = Path(self.settings["server_root_dir"])
        return await asyncio.to_thread(
            my_workbooks, exchange_root(config), home, account(), language
        )

    @web.authenticated
    async def get(self):
        """Show the page."""
        language = trainee_language()
        try:
            workbooks = await self.workbooks(language)
            notice = ""
        except Exception as error:  # the page must say what is wrong, never show a traceback
            self.log.exception("atelier home: the workbooks could not be listed")
            text = words(PACKAGE, "home", language)
            workbooks, notice = [], text["no_exchange"].format(reason=error)
        self._finish_page(self.render_home(language, workbooks, notice))


class OpenHandler(HomeHandler):
    """``GET /atelier/home/open/<course>/<assignment>``: fetch if needed, then go to the view."""

    def _fetch(self, config, workbook: Workbook) -> None:
        from nbgrader.auth import Authenticator
        from nbgrader.coursedir import CourseDirectory
        from nbgrader.exchange import ExchangeFactory

        root = self.settings["server_root_dir"]
        config.CourseDirectory.course_id = workbook.course
        config.CourseDirectory.assignment_id = workbook.assignment
        config.Exchange.assignment_dir = root
        # A folder the trainee already has (a notebook deleted by hand) gets the missing files
        # back; nothing already there is replaced.
        config.ExchangeFetchAssignment.replace_missing_files = True
        fetch = ExchangeFactory(config=config).FetchAssignment(
            coursedir=CourseDirectory(config=config),
            authenticator=Authenticator(config=config),
            config=config,
        )
        fetch.start()

    @web.authenticated
    async def get(self, course: str, assignment: str):
        """Fetch the workbook into the trainee's home unless it is there, then redirect."""
        language = trainee_language()
        text = words(PACKAGE, "home", language)
        try:
            config = await asyncio.to_thread(nbgrader_config)
            home = Path(self.settings["server_root_dir"])
            found = await asyncio.to_thread(
                my_workbooks, exchange_root(config), home, account(), language
            )
        except Exception as error:
            self.log.exception("atelier home: the workbooks could not be listed")
            self.set_status(500)
            self._finish_page(
                self.render_home(language, [], text["no_exchange"].format(reason=error))
            )
            return
        chosen = [w for w in found if (w.course, w.assignment) == (course, assignment)]
        if not chosen or not chosen[0].notebook:
            raise web.HTTPError(404, "no such workbook released to you")
        workbook = chosen[0]
        if not workbook.fetched:
            try:
                await asyncio.to_thread(self._fetch, config, workbook)
            except Exception as error:  # nbgrader's ExchangeError, or a file problem
                self.log.exception("atelier home: fetching %s failed", assignment)
                self.set_status(500)
                notice = text["open_failed"].format(reason=error)
                self._finish_page(self.render_home(language, found, notice))
                return
            workbook.fetched = True
        target = links(self.base_url, workbook)[
            "lab" if self.get_argument("to", "") == "lab" else "view"
        ]
        self.redirect(target)


#: Patterns (under the server's base URL) and handlers, added by the view's server extension.
HANDLERS = [
    (r"/atelier/home/?", HomeHandler),
    (r"/atelier/home/open/([a-z0-9][a-z0-9-]*)/([A-Za-z0-9][A-Za-z0-9_.-]*)", OpenHandler),
]
