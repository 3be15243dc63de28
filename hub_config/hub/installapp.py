"""``atelier install``: an ordered list of idempotent steps that make this machine serve a hub.

The rule (as in The Littlest JupyterHub): each ``ensure_*`` step checks before it changes anything,
so running the installer again repairs what is missing and changes nothing that is already right.
The order matters only where written: the state directory before anything that writes into it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from traitlets import Unicode

from atelier.app import AtelierApp
from atelier.errors import AtelierError
from atelier.hub_config.servers import importfix
from atelier.hub_config.servers.delivery import publish_workbooks
from atelier.processes.jupyterpath import prepend
from atelier.public import apps

#: The world-readable prefix holding the hub's Python environment and node packages.
PREFIX = Path(os.environ.get("ATELIER_PREFIX", "/opt/atelier"))
PROXY_PACKAGE = "configurable-http-proxy@5"

#: JupyterLab settings every trainee gets: nothing asks the internet for news, updates, extensions.
LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/extensionmanager-extension:plugin": {"enabled": False},
}


def proxy_command(prefix: Path = PREFIX) -> Path:
    """Where ``atelier install`` puts the configurable-http-proxy command."""
    return prefix / "node" / "node_modules" / ".bin" / "configurable-http-proxy"


def lab_overrides_path(env: Path | None = None) -> Path:
    """JupyterLab's site-wide settings overrides file in the hub's environment."""
    env = env or Path(sys.prefix)
    return env / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


class InstallApp(AtelierApp):
    """Install or repair everything the hub needs on this machine."""

    name = "atelier install"
    description = __doc__
    aliases = {
        **AtelierApp.aliases,
        "workbooks": "InstallApp.workbooks",
        "prefix": "InstallApp.prefix",
    }

    workbooks = Unicode(
        "", help="Folder of workbooks to publish to the trainees' repository (hub.workbooks_repo)."
    ).tag(config=True)
    prefix = Unicode(
        str(PREFIX), help="World-readable prefix of the hub's environment and node packages."
    ).tag(config=True)

    #: The steps, in order. The state directory comes first: later steps may write into it.
    steps = (
        "ensure_state_dir",
        "ensure_config_d",
        "ensure_proxy",
        "ensure_lab_overrides",
        "ensure_import_fix",
        "ensure_precompressed_assets",
        "ensure_workbooks_repo",
        "ensure_public_apps",
        "ensure_command_link",
    )

    def run(self):
        """Run every step in order."""
        if os.geteuid() != 0:
            raise AtelierError("install needs root: it writes /opt/atelier, /var/lib/atelier, /etc")
        for step in self.steps:
            getattr(self, step)()

    def ensure_state_dir(self):
        """The hub's state directory exists and only root can enter it (it holds secrets)."""
        state = Path(self.settings["hub"]["state_dir"])
        state.mkdir(parents=True, exist_ok=True)
        os.chmod(state, 0o700)

    def ensure_config_d(self):
        """The admin's jupyterhub_config.d folder exists."""
        if self.settings["hub"]["config_d"]:
            Path(self.settings["hub"]["config_d"]).mkdir(parents=True, exist_ok=True)

    def ensure_proxy(self):
        """configurable-http-proxy is installed from npm into the prefix."""
        if proxy_command(Path(self.prefix)).exists():
            return
        npm = shutil.which("npm")
        if not npm:
            raise AtelierError("npm is missing: install Debian's npm package (bootstrap.sh does)")
        self.log.info("Installing %s from npm", PROXY_PACKAGE)
        node_dir = Path(self.prefix) / "node"
        node_dir.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(
            [npm, "install", "--no-fund", "--no-audit", "--prefix", str(node_dir), PROXY_PACKAGE],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise AtelierError(f"npm install {PROXY_PACKAGE} failed:\n{result.stderr[-2000:]}")
        subprocess.run(["chmod", "-R", "a+rX", str(node_dir)], check=True)

    def ensure_lab_overrides(self):
        """JupyterLab's news, update checks and extension manager are off for everyone."""
        path = lab_overrides_path()
        current = json.loads(path.read_text("utf-8")) if path.exists() else {}
        wanted = {**current}
        for plugin, values in LAB_OVERRIDES.items():
            wanted[plugin] = {**current.get(plugin, {}), **values}
        if wanted != current:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(wanted, indent=2), "utf-8")
            os.chmod(path, 0o644)

    def ensure_import_fix(self):
        """Jupyter processes in the prefix defer rfc3987_syntax's 1.3 s grammar compilation."""
        path = Path(sysconfig.get_paths()["purelib"]) / importfix.PTH_NAME
        if not path.exists() or path.read_text() != importfix.PTH_LINE:
            path.write_text(importfix.PTH_LINE)
            os.chmod(path, 0o644)

    def ensure_precompressed_assets(self):
        """The workbook view's JavaScript and CSS have brotli copies (``slowlink.precompress``).

        Brotli at its best costs ~2 CPU-s per MB: paid here once (~20 s for Voila's front end and
        the widgets' code), not by a trainee's server at each visit. Only new or changed files
        are compressed again.
        """
        from atelier import slowlink
        from atelier.hub_config.view import assets, workbook

        # The view's template is found through JUPYTER_PATH (as on a trainee's server).
        os.environ["JUPYTER_PATH"] = prepend(workbook.SHARE_DIR, os.environ.get("JUPYTER_PATH"))
        written = slowlink.precompress(assets.asset_roots())
        if written:
            self.log.info("Compressed %d assets of the workbook view (brotli)", written)

    def ensure_workbooks_repo(self):
        """The workbooks are published to the trainees' repository (a new commit if changed)."""
        if not self.workbooks:
            return
        repo = self.settings["hub"]["workbooks_repo"]
        for language, outcome in publish_workbooks(self.workbooks, repo).items():
            self.log.info("Workbooks (%s): %s in %s", language, outcome, repo)

    def ensure_public_apps(self):
        """The public apps' account exists, its apps are staged in the prefix, its settings written.

        Only when the hub runs the apps (``apps.on_hub``). The apps service runs as
        ``apps.service_user``, who may not read the checkout (it may be under /root): the apps of
        ``--workbooks`` are staged, world-readable, in ``<prefix>/apps-workbooks``, the default
        folder of ``atelier apps`` (see :func:`atelier.public.apps.default_workbooks_dir`).
        """
        if not self.settings["apps"]["on_hub"]:
            return
        if apps.ensure_service_account(self.settings):
            self.log.info(
                "Created the public apps' account %s", self.settings["apps"]["service_user"]
            )
        if self.workbooks:
            dest = apps.staged_workbooks_dir(self.prefix)
            try:
                staged = apps.stage_apps(self.workbooks, dest)
            except AtelierError as exc:
                raise AtelierError(f"{exc} (or set apps.on_hub: false in the settings)") from exc
            make_world_readable(dest)
            self.log.info("Public apps staged in %s: %d notebooks", dest, len(staged))
        # The service reads its own settings file, written at each hub start (apps.apply).
        apps.write_service_settings(self.settings)

    def ensure_command_link(self):
        """``atelier`` is on root's PATH as /usr/local/bin/atelier."""
        target = Path(sys.prefix) / "bin" / "atelier"
        link = Path("/usr/local/bin/atelier")
        if target.exists() and (not link.is_symlink() or link.resolve() != target.resolve()):
            link.unlink(missing_ok=True)
            link.symlink_to(target)


def make_world_readable(root: Path) -> None:
    """Let every account read the files and enter the folders under ``root`` (``chmod -R a+rX``)."""
    for path in [root, *root.rglob("*")]:
        mode = path.stat().st_mode
        extra = 0o555 if path.is_dir() else (0o444 | (0o111 if mode & 0o100 else 0))
        if mode & extra != extra:
            path.chmod(mode & 0o7777 | extra)
