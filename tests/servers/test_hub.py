"""The multi-user hub end to end: roster import, login, isolation, cohorts, restarts, delivery.

One real hub (``atelier start``) serves the whole module (the session ``hub`` fixture of
``tests/conftest.py``), with real Unix accounts under a unique prefix. Tests that change shared
state (a restart, a workbook update) run last, in file order.
"""

from __future__ import annotations

import html
import json
import pwd
import re
import sqlite3
import stat
import subprocess
import time
from pathlib import Path

import pytest
from harness import execute_in_kernel, sockets_of

from atelier.processes.ports import ephemeral_range

pytestmark = pytest.mark.server

BAD_ROSTER = """username,full name,email,institution,country,language,role,cohort
dave,Dave,dave@example.org,U,KE,en,trainee,x
Dave,Dave Twin,twin@example.org,U,KE,en,trainee,x
erin,Erin,not-an-email,U,KE,en,trainee,x
femi,Femi,femi@example.org,U,KE,sw,trainee,x
gus,<img src=x onerror=alert(1)>,gus@example.org,U,KE,en,trainee,x
"""


def xsrf_headers(session, path: str) -> dict:
    """The XSRF header a browser page at ``path`` would send."""
    return {"X-XSRFToken": session.cookies.get("_xsrf", path=path) or ""}


def run_in_kernel(hub, session, username: str, code: str) -> str:
    """Start a kernel in ``username``'s server through its REST API, run ``code``, return stdout."""
    base = f"{hub.url}/user/{username}"
    headers = xsrf_headers(session, f"/user/{username}/")
    kernel = session.post(f"{base}/api/kernels", json={"name": "python3"}, headers=headers)
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    try:
        return execute_in_kernel(hub, session, username, kernel_id, code)
    finally:
        session.delete(f"{base}/api/kernels/{kernel_id}", headers=headers)


def server_pid(hub, username: str) -> int | None:
    """The pid of ``username``'s single-user server process, if one runs."""
    for pid in hub.server_processes(username):
        try:
            if (
                b"atelier.hub_config.servers.singleuser"
                in Path(f"/proc/{pid}/cmdline").read_bytes()
            ):
                return pid
        except OSError:
            continue
    return None


@pytest.fixture(scope="module")
def alice(hub):
    """Alice, logged in as a browser would, with her server running."""
    session = hub.login("alice")
    hub.start_server(session, "alice")
    return session


@pytest.fixture(scope="module")
def bob(hub):
    """Bob, logged in, with his server running."""
    session = hub.login("bob")
    hub.start_server(session, "bob")
    return session


def test_roster_import_gives_each_person_a_private_account(hub):
    """Did the import create one prefixed account per person, with a home only they can enter?"""
    for username in ("alice", "bob", "chloe", "fiona"):
        entry = pwd.getpwnam(hub.account(username))
        home = Path(entry.pw_dir)
        assert home.stat().st_uid == entry.pw_uid
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
    listing = hub.atelier("roster", "list").stdout
    assert "chloe" in listing and "facilitator" in listing
    state = hub.state_dir / "passwords.json"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert hub.passwords["alice"] not in state.read_text()


def test_a_bad_roster_is_rejected_with_line_numbers_and_creates_nothing(hub):
    """Is a bad roster refused as a whole, each problem named by line, and no account made?"""
    result = hub.import_roster(BAD_ROSTER, check=False)
    assert result.returncode == 2
    for line in ("line 3:", "line 4:", "line 5:", "line 6:"):
        assert line in result.stderr
    assert "nothing was changed" in result.stderr
    assert "<img" not in result.stderr.replace("'<img", "")  # shown quoted, never raw markup
    for username in ("dave", "erin", "femi", "gus"):
        with pytest.raises(KeyError):
            pwd.getpwnam(hub.account(username))


def test_a_trainee_logs_in_and_gets_jupyterlab_with_workbooks_as_themself(hub, alice):
    """Does Alice's login open JupyterLab on her workbooks, served by a process of her account?"""
    assert alice.login_response.status_code == 302
    lab = hub.start_server(alice, "alice")
    assert "JupyterLab" in lab.text
    listing = alice.get(f"{hub.url}/user/alice/api/contents/workbooks/sample").json()
    names = sorted(item["name"] for item in listing["content"])
    assert names == ["data.csv", "sample.en.ipynb"]
    pid = server_pid(hub, "alice")
    assert pid, "no server process runs as alice's account"
    # Its port is below the ephemeral range, where no kernel, service or outgoing connection of a
    # burst of starts can take it before the server binds it (atelier.processes.ports).
    listening = sockets_of(pid)["tcp"]
    assert listening and all(port < ephemeral_range()[0] for _ip, port in listening)
    hub_log = hub.log_path.read_text()
    assert "workbooks not updated" not in hub_log
    # Her use reaches the idle culler four times per timeout (900 s: every 225 s), not at
    # JupyterHub's fixed 300 s, which let short timeouts stop trainees at work.
    assert "Updating Hub with activity every 225 seconds" in hub_log


