"""Real servers the server and browser tiers start: an Atelier hub and a throwaway PostgreSQL.

Rule: a test's servers are its own: random loopback ports, a unique account prefix, temporary
folders, and a teardown that stops every process of those accounts and deletes them. The session
fixtures that build them (``hub``, ``postgres``, ``test_database``) are in ``tests/conftest.py``;
tests that need a hub of their own use :func:`running_hub`. The pods of ``atelier kube manifests``
are run here against such a hub with :func:`external_service`, :func:`rendered_container` and
:func:`rendered_pod`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Container, Iterator
from pathlib import Path

from harness import BIN, FIXTURES, PREFIX, form_login, remove_accounts
from harness import process_owners as _process_owners

from atelier.processes.ports import free_port

#: The people every hub test session starts with: three trainees (one French) in two cohorts, and
#: the facilitator of cohort x.
HUB_ROSTER = """username,full name,email,institution,country,language,role,cohort
alice,Alice Martin,alice@example.org,Université A,Kenya,en,trainee,x
bob,Bob Okafor,bob@example.org,University A,Nigeria,en,trainee,x
chloe,Chloé Diallo,chloe@example.org,Université B,Sénégal,fr,trainee,y
fiona,Fiona Mensah,fiona@example.org,University A,Ghana,en,facilitator,x
"""


class Hub:
    """A running Atelier hub (``atelier start``) on random loopback ports, for tests.

    Attributes:
        url: the public URL (the proxy), e.g. ``http://127.0.0.1:PORT``.
        root: a world-readable temporary folder holding everything below.
        settings_path: the settings file the hub runs with; ``settings`` is its content as a dict.
        state_dir: the hub's private state (database, cookie secret, roster store, passwords).
        workbooks: a copy of the sample workbooks, published to ``hub.workbooks_repo``;
            change it, then call :meth:`publish_workbooks`.
        prefix: the unique account prefix of this session (``t<4 letters>-``).
        passwords: username -> password issued by :meth:`import_roster`.

    Methods: :meth:`atelier` (run the CLI with these settings), :meth:`import_roster`,
    :meth:`login` (a browser-like ``requests.Session``), :meth:`start_server`, :meth:`api`,
    :meth:`restart`, :meth:`server_processes`. Teardown stops the hub, the proxy and every process
    of the session's accounts, then deletes the accounts and their homes.
    """

    def __init__(self, root: Path, extra_settings: dict | None = None):
        import random
        import string

        import yaml

        self.root = root
        self.prefix = "t" + "".join(random.choices(string.ascii_lowercase, k=4)) + "-"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state_dir = root / "state"
        self.workbooks = root / "workbooks"
        shutil.copytree(FIXTURES / "hub_workbooks", self.workbooks)
        self.settings = {
            "hub": {
                "ip": "127.0.0.1",
                "port": self.port,
                "hub_port": free_port(),
                "proxy_api_port": free_port(),
                "state_dir": str(self.state_dir),
                "workbooks_repo": str(root / "workbooks.git"),
                "config_d": "",
                "concurrent_spawn_limit": 10,
            },
            "accounts": {"prefix": self.prefix, "home_root": str(root / "home")},
            "grading": {
                "courses_root": str(root / "courses"),
                "exchange_root": str(root / "exchange"),
            },
            # The public apps (a preheated Voila pool) and the dashboard cost CPU and fixed ports;
            # tests that need them turn them on (``hub_extra_settings``) or build their own hub.
            "apps": {"on_hub": False, "dashboard": False},
        }
        for section, values in (extra_settings or {}).items():
            self.settings.setdefault(section, {}).update(values)
        self.settings_path = root / "settings.yaml"
        self.settings_path.write_text(yaml.safe_dump(self.settings))
        self.passwords: dict[str, str] = {}
        self.process = None
        self.log_path = root / "hub.log"

    # -- commands --
    def atelier(self, *args: str, check: bool = True):
        """Run ``atelier ARGS --settings <this hub's settings>``; returns the CompletedProcess."""
        import subprocess

        settings = ["--settings", str(self.settings_path)]
        cmd = [str(PREFIX / "env" / "bin" / "atelier"), *args[:2], *settings, *args[2:]]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{cmd} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def import_roster(self, text: str, check: bool = True):
        """Import a roster CSV text; new passwords are added to :attr:`passwords`."""
        import csv
        import tempfile

        fd, csv_path = tempfile.mkstemp(suffix=".csv", dir=self.root)
        os.write(fd, text.encode("utf-8"))
        os.close(fd)
        passwords = self.root / "passwords.csv"
        passwords.unlink(missing_ok=True)
        result = self.atelier(
            "roster", "import", csv_path, "--passwords-file", str(passwords), check=check
        )
        if passwords.exists():
            with passwords.open() as handle:
                for row in csv.DictReader(handle):
                    self.passwords[row["username"]] = row["password"]
        return result

    def publish_workbooks(self) -> dict:
        """Publish :attr:`workbooks` again (what ``atelier install --workbooks`` does)."""
        from atelier.hub_config.servers.delivery import publish_workbooks

        return publish_workbooks(self.workbooks, self.settings["hub"]["workbooks_repo"])

    # -- lifecycle --
    def start(self, timeout: float = 120) -> None:
        """Run ``atelier start`` and wait until the hub answers through the proxy."""
        import subprocess
        import time

        import requests

        if self.settings["apps"].get("on_hub"):
            # What `atelier install` does for the public apps (the rest of it is machine-wide).
            from atelier.public.apps import ensure_service_account
            from atelier.settings import load_settings

            ensure_service_account(load_settings(self.settings_path))
        # The hub answers its API before its services are up and routed (formgrader, apps):
        # ready means this start has logged that it is running.
        running = "JupyterHub is now running"
        starts_before = self.log_path.read_text().count(running) if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [
                str(PREFIX / "env" / "bin" / "atelier"),
                "start",
                "--settings",
                str(self.settings_path),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        proxy_log = self.state_dir / "proxy.log"
        # Only what this start's proxy writes: an earlier one may have met a taken port.
        seen = proxy_log.stat().st_size if proxy_log.exists() else 0
        while time.monotonic() < deadline:
            proxy_taken = proxy_log.exists() and "EADDRINUSE" in proxy_log.read_text()[seen:]
            if self.process.poll() is not None or proxy_taken:
                tail = self.log_path.read_text()[-4000:]
                if "Address already in use" in tail or proxy_taken:
                    raise PortTaken(tail)
                raise AssertionError(f"the hub exited:\n{tail}")
            try:
                answers = requests.get(f"{self.url}/hub/api", timeout=2).status_code == 200
            except requests.RequestException:
                answers = False
            if answers and self.log_path.read_text().count(running) > starts_before:
                return
            time.sleep(0.2)
        log_tail = self.log_path.read_text()[-4000:]
        raise AssertionError(f"the hub did not answer in {timeout}s:\n{log_tail}")

    def launch(self) -> None:
        """:meth:`start`, moving to fresh ports if another program took one (three tries)."""
        for attempt in range(3):
            try:
                self.start()
                return
            except PortTaken:
                if attempt == 2:
                    raise
                self.new_ports()

    def new_ports(self) -> None:
        """Stop the proxy and move the hub to fresh ports (another program took one meanwhile)."""
        import signal

        import yaml

        self.stop()
        proxy_pid = self.state_dir / "proxy.pid"
        if proxy_pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(proxy_pid.read_text().strip()), signal.SIGTERM)
        (self.state_dir / "proxy.log").unlink(missing_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings["hub"].update(
            port=self.port, hub_port=free_port(), proxy_api_port=free_port()
        )
        self.settings_path.write_text(yaml.safe_dump(self.settings))

    def stop(self) -> None:
        """Stop the hub process (the proxy and trainees' servers keep running, by design)."""
        import signal
        import subprocess

        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def restart(self) -> None:
        """Stop the hub and start it again with the same state."""
        self.stop()
        self.start()

    def account(self, username: str) -> str:
        """The Unix account of a hub user."""
        return f"{self.prefix}{username}"

    def server_processes(self, username: str) -> list[int]:
        """Pids of the processes running as ``username``'s Unix account."""
        import pwd

        try:
            uid = pwd.getpwnam(self.account(username)).pw_uid
        except KeyError:
            return []
        return [pid for pid, owner in _process_owners().items() if owner == uid]

    def teardown(self) -> None:
        """Stop everything this hub started and delete the session's accounts and homes."""
        import signal

        self.stop()
        proxy_pid = self.state_dir / "proxy.pid"
        if proxy_pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(proxy_pid.read_text().strip()), signal.SIGTERM)
        remove_accounts(self.prefix)

    # -- HTTP as a browser --
    def login(self, username: str, password: str | None = None):
        """Log in through the login form like a browser (XSRF cookie, form); return the session."""
        return form_login(
            self.url, username, self.passwords[username] if password is None else password
        )

    def start_server(self, session, username: str, timeout: float = 120):
        """Press Start (``/hub/spawn``), wait for JupyterLab on the workbooks; return that page."""
        import time

        lab = f"{self.url}/user/{username}/lab/tree/workbooks"
        session.get(f"{self.url}/hub/spawn", timeout=60)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = session.get(lab, timeout=30)
            at_lab = response.url.startswith(f"{self.url}/user/{username}/lab")
            if response.status_code == 200 and at_lab:
                return response
            time.sleep(0.1)
        raise AssertionError(f"{username}'s JupyterLab did not open in {timeout}s")

    def api(self, session, method: str, path: str, **kwargs):
        """Call the hub REST API (``/hub/api`` + path) with the session login, as a browser does."""
        headers = {"X-XSRFToken": session.cookies.get("_xsrf", path="/hub/") or ""}
        url = f"{self.url}/hub/api{path}"
        return session.request(method, url, headers=headers, timeout=30, **kwargs)


