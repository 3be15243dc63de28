"""Benchmark: Atelier's hub against stock JupyterHub 6 (LocalProcessSpawner), same machine and run.

Run as root: ``/opt/atelier/env/bin/python benchmarks/bench_hub.py [--trainees 30] [--logins 5]``.

Measures, for each hub:

- login → JupyterLab ready: a browser-like client opens the login form, posts it, presses Start and
  waits for JupyterLab's page (median over ``--logins`` trainees, each a first start);
- burst: ``--trainees`` logged-in trainees press Start together; time until every JupyterLab page
  is served, and how many spawns failed;
- memory per active trainee: PSS (and RSS) of all processes of a trainee's account, server plus one
  kernel that ran the sample workbook's code (median over ``--logins`` trainees).

The stock hub runs with ``ATELIER_NO_IMPORT_FIX=1`` in its processes and its servers' (so the
prefix's import-time fix is off: it is truly stock), its own proxy, DummyAuthenticator and
``jupyterhub-singleuser``. Both hubs use the same Python environment, accounts and machine; they run
one after the other. Accounts (prefix ``b<4 letters>-``) and temporary folders are removed at the
end.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import os
import pwd
import random
import secrets
import shutil
import signal
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests
import yaml

from atelier.processes.ports import free_port

REPO = Path(__file__).resolve().parent.parent
# The tests' harness (tests/harness.py): the benchmarks clean up and measure as the tests do.
sys.path.insert(0, str(REPO / "tests"))
from harness import execute_in_kernel, form_login, remove_accounts  # noqa: E402

PREFIX = Path(os.environ.get("ATELIER_PREFIX", "/opt/atelier"))
ENV_BIN = PREFIX / "env" / "bin"
PROXY = PREFIX / "node" / "node_modules" / ".bin" / "configurable-http-proxy"
SAMPLE_CODE = "value = 1\nvalue + 1\nimport json, math\nprint(math.sqrt(value))"


def wait_http(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer in {timeout}s")


class BenchHub:
    """One hub under test: how to start it, log in, and stop servers."""

    def __init__(self, name, url, token, usernames, passwords, process, lab_path):
        self.name = name
        self.url = url
        self.token = token
        self.usernames = usernames  # hub usernames, in trainee order
        self.passwords = passwords
        self.process = process
        self.lab_path = lab_path  # where Start lands, e.g. /lab or /lab/tree/workbooks
        self.failures = 0  # failed spawns seen (then started again)

    def login(self, username):
        """Log in through the form as a browser does; return the session."""
        session = form_login(self.url, username, self.passwords[username], timeout=120)
        assert session.login_response.status_code == 302, (
            self.name, username, session.login_response.status_code)  # fmt: skip
        return session

    def press_start_and_wait(self, session, username, timeout=600) -> tuple[bool, int]:
        """Press Start and wait for Lab; returns (ready, number of 429 'try again' answers)."""
        lab = f"{self.url}/user/{username}{self.lab_path}"
        retries = 0
        response = session.get(f"{self.url}/hub/spawn", timeout=timeout)
        pressed = time.monotonic()
        if response.status_code == 429:
            retries += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = session.get(lab, timeout=timeout)
            if response.status_code == 200 and response.url.startswith(
                f"{self.url}/user/{username}/lab"
            ):
                return True, retries
            if response.status_code == 429:
                retries += 1
                time.sleep(float(response.headers.get("Retry-After", "1")))
            elif response.status_code >= 400 and time.monotonic() - pressed > 2:
                # a failed spawn ("Previous spawn failed"): press Start again, as a trainee would
                self.failures += 1
                session.get(f"{self.url}/hub/spawn", timeout=timeout)
                pressed = time.monotonic()
            time.sleep(0.1)
        return False, retries

    def api(self, method, path, **kwargs):
        """Call the hub API with the benchmark's admin token."""
        headers = {"Authorization": f"token {self.token}"}
        return requests.request(
            method, f"{self.url}/hub/api{path}", headers=headers, timeout=120, **kwargs
        )

    def stop_all(self, usernames):
        """Stop the servers of ``usernames`` and wait until they are gone."""
        for username in usernames:
            self.api("DELETE", f"/users/{username}/server")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            users = self.api("GET", "/users").json()
            if not any(u["servers"] for u in users if u["name"] in usernames):
                return
            time.sleep(0.5)