def test_the_hub_and_its_proxy_go_first_and_nothing_they_start_does(hub, alice):
    """On a full machine the control plane answers first; nothing it starts inherits that."""
    import psutil

    supervisor = psutil.Process(hub.process.pid)
    jupyterhub = next(p for p in supervisor.children() if "jupyterhub" in " ".join(p.cmdline()))
    proxy = psutil.Process(int((hub.state_dir / "proxy.pid").read_text().split()[0]))
    # hub.nice, by default -10 (atelier.processes.priority).
    assert jupyterhub.nice() == -10
    assert proxy.nice() == -10
    assert supervisor.nice() == 0
    # Its services and the server template start again at 0 (the public apps then lower theirs).
    started = jupyterhub.children(recursive=True)
    assert started
    for process in started:
        assert process.nice() >= 0, process.cmdline()
    assert psutil.Process(server_pid(hub, "alice")).nice() == 0


def test_the_hubs_database_is_written_through_a_wal(hub, alice):
    """Does the running hub commit to its SQLite through a WAL, the mode kept in the file?

    No fsync per commit on the hub's event loop (database.connect_wal); every later reader opens
    the file as a WAL database.
    """
    import psutil

    db_file = hub.state_dir / "jupyterhub.sqlite"
    if (hub.settings.get("database") or {}).get("url"):
        # On PostgreSQL (--database=postgres) there is no SQLite file to journal.
        assert not db_file.exists()
        return
    reader = sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)
    try:
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # Alice's login and spawn were committed and are readable beside the running hub.
        assert ("alice",) in reader.execute("SELECT name FROM users").fetchall()
    finally:
        reader.close()
    supervisor = psutil.Process(hub.process.pid)
    jupyterhub = next(p for p in supervisor.children() if "jupyterhub" in " ".join(p.cmdline()))
    assert str(db_file) + "-wal" in {f.path for f in jupyterhub.open_files()}


def test_the_proxy_keeps_an_idle_browser_connection_open_between_polls(hub):
    """A page that asks again after a few seconds finds its connection still open.

    configurable-http-proxy's default closed it after 5 s, so a request sent as it closed had no
    answer at all (the webinar's waiting pages), and a slow link paid a new connection each time.
    """
    import socket

    request = f"GET /hub/login HTTP/1.1\r\nHost: 127.0.0.1:{hub.port}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", hub.port), timeout=30) as sock:
        for _ in range(2):
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(65536)
                assert chunk, "the proxy closed the connection"
                head += chunk
            assert head.startswith(b"HTTP/1.1 200"), head[:200]
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            body = head.split(b"\r\n\r\n", 1)[1]
            while len(body) < length:
                body += sock.recv(65536)
            # Longer than the proxy's former 5 s, as a waiting page between two polls.
            time.sleep(7)


def test_a_wrong_password_or_hostile_username_does_not_log_in(hub):
    """Are a wrong password, a look-alike and a huge username all refused, with the hub still up?"""
    assert hub.login("alice", "wrong").login_response.status_code == 403
    assert hub.login("аlice", hub.passwords["alice"]).login_response.status_code == 403
    huge = hub.login("x" * 100_000, "x").login_response.status_code
    assert huge in (400, 403, 413, 431)
    assert hub.login("alice").login_response.status_code == 302


def test_a_trainee_cannot_reach_another_trainees_server_api_or_files(hub, alice, bob):
    """Does Alice get 403/404 on Bob's server and API, and can her kernel not read Bob's home?"""
    for path in (
        "/user/bob/api/contents",
        "/user/bob/files/workbooks/sample/sample.en.ipynb",
        "/user/bob/lab",
    ):
        response = alice.get(f"{hub.url}{path}", allow_redirects=True)
        assert response.status_code in (403, 404), (path, response.status_code, response.url)
    for method, path in (("GET", "/users/bob"), ("GET", "/users"), ("POST", "/users/bob/server"),
                         ("POST", "/users/alice/tokens")):  # fmt: skip
        body = {"scopes": ["admin:users"]} if path.endswith("tokens") else None
        status = hub.api(alice, method, path, json=body).status_code
        # a token with scopes Alice does not hold is refused as a bad request (400)
        assert status in (400, 403, 404) if path.endswith("tokens") else status in (403, 404)
    bob_home = pwd.getpwnam(hub.account("bob")).pw_dir
    out = run_in_kernel(
        hub,
        alice,
        "alice",
        f"import os\ntry:\n    print(os.listdir({bob_home!r}))\nexcept PermissionError:\n"
        "    print('denied')\nprint(os.getuid())",
    )
    assert out.split() == ["denied", str(pwd.getpwnam(hub.account("alice")).pw_uid)]