class PortTaken(AssertionError):
    """Another program took one of the hub's ports between choosing and binding it."""


# --- a throwaway PostgreSQL server ---------------------------------------------------------------


def pg_bin(name: str) -> str:
    """A PostgreSQL server program from Debian's versioned folder (not on PATH)."""
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True)
    assert found, "PostgreSQL is not installed: apt-get install postgresql (tests/run.sh does)"
    return str(found[0])


class Postgres:
    """A throwaway PostgreSQL server (Debian's); :meth:`database` makes a fresh database.

    Initialised in a temporary folder as the ``postgres`` account, listening on a random loopback
    port, without fsync (it is thrown away); :meth:`stop` stops it and deletes the folder.
    """

    def __init__(self):
        import pwd
        import tempfile

        self.root = Path(tempfile.mkdtemp(prefix="atelier-pg-"))
        self.port = free_port()
        pg = pwd.getpwnam("postgres")
        os.chown(self.root, pg.pw_uid, pg.pw_gid)
        self.data = self.root / "data"
        self.as_postgres(pg_bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust")
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.as_postgres(
            pg_bin("pg_ctl"), "-D", str(self.data), "-o", options, "-w", "-t", "60",
            "-l", str(self.root / "log"), "start",
        )  # fmt: skip
        self.count = 0

    def as_postgres(self, *cmd: str) -> None:
        """Run a server program as the ``postgres`` account; fail with its output."""
        import subprocess

        result = subprocess.run(
            ["/usr/sbin/runuser", "-u", "postgres", "--", *cmd],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{cmd[0]}: {result.stdout}{result.stderr}"

    def url(self, database: str) -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """Create a new, empty database; return its SQLAlchemy URL."""
        import psycopg

        self.count += 1
        name = f"atelier{self.count}"
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:{self.port}/postgres") as con:
            con.autocommit = True
            con.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def query(self, url: str, sql: str) -> list[tuple]:
        """The rows ``sql`` returns in the database at ``url``."""
        import psycopg

        with psycopg.connect(url.replace("+psycopg", "")) as con:
            return con.execute(sql).fetchall()

    def stop(self) -> None:
        """Stop the server at once and delete its folder."""
        with contextlib.suppress(AssertionError):
            self.as_postgres(pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_hub(
    extra_settings: dict | None = None, roster: str | None = HUB_ROSTER, start: bool = True
):
    """A :class:`Hub`, stopped and cleaned up on exit.

    ``roster`` is imported first, if any; the hub is started unless ``start`` is False (the
    caller then calls :meth:`Hub.launch`).
    """
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="atelier-hub-"))
    # Trainees must reach the published workbooks and their homes under this folder.
    root.chmod(0o755)
    instance = Hub(root, extra_settings)
    try:
        instance.publish_workbooks()
        if roster:
            instance.import_roster(roster)
        if start:
            instance.launch()
        yield instance
    finally:
        instance.teardown()
        shutil.rmtree(root, ignore_errors=True)


# --- the pods `atelier kube manifests` renders, run against a hub -------------------------------


def external_service(config_d: Path, name: str) -> tuple[int, str]:
    """Make the hub's service ``name`` external, as the chart's values do; return (port, token).

    On a cluster the hub starts no grading service: each is a URL and an API token in
    ``hub.services``. This writes the ``config.d`` file saying so (a config.d file starts from an
    empty config: it rebuilds the services with the hub's own layers, then swaps ``name``'s entry).
    The pod starts here after the hub (it needs the course and the grader account the hub's start
    makes), and a hub waits ``timeout`` seconds (30 by default) for an external service to answer
    before it runs: 1 s, so that the fixtures do not wait out 30 s for a pod not started yet.
    """
    import secrets

    from atelier.processes.ports import free_port

    port, token = free_port(), secrets.token_hex(16)
    (config_d / f"50-external-{name}.py").write_text(
        "from traitlets.config import Config\n"
        "from atelier.hub_config.hub import config as layers\n"
        "settings = layers.load_hub_settings()\n"
        "full = Config()\n"
        "layers.apply_settings(full, settings)\n"
        "layers.apply_roster(full, settings)\n"
        "layers.apply_plugins(full, settings)\n"
        "c.JupyterHub.services = [\n"
        f"    s for s in full.JupyterHub.services if s['name'] != {name!r}\n"
        "] + [\n"
        f"    {{'name': {name!r}, 'url': 'http://127.0.0.1:{port}', 'api_token': {token!r},\n"
        "     'display': True, 'oauth_no_confirm': True, 'timeout': 1}]\n"
    )
    return port, token


def rendered_container(hub: Hub, deployment: str) -> tuple[dict, dict]:
    """The grading Secret's files and ``deployment``'s container, rendered for ``hub``'s settings.

    What ``atelier kube manifests`` writes for a cluster running this hub's configuration.
    """
    from atelier.hub_config.kubernetes.kubemanifests import GRADING_SECRET, render_manifests
    from atelier.settings import load_settings

    manifests = render_manifests(load_settings(hub.settings_path))
    secret = next(m for m in manifests if m["metadata"]["name"] == GRADING_SECRET)
    found = next(m for m in manifests if m["metadata"]["name"] == deployment)
    (container,) = found["spec"]["template"]["spec"]["containers"]
    return secret["stringData"], container


@contextlib.contextmanager
def rendered_pod(
    hub: Hub,
    container: dict,
    *,
    service: str,
    port: int,
    token: str,
    account: str,
    log: Path,
    ready_path: str,
    ready_status: Container[int],
    command: list[str] | None = None,
    env: dict[str, str] | None = None,
    cwd: str = "/tmp",
) -> Iterator:
    """A rendered container running here as the pod of ``service`` would; stopped on exit.

    Only what a cluster supplies is replaced: ``python`` by this environment's, the token (the
    chart's Secret, ``hub.services.<service>.apiToken``), the hub's API and the service's loopback
    address, ``PATH``; ``command`` (default: the rendered one) and ``env`` (added to the rendered
    environment) carry what the caller replaces besides (a mounted file's path). It runs as
    ``account`` with that environment alone, its output in ``log``. Ready when a request through
    the hub's proxy to ``/services/<service>/<ready_path>`` answers a status in ``ready_status``
    (the hub routes the service once it is up): the pod's own answer. Yields the process.
    """
    import subprocess
    import time

    import requests

    args = [str(BIN / "python") if a == "python" else a for a in command or container["command"]]
    environment = {e["name"]: e.get("value") for e in container["env"]}
    environment.update(
        JUPYTERHUB_API_TOKEN=token,
        JUPYTERHUB_API_URL=f"http://127.0.0.1:{hub.settings['hub']['hub_port']}/hub/api",
        JUPYTERHUB_SERVICE_URL=f"http://127.0.0.1:{port}/services/{service}/",
        PATH=f"{BIN}:/usr/bin:/bin",
    )
    environment.update(env or {})
    with log.open("w") as output:
        process = subprocess.Popen(
            ["/usr/sbin/runuser", "-u", account, "--", "env", "-i",
             *(f"{k}={v}" for k, v in environment.items()), *args],
            cwd=cwd, stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        url = f"{hub.url}/services/{service}/{ready_path}"
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()[-3000:]
            if requests.get(url, timeout=5, allow_redirects=False).status_code in ready_status:
                break
            assert time.monotonic() < deadline, f"the rendered {service} was not reachable"
            time.sleep(0.2)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
