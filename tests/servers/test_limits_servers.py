"""Limits on every trainee's server, tried for real from a trainee's kernel (issue 15 item 5).

A trainee's session wrote 5 GB to home, 3 GB to ``/tmp`` and 1 GB to ``/dev/shm`` in 16 s and could
start 96,000 processes. A hub of this module's own runs with small limits so each attack is quick:
the kernel (a child of the trainee's server, so inside every limit of the server) writes, forks
and allocates until something stops it, and says how far it got. Each test fails on a hub
without limits, where the same code runs to its end.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import re
import time
import uuid
from pathlib import Path

import pytest
from harness import FIXTURES
from hubs import running_hub
from test_hub import run_in_kernel, server_pid, xsrf_headers

pytestmark = pytest.mark.server

LIMITS = {
    "enabled": True,
    "memory_mb": 512,
    "all_servers_memory_mb": 0,
    "processes": 96,
    "cpu": 1.0,
    "file_size_mb": 16,
    "tmp_mb": 8,
    "shm_mb": 8,
    "home_quota_mb": 20,
    "home_files": 600,
    "quota_every": 1,
    "cleanup_minutes": 1,
}
ROSTER = """username,full name,email,institution,country,language,role,cohort
tara,Tara Mensah,tara@example.org,U,KE,en,trainee,x
theo,Theo Dlamini,theo@example.org,U,KE,fr,trainee,x
tess,Tess Ouedraogo,tess@example.org,U,KE,en,trainee,x
tomi,Tomi Adeyemi,tomi@example.org,U,KE,fr,trainee,x
"""

#: Writes 1 MiB files into each folder until an error (at most 48), then removes them.
FILL = """
import errno, os
for place in {places!r}:
    written, error = 0, None
    try:
        for i in range(48):
            with open(os.path.join(place, f"fill-{{i}}"), "wb") as handle:
                handle.write(b"x" * (1 << 20))
            written += 1
    except OSError as e:
        error = errno.errorcode.get(e.errno)
    for i in range(written + 1):
        try:
            os.unlink(os.path.join(place, f"fill-{{i}}"))
        except OSError:
            pass
    print("FILL", place, written, error)
"""


@pytest.fixture(scope="module")
def hub():
    with running_hub({"hub": {"limits": LIMITS}}, roster=ROSTER) as instance:
        yield instance


@pytest.fixture(scope="module")
def tara(hub):
    session = hub.login("tara")
    hub.start_server(session, "tara")
    return session


def _fills(out: str) -> dict:
    found = {}
    for line in out.splitlines():
        if line.startswith("FILL "):
            _, place, written, error = line.split()
            found[place] = (int(written), error)
    return found


def test_tmp_var_tmp_run_lock_and_dev_shm_are_small_and_private(hub, tara):
    """Does writing without end to /tmp, /var/tmp, /run/lock or /dev/shm stop at 8 MiB?"""
    places = ["/tmp", "/var/tmp", "/run/lock", "/dev/shm"]
    out = run_in_kernel(hub, tara, "tara", FILL.format(places=places))
    fills = _fills(out)
    assert set(fills) == set(places), out
    for place, (written, error) in fills.items():
        assert written <= LIMITS["tmp_mb"] and error == "ENOSPC", (place, out)
    # Private: what Tara puts in /tmp is neither on the machine's /tmp nor anyone else's.
    marker = f"tara-{uuid.uuid4().hex}"
    run_in_kernel(hub, tara, "tara", f"open('/tmp/{marker}', 'w').write('mine')")
    assert not Path("/tmp", marker).exists()


def test_a_fork_bomb_stops_at_the_process_cap(hub, tara):
    """Does a kernel forking without end stop near 96 processes, its server still answering?"""
    code = """
import errno, os, signal, time
children, error = [], None
try:
    for i in range(1000):
        pid = os.fork()
        if pid == 0:
            time.sleep(30)
            os._exit(0)
        children.append(pid)
except OSError as e:
    error = errno.errorcode.get(e.errno)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
print("FORKED", len(children), error)
"""
    out = run_in_kernel(hub, tara, "tara", code)
    forked, error = out.split("FORKED", 1)[1].split()[:2]
    assert int(forked) < LIMITS["processes"] and error == "EAGAIN", out
    assert hub.api(tara, "GET", "/users/tara").json()["servers"][""]["ready"]


def test_a_file_larger_than_the_cap_cannot_be_written_anywhere(hub, tara):
    """Do a big file in home, a sparse file past the cap and one in /tmp all fail with EFBIG?"""
    code = """
