"""Trainees' servers forked from the hub's server template: who they are and what they can see.

Uses the session hub (``tests/conftest.py``) with people of its own (``tara``, ``theo``, ``tess``
in cohort ``x``). The template runs as root and every server is a copy of its memory, so these tests
check what a trainee could exploit: the server's identity, secrets of another trainee left in the
template, connections from another account. The last test kills the template (the hub starts
another); it runs last.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from harness import run_apart
from test_hub import run_in_kernel, server_pid
from test_hub_running import NodeWatch

pytestmark = pytest.mark.server

ROSTER = """username,full name,email,institution,country,language,role,cohort
tara,Tara Mensah,tara@example.org,U,KE,en,trainee,x
theo,Theo Dlamini,theo@example.org,U,KE,fr,trainee,x
tess,Tess Ouedraogo,tess@example.org,U,KE,en,trainee,x
tomi,Tomi Adeyemi,tomi@example.org,U,KE,en,trainee,x
"""


@pytest.fixture(scope="module")
def people(hub):
    """Tara and Theo logged in with their servers running (Tara's first)."""
    hub.import_roster(ROSTER)
    sessions = {}
    for name in ("tara", "theo"):
        sessions[name] = hub.login(name)
        hub.start_server(sessions[name], name)
    return sessions


def template_pid(hub) -> int:
    """The pid of ``hub``'s server template: a root child of that hub run with ``--template``.

    Only this hub's: another hub may run on the machine (the README's ``atelier start``), with a
    template of its own.
    """
    hub_pid = int((hub.state_dir / "jupyterhub.pid").read_text().split()[0])
    deadline = time.monotonic() + 30
    while True:
        for child in _children(hub_pid):
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                ours = b"atelier.hub_config.servers.singleuser" in argv and b"--template" in argv
                if ours and Path(f"/proc/{child}").stat().st_uid == 0:
                    return child
            except OSError:
                continue
        # A template that died is replaced by the hub at the next server start, not at once.
        assert time.monotonic() < deadline, f"hub {hub_pid} runs no server template"
        time.sleep(0.2)


def status_field(pid: int, field: str) -> list[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return [int(value) for value in line.split()[1:]]
    raise KeyError(field)


def memory_contains(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the readable memory of process ``pid`` (read as root)."""
    found = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                chunk = mem.read(end - start)
            except OSError:
                continue
            if needle in chunk:
                found = True
                break
    return found


def test_a_forked_server_is_the_trainee_and_nothing_more(hub, people):
    """Is Tara's server forked from the template, and does it run with exactly her identity?"""
    pid = server_pid(hub, "tara")
    assert pid, "Tara has no server process"
    template = template_pid(hub)
    assert status_field(pid, "PPid") == [template], "the server was not forked from the template"
    account = pwd.getpwnam(hub.account("tara"))
    assert status_field(pid, "Uid") == [account.pw_uid] * 4
    assert status_field(pid, "Gid") == [account.pw_gid] * 4
    assert sorted(status_field(pid, "Groups")) == sorted(
        os.getgrouplist(account.pw_name, account.pw_gid)
    )
    assert status_field(pid, "CapEff") == [0]
    assert os.readlink(f"/proc/{pid}/cwd") == account.pw_dir
    # Its own session: the hub's signals (Ctrl+C on `atelier start`) do not reach it.
    assert os.getsid(pid) == pid
    out = run_in_kernel(
        hub,
        people["tara"],
        "tara",
        "import os; print(os.environ['JUPYTERHUB_USER'], os.environ['HOME'], os.getuid())",
    )
    assert out.split() == ["tara", account.pw_dir, str(account.pw_uid)]


def test_a_forked_server_reads_its_trainees_lab_settings(hub, people):
    """Does Theo's server (French roster) serve his own Lab settings: French, from his home?

    JupyterLab computes its user-settings folder when imported, in the template; a server that
    kept the template's folder would ignore the language delivery writes into Theo's home.
    """
    theo = people["theo"]
    answer = theo.get(
        f"{hub.url}/user/theo/lab/api/settings/@jupyterlab/translation-extension:plugin",
        timeout=60,
    )
    assert answer.status_code == 200, answer.text[:300]
    assert answer.json()["settings"].get("locale") == "fr_FR", answer.json()
    home = pwd.getpwnam(hub.account("theo")).pw_dir
    written = Path(home) / ".jupyter/lab/user-settings/@jupyterlab/translation-extension"
    assert (written / "plugin.jupyterlab-settings").is_file()


def test_no_trainee_can_find_another_trainees_token_in_memory(hub, people):
    """Is Tara's API token absent from the template and from Theo's server (forked after hers)?"""
    token = run_in_kernel(
        hub, people["tara"], "tara", "import os; print(os.environ['JUPYTERHUB_API_TOKEN'])"
    ).strip()
    assert re.fullmatch(r"[0-9a-f]{32,}", token), token
    needle = token.encode()
    # The control: the scan finds the token where it does live.
    assert memory_contains(server_pid(hub, "tara"), needle)
    assert not memory_contains(template_pid(hub), needle), "the template holds Tara's token"
    assert not memory_contains(server_pid(hub, "theo"), needle), "Theo's server has Tara's token"


def test_the_template_serves_only_the_hubs_own_account(hub, people):
    """Does a connection from another account get nothing forked, even asking for root?"""
    template = template_pid(hub)
    address = listening_address(template)
    children_before = set(_children(template))
    tara = pwd.getpwnam(hub.account("tara"))
    request = b'{"uid": 0, "gid": 0, "groups": [], "home": "/root", "env": {}, "argv": []}\n'
    code = (
        "import socket\n"
        "s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\n"
        f"s.connect({chr(0) + address[1:]!r})\n"
        "s.settimeout(10)\n"
        "try:\n"
        f"    s.sendall({request!r})\n"
        "    print(repr(s.recv(100)))\n"
        "except OSError as error:\n"
        "    print(type(error).__name__)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        user=tara.pw_uid,
        group=tara.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    # Closed without an answer (how fast decides which of these the client sees first).
    assert result.stdout.strip() in ("b''", "BrokenPipeError", "ConnectionResetError"), (
        result.stdout
    )
    time.sleep(0.5)
    assert set(_children(template)) == children_before, "the template forked for a trainee"


def listening_address(pid: int) -> str:
    """The abstract socket address (``@name``) process ``pid`` listens on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) > 7 and fields[6] in inodes and fields[7].startswith("@"):
            return fields[7]
    raise AssertionError("the template listens on no abstract socket")


def _children(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if status_field(int(entry.name), "PPid") == [pid]:
                    children.append(int(entry.name))
            except (OSError, KeyError):
                continue
    return children


def test_a_server_never_becomes_root():
    """Does the template refuse a request for uid 0, even from the hub's own account?"""
    from atelier.hub_config.servers.servertemplate import ServerStartError, ServerTemplate

    template = ServerTemplate(logging.getLogger("test"))
    try:
        request = {"uid": 0, "gid": 0, "groups": [], "home": "/", "env": {}, "argv": []}
        with pytest.raises(ServerStartError, match="uid 0"):
            run_apart(template.fork(request))
    finally:
        template.stop()


def test_a_server_that_exits_while_starting_fails_at_once_and_can_start_again(hub, people):
    """Does a server killed by the trainee's own config fail within seconds, not the 120 s wait?"""
    account = pwd.getpwnam(hub.account("tomi"))
    config_dir = Path(account.pw_dir) / ".jupyter"
    config = config_dir / "jupyter_server_config.py"
    # A trainee's own config that ends the server as it loads (a broken customisation).
    subprocess.run(
        ["su", "-s", "/bin/sh", account.pw_name, "-c",
         f"mkdir -p {config_dir} && echo 'import os; os._exit(3)' > {config}"],
        check=True,
    )  # fmt: skip
    session = hub.login("tomi")
    pressed = time.monotonic()
    session.get(f"{hub.url}/hub/spawn", timeout=60)
    events = session.get(f"{hub.url}/hub/api/users/tomi/server/progress", timeout=110).text
    assert time.monotonic() - pressed < 60, "the failure waited for the hub's HTTP timeout"
    assert "exited while starting" in events, events[-1000:]
    config.unlink()
    lab = hub.start_server(session, "tomi")
    assert "JupyterLab" in lab.text


def test_a_new_template_replaces_one_that_died(hub, people):
    """With the template killed, does the next server start from a new one, as its trainee?"""
    old = template_pid(hub)
    os.kill(old, signal.SIGKILL)
    tara_server = server_pid(hub, "tara")
    session = hub.login("tess")
    # The new template imports JupyterLab, as root: no yarn there either (see test_hub_running).
    with NodeWatch(0) as root_node:
        lab = hub.start_server(session, "tess")
    assert "JupyterLab" in lab.text
    assert not [command for command in root_node.seen if "yarn" in command], root_node.seen
    pid = server_pid(hub, "tess")
    assert pid and status_field(pid, "Uid")[0] == pwd.getpwnam(hub.account("tess")).pw_uid
    assert status_field(pid, "PPid") == [template_pid(hub)] != [old]
    # Servers forked before the template died keep running.
    assert server_pid(hub, "tara") == tara_server
