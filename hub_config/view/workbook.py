"""``GET /atelier/view/<path>``: a workbook as a page of text, widgets and answer boxes, no code.

Rule: the view is Voila, run inside the trainee's own server (their account, their files, a kernel
started in the notebook's folder, so the widgets save every answer to the ``.atelier-answers.json``
beside the notebook and restore it on the next visit), rendering the trainee's copy of the
notebook with the template ``atelier-view`` (``share/jupyter/voila/templates/atelier-view/``):
sources stripped, no traceback, no template or theme chosen by URL, only ipywidgets' lab
extension loaded, every word in the trainee's language (``ATELIER_LANGUAGE``, from the roster),
one save state for the whole page and a link to the same file in JupyterLab. Why Voila rather
than Notebook 7 or a page of Atelier's own: ``docs/architecture.md`` ("The trainee's path").

Voila's own server extension must be loaded too: it serves the page's JavaScript, the widgets'
lab extension and the theme under ``/voila/``. This module adds only the page.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, urlencode

from jupyter_server.utils import url_path_join
from tornado import web
from voila.tornado.handler import TornadoVoilaHandler

from atelier import languages, pages
from atelier.processes.jupyterpath import prepend
from atelier.upstream import voila as upstream_voila

PACKAGE = "atelier.hub_config.view"
#: The Voila template of the view, and the data folder (put first on JUPYTER_PATH) that holds it.
TEMPLATE = "atelier-view"
SHARE_DIR = Path(__file__).resolve().parent / "share" / "jupyter"
#: The key of the server's tornado settings where :func:`setup` leaves the view's Voila set-up.
SETTINGS_KEY = "atelier_view"
#: The only lab extensions the page loads: ipywidgets' controls and Voila's widget manager (which
#: provides their registry). Voila would load every installed one (nbgrader's, Notebook's, Voila's
#: own preview, pygments' CSS): code and requests a workbook never uses.
EXTENSIONS = ["@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8"]
#: The environment variable holding the trainee's language (the spawner sets it from the roster).
LANGUAGE_ENV = "ATELIER_LANGUAGE"


def language(environ=os.environ) -> str:
    """The trainee's language: ``ATELIER_LANGUAGE`` if Atelier speaks it, else the first one."""
    code = (environ.get(LANGUAGE_ENV) or "").replace("_", "-").split("-")[0].lower()
    return code if code in languages.LANGUAGES else languages.LANGUAGES[0]


def page_words(code: str) -> dict[str, str]:
    """The words of the view page in ``code`` (``locales/<code>.json``, keys ``view.*``)."""
    return languages.words(PACKAGE, "view", code)


def notebook_path(path: str) -> str:
    """The notebook's path (relative to the server's root) from the URL's ``path``.

    Raises:
        tornado.web.HTTPError: 404 unless it names a notebook (``.ipynb``); Voila would redirect
            any other file to its raw download.
    """
    path = path.strip("/")
    if not path.endswith(".ipynb"):
        raise web.HTTPError(404, f"{path or '(nothing)'} is not a workbook (a .ipynb file)")
    return path


def lab_url(base_url: str, path: str) -> str:
    """The address of the same notebook in JupyterLab."""
    return url_path_join(base_url, "lab", "tree", quote(path))


def view_url(base_url: str, path: str) -> str:
    """The address of the notebook ``path`` in the view (for links from other pages)."""
    return url_path_join(base_url, "atelier", "view", quote(path))


def submission(base_url: str, path: str, courses=None) -> dict | None:
    """Where the view's Submit button and feedback go, if ``path`` is a released workbook.

    A released workbook is fetched to ``<course>/<assignment>/<notebook>.ipynb`` under the
    server's root (where :mod:`atelier.hub_config.view.submit` looks for it); it is the trainee's
    to submit when that course released the assignment to them. Any other notebook has no
    Submit button (None).

    Args:
        base_url: the server's base URL (``/user/<name>/``).
        path: the notebook's path under the server's root, as in the view's URL.
        courses: ``assignment -> courses`` (default: :func:`submit.my_courses`, the exchange).
    """
    from atelier.hub_config.view import submit

    parts = path.strip("/").split("/")
    if len(parts) != 3 or not re.fullmatch(submit.ASSIGNMENT, parts[1]):
        return None
    course, assignment = parts[0], parts[1]
    if course not in (courses or submit.my_courses)(assignment):
        return None
    query = "?" + urlencode({"course": course})
    return {
        "course": course,
        "assignment": assignment,
        "submit_url": url_path_join(base_url, "atelier", "submit", assignment) + query,
        "feedback_url": url_path_join(base_url, "atelier", "feedback", assignment) + query,
    }