def test_a_facilitator_sees_their_cohort_and_not_another(hub, bob):
    """Does cohort x's facilitator list x's trainees, manage their servers, and not see y's?"""
    fiona = hub.login("fiona")
    assert fiona.login_response.status_code == 302
    users = hub.api(fiona, "GET", "/users")
    assert users.status_code == 200
    names = {user["name"] for user in users.json()}
    assert {"alice", "bob"} <= names and "chloe" not in names
    assert hub.api(fiona, "GET", "/users/chloe").status_code == 404
    assert hub.api(fiona, "POST", "/users/chloe/server").status_code == 404
    groups = {group["name"] for group in hub.api(fiona, "GET", "/groups").json()}
    assert "cohort-x" in groups and "cohort-y" not in groups
    bob_model = hub.api(fiona, "GET", "/users/bob").json()
    assert bob_model["servers"][""]["ready"] is True
    # a browser opens the page first (OAuth with the hub), then the page calls the server's API
    page = fiona.get(f"{hub.url}/user/bob/lab", allow_redirects=True)
    if (
        "/hub/api/oauth2/authorize" in page.url
    ):  # the hub asks Fiona to confirm; she clicks Authorize
        fields = re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', page.text)
        form: dict[str, list[str]] = {}
        for name, value in fields:
            form.setdefault(name, []).append(html.unescape(value))
        page = fiona.post(page.url, data=form, allow_redirects=True)
    assert page.status_code == 200 and page.url.startswith(f"{hub.url}/user/bob/lab")
    assert fiona.get(f"{hub.url}/user/bob/api/status").status_code == 200


def test_only_root_starts_the_multi_user_hub(hub):
    """Does `atelier start` as an ordinary account refuse with a reason, and the demo flag warn?"""
    account = hub.account("alice")
    command = f"{hub.atelier.__self__ and ''}/opt/atelier/env/bin/atelier start --settings {hub.settings_path}"  # noqa: E501
    refused = subprocess.run(
        ["su", "-s", "/bin/sh", account, "-c", command],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "must run as root" in refused.stderr and "--insecure-demo" in refused.stderr
    demo = subprocess.run(
        ["su", "-s", "/bin/sh", account, "-c", command + " --insecure-demo --port 0"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "WARNING: insecure single-account demo" in demo.stdout + demo.stderr


def test_the_hub_restarts_and_sessions_and_servers_survive(hub, alice):
    """After a hub restart, is Alice's server the same process and her session still logged in?"""
    before = server_pid(hub, "alice")
    hub.restart()
    assert server_pid(hub, "alice") == before
    assert hub.api(alice, "GET", "/user").json()["name"] == "alice"
    contents = alice.get(f"{hub.url}/user/alice/api/contents/workbooks/sample")
    assert contents.status_code == 200


def test_a_workbook_update_keeps_the_trainees_edits_and_brings_new_material(hub, alice):
    """After Alice edits a workbook and it is updated, are both her edit and the update there?"""
    url = f"{hub.url}/user/alice/api/contents/workbooks/sample/sample.en.ipynb"
    headers = xsrf_headers(alice, "/user/alice/")
    model = alice.get(url).json()
    model["content"]["cells"][1]["source"] = "value = 42  # Alice's answer\nvalue + 1"
    saved = alice.put(url, json={"type": "notebook", "content": model["content"]}, headers=headers)
    assert saved.status_code == 200, saved.text

    source = hub.workbooks / "sample"
    notebook = json.loads((source / "sample.en.ipynb").read_text())
    notebook["cells"][0]["source"] = (
        "# Sample workbook (2nd edition)\n\nChange the value and run the cell."
    )
    (source / "sample.en.ipynb").write_text(json.dumps(notebook, indent=1))
    (source / "extra.en.ipynb").write_text(json.dumps({**notebook, "cells": notebook["cells"][:1]}))
    assert hub.publish_workbooks()["en"] == "updated"

    assert hub.api(alice, "DELETE", "/users/alice/server").status_code in (202, 204)
    for _ in range(200):
        if not server_pid(hub, "alice"):
            break
        time.sleep(0.1)
    hub.start_server(alice, "alice")
    cells = alice.get(url).json()["content"]["cells"]
    assert "Alice's answer" in "".join(cells[1]["source"])
    listing = alice.get(f"{hub.url}/user/alice/api/contents/workbooks/sample").json()
    assert "extra.en.ipynb" in {item["name"] for item in listing["content"]}
