"""What a cohort's formgrader service serves: formgrader, and nothing else of a Jupyter server.

Rule: a facilitator is trusted with formgrader's pages and its API (manual grades and comments,
the gradebook, the buttons that call Atelier's pipelines: release, collect, feedback), never with
what would run code or change files as the course's grader account. The formgrader service is a
Jupyter server run as that account, so without this guard it would also answer kernels, sessions,
terminals, the contents API, the file editor and JupyterLab: a shell as the account that owns the
course and its gradebook.

Three layers, each enough on its own:

- :func:`_load_jupyter_server_extension` puts one rule first in the server's router: a request
  whose path (under the service's base URL) is not on the allowlist :data:`ALLOWED` is answered
  403 before any other handler sees it; ``formgrader/api/.../autograde`` is refused too (it would
  run a trainee's notebook as the grader account: ``atelier grade`` runs it in the sandbox).
  The service runs with ``ServerApp.reraise_server_extension_failures``, so a guard that fails to
  load stops the service (:mod:`atelier.grading.formgrader.launch` then serves a notice) instead
  of serving an unguarded server.
- :class:`NoKernels` is the server's kernel manager: it refuses to start a kernel.
- :func:`server_args` turns terminals off and every other server extension found off.
"""

from __future__ import annotations

import functools
import re

from tornado import web
from tornado.routing import Matcher, Rule

#: Paths (relative to the service's base URL) a facilitator's browser may reach, by method: the
#: service's address; formgrader's own pages, API and static files; the server's static files
#: (MathJax for formgrader's rendered notebooks); the hub login's callback and logout; ``api``
#: (the server's version: the hub and tests use it to see the service is up).
ALLOWED = (
    # The service's own address: the hub's Services menu links there; it redirects to formgrader.
    (re.compile(r""), {"GET", "HEAD"}),
    (re.compile(r"formgrader(/.*)?"), {"GET", "HEAD", "POST", "PUT"}),
    (re.compile(r"static/.*"), {"GET", "HEAD"}),
    (re.compile(r"api/?"), {"GET", "HEAD"}),
    (re.compile(r"oauth_callback"), {"GET"}),
    (re.compile(r"logout"), {"GET"}),
    (re.compile(r"favicon\.ico"), {"GET", "HEAD"}),
)
#: formgrader API calls that are on the allowlist's paths but are refused anyway.
REFUSED = (
    (
        re.compile(r"formgrader/api/submission/[^/]+/[^/]+/autograde/?"),
        "Autograding runs trainees' code: run `atelier grade --cohort C ASSIGNMENT`, which runs it "
        "in the grading sandbox, never as the course's grader account.",
    ),
)
#: Server extensions the formgrader service keeps (every other one found is turned off).
KEEP_EXTENSIONS = (
    "nbgrader.server_extensions.formgrader",
    "jupyter_server_mathjax",
    "atelier.grading.formgrader.guard",
)
#: Extensions turned off even when not found in a config file (a config path the service reads
#: could enable them).
ALWAYS_OFF = (
    "jupyterlab",
    "notebook",
    "notebook_shim",
    "nbclassic",
    "jupyter_server_terminals",
    "jupyter_lsp",
    "nbgitpuller",
    "voila.server_extension",
    "nbgrader.server_extensions.assignment_list",
    "nbgrader.server_extensions.course_list",
    "nbgrader.server_extensions.validate_assignment",
)


def refusal(path: str, method: str) -> str | None:
    """Why ``method`` on ``path`` (under the base URL, no leading ``/``) is refused, or None."""
    segments = path.split("/")
    if "%" in path.replace("%20", "") or any(s in (".", "..") for s in segments) or "//" in path:
        # Dot segments and escapes are never formgrader's; refusing them keeps the allowlist's
        # reading of a path and the router's the same.
        return "unusual path"
    for pattern, reason in REFUSED:
        if pattern.fullmatch(path):
            return reason
    for pattern, methods in ALLOWED:
        if pattern.fullmatch(path):
            return None if method in methods else f"{method} is not allowed here"
    return "the formgrader service serves formgrader only (no kernels, terminals, files or Lab)"


class _Refused(Matcher):
    """Matches every request the allowlist does not let through (tornado routing)."""

    def __init__(self, base_url: str):
        self.base_url = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"

    def match(self, request):
        path = request.path
        if not path.startswith(self.base_url):
            reason = "outside the formgrader service"
        else:
            reason = refusal(path[len(self.base_url) :], request.method)
        return None if reason is None else {"target_kwargs": {"reason": reason}}


class RefusedHandler(web.RequestHandler):
    """Answers 403 with the reason, as JSON (formgrader's API) or text, for any method."""

    def initialize(self, reason: str):
        """Keep the reason given by the rule."""
        self.reason = reason

    def check_xsrf_cookie(self):
        """Nothing to protect: this handler changes nothing."""

    def prepare(self):
        """Refuse, whatever the method."""
        self.set_status(403)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish({"success": False, "message": f"Forbidden: {self.reason}"})


def _load_jupyter_server_extension(serverapp) -> None:
    """Put the refusal rule first in the server's router, before every handler of the server."""
    rule = Rule(_Refused(serverapp.base_url), RefusedHandler)
    serverapp.web_app.default_router.rules.insert(0, rule)
    serverapp.log.info("atelier: formgrader guard on: only formgrader is served")


def _jupyter_server_extension_points():
    return [{"module": "atelier.grading.formgrader.guard"}]


@functools.cache
def _no_kernels():
    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager

    class NoKernels(AsyncMappingKernelManager):
        """A kernel manager that starts no kernel.

        Formgrader needs none, and a kernel would be a shell as the course's grader account.
        """

        async def start_kernel(self, *args, **kwargs):
            raise web.HTTPError(403, "the formgrader service starts no kernels")

    return NoKernels


def __getattr__(name: str):
    # NoKernels is built on first use so that importing this module (the hub's config does, for
    # server_args) does not import the Jupyter server's kernel machinery.
    if name == "NoKernels":
        return _no_kernels()
    raise AttributeError(name)


def found_extensions() -> list[str]:
    """Server extensions enabled in this Python's Jupyter config paths."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.config_manager import BaseJSONConfigManager

    names: set[str] = set()
    for path in jupyter_config_path():
        manager = BaseJSONConfigManager(config_dir=path)
        for section in ("jupyter_server_config",):
            data = manager.get(section)
            names |= set(data.get("ServerApp", {}).get("jpserver_extensions", {}))
    return sorted(names)


def server_args() -> list[str]:
    """Command-line options of the formgrader service's server (they win over config files)."""
    off = sorted((set(found_extensions()) | set(ALWAYS_OFF)) - set(KEEP_EXTENSIONS))
    return [
        *(f"--ServerApp.jpserver_extensions={name}=True" for name in KEEP_EXTENSIONS),
        *(f"--ServerApp.jpserver_extensions={name}=False" for name in off),
        "--ServerApp.reraise_server_extension_failures=True",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.kernel_manager_class=atelier.grading.formgrader.guard.NoKernels",
    ]