def run_in_kernel(hub: BenchHub, session, username: str, code: str) -> None:
    base = f"{hub.url}/user/{username}"
    headers = {"X-XSRFToken": session.cookies.get("_xsrf", path=f"/user/{username}/") or ""}
    kernel = session.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers)
    kernel.raise_for_status()
    kernel_id = kernel.json()["id"]
    execute_in_kernel(hub, session, username, kernel_id, code, timeout=120)


def account_memory(account: str) -> tuple[float, float]:
    """(PSS, RSS) in MiB of every process of ``account``."""
    uid = pwd.getpwnam(account).pw_uid
    pss = rss = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            for line in (entry / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss += int(line.split()[1])
        except OSError:
            continue
    return pss / 1024, rss / 1024


def measure(hub: BenchHub, accounts: dict[str, str], logins: int) -> dict:
    """Login → Lab (first starts), memory, then the burst; returns the medians."""
    result = {}
    # 1. login → JupyterLab ready, one trainee at a time (each a first start).
    times, sessions = [], {}
    for username in hub.usernames[:logins]:
        start = time.perf_counter()
        session = hub.login(username)
        ready, _ = hub.press_start_and_wait(session, username)
        assert ready, (hub.name, username)
        times.append(time.perf_counter() - start)
        sessions[username] = session
    result["login_to_lab"] = statistics.median(times)
    result["login_to_lab_all"] = times
    print(f"  {hub.name}: login → Lab {', '.join(f'{t:.2f}' for t in times)} s", flush=True)
    # 2. memory per active trainee: server + one kernel that ran the workbook's code.
    memory = []
    for username, session in sessions.items():
        run_in_kernel(hub, session, username, SAMPLE_CODE)
    time.sleep(2)
    for username in sessions:
        memory.append(account_memory(accounts[username]))
    result["pss"] = statistics.median(m[0] for m in memory)
    result["rss"] = statistics.median(m[1] for m in memory)
    print(f"  {hub.name}: memory per trainee (PSS, RSS MiB) {memory}", flush=True)
    result["login_failures"] = hub.failures
    hub.failures = 0
    hub.stop_all(list(sessions))
    # 3. burst: everyone logged in first, then all press Start at once.
    burst_sessions = {u: hub.login(u) for u in hub.usernames}
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(burst_sessions)) as pool:
        futures = {
            pool.submit(hub.press_start_and_wait, s, u): u for u, s in burst_sessions.items()
        }
        outcomes = [f.result() for f in futures]
    result["burst"] = time.perf_counter() - start
    result["burst_failed"] = sum(1 for ready, _ in outcomes if not ready)
    result["burst_retries"] = sum(retries for _, retries in outcomes)
    result["burst_failures"] = hub.failures
    print(f"  {hub.name}: burst {result['burst']:.1f} s, {hub.failures} failed spawns", flush=True)
    hub.stop_all(hub.usernames)
    return result


