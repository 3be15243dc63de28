"""What tests and benchmarks share: paths, byte counts, processes, code runs, account removal.

Rule: one copy. Tests import this module (pytest puts ``tests/`` on ``sys.path``),
and each benchmark that needs it puts ``tests/`` on ``sys.path`` and imports it too, so a benchmark
measures with the same instruments and cleans up the same way as the tests. Nothing here needs
pytest.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO / "tests" / "fixtures"
WORKBOOKS = REPO / "workbooks"
#: The hub's environment: trainee accounts run its Python, so tests use the same one.
PREFIX = Path(os.environ.get("ATELIER_PREFIX", "/opt/atelier"))
#: The running interpreter's ``bin/``: the ``atelier`` and ``jupyter`` commands under test.
BIN = Path(sys.executable).parent


class Meter:
    """Counts the bytes and requests a page fetches over the network (cache hits cost nothing).

    Bytes are Chromium's own count (``Network.loadingFinished`` ``encodedDataLength``: compressed
    bodies plus headers). With ``conditions`` (``Network.emulateNetworkConditions`` parameters)
    the page's link is throttled to them as well. ``log`` lists every response since the last
    :meth:`reset` (URL, status, bytes, content encoding, cache headers, served from the cache):
    where the bytes of a page go.
    """

    def __init__(self, context, page, conditions: dict | None = None):
        self.cdp = context.new_cdp_session(page)
        self.cdp.send("Network.enable")
        if conditions:
            self.cdp.send("Network.emulateNetworkConditions", conditions)
        self.reset()
        self._responses: dict[str, dict] = {}
        self.cdp.on("Network.responseReceived", self._received)
        self.cdp.on("Network.loadingFinished", self._finished)

    def reset(self) -> None:
        """Start counting from zero."""
        self.bytes = 0
        self.requests = 0
        self.log: list[dict] = []

    def _received(self, event) -> None:
        response = event["response"]
        headers = {k.lower(): v for k, v in response.get("headers", {}).items()}
        self._responses[event["requestId"]] = {
            "url": response["url"],
            "status": response["status"],
            "encoding": headers.get("content-encoding", ""),
            "cache_control": headers.get("cache-control", ""),
            "etag": bool(headers.get("etag")),
            "from_cache": bool(response.get("fromDiskCache") or response.get("fromMemoryCache")),
        }

    def _finished(self, event) -> None:
        entry = self._responses.pop(event["requestId"], None)
        if entry is not None:
            self.log.append({**entry, "bytes": event["encodedDataLength"]})
        if event["encodedDataLength"] > 0:
            self.bytes += event["encodedDataLength"]
            self.requests += 1


def process_owners() -> dict[int, int]:
    """Map the pid of every process on the machine to its owner's uid."""
    owners = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                owners[int(entry.name)] = entry.stat().st_uid
    return owners


