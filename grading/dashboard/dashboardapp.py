"""``atelier dashboard``: the facilitators' dashboard, a Voila page behind the hub's login.

It runs as a hub service (:func:`atelier.grading.dashboard.dashboard.apply`): the hub gives it an
OAuth
client; every request must carry a hub login with the ``access:services!service=dashboard`` scope
(JupyterHub's own identity provider checks it), so trainees get 403. The page is one notebook
(``templates/dashboard.ipynb``): sources stripped, tracebacks hidden (its kernel calls
:func:`atelier.public.appskernel.hide_tracebacks`), execution from the browser refused as for
every Voila page. Before its kernel starts, the logged-in name is put in a first
cell (``VIEWER``), and the page shows only the cohorts that person facilitates.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path

from jupyter_server.utils import url_path_join
from traitlets import Integer, Unicode
from voila.app import Voila

from atelier.app import AtelierApp, base_aliases
from atelier.errors import AtelierError
from atelier.upstream import voila as upstream_voila


def hub_identity_provider():
    """JupyterHub's identity provider for Jupyter servers, accepting the ``token`` Voila passes."""
    from jupyterhub.singleuser.extension import JupyterHubIdentityProvider

    class HubIdentityProvider(JupyterHubIdentityProvider):
        """Hub OAuth login and access-scope check (Voila's ``token`` argument is ignored)."""

        def __init__(self, token=None, **kwargs):
            super().__init__(**kwargs)

    return HubIdentityProvider


def inject_viewer(req_handler, notebook, cwd):
    """Voila prelaunch hook: put the logged-in hub user's name in the notebook's first cell."""
    from nbformat.v4 import new_code_cell

    user = req_handler.current_user
    name = getattr(user, "name", None) or getattr(user, "username", "")
    notebook.cells.insert(0, new_code_cell(f"VIEWER = {json.dumps(name)}"))


class DashboardVoila(Voila):
    """Voila with the hub login's handlers (OAuth callback, logout) under the service's prefix."""

    name = "atelier-dashboard"

    def init_handlers(self):
        """Voila's handlers, the identity provider's ones moved under ``server_url``."""
        from atelier.slowlink import enable_compression

        enable_compression(self.app)  # facilitators on slow links too (see slowlink.py)
        own = {spec[0] for spec in self.identity_provider.get_handlers()}
        handlers = []
        for spec in super().init_handlers():
            if spec[0] in own:
                spec = (url_path_join(self.server_url, spec[0]), *spec[1:])
            handlers.append(spec)
        return handlers


class DashboardApp(AtelierApp):
    """Serve the facilitators' dashboard (run by the hub as a service)."""

    name = "atelier dashboard"
    description = "The facilitators' dashboard (Voila), run by the hub as a service."
    aliases = {
        **base_aliases,
        "port": "DashboardApp.port",
        "base-url": "DashboardApp.base_url",
    }

    port = Integer(8867, help="Loopback port to listen on.").tag(config=True)
    base_url = Unicode("/services/dashboard/", help="URL prefix (the hub service's prefix).").tag(
        config=True
    )

    def run(self):
        """Serve the dashboard notebook behind the hub's login until stopped."""
        if not os.environ.get("JUPYTERHUB_API_TOKEN"):
            raise AtelierError(
                "the dashboard runs only as a hub service (it needs the hub's login): add it with "
                "atelier.grading.dashboard.dashboard.apply(c, settings)"
            )
        from atelier.public.apps import jupyter_path_env

        served = Path(tempfile.mkdtemp(prefix="atelier-dashboard-"))
        try:
            notebook = resources.files("atelier.grading.dashboard").joinpath(
                "templates/dashboard.ipynb"
            )
            (served / "dashboard.ipynb").write_text(notebook.read_text("utf-8"), "utf-8")
            os.environ["JUPYTER_PATH"] = jupyter_path_env()
            # A render that fails ends the page with the sentence, and the dashboard's Output
            # widget no longer stops it at "Executing 2 of 3" (a reply pyzmq never announced).
            upstream_voila.pages_always_end()
            voila = DashboardVoila(config=self.voila_config(served), log=self.log)
            voila.initialize([])
            voila.start()
        finally:
            shutil.rmtree(served, ignore_errors=True)

    def voila_config(self, served: Path):
        """Voila's configuration for the dashboard: one notebook, hub login, nothing preheated."""
        from traitlets.config import Config

        c = Config()
        c.Voila.ip = "127.0.0.1"
        c.Voila.port = self.port
        c.Voila.port_retries = 0
        c.Voila.open_browser = False
        c.Voila.base_url = self.base_url
        c.Voila.root_dir = str(served)
        c.Voila.notebook_path = str(served / "dashboard.ipynb")
        c.Voila.identity_provider_class = hub_identity_provider()
        c.VoilaConfiguration.template = "atelier"
        c.VoilaConfiguration.allow_template_override = "NO"
        c.VoilaConfiguration.allow_theme_override = "NO"
        c.VoilaConfiguration.strip_sources = True
        c.VoilaConfiguration.show_tracebacks = False
        # As for the public apps: a failed cell says one sentence; the log has the rest.
        from atelier.public.apps import CELL_ERROR

        c.VoilaExecutor.cell_error_instruction = CELL_ERROR
        c.VoilaConfiguration.prelaunch_hook = inject_viewer
        c.MappingKernelManager.cull_idle_timeout = 900
        c.MappingKernelManager.cull_interval = 60
        c.MappingKernelManager.cull_connected = True
        # Kernels over Unix sockets, as the public apps' (atelier.processes.kernelsockets).
        from atelier.processes import kernelsockets

        kernelsockets.configure(c)
        # Compressed pages, hashed widget assets cached for good (facilitators on slow links too).
        from atelier.slowlink import apply_voila

        apply_voila(c, self.base_url)
        c.Voila.tornado_settings.update({"debug": False, "serve_traceback": False})
        return c
