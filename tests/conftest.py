"""Fixtures shared by every test tier.

Tests never touch the host's Jupyter configuration: each session gets temporary
``JUPYTER_CONFIG_DIR``, ``JUPYTER_DATA_DIR`` and ``JUPYTER_RUNTIME_DIR``. Servers listen on random
free loopback ports.
Tier fixtures (a running hub, Chromium) live here too so that every tier reuses the same ones.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path

import pytest
from harness import process_owners as _process_owners
from harness import remove_accounts

from atelier.ports import free_port

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
WORKBOOKS = REPO / "workbooks"
#: The hub's environment: trainee accounts run its Python, so tests use the same one.
PREFIX = Path(os.environ.get("ATELIER_PREFIX", "/opt/atelier"))
BIN = Path(sys.executable).parent

CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def pytest_addoption(parser):
    """``--database``: which database the test hubs and gradebooks use."""
    parser.addoption(
        "--database",
        choices=("sqlite", "postgres"),
        default=os.environ.get("ATELIER_TEST_DATABASE", "sqlite"),
        help="Database of the test hubs and gradebooks (fixture test_database): SQLite files (the "
        "default) or a throwaway PostgreSQL server (tests/run.sh runs the hub and grading server "
        "modules both ways).",
    )


@pytest.fixture(scope="session", autouse=True)
def isolated_jupyter(tmp_path_factory):
    """Keep the host's Jupyter config and runtime files out of every test."""
    root = tmp_path_factory.mktemp("jupyter")
    saved = {
        k: os.environ.get(k)
        for k in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR")
    }
    for name in saved:
        path = root / name.lower()
        path.mkdir()
        os.environ[name] = str(path)
    os.environ["JUPYTER_PLATFORM_DIRS"] = "1"
    yield root
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Debian's Chromium; the test command installs it, so its absence is a failure, not a skip."""
    path = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(path).exists(), "Chromium is missing: run the tests with `bash tests/run.sh`"
    return path


@pytest.fixture(scope="session")
def browser(chromium_path):
    """A headless Chromium driven by Playwright, shared by the browser tests of one session."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, tmp_path):
    """A fresh browser page (own cookies); ``page.requests_seen`` records every request it makes."""
    context = browser.new_context()
    page = context.new_page()
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    page.requests_seen = seen
    yield page
    context.close()


@pytest.fixture(scope="module")
def apps_server(tmp_path_factory, request):
    """``atelier apps`` over the fixture apps on a free port; a module may set ``APPS_SETTINGS``.

    Yields an object with ``url`` (ending in /), ``proc`` and ``settings`` (the apps section used).
    """
    import subprocess
    import time
    import types

    import requests
    import yaml

    apps = {"pool_size": 1, "max_kernels": 8, "cull_idle_timeout": 10, "cull_interval": 1}
    apps.update(getattr(request.module, "APPS_SETTINGS", {}))
    tmp = tmp_path_factory.mktemp("apps")
    settings = tmp / "settings.yaml"
    settings.write_text(yaml.safe_dump({"apps": apps}))
    port = free_port()
    log = (tmp / "apps.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "atelier"),
            "apps",
            f"--settings={settings}",
            f"--port={port}",
            f"--workbooks={getattr(request.module, 'APPS_WORKBOOKS', FIXTURES / 'apps')}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=tmp,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 180
    while True:
        assert proc.poll() is None, f"atelier apps exited: {(tmp / 'apps.log').read_text()[-2000:]}"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "atelier apps did not answer within 180 s"
        time.sleep(0.2)
    yield types.SimpleNamespace(url=url, proc=proc, settings=apps, log=tmp / "apps.log")
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    log.close()


# --- a real Atelier hub ---------------------------------------------------------------------------

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
        import requests

        session = requests.Session()
        session.get(f"{self.url}/hub/login", timeout=30)
        response = session.post(
            f"{self.url}/hub/login",
            data={
                "username": username,
                "password": self.passwords[username] if password is None else password,
                "_xsrf": session.cookies.get("_xsrf", path="/hub/"),
            },
            allow_redirects=False,
            timeout=60,
        )
        session.login_response = response
        return session

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


@pytest.fixture(scope="session")
def postgres():
    """A running throwaway PostgreSQL server for the session (started on first use)."""
    server = Postgres()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def test_database(request):
    """A function giving the settings of a new, empty database for one hub or course.

    With ``--database=sqlite`` (the default) it gives ``{}``: SQLite files under the hub's state
    directory and each course. With ``--database=postgres`` it gives
    ``{"database": {"url": ...}}`` naming a fresh database of the session's :func:`postgres`
    server, so the hub and every gradebook of that settings file live in PostgreSQL.
    """
    if request.config.getoption("database") != "postgres":
        return dict
    server = request.getfixturevalue("postgres")
    return lambda: {"database": {"url": server.database()}}


@pytest.fixture(scope="session")
def hub_extra_settings() -> dict:
    """Settings sections merged over the test hub's defaults (override in a conftest to change)."""
    return {}


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