def kernel_processes(pid: int) -> list:
    """The ipykernel processes started by the process ``pid`` (a Voila or Jupyter server)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    kernels = []
    for child in children:
        try:
            if "ipykernel_launcher" in " ".join(child.cmdline()):
                kernels.append(child)
        except psutil.NoSuchProcess:
            pass
    return kernels


def sockets_of(pid: int) -> dict[str, list]:
    """The listening TCP sockets and the Unix socket paths of the process ``pid``.

    Kernels must listen on Unix sockets only (``atelier.processes.kernelsockets``): a TCP port is
    one any account on the machine can connect to, and one another process can take first.
    """
    import psutil

    process = psutil.Process(pid)
    tcp = [c.laddr for c in process.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN]
    unix = [c.laddr for c in process.net_connections(kind="unix") if c.laddr]
    return {"tcp": tcp, "unix": unix}


#: A kernel's channels, each a socket named in its connection file.
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")


def channel_sockets(connection: dict) -> set[str]:
    """The Unix socket paths of a kernel's five channels, from its connection file's contents."""
    return {f"{connection['ip']}-{connection[f'{name}_port']}" for name in CHANNELS}


def remove_accounts(prefix: str) -> None:
    """End every process of the accounts named ``<prefix>...``, then delete them and their homes."""
    import pwd

    ours = {e.pw_uid: e.pw_name for e in pwd.getpwall() if e.pw_name.startswith(prefix)}
    for _ in range(50):  # userdel refuses an account that still runs processes
        left = [pid for pid, owner in process_owners().items() if owner in ours]
        if not left:
            break
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    for name in ours.values():
        subprocess.run(["userdel", "--remove", name], capture_output=True, check=False)
        subprocess.run(["groupdel", name], capture_output=True, check=False)


def form_login(url: str, username: str, password: str, timeout: float = 60):
    """Log in to the hub at ``url`` through its form, as a browser does; return the session.

    The login's own answer is kept as ``session.login_response`` (a 302 when it succeeded).
    """
    import requests

    session = requests.Session()
    session.get(f"{url}/hub/login", timeout=timeout)
    session.login_response = session.post(
        f"{url}/hub/login",
        data={
            "username": username,
            "password": password,
            "_xsrf": session.cookies.get("_xsrf", path="/hub/"),
        },
        allow_redirects=False,
        timeout=timeout,
    )
    return session


def execute_in_kernel(
    hub, session, username: str, kernel_id: str, code: str, timeout: float = 60
) -> str:
    """Run ``code`` in a kernel of ``username``'s through the proxy (a websocket); its stdout.

    ``hub`` is anything with the hub's public ``url`` (the tests' hub, a benchmark's);
    ``session`` is logged in (its cookies open the websocket).
    """
    import websocket

    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    ws = websocket.create_connection(
        f"ws{hub.url[4:]}/user/{username}/api/kernels/{kernel_id}/channels",
        cookie=cookies,
        timeout=timeout,
    )
    try:
        msg_id = uuid.uuid4().hex
        ws.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "msg_type": "execute_request",
                        "username": "",
                        "session": uuid.uuid4().hex,
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {"code": code, "silent": False, "store_history": False},
                    "channel": "shell",
                }
            )
        )
        out = []
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(msg["content"]["ename"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)
    finally:
        ws.close()


def kernel_id_of(page: str) -> str:
    """The kernel id a rendered Voila page is attached to."""
    config = re.search(
        r'<script id="jupyter-config-data" type="application/json">(.*?)</script>', page, re.S
    )
    return json.loads(config.group(1))["kernelId"]


def start_server(
    command: list[str],
    url: str,
    log_path: Path,
    *,
    cwd: Path,
    env: dict | None = None,
    timeout: float = 180,
) -> subprocess.Popen:
    """Start ``command`` (its output to ``log_path``) and wait until ``url`` answers 200.

    Fails with the log's tail when the server exits first or does not answer within ``timeout``
    seconds. Stop it with :func:`stop_process`.
    """
    import requests

    with log_path.open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=cwd, env=env)
    name = Path(command[0]).name
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, f"{name} exited: {log_path.read_text()[-3000:]}"
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return proc
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            stop_process(proc)
            raise AssertionError(
                f"{name} did not answer within {timeout:.0f} s: {log_path.read_text()[-3000:]}"
            )
        time.sleep(0.2)


def stop_process(proc: subprocess.Popen, grace: float = 20) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the process is reaped either way."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def get_whole_page(session, url: str, seconds: float = 120):
    """GET ``url`` with ``session`` and read the whole page within ``seconds``, or fail.

    A Voila page streams while its kernel runs, with a heartbeat every few seconds, so a read
    timeout never fires on a render that stopped: this bounds the whole read instead. Returns
    the status code and the page's text.
    """
    deadline = time.monotonic() + seconds
    response = session.get(url, timeout=min(60, seconds), stream=True)
    body = bytearray()
    with response:
        for chunk in response.iter_content(65536):
            body += chunk
            if time.monotonic() > deadline:
                tail = body[-1500:].decode("utf-8", "replace")
                raise AssertionError(f"{url} did not end within {seconds} s; its end:\n{tail}")
    return response.status_code, bytes(body).decode(response.encoding or "utf-8", "replace")


def run_apart(coroutine):
    """Run ``coroutine`` in a loop of its own, in a thread of its own.

    The browser tier's Playwright keeps an event loop running in the main thread for the rest of the
    session, so neither ``asyncio.run`` nor pytest-asyncio can run one there after it.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def atelier_paths(config_file: Path) -> list[str]:
    """Every ``atelier.*`` dotted path a generated ``nbgrader_config.py`` names."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader(config_file.name, str(config_file.parent)).load_config()
    found = []
    for section in config.values():
        for value in section.values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item.startswith("atelier."):
                    found.append(item)
    return found
