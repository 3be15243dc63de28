"""The hub's configuration as pure functions of the settings, layered in a fixed order.

``jupyterhub_config.py`` calls these layers in this order, and each one only sets values (never
appends to what an earlier layer left, except where it says so):

1. :func:`apply_invariants` — what makes Atelier Atelier, whatever the settings: servers and proxy
   survive hub restarts, trainees' servers run as their own accounts and serve the workbook view,
   Lab opens on the workbooks.
2. :func:`apply_settings` — the validated ``hub`` and ``accounts`` settings: addresses, state files,
   spawn limits, the authenticator, the idle culler (servers) and kernel culling (in servers).
3. :func:`apply_roster` — people, cohorts (hub groups) and facilitator roles from the roster store.
4. :func:`apply_plugins` — other rooms (``atelier.grading.hubconfig.apply(c, settings)`` if
   present), then the facilitators' dashboard and the public apps services (settings
   ``apps.dashboard``, ``apps.on_hub``), then slowlink (:data:`PLUGINS`); a plugin that adds roles
   or services extends ``c.JupyterHub.load_roles``/``services``.
5. ``jupyterhub_config.d/*.py`` — the admin's escape hatch, loaded by ``jupyterhub_config.py``
   itself.

Each function takes a fresh or partly built ``traitlets.config.Config`` and is unit-tested on one.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from atelier.accounts import load_people
from atelier.database import hub_db_kwargs, hub_db_url
from atelier.hub_config.people import loginpage
from atelier.hub_config.servers import quota
from atelier.processes import priority
from atelier.roster import cohorts_of, username_problem

#: Short names of the authenticators Atelier documents; anything else is an import path.
AUTHENTICATORS = {
    "import-password": "atelier.hub_config.people.authenticator.ImportPasswordAuthenticator",
    "native": "nativeauthenticator.NativeAuthenticator",
}
#: Environment variables ``atelier start`` uses to hand its command-line options to the hub config.
ENV_SETTINGS = "ATELIER_SETTINGS"
ENV_OVERRIDES = "ATELIER_HUB_OVERRIDES"
ENV_INSECURE_DEMO = "ATELIER_INSECURE_DEMO"

#: Server extensions a trainee server does not load: no language server is installed (jupyter_lsp
#: would only cost start-up time); workbooks are delivered before the server starts (nbgitpuller);
#: Lab's terminal is off (``slowlink.DISABLED_EXTENSIONS``), and without the terminals API Lab
#: also stops polling it every 10 s over the trainee's link. Voila's extension stays on: the
#: workbook view is Voila (its Lab preview button is off, ``slowlink.DISABLED_EXTENSIONS``).
TRAINEE_EXTENSIONS_OFF = (
    "jupyter_lsp",
    "nbgitpuller",
    "jupyter_server_terminals",
)
#: Server extensions every trainee server loads: Atelier's own pages and endpoints under
#: ``/atelier/`` (``hub_config/view/``: home, workbook view, submit and feedback); the workbook
#: view needs Voila's own extension for its scripts and widget assets.
TRAINEE_EXTENSIONS_ON = (
    "voila.server_extension",
    "atelier.hub_config.view.extension",
)
#: Where a trainee lands after login: their home page, on their own server.
HOME_URL = "/atelier/home"

#: JupyterLab options of a trainee server: trainees install nothing, so the extension manager is
#: read-only (the PyPI one would be set up at every start for nothing).
TRAINEE_LAB_ARGS = ("--LabApp.extension_manager=readonly",)

#: The spawner of every trainee's server on the embedded hub.
SPAWNER = "atelier.hub_config.servers.spawner.AtelierSpawner"
#: The hub's proxy class: configurable-http-proxy as `atelier start` runs it (routes restored).
PROXY = "atelier.hub_config.hub.proxy.SupervisedProxy"

#: The hub service (and role) through which `atelier roster import` updates a running hub.
ROSTER_SERVICE = "atelier-roster"

#: What a facilitator may do with the trainees of a cohort they facilitate (and nothing else).
FACILITATOR_SCOPES = (
    "list:users",
    "read:users",
    "read:users:activity",
    "admin:servers",
    "access:servers",
    "list:groups",
    "read:groups",
)


def state_paths(settings: Mapping) -> dict[str, Path]:
    """Where the hub keeps its state: database, cookie secret, proxy token and pid files, logs."""
    state = Path(settings["hub"]["state_dir"])
    return {
        "state_dir": state,
        "db": state / "jupyterhub.sqlite",
        "cookie_secret": state / "jupyterhub_cookie_secret",
        "proxy_token": state / "proxy_token",
        "proxy_pid": state / "proxy.pid",
        "proxy_log": state / "proxy.log",
        "hub_pid": state / "jupyterhub.pid",
        "supervisor_pid": state / "atelier-start.pid",
        "api_token": state / "atelier_api_token",
    }


def apply_invariants(c) -> None:
    """Set what holds for every Atelier hub, whatever the settings say."""
    # Restarting the hub (an upgrade, a settings change) must not stop trainees' work: servers are
    # left running, and the proxy is started separately by `atelier start` so routes survive too.
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.ConfigurableHTTPProxy.should_start = False
    # atelier start restarts a proxy that dies; this class puts the routes back in the new one.
    c.JupyterHub.proxy_class = PROXY
    c.JupyterHub.spawner_class = SPAWNER
    c.Spawner.cmd = [sys.executable, "-m", "atelier.hub_config.servers.singleuser"]
    # Trainees land on their home page ("My workbooks", atelier.hub_config.view.home), served by
    # their own server through the view extension; JupyterLab is one link away on every page.
    c.Spawner.default_url = HOME_URL
    c.Spawner.args = trainee_server_args()
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.allow_named_servers = False


def trainee_server_args(culler: Mapping | None = None) -> list[str]:
    """The options of every trainee's server: extensions off and on, Lab's (Kubernetes too).

    Args:
        culler: the ``hub.culler`` settings; with them, the server also culls its idle kernels
            (:func:`kernel_culling_args`). The invariants layer calls this without settings.
    """
    return [
        *(f"--ServerApp.jpserver_extensions={name}=False" for name in TRAINEE_EXTENSIONS_OFF),
        *(f"--ServerApp.jpserver_extensions={name}=True" for name in TRAINEE_EXTENSIONS_ON),
        *TRAINEE_LAB_ARGS,
        *(kernel_culling_args(culler) if culler else ()),
    ]


#: JupyterHub's own period for activity reports (servers to hub, and the hub reading the proxy's).
ACTIVITY_REPORTS = 300


def activity_interval(culler: Mapping) -> int:
    """Seconds between two reports of a trainee's use to the hub, from ``hub.culler``.

    The idle culler reads only the hub's record of last activity, which trainees' servers
    (``JUPYTERHUB_ACTIVITY_INTERVAL``) and the hub's reading of the proxy's routes
    (``JupyterHub.last_activity_interval``) update every 300 s by default. With a culler timeout
    of that order, a trainee answering every ten seconds looked idle and was stopped mid-work
    (measured: docs/benchmarks.md, "The day at full size"). Reports come four times per
    timeout, at most every 300 s and at least every 15 s, so use always reaches the culler in
    time.
    """
    if not culler.get("enabled", True):
        return ACTIVITY_REPORTS
    return max(15, min(ACTIVITY_REPORTS, int(culler["timeout"]) // 4))


def kernel_culling_args(culler: Mapping) -> list[str]:
    """Jupyter Server's own kernel culling in a trainee's server, from ``hub.culler``.

    The hub's culler stops only whole servers, and a page left open keeps its kernel (the view's
    is ~41 MiB of a trainee's ~94 MiB, docs/capacity.md), so the server culls its kernels too,
    **connected ones included**: a workbook left open in a browser tab is the common case, and
    with ``cull_connected`` off it would never be culled. Nothing is lost: the view's widgets
    save each answer as it is given, and the page tells the trainee to reload (a new kernel
    restores the answers). A busy kernel (a cell running) is never culled. 0 turns it off.
    """
    timeout = int(culler.get("kernel_timeout", 0))
    if timeout <= 0:
        return []
    manager = "--MappingKernelManager"
    return [
        f"{manager}.cull_idle_timeout={timeout}",
        f"{manager}.cull_interval={int(culler.get('kernel_every', 60))}",
        f"{manager}.cull_connected=True",
        f"{manager}.cull_busy=False",
    ]


def login_template_paths() -> list[str]:
    """``JupyterHub.template_paths``: the branded, bilingual login page (``people/loginpage.py``).

    A function, not a value in the chart's values: a Kubernetes hub pod calls it too
    (``kubernetes/values.base.yaml``), where the package is installed at the image's own path.
    """
    return [str(loginpage.TEMPLATES)]


def authenticator_class(name: str) -> str:
    """The import path of the authenticator called ``name`` in the settings."""
    return AUTHENTICATORS.get(name, name)


def apply_settings(c, settings: Mapping, *, insecure_demo: bool = False) -> None:
    """Set the hub from the validated ``hub`` and ``accounts`` settings."""
    hub = settings["hub"]
    paths = state_paths(settings)
    c.JupyterHub.ip = hub["ip"]
    c.JupyterHub.port = hub["port"]
    c.JupyterHub.hub_port = hub["hub_port"]
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{hub['proxy_api_port']}"
    c.SupervisedProxy.watched_pid_file = str(paths["proxy_pid"])
    if paths["proxy_token"].exists():
        c.ConfigurableHTTPProxy.auth_token = paths["proxy_token"].read_text().strip()
    # One place decides SQLite or PostgreSQL for the hub and the gradebooks (database.url).
    c.JupyterHub.db_url = hub_db_url(settings)
    # SQLite: WAL, commits without an fsync on the hub's event loop (database.connect_wal).
    c.JupyterHub.db_kwargs = hub_db_kwargs(settings)
    c.JupyterHub.cookie_secret_file = str(paths["cookie_secret"])
    c.JupyterHub.pid_file = str(paths["hub_pid"])
    c.JupyterHub.concurrent_spawn_limit = hub["concurrent_spawn_limit"]
    c.Spawner.start_timeout = hub["start_timeout"]
    # The invariants' server options, plus the culling of idle kernels inside each server.
    c.Spawner.args = trainee_server_args(hub["culler"])
    c.Spawner.http_timeout = hub["start_timeout"]
    # The idle culler sees a trainee's use only through these reports: they must come well
    # within its timeout, or a trainee at work is stopped (activity_interval).
    interval = activity_interval(hub["culler"])
    c.JupyterHub.last_activity_interval = interval
    c.Spawner.environment = {"JUPYTERHUB_ACTIVITY_INTERVAL": str(interval)}

    c.AtelierSpawner.account_prefix = settings["accounts"]["prefix"]
    c.AtelierSpawner.state_dir = str(paths["state_dir"])
    c.AtelierSpawner.workbooks_repo = hub["workbooks_repo"]
    c.AtelierSpawner.insecure_demo = insecure_demo
    limits = hub["limits"]
    c.AtelierSpawner.limits = dict(limits) if limits["enabled"] and not insecure_demo else {}
    # Kept visible if under /tmp (a test hub's), as /home and /srv are elsewhere: a private /tmp
    # must not change what a server sees of homes (other trainees' answer "permission denied").
    c.AtelierSpawner.shared_paths = [
        settings["accounts"]["home_root"],
        settings["grading"]["exchange_root"],
    ]

    auth = hub["authenticator"]
    klass = authenticator_class(auth["class"])
    c.JupyterHub.authenticator_class = klass
    class_name = klass.rsplit(".", 1)[-1]
    if klass == AUTHENTICATORS["import-password"]:
        c.ImportPasswordAuthenticator.state_dir = str(paths["state_dir"])
    for trait, value in auth.get("config", {}).items():
        c[class_name][trait] = value
    c.Authenticator.admin_users = set(hub["admin_users"])

    services, roles = [], []
    culler = hub["culler"]
    if culler["enabled"]:
        command = [
            sys.executable,
            "-m",
            "jupyterhub_idle_culler",
            f"--timeout={culler['timeout']}",
            f"--cull-every={culler['every']}",
        ]
        if culler["max_age"]:
            command.append(f"--max-age={culler['max_age']}")
        services.append({"name": "idle-culler", "command": command})
        roles.append(
            {
                "name": "idle-culler",
                "description": "Stop servers nobody has used for a while.",
                "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
                "services": ["idle-culler"],
            }
        )
    watchdog = None if insecure_demo else quota.service_spec(settings, [sys.executable])
    if watchdog:
        # Homes over quota stop their server; every hub page tells the trainee why and what to do.
        services.append(watchdog[0])
        roles.append(watchdog[1])
    # The login page is JupyterHub's, branded and in the visitor's language (people/loginpage.py).
    c.JupyterHub.template_paths = login_template_paths()
    c.JupyterHub.template_vars = {
        "announcement": quota.Announcement(paths["state_dir"]),
        "atelier_links": loginpage.login_links(settings),
    }
    if paths["api_token"].exists():
        # `atelier roster import` pushes people and cohort groups to the running hub with this
        # token (written by `atelier start`, mode 600, root only); `atelier servers start` starts
        # a cohort's servers with it (as each trainee, by the hub's spawner).
        token = paths["api_token"].read_text().strip()
        services.append({"name": ROSTER_SERVICE, "api_token": token})
        roles.append(
            {
                "name": ROSTER_SERVICE,
                "description": "Add imported people and their cohort groups to the running hub; "
                "start a cohort's servers ahead of a session (`atelier servers start`).",
                "scopes": [
                    "admin:users",
                    "admin:groups",
                    "list:users",
                    "list:groups",
                    "start:servers",
                    "read:servers",
                ],
                "services": [ROSTER_SERVICE],
            }
        )
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def cohort_config(people) -> tuple[dict, list]:
    """The hub groups and roles of a roster: ``(load_groups, facilitator roles)``.

    Each cohort ``x`` is the group ``cohort-x`` (its trainees); its facilitators form the group
    ``facilitators-x``, which holds the role ``facilitator-x``: every scope filtered to
    ``group=cohort-x``,
    so a facilitator sees and manages that cohort's trainees and servers and nobody else's.
    """
    groups: dict[str, dict] = {}
    roles: list[dict] = []
    for cohort, members in sorted(cohorts_of(people).items()):
        groups[f"cohort-{cohort}"] = {"users": members["trainees"]}
        groups[f"facilitators-{cohort}"] = {"users": members["facilitators"]}
        roles.append(
            {
                "name": f"facilitator-{cohort}",
                "description": f"Facilitate cohort {cohort}: see and manage its trainees' servers.",
                "scopes": [f"{scope}!group=cohort-{cohort}" for scope in FACILITATOR_SCOPES]
                + ["admin-ui"],
                "groups": [f"facilitators-{cohort}"],
            }
        )
    return groups, roles


def apply_roster(c, settings: Mapping) -> None:
    """Load people, cohorts and facilitator roles from the roster store (extends ``load_roles``).

    A person imported before a name was reserved (``grader-C`` was accepted before issue 15:
    its account is named like the cohort's grader account) is left out, with a message: an
    import would refuse that name today.
    """
    people = list(load_people(settings["hub"]["state_dir"]).values())
    reserved = sorted(p.username for p in people if username_problem(p.username))
    if reserved:
        print(
            f"atelier: roster: {', '.join(reserved)} cannot log in: these usernames are reserved "
            "for Atelier's own or system accounts (docs/roster.md); import them under other names",
            file=sys.stderr,
        )
        people = [p for p in people if p.username not in reserved]
    groups, roles = cohort_config(people)
    c.JupyterHub.load_groups = groups
    c.JupyterHub.load_roles = [*c.JupyterHub.load_roles, *roles]
    c.Authenticator.allowed_users = {person.username for person in people}


#: The room plugins, in order, each with the boolean setting that turns it on (None: always on).
#: The dashboard and apps services come after grading (and so after the roster layer, whose
#: ``facilitators-<cohort>`` groups the dashboard's role is granted to); slowlink comes last: it
#: adds its config directory to the JUPYTER_CONFIG_PATH grading sets.
PLUGINS = (
    ("atelier.grading.hubconfig", None),
    ("atelier.grading.dashboard.dashboard", "apps.dashboard"),
    ("atelier.public.apps", "apps.on_hub"),
    ("atelier.slowlink", None),
)


def apply_plugins(c, settings: Mapping, plugins=PLUGINS) -> list[str]:
    """Let other rooms configure the hub; returns the plugins applied.

    ``plugins`` is :data:`PLUGINS` on a hub; a test may pass a part of it.
    """
    applied = []
    for module_name, switch in plugins:
        if switch is not None:
            section, key = switch.split(".")
            if not settings[section][key]:
                continue
        if importlib.util.find_spec(module_name) is None:
            continue
        importlib.import_module(module_name).apply(c, settings)
        applied.append(module_name)
    prepare_managed_services(c)
    return applied


#: Seconds the hub waits for a service it starts (formgrader, dashboard, public apps) to answer.
#: JupyterHub's default, 30 s, is too short on a loaded two-core machine, and a managed service
#: that misses it makes the whole hub exit at start.
SERVICE_START_TIMEOUT = 180


def prepare_managed_services(c) -> None:
    """Give every service the hub starts its timeout and niceness 0.

    The timeout is :data:`SERVICE_START_TIMEOUT` unless the service sets its own; the niceness is
    0, not the hub's (``atelier.processes.priority``).
    """
    services = []
    for spec in c.JupyterHub.get("services", []):
        if spec.get("command"):
            if "timeout" not in spec:
                spec = {**spec, "timeout": SERVICE_START_TIMEOUT}
            if spec["command"][:4] != priority.command([]):
                spec = {**spec, "command": priority.command(list(spec["command"]))}
        services.append(spec)
    if services:
        c.JupyterHub.services = services


def load_hub_settings(environ: Mapping[str, str] = os.environ):
    """The validated settings, with the overrides of ``atelier start`` (``--ip``, ``--port``)."""
    from atelier.settings import DEFAULT_SETTINGS_PATH, load_settings

    overrides = json.loads(environ.get(ENV_OVERRIDES) or "{}")
    return load_settings(environ.get(ENV_SETTINGS) or DEFAULT_SETTINGS_PATH, overrides)