import errno, os
def attempt(name, action):
    try:
        action()
        print("FILE", name, "WROTE")
    except OSError as e:
        print("FILE", name, errno.errorcode.get(e.errno))
    try:
        os.unlink(name)
    except OSError:
        pass
def big(path):
    with open(path, "wb") as handle:
        for _ in range(24):
            handle.write(b"x" * (1 << 20))
def sparse(path):
    with open(path, "wb") as handle:
        handle.seek(64 << 20)
        handle.write(b"x")
def truncated(path):
    with open(path, "wb") as handle:
        handle.truncate(64 << 20)
attempt("big.bin", lambda: big("big.bin"))
attempt("sparse.bin", lambda: sparse("sparse.bin"))
attempt("truncated.bin", lambda: truncated("truncated.bin"))
attempt("/tmp/big.bin", lambda: big("/tmp/big.bin"))
"""
    out = run_in_kernel(hub, tara, "tara", code)
    results = dict(line.split()[1:] for line in out.splitlines() if line.startswith("FILE "))
    assert results == {
        "big.bin": "EFBIG",
        "sparse.bin": "EFBIG",
        "truncated.bin": "EFBIG",
        # /tmp is smaller than the file cap: the tmpfs stops it first.
        "/tmp/big.bin": "ENOSPC",
    }, out


def test_a_trainee_cannot_lift_the_limits(hub, tara):
    """Can the trainee raise the file cap, leave the control groups, or write their limits?"""
    account = hub.account("tara")
    code = f"""
import ctypes, os, resource
tries = {{}}
def unshare():
    if ctypes.CDLL(None, use_errno=True).unshare(0x20000) != 0:
        raise OSError(ctypes.get_errno(), "unshare")
def attempt(name, action):
    try:
        action()
        tries[name] = "DONE"
    except (OSError, ValueError) as e:
        tries[name] = type(e).__name__
attempt("rlimit", lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (-1, -1)))
attempt("leave", lambda: open("/sys/fs/cgroup/pids/cgroup.procs", "w").write(str(os.getpid())))
attempt("raise", lambda: open("/sys/fs/cgroup/pids/atelier/{account}/pids.max", "w").write("max"))
attempt("unshare", unshare)
print("TRIES", tries)
print("CGROUP", open("/proc/self/cgroup").read().replace(chr(10), " "))
"""
    out = run_in_kernel(hub, tara, "tara", code)
    tries = out.split("TRIES", 1)[1].split("\n", 1)[0]
    assert "DONE" not in tries, out
    for controller in ("memory", "pids", "cpu"):
        assert f":{controller}:/atelier/{account}" in out.replace(",cpuacct", ""), out


def _kernel_survives(hub, session, username: str, code: str, timeout: float = 60) -> str:
    """Run ``code``; what happened: its output, or "dead" if the kernel died while running it."""
    import websocket

    base = f"{hub.url}/user/{username}"
    headers = xsrf_headers(session, f"/user/{username}/")
    kernel = session.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers)
    kernel_id = kernel.json()["id"]
    cookies = "; ".join(f"{c.name}={c.value}" for c in session.cookies)
    ws = websocket.create_connection(
        f"ws://127.0.0.1:{hub.port}/user/{username}/api/kernels/{kernel_id}/channels",
        cookie=cookies,
        timeout=timeout,
    )
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "", "version": "5.3"}
    content = {"code": code, "silent": False, "store_history": False}
    ws.send(
        json.dumps(
            {
                "header": {**header, "session": uuid.uuid4().hex},
                "parent_header": {},
                "metadata": {},
                "content": content,
                "channel": "shell",
            }
        )
    )
    out = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            msg = json.loads(ws.recv())
            state = msg.get("content", {}).get("execution_state")
            if msg["msg_type"] == "status" and state in ("restarting", "dead"):
                return "dead"
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "status" and state == "idle":
                return "".join(out)
        return "timeout"
    finally:
        ws.close()
        session.delete(f"{base}/api/kernels/{kernel_id}", headers=headers)


def test_a_memory_hog_is_killed_and_its_server_lives_on(hub, tara):
    """Is a kernel filling 1.5 GiB killed at the 512 MiB cap, alone, with the server still up?"""
    pid = server_pid(hub, "tara")
    code = "blob = bytearray(1536 << 20)\nprint('ALLOCATED', len(blob))"
    assert _kernel_survives(hub, tara, "tara", code) == "dead"
    assert server_pid(hub, "tara") == pid
    oom = Path(f"/sys/fs/cgroup/memory/atelier/{hub.account('tara')}/memory.oom_control")
    assert int(oom.read_text().split("oom_kill ")[1].split()[0]) >= 1
    # The server still serves a new kernel.
    assert run_in_kernel(hub, tara, "tara", "print(6 * 7)").strip() == "42"


def test_a_stopped_server_leaves_no_process_behind(hub):
    """After Stop, is every process of the server's control group gone (kernels, orphans)?"""
    session = hub.login("theo")
    hub.start_server(session, "theo")
    code = "import subprocess\nsubprocess.Popen(['sleep', '600'], start_new_session=True)"
    run_in_kernel(hub, session, "theo", code)
    uid = pwd.getpwnam(hub.account("theo")).pw_uid
    assert hub.server_processes("theo")
    hub.api(session, "DELETE", "/users/theo/server")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and hub.server_processes("theo"):
        time.sleep(0.2)
    left = [p for p in hub.server_processes("theo") if os.stat(f"/proc/{p}").st_uid == uid]
    assert not left


