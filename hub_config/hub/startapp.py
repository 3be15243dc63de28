"""``atelier start``: start configurable-http-proxy (once) and the multi-user hub.

The rule: the hub runs as root, because it starts each trainee's server as that trainee's own Unix
account; as any other account it refuses, unless the admin asks for the insecure single-account demo
(every server then runs as that one account, and a warning says so at every start). The proxy is its
own long-lived process (pid file in the state directory) so trainees' connections survive a hub
restart; a running proxy is reused when it was started with the same addresses.

``atelier start`` stays as the hub's parent (pid in ``state_dir/atelier-start.pid``): on SIGHUP it
stops the hub cleanly (SIGTERM: managed services stop, trainees' servers and the proxy keep
running) and starts it again with the same command line and environment, so the hub reloads its
configuration (new cohorts: roles, formgrader services) without anyone losing their work.
``atelier roster import`` sends that signal when a roster brings a new cohort. SIGTERM is passed on
to the hub, and ``atelier start`` exits with the hub's exit status.

It also keeps the proxy running (:mod:`atelier.hub_config.hub.proxykeeper`): a proxy that dies is
started again within a second, and the hub puts every route back. Meanwhile the hub keeps running,
and a SIGHUP restart waits for the proxy: a hub started without one could not start at all.

JupyterHub stops its managed services (idle culler, formgraders, dashboard, public apps) in its
cleanup, which a hub stopped while still starting skips; they would then hold their ports against
the next hub. So whenever the hub exits, ``atelier start`` ends what is left of its services
(:func:`~atelier.hub_config.hub.processes.end_leftover_services`); trainees' servers are never
touched.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from traitlets import Bool, Integer, Unicode

from atelier.app import AtelierApp
from atelier.errors import AtelierError
from atelier.files import atomic_write
from atelier.hub_config.hub import config as layers
from atelier.hub_config.hub.installapp import PREFIX, proxy_command
from atelier.hub_config.hub.processes import end_leftover_services
from atelier.hub_config.hub.proxykeeper import PROXY_POLL, ProxyKeeper
from atelier.processes import priority

CONFIG_FILE = Path(__file__).parent.parent / "jupyterhub_config.py"
#: Milliseconds the proxy keeps an idle browser connection open (configurable-http-proxy closes it
#: after 5 s by default). A visitor's waiting page asks again every few seconds, and a trainee's
#: page polls too: a connection closed just as the next request goes out on it ended that request
#: with no answer at all (the webinar at full size: benchmarks.md, "The port race removed"), and
#: on a slow link each new connection costs round trips. Browsers keep idle connections longer.
PROXY_KEEP_ALIVE_MS = 75_000

NOT_ROOT = (
    "the multi-user hub must run as root: it starts each trainee's server as that trainee's own "
    "Unix account, which only root can do. Run `sudo atelier start`; or, for a demo on your own "
    "machine where every trainee shares your account and can read each other's files, "
    "`atelier start --insecure-demo`."
)
DEMO_WARNING = (
    "WARNING: insecure single-account demo. Every trainee's server runs as {user}; trainees can "
    "read and change each other's files. Never use this with real trainees."
)


def closed_to_others(path: str | os.PathLike) -> tuple[Path, int] | None:
    """The first folder on the way to ``path`` that other accounts cannot enter, and its mode.

    Other accounts need ``o+x`` on every folder above ``path`` and ``o+rx`` on ``path`` itself;
    the check stops at the first folder that does not exist yet (Atelier creates the rest).
    """
    path = Path(os.path.abspath(path))
    for folder in [*reversed(path.parents), path]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            return None
        if not stat.S_ISDIR(mode):
            return None
        needed = stat.S_IXOTH | (stat.S_IROTH if folder == path else 0)
        if mode & needed != needed:
            return folder, stat.S_IMODE(mode)
    return None


def check_reachable(settings) -> None:
    """Refuse to start when a folder other accounts read as themselves is closed to them.

    Trainees' servers and the services run as their own accounts (a trainee, a cohort's grader
    account, the apps account): none of them can read a checkout under /root or in a
    ``mktemp -d`` folder. Caught here, before the first trainee's server fails to start.
    """
    import atelier

    package = Path(atelier.__file__).resolve().parent
    reinstall = (
        "install Atelier where every account can read it (`bash hub_config/bootstrap.sh` "
        "installs a copy into the prefix, without -e)"
    )
    wanted = [
        (settings["hub"]["workbooks_repo"], "hub.workbooks_repo", "trainees' servers"),
        (settings["grading"]["exchange_root"], "grading.exchange_root", "trainees' servers"),
        (settings["grading"]["courses_root"], "grading.courses_root", "cohorts' formgraders"),
        (package, "the atelier package", "trainees' servers and the services"),
        (sys.prefix, "the hub's Python environment", "trainees' servers and the services"),
    ]
    for path, what, who in wanted:
        closed = closed_to_others(path)
        if closed is None:
            continue
        folder, mode = closed
        if what.startswith("the "):
            fix = f"{reinstall}, or let them in: chmod o+rx {folder}"
        else:
            fix = f"set {what} to a folder every account can enter, or chmod o+rx {folder}"
        raise AtelierError(
            f"{what} ({path}): {who} read it as their own accounts, but {folder} (mode "
            f"{mode:o}) lets no other account in. Fix: {fix}"
        )


class StartApp(AtelierApp):
    """Start the multi-user hub (JupyterHub with configurable-http-proxy)."""

    name = "atelier start"
    description = __doc__
    aliases = {
        **AtelierApp.aliases,
        "ip": "StartApp.ip",
        "port": "StartApp.port",
    }
    flags = {
        "insecure-demo": (
            {"StartApp": {"insecure_demo": True}},
            "Run without root as a single-account demo: no isolation between trainees.",
        ),
    }

    ip = Unicode("", help="Address the hub listens on (default: the hub.ip setting).").tag(
        config=True
    )
    port = Integer(0, help="Port the hub listens on (default: the hub.port setting).").tag(
        config=True
    )
    insecure_demo = Bool(
        False, help="Allow starting without root, every server running as this one account."
    ).tag(config=True)

    def overrides(self) -> dict:
        """The settings given on the command line (``--ip``, ``--port``)."""
        hub = {}
        if self.ip:
            hub["ip"] = self.ip
        if self.port:
            hub["port"] = self.port
        return {"hub": hub} if hub else {}

    def demo_overrides(self) -> dict:
        """Where a demo keeps its state when the system state directory is not writable."""
        state = Path(self.settings["hub"]["state_dir"])
        if os.access(state if state.exists() else state.parent, os.W_OK):
            return {}
        home = Path.home() / ".local" / "share" / "atelier"
        # Nor the site's database: a demo keeps its own SQLite file in its own state directory.
        return {
            "hub": {"state_dir": str(home), "config_d": "", "db_url": ""},
            "database": {"url": ""},
        }

    def run(self):
        """Check who we are, prepare the state directory, start the proxy, then become the hub."""
        from atelier.settings import load_settings

        overrides = self.overrides()
        if os.geteuid() != 0:
            if not self.insecure_demo:
                raise AtelierError(NOT_ROOT)
            import getpass

            self.log.warning(DEMO_WARNING.format(user=getpass.getuser()))
            demo = self.demo_overrides()
            overrides = {**demo, "hub": {**overrides.get("hub", {}), **demo.get("hub", {})}}
        elif self.insecure_demo:
            self.log.warning(DEMO_WARNING.format(user="root"))
        settings = load_settings(self.settings_file, overrides)
        if os.geteuid() == 0 and not self.insecure_demo:
            check_reachable(settings)
        paths = layers.state_paths(settings)
        paths["state_dir"].mkdir(parents=True, exist_ok=True)
        os.chmod(paths["state_dir"], 0o700)
        if not paths["proxy_token"].exists():
            atomic_write(paths["proxy_token"], secrets.token_hex(32), 0o600)
        token = paths["proxy_token"].read_text().strip()
        hub = settings["hub"]
        proxy = ProxyKeeper(
            self.proxy_args(settings),
            {**os.environ, "CONFIGPROXY_AUTH_TOKEN": token},
            paths,
            {hub["port"]: "hub.port", hub["proxy_api_port"]: "hub.proxy_api_port"},
            self.log,
            nice=hub["nice"],
        )
        if not proxy.adopt():
            reason = proxy.start()
            if reason:
                raise AtelierError(reason)
            self.log.info("Started configurable-http-proxy (pid %s)", proxy.pid)

        env = {
            **os.environ,
            layers.ENV_SETTINGS: str(Path(self.settings_file).resolve()),
            layers.ENV_OVERRIDES: json.dumps(overrides),
            "CONFIGPROXY_AUTH_TOKEN": token,
        }
        if self.insecure_demo:
            env[layers.ENV_INSECURE_DEMO] = "1"
        api_token = paths["api_token"]
        if not api_token.exists():
            atomic_write(api_token, secrets.token_hex(32), 0o600)
        self.log.info("Atelier hub on http://%s:%s/", hub["ip"], hub["port"])
        os.chdir(paths["state_dir"])
        argv = [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_FILE)]
        sys.stdout.flush()
        sys.stderr.flush()
        hub_url = f"http://127.0.0.1:{hub['hub_port']}"
        self.exit(
            self.supervise(argv, env, paths["supervisor_pid"], hub_url, proxy, nice=hub["nice"])
        )

    def supervise(
        self,
        argv: list[str],
        env: dict,
        pid_file: Path,
        hub_url: str = "",
        proxy: ProxyKeeper | None = None,
        nice: int = 0,
    ) -> int:
        """Run the hub as a child; SIGHUP restarts it, SIGTERM stops it. Returns its exit status.

        The hub runs at niceness ``nice`` (``hub.nice``): first on a full machine, while what it
        starts goes back to 0 (``atelier.processes.priority``).

        While the hub runs, ``proxy`` is kept running. A restart waits until the proxy runs (the
        old hub serves meanwhile). After each exit of the hub, the services it left running are
        ended (``hub_url``: the hub's own address, as its services know it).
        """
        state = {"restart": False, "stop": False, "hub": None}

        def restart(signum, frame):
            state["restart"] = True  # acted on by the loop below, once the proxy runs

        def forward(signum, frame):
            state["stop"] = True
            if state["hub"] is not None:
                state["hub"].send_signal(signum)

        def ignore(signum, frame):
            # Ctrl-C reaches the hub directly (same process group); the hub then exits, and so
            # does this process.
            pass

        signal.signal(signal.SIGHUP, restart)
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, ignore)
        atomic_write(pid_file, str(os.getpid()), 0o600)
        try:
            while True:
                # A hub started without its proxy fails its first route check and exits.
                while proxy is not None and not proxy.keep():
                    if state["stop"]:
                        return 128 + signal.SIGTERM
                    time.sleep(PROXY_POLL)
                state["restart"] = False
                hub = state["hub"] = subprocess.Popen(argv, env=env, preexec_fn=priority.at(nice))
                status = self._watch(hub, state, proxy)
                state["hub"] = None
                if hub_url:
                    ended = end_leftover_services(hub_url)
                    if ended:
                        self.log.info("Ended %d process(es) of services the hub left", len(ended))
                if not state["restart"] or state["stop"]:
                    return status if status >= 0 else 128 - status  # killed by signal N: 128+N
                self.log.info("Restarting the hub to apply new configuration (servers keep on)")
        finally:
            pid_file.unlink(missing_ok=True)

    def _watch(self, hub: subprocess.Popen, state: dict, proxy: ProxyKeeper | None) -> int:
        """Wait for ``hub`` to exit, keeping the proxy running; stop it when a restart is asked."""
        stopping = waiting = False
        while True:
            try:
                return hub.wait(timeout=PROXY_POLL)
            except subprocess.TimeoutExpired:
                pass
            proxy_runs = proxy is None or proxy.keep()
            if state["restart"] and not stopping:
                if proxy_runs:
                    stopping = True
                    hub.terminate()  # JupyterHub's clean shutdown; servers keep running
                elif not waiting:
                    waiting = True
                    self.log.error(
                        "Not restarting the hub yet: the proxy is down and a new hub could not "
                        "start without it; the hub restarts once the proxy runs again"
                    )

    def proxy_args(self, settings) -> list[str]:
        """The proxy's command line for these settings."""
        hub = settings["hub"]
        hub_url = f"http://127.0.0.1:{hub['hub_port']}"
        return [
            str(proxy_command(Path(os.environ.get("ATELIER_PREFIX", str(PREFIX))))),
            "--ip",
            hub["ip"],
            "--port",
            str(hub["port"]),
            "--api-ip",
            "127.0.0.1",
            "--api-port",
            str(hub["proxy_api_port"]),
            "--default-target",
            hub_url,
            "--error-target",
            f"{hub_url}/hub/error",
            "--keep-alive-timeout",
            str(PROXY_KEEP_ALIVE_MS),
        ]
