"""A trainee's kernels, forked from their server's kernel zygote (issue 20's login burst).

Every kernel of a trainee's server (the workbook view's, Lab's) is a fork of a zygote that the
server forked before it started (``hub_config/servers/kernelzygote.py``). What a trainee relies on:
the kernel is theirs and inside the same limits as the server, as a kernel started by
``python -m ipykernel_launcher`` would be, and Jupyter's interrupt, restart and shutdown work on it.
A hub of this module's own runs with the limits of ``test_limits_servers.py``, so "the same
limits" is checked against values that are not the machine's defaults.
"""

from __future__ import annotations

import json
import pwd
import threading
import time
from pathlib import Path

import pytest
from harness import channel_sockets, execute_in_kernel, sockets_of
from hubs import running_hub
from test_hub import server_pid, xsrf_headers
from test_limits_servers import LIMITS, ROSTER

pytestmark = pytest.mark.server

#: What a kernel says about itself, one fact per line.
WHO = """
import os, sys
print("pid", os.getpid())
print("ppid", os.getppid())
print("uid", os.getuid(), os.geteuid())
print("cwd", os.getcwd())
print("path0", sys.path[0])
print("file", sys.argv[sys.argv.index("-f") + 1])
"""


@pytest.fixture(scope="module")
def hub():
    with running_hub({"hub": {"limits": LIMITS}}, roster=ROSTER) as instance:
        yield instance


@pytest.fixture(scope="module")
def tess(hub):
    session = hub.login("tess")
    hub.start_server(session, "tess")
    return session


class Kernel:
    """One kernel of a trainee's server, driven through the server's REST API as Lab does."""

    def __init__(self, hub, session, username: str):
        self.hub, self.session, self.username = hub, session, username
        self.base = f"{hub.url}/user/{username}/api/kernels"
        self.headers = xsrf_headers(session, f"/user/{username}/")
        answer = session.post(self.base, json={"name": "python3"}, headers=self.headers)
        assert answer.status_code == 201, answer.text
        self.id = answer.json()["id"]

    def run(self, code: str, timeout: float = 60) -> str:
        return execute_in_kernel(self.hub, self.session, self.username, self.id, code, timeout)

    def facts(self) -> dict[str, str]:
        return dict(line.split(" ", 1) for line in self.run(WHO).splitlines() if " " in line)

    def post(self, action: str) -> int:
        url = f"{self.base}/{self.id}/{action}"
        return self.session.post(url, headers=self.headers).status_code

    def shut_down(self) -> int:
        return self.session.delete(f"{self.base}/{self.id}", headers=self.headers).status_code


def _proc(pid: int | str, name: str) -> str:
    return Path(f"/proc/{pid}/{name}").read_text()


def _ppid(pid: int | str) -> int:
    return int(_proc(pid, "stat").rsplit(")", 1)[1].split()[1])


def _gone(pid: int | str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while Path(f"/proc/{pid}").exists():
        # A zombie has no cmdline left: it has ended.
        if not Path(f"/proc/{pid}/cmdline").read_bytes():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def test_a_kernel_is_forked_from_the_zygote_as_the_trainee_within_the_servers_limits(hub, tess):
    """Is the kernel the trainee's, in the server's control groups and limits, named as a kernel?"""
    kernel = Kernel(hub, tess, "tess")
    try:
        facts = kernel.facts()
        pid, server = facts["pid"], server_pid(hub, "tess")
        zygote = _ppid(pid)
        # The kernel's parent is the zygote, the zygote's the trainee's server.
        assert _ppid(zygote) == server
        assert b"kernelzygote" in Path(f"/proc/{zygote}/cmdline").read_bytes()
        assert b"ipykernel_launcher" in Path(f"/proc/{pid}/cmdline").read_bytes()
        uid = pwd.getpwnam(hub.account("tess")).pw_uid
        assert facts["uid"] == f"{uid} {uid}"
        for process in (zygote, pid):
            assert Path(f"/proc/{process}").stat().st_uid == uid
            # The memory, process, CPU caps of the server (control groups) and its rlimits.
            assert _proc(process, "cgroup") == _proc(server, "cgroup")
            assert _proc(process, "limits") == _proc(server, "limits")
        # As `python -m ipykernel_launcher` would: the notebook's folder first on sys.path.
        assert facts["path0"] == facts["cwd"]
        # The connection file (its key) is the trainee's alone, written by the server as before.
        connection = Path(facts["file"])
        assert connection.stat().st_uid == uid
        assert connection.stat().st_mode & 0o777 == 0o600
        # Its channels are Unix sockets in the trainee's own folder, not TCP ports another
        # process could take during a burst or another account could reach.
        info = json.loads(connection.read_text())
        assert info["transport"] == "ipc"
        assert channel_sockets(info) <= set(sockets_of(int(pid))["unix"])
        # Their folder is the trainee's alone: the runtime folder, or (this hub's homes have long
        # paths) a private folder in the server's own /tmp, seen through the kernel's root.
        folder = Path(f"/proc/{pid}/root{Path(info['ip']).parent}").stat()
        assert folder.st_uid == uid and folder.st_mode & 0o077 == 0
    finally:
        kernel.shut_down()


def test_interrupt_stops_the_running_cell_of_a_forked_kernel(hub, tess):
    """Does Jupyter's interrupt reach the forked kernel's running cell (KeyboardInterrupt)?"""
    kernel = Kernel(hub, tess, "tess")
    try:
        result: list[str] = []
        cell = threading.Thread(
            target=lambda: result.append(kernel.run("import time; time.sleep(120)", timeout=90))
        )
        started = time.monotonic()
        cell.start()
        time.sleep(3)
        assert kernel.post("interrupt") == 204
        cell.join(60)
        assert result == ["KeyboardInterrupt"]
        assert time.monotonic() - started < 60
        # The kernel lives on after the interrupt (ipykernel aborts what arrives just after an
        # error: stop_on_error).
        time.sleep(1)
        assert kernel.run("print(6 * 7)").strip() == "42"
    finally:
        kernel.shut_down()


def test_restart_gives_a_fresh_forked_kernel_and_ends_the_old_one(hub, tess):
    """After Restart, is the old process gone, a new one there, with nothing of the old state?"""
    kernel = Kernel(hub, tess, "tess")
    try:
        old = kernel.facts()["pid"]
        kernel.run("left_behind = 1")
        assert kernel.post("restart") == 200
        assert _gone(old)
        new = kernel.facts()
        assert new["pid"] != old
        assert b"kernelzygote" in Path(f"/proc/{_ppid(new['pid'])}/cmdline").read_bytes()
        assert kernel.run("print(left_behind)").strip() == "NameError"
    finally:
        kernel.shut_down()


def test_shutdown_ends_the_kernel_and_what_it_started(hub, tess):
    """After Shut Down, is the kernel gone, with a process it started (its process group)?"""
    kernel = Kernel(hub, tess, "tess")
    pid = kernel.facts()["pid"]
    child = kernel.run(
        "import subprocess; print(subprocess.Popen(['sleep', '300'], start_new_session=False).pid)"
    ).strip()
    assert Path(f"/proc/{child}").exists()
    assert kernel.shut_down() == 204
    assert _gone(pid)
    assert _gone(child)
