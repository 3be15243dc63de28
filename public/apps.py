"""Public apps: the workbooks anyone may open with Voila, and how (no login, no code, few kernels).

Rule: only notebooks whose ``metadata.atelier.app`` is true are reachable. They are copied (graded
exercises removed, outputs cleared) with their workbook's ``data/`` and ``images/`` into a
directory that holds nothing else, and Voila serves that directory; so a solution notebook, a
``.py`` file or anything else next to an app is not on the server at all, rather than hidden by a
rule that might have a hole. The Voila configuration is a pure function of the settings
(:func:`voila_config`), and the hub runs the same ``atelier apps`` command as a public service
(:func:`service`, :func:`apply`).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from traitlets.config import Config

from atelier.errors import AtelierError
from atelier.files import replacing_folder

#: Atelier's Voila template is under here; put first on ``JUPYTER_PATH`` so Voila finds it by name.
SHARE_DIR = Path(__file__).resolve().parent / "share" / "jupyter"
#: The Voila template every app page is rendered with (see share/jupyter/voila/templates/atelier/).
TEMPLATE = "atelier"
#: The hub service's name; the proxy serves it at /services/apps/.
SERVICE_NAME = "apps"
#: The repository Binder builds from. A placeholder until the project's public address is known:
#: this is the one place to change it (``atelier apps --binder-links`` prints the README lines).
BINDER_REPOSITORY = "atelier-project/atelier"
BINDER_REF = "main"
#: Folders of a workbook that its app needs beside it: the data it reads, the images it shows.
ASSET_FOLDERS = ("data", "images")


#: The folder of the installation prefix where ``atelier install`` stages the apps (world-readable:
#: the apps service runs as ``apps.service_user``, who may not be able to read the checkout).
STAGED_DIRNAME = "apps-workbooks"


def staged_workbooks_dir(prefix: str | os.PathLike | None = None) -> Path:
    """Where ``atelier install`` stages the apps: ``<prefix>/apps-workbooks``.

    ``prefix`` defaults to ``ATELIER_PREFIX`` or ``/opt/atelier``, as for ``atelier install``.
    """
    prefix = prefix if prefix is not None else os.environ.get("ATELIER_PREFIX", "/opt/atelier")
    return Path(prefix) / STAGED_DIRNAME


def hub_staged_dir(settings) -> Path:
    """Where the hub stages ``apps.workbooks_dir`` for its apps service: beside the workbooks repo.

    ``hub.workbooks_repo``'s folder is root's and world-readable (trainees read the repository
    there), so the service account can read the copy and cannot change it; for the default
    settings it is ``<prefix>/apps-workbooks``, where ``atelier install`` stages too.
    """
    return Path(settings["hub"]["workbooks_repo"]).parent / STAGED_DIRNAME


def stage_for_service(settings) -> Path:
    """Stage ``apps.workbooks_dir`` (read here, as root) where the apps service can read it.

    The service runs as ``apps.service_user``, who may not be able to enter the folder the apps
    come from (a checkout under /root or in a ``mktemp -d`` folder): it never reads that folder.
    """
    dest = hub_staged_dir(settings)
    source = Path(settings["apps"]["workbooks_dir"])
    stage_apps(source, dest)
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def default_workbooks_dir() -> Path:
    """The apps staged by ``atelier install``, else the ``workbooks/`` folder of this checkout.

    A hub installed by ``bootstrap.sh`` (a non-editable install) has only the staged copy; the
    checkout's folder is for development installs (``pip install -e``).
    """
    staged = staged_workbooks_dir()
    if staged.is_dir():
        return staged
    return Path(__file__).resolve().parent.parent / "workbooks"


def is_app(notebook: Path) -> bool:
    """Whether the notebook at ``notebook`` is marked as a public app (``metadata.atelier.app``)."""
    try:
        data = json.loads(notebook.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AtelierError(
            f"{notebook}: cannot be read as a notebook ({exc}); fix or remove it"
        ) from exc
    meta = data.get("metadata", {}).get("atelier", {})
    return isinstance(meta, dict) and meta.get("app") is True


def find_apps(workbooks_dir: str | os.PathLike) -> list[Path]:
    """Paths, relative to ``workbooks_dir``, of every notebook marked as an app, sorted."""
    root = Path(workbooks_dir)
    closed = closed_folder(root)
    if closed is not None:
        raise AtelierError(
            f"{root}: this account ({_whoami()}) cannot read it: {closed} lets it no further. "
            "Stage the apps where it can read them: the hub does so for apps.workbooks_dir, "
            "`atelier install --workbooks DIR` into <prefix>/apps-workbooks; or let it in "
            f"(chmod o+rx {closed})"
        )
    if not root.is_dir():
        raise AtelierError(
            f"{root}: workbooks folder not found; give --workbooks or apps.workbooks_dir"
        )
    found = [
        path.relative_to(root)
        for path in sorted(root.rglob("*.ipynb"))
        if ".ipynb_checkpoints" not in path.parts and is_app(path)
    ]
    return found


def closed_folder(path: Path) -> Path | None:
    """The first folder on the way to ``path`` (itself included) this process may not enter."""
    path = Path(os.path.abspath(path))
    for folder in [*reversed(path.parents), path]:
        if not folder.exists():
            # exists() is False both for a missing folder and one behind a closed one: the
            # folder before was enterable, so this one is simply missing.
            return None
        if folder.is_dir() and not os.access(folder, os.R_OK | os.X_OK):
            return folder
    return None


def _whoami() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def is_exercise(cell) -> bool:
    """Whether a cell is part of the graded exercises (nbgrader answer, test or task cell)."""
    meta = cell.get("metadata", {}).get("nbgrader") or {}
    return bool(meta.get("solution") or meta.get("grade") or meta.get("task"))


#: Cell tag for what only makes sense on the hub (exercise instructions, a reflection's rubric).
NOT_IN_APP_TAG = "not-in-app"


def in_app(cell) -> bool:
    """Whether a cell belongs in the public app: not an exercise, not tagged ``not-in-app``."""
    return not is_exercise(cell) and NOT_IN_APP_TAG not in cell.get("metadata", {}).get("tags", [])


def app_version(nb):
    """The notebook as a public app: its text and tools, without the graded exercises.

    Exercises are for trainees on the hub: their answers (solutions) must not reach the public, and
    their stubs (``raise NotImplementedError()``) would only show visitors an error. Authors tag
    the prose around them (instructions, rubrics) ``not-in-app``.
    """
    nb.cells = [cell for cell in nb.cells if in_app(cell)]
    return nb


#: Voila's words after "There was an error when executing cell [N]." (a cell of an app failed).
CELL_ERROR = (
    "This part of the app cannot be shown right now. "
    "· Cette partie de l'application ne peut pas s'afficher pour le moment."
)
#: The first cell of every staged app (hidden: sources are stripped and it shows nothing): a
#: visitor gets a short sentence in the app's language where a traceback would be (appskernel.py).
GUARD_CELL = "from atelier.public.appskernel import hide_tracebacks\nhide_tracebacks({language!r})"


def guard_tracebacks(nb):
    """Put :data:`GUARD_CELL` first in the app ``nb``, in the language of its metadata."""
    from nbformat.v4 import new_code_cell

    meta = nb.metadata.get("atelier", {})
    language = meta.get("language", "en") if isinstance(meta, dict) else "en"
    language = language if isinstance(language, str) and language.isalpha() else "en"
    nb.cells.insert(0, new_code_cell(GUARD_CELL.format(language=language)))
    return nb


def stage_apps(workbooks_dir: str | os.PathLike, dest: str | os.PathLike) -> list[Path]:
    """Copy the app notebooks of ``workbooks_dir`` into ``dest``, which holds only them.

    The copy is built beside ``dest`` and renamed into place, so a server never sees half a set.
    Returns the staged paths, relative to ``dest``.
    """
    import nbformat

    root, dest = Path(workbooks_dir), Path(dest)
    apps = find_apps(root)
    if not apps:
        raise AtelierError(f"{root}: no workbook is marked as an app (metadata.atelier.app: true)")
    # Built beside dest and swapped in whole: never a mix of the old set and the new one.
    with replacing_folder(dest) as building:
        for rel in apps:
            nb = app_version(nbformat.read(root / rel, as_version=4))
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = []
                    cell.execution_count = None
            guard_tracebacks(nb)
            target = building / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
            # The app reads its own data and shows its own images; nothing else of its folder
            # comes.
            for name in ASSET_FOLDERS:
                source = (root / rel).parent / name
                copied = (target.parent / name).exists()
                if source.is_dir() and not source.is_symlink() and not copied:
                    # Links are left behind: root stages these, and must not publish what a link
                    # in the source points to (another account's file, a secret of the machine).
                    shutil.copytree(source, target.parent / name, ignore=_links)
    return apps


def _links(folder: str, names: list[str]) -> list[str]:
    """The names in ``folder`` that are symbolic links (``shutil.copytree``'s ``ignore``)."""
    return [name for name in names if os.path.islink(os.path.join(folder, name))]


def voila_config(settings, *, base_url: str = "/") -> Config:
    """The Voila configuration of the public apps, from the ``apps`` settings section."""
    from atelier.processes import kernelsockets
    from atelier.public.appsserver import BoundedKernelManager

    apps = settings["apps"]
    c = Config()
    c.Voila.base_url = base_url
    c.Voila.open_browser = False
    c.Voila.port_retries = 0
    c.VoilaConfiguration.template = TEMPLATE
    c.VoilaConfiguration.theme = "light"
    # A visitor must not pick another template (Voila's own ones fetch from CDNs) or theme by URL.
    c.VoilaConfiguration.allow_template_override = "NO"
    c.VoilaConfiguration.allow_theme_override = "NO"
    c.VoilaConfiguration.strip_sources = True
    c.VoilaConfiguration.show_tracebacks = False
    # What Voila says when a cell failed while the page was built (its own text tells visitors how
    # to run Voila with tracebacks on): one sentence in both languages, the detail in the log.
    c.VoilaExecutor.cell_error_instruction = CELL_ERROR
    c.VoilaConfiguration.preheat_kernel = apps["pool_size"] > 0
    c.VoilaConfiguration.default_pool_size = apps["pool_size"]
    c.VoilaConfiguration.multi_kernel_manager_class = BoundedKernelManager
    pools = {"default": {"pool_size": apps["pool_size"]}}
    pools.update({path: {"pool_size": size} for path, size in apps.get("pool_sizes", {}).items()})
    c.VoilaKernelManager.kernel_pools_config = pools
    # Refill after the burst that emptied a pool, not during it: a refill competes for the CPU with
    # the visitors being served.
    c.VoilaKernelManager.fill_delay = 2.0
    c.BoundedKernelManager.max_kernels = apps["max_kernels"]
    c.BoundedKernelManager.busy_retry_after = apps["busy_retry_after"]
    # Culling: a visitor who left (or whose phone dropped the link) gives the kernel back; connected
    # but idle visitors too, since a public kernel is a shared resource.
    c.MappingKernelManager.cull_idle_timeout = apps["cull_idle_timeout"]
    c.MappingKernelManager.cull_interval = apps["cull_interval"]
    c.MappingKernelManager.cull_connected = True
    c.MappingKernelManager.cull_busy = False
    # Kernels over Unix sockets in the service's private folder: no port another process can take
    # during a burst of visitors, and no kernel any other account can connect to.
    kernelsockets.configure(c)
    # Visitors on slow links: compressed pages, hashed widget assets cached for good.
    from atelier.slowlink import apply_voila

    apply_voila(c, base_url)
    # Tornado's own error pages: status and reason only, never a traceback (appsserver.py adds
    # Atelier's error page for Voila's handlers).
    c.Voila.tornado_settings.update({"debug": False, "serve_traceback": False})
    return c


def check_capacity(settings, n_notebooks: int) -> None:
    """Raise :class:`AtelierError` if the preheated pools alone would fill ``apps.max_kernels``."""
    apps = settings["apps"]
    pooled = apps["pool_size"] * n_notebooks + sum(
        max(size - apps["pool_size"], 0) for size in apps.get("pool_sizes", {}).values()
    )
    if pooled >= apps["max_kernels"]:
        raise AtelierError(
            f"settings: apps.max_kernels ({apps['max_kernels']}) must exceed the preheated kernels "
            f"({pooled} = apps.pool_size × {n_notebooks} app notebooks, plus apps.pool_sizes): "
            "raise apps.max_kernels or lower apps.pool_size"
        )


def jupyter_path_env(environ: dict | None = None) -> str:
    """``JUPYTER_PATH`` with Atelier's data directory first, so that Voila finds the template."""
    from atelier.processes.jupyterpath import prepend

    environ = os.environ if environ is None else environ
    return prepend(SHARE_DIR, environ.get("JUPYTER_PATH"))


def service(settings) -> dict:
    """The hub service serving the apps publicly at /services/apps/, with no login."""
    apps = settings["apps"]
    port = apps["port"]
    command = [
        sys.executable,
        "-m",
        "atelier",
        "apps",
        f"--ip={apps['ip']}",
        f"--port={port}",
        f"--base-url=/services/{SERVICE_NAME}/",
    ]
    if apps.get("workbooks_dir"):
        # The copy the hub stages (stage_for_service), never the folder itself, which the
        # service's account may not be able to read.
        command.append(f"--workbooks={hub_staged_dir(settings)}")
    env = {"JUPYTER_PATH": jupyter_path_env({})}
    if apps.get("service_user"):
        # Its own settings file, never the site's: that one may hold the database password and
        # the authenticator's client secret (see write_service_settings).
        env["ATELIER_SETTINGS"] = str(service_settings_path(settings))
    elif os.environ.get("ATELIER_SETTINGS"):
        env["ATELIER_SETTINGS"] = os.environ["ATELIER_SETTINGS"]
    spec = {
        "name": SERVICE_NAME,
        "url": f"http://{apps['ip']}:{port}",
        "command": command,
        "environment": env,
        "display": True,
    }
    if apps.get("service_user"):
        # A dedicated account: the apps' kernels run visitors' widget callbacks, and must not be
        # able to read trainees' homes or the gradebooks.
        spec["user"] = apps["service_user"]
    return spec


def apply(c: Config, settings, *, touch_disk: bool | None = None) -> None:
    """Add the public apps service to a hub configuration ``c`` (no other service is touched).

    The service account (``apps.service_user``) must exist: :func:`ensure_service_account` makes it.
    With ``touch_disk`` (default: when running as root, as the hub does) and the account there, the
    service's own settings file is written too (:func:`write_service_settings`).
    """
    services = [s for s in c.JupyterHub.get("services", []) if s.get("name") != SERVICE_NAME]
    c.JupyterHub.services = [*services, service(settings)]
    if touch_disk is None:
        touch_disk = os.geteuid() == 0
    account = settings["apps"].get("service_user")
    from atelier.accounts import account_exists

    if touch_disk and account and account_exists(account):
        write_service_settings(settings)
    if touch_disk and settings["apps"].get("workbooks_dir"):
        try:
            stage_for_service(settings)
        except (AtelierError, OSError) as error:
            # One unusable apps folder must not keep the hub (and every trainee) down.
            print(f"atelier: public apps: not served: {error}", file=sys.stderr)
            c.JupyterHub.services = services


def service_home(account: str) -> Path:
    """The home of the apps account: its own if it exists, else where it will be created."""
    import pwd

    try:
        return Path(pwd.getpwnam(account).pw_dir)
    except KeyError:
        return Path("/var/lib") / account


def service_settings_path(settings) -> Path:
    """Where the apps service reads its settings: ``settings.yaml`` in the apps account's home."""
    return service_home(settings["apps"]["service_user"]) / "settings.yaml"


def write_service_settings(settings) -> Path:
    """Write the apps service's settings: the ``apps`` section only, readable by that account.

    The apps' kernels run code on behalf of anyone on the internet; if one were ever subverted,
    the file it can read holds nothing but the apps' own options. The home is the account's
    (mode 700), the file root's (mode 644): the service reads it and cannot change it.
    """
    import yaml

    from atelier.files import atomic_write

    path = service_settings_path(settings)
    text = (
        "# Written by the hub from the site's settings (atelier.public.apps); changes are\n"
        "# overwritten at the next hub start. Only the public apps' section is here.\n"
        + yaml.safe_dump({"apps": dict(settings["apps"])}, sort_keys=True)
    )
    if not path.is_file() or path.read_text("utf-8") != text:
        atomic_write(path, text, 0o644)
    return path


def ensure_service_account(settings) -> bool:
    """Create the Unix account the public apps run as, if missing; True if it was created.

    A system account with no login shell and its own home (``/var/lib/<account>``, mode 700), which
    holds Voila's runtime files; it is in no cohort's group, so it cannot read trainees' homes or
    the gradebooks.
    """
    from atelier.accounts import check_marked, create_system_account

    name = settings["apps"]["service_user"]
    if not name:
        return False
    home = Path("/var/lib") / name

    def legacy(entry) -> bool:
        # Made by an Atelier without markers: a system account whose home is the one made here.
        try:
            owner = home.lstat().st_uid
        except OSError:
            return False
        return not entry.pw_gecos and entry.pw_uid < 1000 and owner == entry.pw_uid != 0

    # Visitors' code runs as this account: never one that owns anything else (see check_marked).
    if check_marked(name, "apps", legacy) is not None:
        return False
    create_system_account(name, "apps", str(home), create_home=True)
    home.chmod(0o700)
    return True


def binder_links(
    workbooks_dir: str | os.PathLike, repository: str = BINDER_REPOSITORY, ref: str = BINDER_REF
) -> list[str]:
    """Markdown lines with a Binder link per app (Voila) and per workbook notebook (JupyterLab)."""
    root = Path(workbooks_dir)
    base = f"https://mybinder.org/v2/gh/{repository}/{ref}"
    apps = set(find_apps(root))
    lines = []
    for path in sorted(p.relative_to(root) for p in root.rglob("*.ipynb")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        repo_path = (Path(root.name) / path).as_posix()
        line = f"- `{repo_path}`: [JupyterLab]({base}?labpath={repo_path})"
        if path in apps:
            line += f" · [app]({base}?urlpath=voila/render/{repo_path})"
        lines.append(line)
    return lines
