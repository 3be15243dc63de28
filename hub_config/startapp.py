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

JupyterHub stops its managed services (idle culler, formgraders, dashboard, public apps) in its
cleanup, which a hub stopped while still starting skips; they would then hold their ports against
the next hub. So whenever the hub exits, ``atelier start`` ends what is left of its services
(:func:`end_leftover_services`); trainees' servers are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from traitlets import Bool, Integer, Unicode

from atelier.app import AtelierApp
from atelier.errors import AtelierError
from atelier.hub_config import config as layers
from atelier.hub_config.accounts import write_private
from atelier.hub_config.installapp import PREFIX, proxy_command

CONFIG_FILE = Path(__file__).with_name("jupyterhub_config.py")

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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:  # gone, or not ours to read
        return {}
    pairs = (item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in pairs}


def leftover_services(hub_url: str) -> list[int]:
    """Pids of the processes of services started by the hub at ``hub_url`` (and their children).

    JupyterHub gives a service's process ``JUPYTERHUB_SERVICE_NAME`` and the hub's API address,
    which its children inherit; trainees' servers get no service name. Other hubs on the machine
    have other addresses.
    """
    api = hub_url.rstrip("/") + "/"
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        env = _environ(int(entry.name))
        if env.get("JUPYTERHUB_SERVICE_NAME") and env.get("JUPYTERHUB_API_URL", "").startswith(api):
            pids.append(int(entry.name))
    return pids


def end_leftover_services(hub_url: str, grace: float = 10.0) -> list[int]:
    """End the services a stopped hub left running: SIGTERM, then SIGKILL after ``grace`` s."""
    pids = leftover_services(hub_url)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return pids


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        return [part for part in raw.split("\0") if part]
    except OSError:
        return []


class StartApp(AtelierApp):
    """Start the multi-user hub (JupyterHub with configurable-http-proxy)."""

    name = "atelier-start"
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
        paths = layers.state_paths(settings)
        paths["state_dir"].mkdir(parents=True, exist_ok=True)
        os.chmod(paths["state_dir"], 0o700)
        if not paths["proxy_token"].exists():
            write_private(paths["proxy_token"], secrets.token_hex(32))
        token = paths["proxy_token"].read_text().strip()
        self.start_proxy(settings, paths, token)

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
            write_private(api_token, secrets.token_hex(32))
        hub = settings["hub"]
        self.log.info("Atelier hub on http://%s:%s/", hub["ip"], hub["port"])
        os.chdir(paths["state_dir"])
        argv = [sys.executable, "-m", "jupyterhub", "-f", str(CONFIG_FILE)]
        sys.stdout.flush()
        sys.stderr.flush()
        hub_url = f"http://127.0.0.1:{hub['hub_port']}"
        self.exit(self.supervise(argv, env, paths["supervisor_pid"], hub_url))

    def supervise(self, argv: list[str], env: dict, pid_file: Path, hub_url: str = "") -> int:
        """Run the hub as a child; SIGHUP restarts it, SIGTERM stops it. Returns its exit status.

        After each exit of the hub, the services it left running are ended (``hub_url``: the
        hub's own address, as its services know it).
        """
        state = {"restart": False, "hub": None}

        def restart(signum, frame):
            state["restart"] = True
            if state["hub"] is not None:
                state["hub"].terminate()  # JupyterHub's clean shutdown; servers keep running

        def forward(signum, frame):
            if state["hub"] is not None:
                state["hub"].send_signal(signum)

        def ignore(signum, frame):
            # Ctrl-C reaches the hub directly (same process group); the hub then exits, and so
            # does this process.
            pass

        signal.signal(signal.SIGHUP, restart)
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, ignore)
        write_private(pid_file, str(os.getpid()))
        try:
            while True:
                state["restart"] = False
                state["hub"] = subprocess.Popen(argv, env=env)
                status = state["hub"].wait()
                if hub_url:
                    ended = end_leftover_services(hub_url)
                    if ended:
                        self.log.info("Ended %d process(es) of services the hub left", len(ended))
                if not state["restart"]:
                    return status if status >= 0 else 128 - status  # killed by signal N: 128+N
                self.log.info("Restarting the hub to apply new configuration (servers keep on)")
        finally:
            pid_file.unlink(missing_ok=True)

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
        ]

    def start_proxy(self, settings, paths, token: str) -> int:
        """Start configurable-http-proxy detached, or reuse one running with the same arguments."""
        args = self.proxy_args(settings)
        pid_file = paths["proxy_pid"]
        if pid_file.exists():
            try:
                pid = int(pid_file.read_text().split()[0])
            except (ValueError, IndexError):
                pid = 0
            if pid and _alive(pid) and "configurable-http-proxy" in " ".join(_cmdline(pid)):
                if _cmdline(pid)[-(len(args) - 1) :] == args[1:]:
                    self.log.info("Reusing configurable-http-proxy (pid %s)", pid)
                    return pid
                self.log.info("Restarting configurable-http-proxy with new addresses")
                os.kill(pid, signal.SIGTERM)
                for _ in range(50):
                    if not _alive(pid):
                        break
                    time.sleep(0.1)
        if not Path(args[0]).exists():
            raise AtelierError(f"{args[0]} is missing: run `atelier install` first")
        with open(paths["proxy_log"], "ab") as log:
            proc = subprocess.Popen(
                args,
                env={**os.environ, "CONFIGPROXY_AUTH_TOKEN": token},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=paths["state_dir"],
            )
        write_private(pid_file, str(proc.pid))
        self.log.info("Started configurable-http-proxy (pid %s)", proc.pid)
        return proc.pid