def start_atelier(
    root: Path, prefix: str, usernames, passwords, token, before_start=None
) -> BenchHub:
    """Atelier's hub on free ports; ``before_start(settings_path)`` runs before it starts."""
    port = free_port()
    config_d = root / "atelier_config_d"
    config_d.mkdir()
    # The escape hatch gives the benchmark an admin token, as an admin would.
    (config_d / "bench.py").write_text(
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.services.extend([{{'name': 'bench', 'api_token': {token!r}}}])\n"
        "c.JupyterHub.load_roles.extend([{'name': 'bench', 'services': ['bench'],"
        " 'scopes': ['admin:users', 'admin:servers', 'list:users', 'read:users']}])\n"
    )
    settings = {
        "hub": {
            "port": port,
            "hub_port": free_port(),
            "proxy_api_port": free_port(),
            "state_dir": str(root / "atelier_state"),
            "workbooks_repo": str(root / "workbooks.git"),
            "config_d": str(config_d),
            "concurrent_spawn_limit": 40,
            "culler": {"enabled": False},
        },
        "accounts": {"prefix": prefix, "home_root": str(root / "home")},
        "grading": {
            "courses_root": str(root / "courses"),
            "exchange_root": str(root / "exchange"),
        },
        # Public apps and the dashboard (Voila services on fixed ports) are not part of a
        # trainee's start; off, they cannot steal CPU or crash-loop on a port another hub holds.
        "apps": {"on_hub": False, "dashboard": False},
    }
    settings_path = root / "atelier.yaml"
    settings_path.write_text(yaml.safe_dump(settings))
    if before_start is not None:
        before_start(settings_path)
    log = (root / "atelier-hub.log").open("ab")
    process = subprocess.Popen(
        [str(ENV_BIN / "atelier"), "start", "--settings", str(settings_path)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/hub/api")
    hub = BenchHub("atelier", url, token, usernames, passwords, process, "/lab/tree/workbooks")
    hub.settings_path = settings_path
    hub.state_dir = root / "atelier_state"
    return hub


def start_stock(root: Path, accounts: list[str], token: str) -> BenchHub:
    port = free_port()
    state = root / "stock"
    state.mkdir()
    password = secrets.token_hex(8)
    config = state / "jupyterhub_config.py"
    config.write_text(
        f"""c = get_config()  # noqa
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {port}
c.JupyterHub.hub_port = {free_port()}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
c.ConfigurableHTTPProxy.command = [{str(PROXY)!r}]
c.JupyterHub.db_url = "sqlite:///{state}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{state}/jupyterhub_cookie_secret"
c.JupyterHub.authenticator_class = "dummy"
c.DummyAuthenticator.password = {password!r}
c.Authenticator.allowed_users = {set(accounts)!r}
c.Spawner.cmd = [{str(ENV_BIN / "jupyterhub-singleuser")!r}]
c.Spawner.environment = {{"ATELIER_NO_IMPORT_FIX": "1"}}
c.Spawner.default_url = "/lab"
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"],
    "scopes": ["admin:users", "admin:servers", "list:users", "read:users"]}}]
"""
    )
    log = (root / "stock-hub.log").open("ab")
    process = subprocess.Popen(
        [str(ENV_BIN / "jupyterhub"), "-f", str(config)],
        cwd=state, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "ATELIER_NO_IMPORT_FIX": "1"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    wait_http(f"{url}/hub/api")
    return BenchHub(
        "stock", url, token, accounts, dict.fromkeys(accounts, password), process, "/lab"
    )


def stop_hub(hub: BenchHub) -> None:
    hub.process.send_signal(signal.SIGTERM)
    try:
        hub.process.wait(30)
    except subprocess.TimeoutExpired:
        hub.process.kill()
    pid_file = getattr(hub, "state_dir", None)
    if pid_file and (pid_file / "proxy.pid").exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int((pid_file / "proxy.pid").read_text()), signal.SIGTERM)


def cleanup(prefix: str, root: Path) -> None:
    """Remove the run's accounts (as the tests' hub teardown does) and its folder."""
    remove_accounts(prefix)
    shutil.rmtree(root, ignore_errors=True)


def atelier_with_trainees(
    root: Path, prefix: str, trainees: int, cohort: str, token: str
) -> tuple[BenchHub, list[str]]:
    """Atelier's hub in ``root`` with ``trainees`` trainees of ``cohort``, as an admin makes it.

    The sample workbooks are published, the hub started, then the roster imported (which restarts
    the hub by itself for the new cohort); the hub knows each trainee's password. Returns the hub
    and the usernames (``u00``, ``u01``, ...; accounts ``<prefix>u00``, ...).
    """
    import csv

    from atelier.hub_config.servers.delivery import publish_workbooks

    publish_workbooks(REPO / "tests" / "fixtures" / "hub_workbooks", root / "workbooks.git")
    usernames = [f"u{i:02d}" for i in range(trainees)]
    roster = root / "roster.csv"
    roster.write_text(
        "username,full name,email,institution,country,language,role,cohort\n"
        + "".join(f"{u},Trainee {u},{u}@example.org,U,KE,en,trainee,{cohort}\n" for u in usernames)
    )
    hub = start_atelier(root, prefix, usernames, {}, token)
    subprocess.run(
        [str(ENV_BIN / "atelier"), "roster", "import", "--settings", str(hub.settings_path),
         str(roster), "--passwords-file", str(root / "pw.csv")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    with (root / "pw.csv").open() as handle:
        hub.passwords = {row["username"]: row["password"] for row in csv.DictReader(handle)}
    return hub, usernames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trainees", type=int, default=30, help="trainees in the burst")
    parser.add_argument("--logins", type=int, default=5, help="sequential logins measured")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark creates Unix accounts")
    prefix = "b" + "".join(random.choices(string.ascii_lowercase, k=4)) + "-"
    root = Path(tempfile.mkdtemp(prefix="atelier-bench-"))
    root.chmod(0o755)
    try:
        token = secrets.token_hex(16)
        atelier, usernames = atelier_with_trainees(root, prefix, args.trainees, "bench", token)
        # The roster was imported after the start, as an admin would: `atelier roster import`
        # restarted the hub by itself to add the new cohort.
        wait_http(f"{atelier.url}/hub/api")
        accounts = {u: f"{prefix}{u}" for u in usernames}
        print(f"Measuring Atelier ({args.trainees} trainees)...", flush=True)
        ours = measure(atelier, accounts, args.logins)
        stop_hub(atelier)
        print("Measuring stock JupyterHub...", flush=True)
        stock_hub = start_stock(root, list(accounts.values()), token)
        stock = measure(stock_hub, {a: a for a in accounts.values()}, args.logins)
        stop_hub(stock_hub)
        report(ours, stock, args)
    finally:
        cleanup(prefix, root)


def start_atelier_again(hub: BenchHub, root: Path) -> BenchHub:
    log = (root / "atelier-hub.log").open("ab")
    hub.process = subprocess.Popen(
        [str(ENV_BIN / "atelier"), "start", "--settings", str(hub.settings_path)],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    wait_http(f"{hub.url}/hub/api")
    return hub


def report(ours: dict, stock: dict, args) -> None:
    rows = [
        ("login → JupyterLab ready, median (s)", ours["login_to_lab"], stock["login_to_lab"], 0.5),
        (f"{args.trainees} trainees press Start together (s)", ours["burst"], stock["burst"], 0.5),
        ("memory per active trainee, PSS (MiB)", ours["pss"], stock["pss"], None),
        ("memory per active trainee, RSS (MiB)", ours["rss"], stock["rss"], None),
    ]
    print()
    print(f"{'measure':44} {'atelier':>9} {'stock':>9} {'ratio':>7}  goal")
    for label, a, s, goal in rows:
        goal_text = f"≤ {goal}" if goal else ("≤ 200 MiB" if "PSS" in label else "")
        print(f"{label:44} {a:9.2f} {s:9.2f} {a / s:7.2f}  {goal_text}")
    print(
        f"failed spawns (started again): login phase atelier {ours['login_failures']}, stock "
        f"{stock['login_failures']}; burst atelier {ours['burst_failures']}, stock "
        f"{stock['burst_failures']}; never ready: atelier {ours['burst_failed']}, stock "
        f"{stock['burst_failed']}; 'try again' (429) answers: atelier {ours['burst_retries']}, "
        f"stock {stock['burst_retries']}"
    )
    print("login → Lab, each run (s): atelier "
          + ", ".join(f"{t:.2f}" for t in ours["login_to_lab_all"]) + "; stock "
          + ", ".join(f"{t:.2f}" for t in stock["login_to_lab_all"]))  # fmt: skip
    sys.stdout.flush()


if __name__ == "__main__":
    main()