@pytest.fixture(scope="session")
def hub(hub_extra_settings, test_database):
    """A real Atelier hub for the session, with :data:`HUB_ROSTER` imported (see :class:`Hub`).

    Its hub database and gradebooks are on the database chosen with ``--database``.
    """
    with running_hub({**test_database(), **hub_extra_settings}) as instance:
        yield instance


def seed_gradebook(course, plan: dict) -> None:
    """A gradebook for ``course``: workbooks alpha and beta (en and fr), one 2-point cell each.

    ``plan`` maps an account to {assignment: "graded" | "needs grading"}; other pairs are missing.
    """
    from nbgrader.api import Gradebook

    from atelier.grading.course import ensure_env_on_path

    ensure_env_on_path()
    course.root.mkdir(parents=True, exist_ok=True)
    from nbgrader.api import MissingEntry

    # Idempotent: the session hub's cohort may already know these trainees and assignments.
    gb = Gradebook(course.db_url, course_id=course.course_id)
    try:
        for workbook in ("alpha", "beta"):
            for lang in ("en", "fr"):
                name = f"{workbook}-{lang}"
                gb.update_or_create_assignment(name)
                try:
                    gb.find_notebook(f"{workbook}.{lang}", name)
                except MissingEntry:
                    gb.add_notebook(f"{workbook}.{lang}", name)
                    gb.add_grade_cell(
                        "q1", f"{workbook}.{lang}", name, max_score=2, cell_type="code"
                    )
        for account, submissions in plan.items():
            gb.update_or_create_student(account)
            for assignment, status in submissions.items():
                gb.update_or_create_submission(assignment, account)
                grade = gb.find_grade("q1", assignment.replace("-", "."), assignment, account)
                if status == "graded":
                    grade.auto_score = 2
                    grade.needs_manual_grade = False
                else:
                    grade.needs_manual_grade = True
                gb.db.commit()
    finally:
        gb.close()


DASHBOARD_PEOPLE = [
    ("amina", "Amina Diallo", "Univ A", "Senegal", "en", {"district": "North"}),
    ("benoit", "Benoît Kaboré", "Univ A", "Burkina Faso", "fr", {"district": "North"}),
    ("chen", "Chen Wei", "Univ A", "Kenya", "en", {"district": "South"}),
    ("dara", "Dara Sok", "Univ B", "Cambodia", "en", {"district": "South"}),
]


def seed_dashboard_cohort(root):
    """Settings, roster and gradebook of cohort c1 (4 trainees, workbooks alpha and beta).

    Also writes ``root/settings.yaml`` with the same settings, for servers started by a test.
    """
    import yaml

    from atelier.accounts import save_people
    from atelier.grading.course import Course
    from atelier.roster import Person
    from atelier.settings import load_settings

    state = root / "state"
    state.mkdir()
    people = {
        name: Person(
            name, full, f"{name}@example.org", inst, country, lang, "trainee", ("c1",), extra
        )
        for name, full, inst, country, lang, extra in DASHBOARD_PEOPLE
    }
    people["fac"] = Person(
        "fac", "Fatou Ba", "f@example.org", "Univ A", "Senegal", "en", "facilitator", ("c1",), {}
    )
    save_people(state, people)
    overrides = {
        "hub": {"state_dir": str(state)},
        "grading": {
            "courses_root": str(root / "courses"),
            "exchange_root": str(root / "exchange"),
        },
    }
    (root / "settings.yaml").write_text(yaml.safe_dump(overrides))
    settings = load_settings(None, overrides)
    course = Course.from_settings(settings, "c1")
    seed_gradebook(
        course,
        {
            "at-amina": {"alpha-en": "graded", "beta-en": "graded"},
            "at-benoit": {"alpha-fr": "graded", "beta-fr": "graded"},
            "at-chen": {"alpha-en": "graded"},
            "at-dara": {"alpha-en": "graded", "beta-en": "needs grading"},
        },
    )
    # Chen has submitted beta; it waits in the exchange, not yet collected.
    (course.inbound_of("at-chen") / "at-chen+beta-en+2026-11-28 10:00:00.000000 UTC").mkdir(
        parents=True
    )
    return settings


def run_coroutine(coroutine):
    """Run ``coroutine`` to its end in a thread of its own.

    ``asyncio.run`` refuses to run where an event loop is running, and a browser test before may
    have left Playwright's loop running in the main thread.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()
