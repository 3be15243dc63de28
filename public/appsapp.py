"""``atelier apps``: serve the workbooks marked as apps with Voila, to anyone (alone or in a hub).

Steps, in order: collect the app notebooks into a private directory that holds only them; put
Atelier's Voila template on the Jupyter path; check the kernel bound leaves room for visitors; run
Voila (:class:`atelier.public.appsserver.AppsVoila`) configured by :func:`apps.voila_config`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from traitlets import Bool, Integer, Unicode

from atelier.app import AtelierApp, base_aliases, base_flags
from atelier.processes import priority
from atelier.public import apps
from atelier.upstream import voila as upstream_voila


class AppsApp(AtelierApp):
    """Serve the public apps (Voila) on their own, or as the hub's public service."""

    name = "atelier apps"
    description = (
        "Serve the workbooks marked as apps (metadata.atelier.app) with Voila, without login: "
        "sources and tracebacks hidden, code execution refused, preheated and bounded kernels."
    )
    aliases = {
        **base_aliases,
        "workbooks": "AppsApp.workbooks",
        "ip": "AppsApp.ip",
        "port": "AppsApp.port",
        "base-url": "AppsApp.base_url",
    }
    flags = {
        **base_flags,
        "binder-links": (
            {"AppsApp": {"binder_links": True}},
            "Print the README's Binder lines (an app and a JupyterLab link per notebook) and exit.",
        ),
    }

    workbooks = Unicode(
        "",
        help="Folder of workbooks to find apps in; empty means apps.workbooks_dir, or workbooks/.",
    ).tag(config=True)
    ip = Unicode("", help="Address to listen on; empty means apps.ip.").tag(config=True)
    port = Integer(0, help="Port to listen on; 0 means apps.port.").tag(config=True)
    base_url = Unicode(
        "/", help="URL prefix of every page (the hub service uses /services/apps/)."
    ).tag(config=True)
    binder_links = Bool(False, help="Print the README's Binder lines and exit.").tag(config=True)

    def workbooks_dir(self) -> Path:
        """The folder the apps come from."""
        return Path(
            self.workbooks or self.settings["apps"]["workbooks_dir"] or apps.default_workbooks_dir()
        )

    def run(self):
        """Stage the apps and serve them until interrupted."""
        if self.binder_links:
            print("\n".join(apps.binder_links(self.workbooks_dir())))
            return
        served = Path(tempfile.mkdtemp(prefix="atelier-apps-"))
        try:
            staged = apps.stage_apps(self.workbooks_dir(), served / "apps")
            apps.check_capacity(self.settings, len(staged))
            self.log.info("atelier apps: serving %s", ", ".join(p.as_posix() for p in staged))
            os.environ["JUPYTER_PATH"] = apps.jupyter_path_env()
            # Before any kernel starts: kernels inherit it. Set, not added to what the service
            # inherited (0, see processes/priority.py); 0-19, so never before the hub.
            priority.set_niceness(self.settings["apps"]["nice"])
            self.serve(served / "apps")
        finally:
            shutil.rmtree(served, ignore_errors=True)

    def serve(self, root: Path) -> None:
        """Run Voila over ``root`` until it stops."""
        from atelier.public.appsserver import AppsVoila

        config = apps.voila_config(self.settings, base_url=self.base_url)
        config.Voila.ip = self.ip or self.settings["apps"]["ip"]
        config.Voila.port = self.port or self.settings["apps"]["port"]
        config.Voila.root_dir = str(root)
        # Kernel connection files in this run's private folder: the service account may have no
        # writable Jupyter runtime folder of its own.
        config.Voila.connection_dir_root = str(root.parent)
        # A visitor's page whose render fails ends with the app's sentence instead of hanging,
        # and one whose cell's reply pyzmq never announced still ends.
        upstream_voila.pages_always_end()
        voila = AppsVoila(config=config, log=self.log)
        voila.initialize([])
        voila.start()