def _attack(hub, session, username: str, code: str) -> None:
    """Run ``code`` in a kernel of ``username``; the watchdog may stop the server meanwhile."""
    import websocket

    with contextlib.suppress(websocket.WebSocketException, ConnectionError, OSError):
        run_in_kernel(hub, session, username, code)


def _running(hub, session, username: str) -> bool:
    answer = hub.api(session, "GET", f"/users/{username}")
    return bool(answer.json().get("servers", {}).get(""))


def _wait_stopped(hub, session, username: str, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(hub, session, username):
            return True
        time.sleep(0.25)
    return False


#: A folder name a trainee chose, shown back on the hub's page: it must stay text.
FOLDER = "<img src=x onerror=alert(1)>"


def test_a_home_over_quota_stops_the_server_tells_why_and_deletes_nothing(hub):
    """Is a server whose home passes 20 MiB stopped, the trainee told why, every file kept?

    Then the cleanup the message promises: started again, the server runs while usage does not
    grow, is stopped again if it grows, and stays up once the home is back under quota.
    """
    session = hub.login("tess")
    hub.start_server(session, "tess")
    write = f"""
import os
os.makedirs({FOLDER!r}, exist_ok=True)
for i in range({{count}}):
    with open(os.path.join({FOLDER!r}, f"part-{{{{i}}}}-{{tag}}"), "wb") as handle:
        handle.write(os.urandom(8 << 20))
"""
    _attack(hub, session, "tess", write.format(count=4, tag="a"))
    assert _wait_stopped(hub, session, "tess"), "the server over quota kept running"
    folder = Path(pwd.getpwnam(hub.account("tess")).pw_dir) / FOLDER
    kept = sorted(folder.iterdir())
    assert sum(p.stat().st_size for p in kept) > LIMITS["home_quota_mb"] << 20
    page = session.get(f"{hub.url}/hub/home", timeout=30).text
    notice = page[page.find("announcement") :][:2000]
    assert "Your server was stopped" in notice and "Nothing was deleted" in notice, notice
    # The trainee's folder name is shown as text, with its size.
    assert re.search(r"&lt;img src=x onerror=alert\(1\)&gt; \(\d+\.\d MiB\)", notice), notice
    assert FOLDER not in page
    # Started again to clean up: it runs, but writing more stops it again.
    hub.start_server(session, "tess")
    time.sleep(3)
    assert _running(hub, session, "tess"), "the cleanup start was stopped at once"
    _attack(hub, session, "tess", write.format(count=1, tag="b"))
    assert _wait_stopped(hub, session, "tess"), "growing during cleanup was not stopped"
    assert set(kept) <= set(folder.iterdir()), "a file was deleted"
    # Started again, files removed: back under quota, it keeps running and the message goes.
    hub.start_server(session, "tess")
    code = f"import os, shutil\nshutil.rmtree({FOLDER!r})"
    run_in_kernel(hub, session, "tess", code)
    time.sleep(3)
    assert _running(hub, session, "tess")
    assert "Your server was stopped" not in session.get(f"{hub.url}/hub/home", timeout=30).text


def test_links_and_sparse_files_are_not_counted_twice_but_empty_files_are(hub):
    """Are hard links counted once, sparse files by blocks, links not followed; empty files?

    12 MiB of blocks seen 41 times, a 15 MiB sparse file and links to / stay under 20 MiB; then
    700 empty files (no blocks, only inodes) pass the 600 entries and stop the server, with the
    message in Tomi's language, French.
    """
    session = hub.login("tomi")
    hub.start_server(session, "tomi")
    code = """
import os
with open("shared.bin", "wb") as handle:
    handle.write(os.urandom(12 << 20))
for i in range(40):
    os.link("shared.bin", f"link-{i}.bin")
with open("sparse.bin", "wb") as handle:
    handle.seek(15 << 20)
    handle.write(b"x")
os.symlink("/", "root-link")
os.symlink("/usr", "usr-link")
os.symlink("loop", "loop")
"""
    run_in_kernel(hub, session, "tomi", code)
    time.sleep(4)
    assert _running(hub, session, "tomi"), "12 MiB of real blocks were counted as more than 20"
    _attack(hub, session, "tomi", "for i in range(700):\n    open(f'e{i}', 'w').close()")
    assert _wait_stopped(hub, session, "tomi"), "700 empty files did not count"
    page = session.get(f"{hub.url}/hub/home", timeout=30).content.decode("utf-8")
    notice = page[page.find("announcement") :][:2000]
    assert "Votre serveur a été arrêté" in notice and "Rien n'a été supprimé" in notice, notice


def test_submissions_count_towards_the_quota(hub):
    """Is a trainee filling their own exchange folder (not their home) stopped all the same?"""
    session = hub.login("theo")
    hub.start_server(session, "theo")
    account = hub.account("theo")
    # A release gives every trainee of the cohort a submission folder of their own.
    hub.atelier("release", str(FIXTURES / "grading" / "01-quiz"), "--cohort=x")
    inbound = Path(hub.settings["grading"]["exchange_root"], "x", "inbound", account)
    assert inbound.is_dir(), "Theo has no submission folder to write to"
    code = f"""
import os
for i in range(2):
    with open(os.path.join({str(inbound)!r}, f"dump-{{i}}"), "wb") as handle:
        handle.write(os.urandom(12 << 20))
"""
    _attack(hub, session, "theo", code)
    assert _wait_stopped(hub, session, "theo"), "24 MiB in the exchange went uncounted"
    assert len(list(inbound.glob("dump-*"))) == 2, "a file was deleted"
    page = session.get(f"{hub.url}/hub/home", timeout=30).content.decode("utf-8")
    assert "submissions (x)" in page[page.find("announcement") :][:2000]


def test_servers_started_as_new_processes_get_the_same_limits(tmp_path_factory):
    """When the template is unavailable and a server starts as a new process, is it limited too?"""
    config_d = tmp_path_factory.mktemp("config_d")
    config_d.chmod(0o755)
    (config_d / "10-no-template.py").write_text("c.AtelierSpawner.use_server_template = False\n")
    settings = {"hub": {"limits": LIMITS, "config_d": str(config_d)}}
    with running_hub(settings, roster=ROSTER) as other:
        session = other.login("tara")
        other.start_server(session, "tara")
        code = FILL.format(places=["/tmp", "/dev/shm"]) + (
            "import resource\nprint('FSIZE', resource.getrlimit(resource.RLIMIT_FSIZE)[1])\n"
            "print('CGROUP', open('/proc/self/cgroup').read().replace(chr(10), ' '))"
        )
        out = run_in_kernel(other, session, "tara", code)
        assert "Forking" not in other.log_path.read_text(), "the server came from the template"
    assert _fills(out) == {"/tmp": (8, "ENOSPC"), "/dev/shm": (8, "ENOSPC")}, out
    assert f"FSIZE {LIMITS['file_size_mb'] << 20}" in out
    assert f"pids:/atelier/{other.account('tara')}" in out