def voila_configuration(serverapp):
    """Voila's configuration for the view: the view's template, nothing a URL can change."""
    from voila.configuration import VoilaConfiguration

    configuration = VoilaConfiguration(parent=serverapp)
    configuration.template = TEMPLATE
    configuration.theme = "light"
    configuration.allow_template_override = "NO"
    configuration.allow_theme_override = "NO"
    configuration.strip_sources = True
    configuration.show_tracebacks = False
    configuration.extension_allowlist = list(EXTENSIONS)
    configuration.preheat_kernel = False
    configuration.prelaunch_hook = prelaunch
    return configuration


def is_test_cell(cell) -> bool:
    """Whether ``cell`` is one of nbgrader's test cells (graded, not an answer: code run to grade).

    The view does not run them: the trainee's copy keeps only their visible part, which says an
    item is not answered yet by raising, and Voila would show that as a broken part of the page
    under every question not answered. The view's Submit lists unanswered items instead.
    """
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def prelaunch(handler, notebook, cwd):
    """Voila's prelaunch hook: give the template this request's words and links, and the images.

    The template reads them from ``nb.metadata.atelier_view``; nbgrader's test cells are left out
    (:func:`is_test_cell`); local images of the text go in as cell attachments
    (:mod:`atelier.hub_config.view.images`). The notebook on disk is not changed.
    """
    from atelier.hub_config.view.images import inline_images

    code = handler.settings[SETTINGS_KEY]["language"]
    path = handler.path_kwargs.get("path", "") if handler.path_kwargs else ""
    notebook.cells = [cell for cell in notebook.cells if not is_test_cell(cell)]
    root = handler.settings.get("server_root_dir") or os.path.expanduser("~")
    inline_images(notebook, Path(root) / (cwd or ""))
    notebook.metadata["atelier_view"] = {
        "language": code,
        "words": page_words(code),
        "lab_url": lab_url(handler.base_url, notebook_path(path)),
        "submit": submission(handler.base_url, notebook_path(path)),
    }
    return notebook


def setup(serverapp) -> None:
    """Prepare the view on a running server (called once by the extension, before its handlers).

    Voila's static-file handler finds a template's files only through ``JUPYTER_PATH``, read at
    each request: the view's data folder goes first on this server's ``JUPYTER_PATH``.
    """
    from traitlets.config import Config
    from voila.paths import collect_template_paths

    os.environ["JUPYTER_PATH"] = prepend(SHARE_DIR, os.environ.get("JUPYTER_PATH"))
    # Each page's exporter would compile the whole template chain again (upstream/voila.py).
    upstream_voila.share_compiled_templates()
    code = language()
    words = page_words(code)
    config = Config(serverapp.config)
    # Voila's sentences in place of a failed cell and the page's <html lang>.
    config.VoilaExecutor.cell_error_instruction = words["cell_error"]
    config.VoilaExporter.language_code = code
    # A render that fails (a kernel that never answers) ends the page with that sentence, and a
    # cell's reply pyzmq never announced is still read: no page is left unfinished.
    upstream_voila.pages_always_end()
    # Voila's own renderer stops the page at the first image (images.py says why).
    config.VoilaExporter.markdown_renderer_class = (
        "atelier.hub_config.view.images.ViewMarkdownRenderer"
    )
    serverapp.web_app.settings[SETTINGS_KEY] = {
        "language": code,
        "config": config,
        "voila_configuration": voila_configuration(serverapp),
        "template_paths": collect_template_paths(["voila", "nbconvert"], TEMPLATE),
    }


class WorkbookViewHandler(TornadoVoilaHandler):
    """The workbook view of one notebook of the trainee's (Voila's handler, set for the view)."""

    def initialize(self, **kwargs):
        """Take the view's Voila set-up left by :func:`setup` in the server's settings."""
        view = self.settings[SETTINGS_KEY]
        super().initialize(
            config=view["config"],
            template_paths=view["template_paths"],
            voila_configuration=view["voila_configuration"],
        )

    @web.authenticated
    async def get(self, path: str = ""):
        """Render the workbook (404 for anything but a notebook the server can read)."""
        await super().get(notebook_path(path))

    def write_error(self, status_code: int, **kwargs) -> None:
        """A short page in the trainee's language, with a way back; never a traceback."""
        code = self.settings.get(SETTINGS_KEY, {}).get("language", languages.LANGUAGES[0])
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish(
            pages.render(
                PACKAGE,
                "view-error.html.j2",
                language=code,
                words=page_words(code),
                status=status_code,
                lab_url=url_path_join(self.base_url, "lab"),
            )
        )


#: The view's route (relative to the server's base URL), added by the extension.
HANDLERS = [(r"/atelier/view/(?P<path>.*)", WorkbookViewHandler)]
