"""The proxy dies under a working trainee: the site is back within seconds, nobody's work is lost.

configurable-http-proxy holds the routing table in memory; ``atelier start`` restarts a proxy that
dies, and the hub puts the routes back in the new one. Uses the session hub (``tests/conftest.py``)
with a trainee of its own (``pia``, cohort ``x``) whose kernel holds a variable: after each fault,
the same kernel must answer through the proxy with that variable still set. A restart (SIGHUP)
while the proxy is down, two kills in a row, and the proxy's port taken by another program are
the variations.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import pytest
import requests
from test_hub import execute_in_kernel, server_pid, xsrf_headers

pytestmark = pytest.mark.server

ROSTER = """username,full name,email,institution,country,language,role,cohort
pia,Pia Nkosi,pia@example.org,U,KE,en,trainee,x
"""

#: What the issue asks: the site answers again within this many seconds of the proxy's death.
BACK_WITHIN = 10.0


def execute(hub, session, kernel_id: str, code: str) -> str:
    """Run ``code`` in Pia's kernel ``kernel_id`` through the proxy (a websocket); its stdout."""
    return execute_in_kernel(hub, session, "pia", kernel_id, code)


@pytest.fixture(scope="module")
def pia(hub):
    """Pia logged in, her server running, and a kernel of hers holding ``answer = 42``."""
    hub.import_roster(ROSTER)
    session = hub.login("pia")
    hub.start_server(session, "pia")
    headers = xsrf_headers(session, "/user/pia/")
    kernel = session.post(
        f"{hub.url}/user/pia/api/kernels", json={"name": "python3"}, headers=headers, timeout=60
    )
    assert kernel.status_code == 201, kernel.text
    kernel_id = kernel.json()["id"]
    assert execute(hub, session, kernel_id, "answer = 42; print('set')").strip() == "set"
    session.kernel_id = kernel_id
    session.server_pid = server_pid(hub, "pia")
    return session


def proxy_pid(hub) -> int:
    return int((hub.state_dir / "proxy.pid").read_text().split()[0])


def hub_pid(hub) -> int:
    """The running JupyterHub's pid (0 while a restart has removed its pid file)."""
    try:
        return int((hub.state_dir / "jupyterhub.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def pias_kernel_answers(hub, session) -> bool:
    """Whether Pia's server, through the proxy, lists her kernel (one request, no waiting)."""
    try:
        answer = session.get(
            f"{hub.url}/user/pia/api/kernels/{session.kernel_id}",
            headers=xsrf_headers(session, "/user/pia/"),
            allow_redirects=False,
            timeout=5,
        )
    except requests.RequestException:
        return False
    return answer.status_code == 200 and answer.json().get("id") == session.kernel_id


def seconds_until_back(hub, session, since: float, limit: float = 60) -> float:
    """Seconds from ``since`` until the login page and Pia's kernel answer through the proxy."""
    while time.monotonic() - since < limit:
        try:
            login = requests.get(f"{hub.url}/hub/login", timeout=5).status_code == 200
        except requests.RequestException:
            login = False
        if login and pias_kernel_answers(hub, session):
            return time.monotonic() - since
        time.sleep(0.1)
    raise AssertionError(f"the site did not come back within {limit} s:\n{hub_log_tail(hub)}")


def hub_log(hub) -> str:
    """What `atelier start` and the hub wrote (one log)."""
    return hub.log_path.read_text(errors="replace")


def hub_log_tail(hub) -> str:
    return hub_log(hub)[-3000:]


def assert_pias_work_is_intact(hub, session) -> None:
    """The same server process, the same kernel, its variable still set, reached by the proxy."""
    assert server_pid(hub, "pia") == session.server_pid, "Pia's server was replaced"
    assert execute(hub, session, session.kernel_id, "print(answer)").strip() == "42"
    assert hub.process.poll() is None, "atelier start exited"


def test_a_killed_proxy_is_replaced_and_the_site_answers_within_seconds(hub, pia):
    """Does kill -9 of the proxy leave Pia's server and kernel reachable again within 10 s?"""
    old = proxy_pid(hub)
    os.kill(old, signal.SIGKILL)
    killed = time.monotonic()
    took = seconds_until_back(hub, pia, killed)
    assert took < BACK_WITHIN, f"the site was down {took:.1f} s"
    print(f"back after {took:.1f} s")
    assert proxy_pid(hub) != old
    assert_pias_work_is_intact(hub, pia)
    # "(killed by signal 9)" follows only when this `atelier start` started that proxy itself: one
    # that took over a running proxy (an earlier test restarts it) cannot know how it ended.
    assert f"configurable-http-proxy (pid {old}) stopped" in hub_log(hub)


def test_the_proxy_killed_twice_in_a_row_comes_back_too(hub, pia):
    """Killed again as soon as it was replaced (routes maybe not yet back): back within 10 s?"""
    first = proxy_pid(hub)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + BACK_WITHIN
    while proxy_pid(hub) == first:
        assert time.monotonic() < deadline, "the proxy was not replaced"
        time.sleep(0.02)
    second = proxy_pid(hub)
    os.kill(second, signal.SIGKILL)
    took = seconds_until_back(hub, pia, time.monotonic())
    assert took < BACK_WITHIN, f"the site was down {took:.1f} s"
    # A third proxy replaced the second (seen once, in a whole run, still naming the second just
    # after the site answered: the log says what the keeper did).
    deadline = time.monotonic() + BACK_WITHIN
    while proxy_pid(hub) in (first, second) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert proxy_pid(hub) not in (first, second), hub_log_tail(hub)
    assert_pias_work_is_intact(hub, pia)


def test_a_restart_asked_while_the_proxy_is_dead_keeps_the_hub(hub, pia):
    """SIGHUP to `atelier start` while the proxy is dead: does the hub restart and serve again?"""
    supervisor = hub.process.pid
    before = hub_pid(hub)
    # Frozen, the supervisor cannot replace the proxy before the restart is asked.
    os.kill(supervisor, signal.SIGSTOP)
    try:
        os.kill(proxy_pid(hub), signal.SIGKILL)
        os.kill(supervisor, signal.SIGHUP)
    finally:
        os.kill(supervisor, signal.SIGCONT)
    since = time.monotonic()
    while hub_pid(hub) in (0, before) or not pias_kernel_answers(hub, pia):
        assert hub.process.poll() is None, f"atelier start exited:\n{hub_log_tail(hub)}"
        assert time.monotonic() - since < 90, f"the hub did not come back:\n{hub_log_tail(hub)}"
        time.sleep(0.2)
    seconds_until_back(hub, pia, time.monotonic())
    assert_pias_work_is_intact(hub, pia)


def test_a_taken_port_is_named_and_the_hub_keeps_serving_until_it_is_free(hub, pia):
    """Another program on the proxy's port: a message naming both, the hub up, back once free."""
    supervisor = hub.process.pid
    before = hub_pid(hub)
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    os.kill(supervisor, signal.SIGSTOP)
    try:
        os.kill(proxy_pid(hub), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:  # the dead proxy's socket is gone as soon as the kernel has closed it
            try:
                squatter.bind(("127.0.0.1", hub.port))
                break
            except OSError:
                assert time.monotonic() < deadline, "the killed proxy's port stayed taken"
                time.sleep(0.02)
        squatter.listen()
    finally:
        os.kill(supervisor, signal.SIGCONT)
    try:
        message = f"cannot listen on port {hub.port} (hub.port): Address already in use, by pid "
        message += str(os.getpid())
        deadline = time.monotonic() + 15
        while message not in hub_log(hub):
            lines = [line for line in hub_log(hub).splitlines() if "http-proxy" in line]
            assert time.monotonic() < deadline, "no message naming the port:\n" + "\n".join(lines)
            time.sleep(0.1)
        # The hub itself is up (its own port), and a restart asked now does not take it down.
        hub_api = f"http://127.0.0.1:{hub.settings['hub']['hub_port']}/hub/api"
        assert requests.get(hub_api, timeout=5).status_code == 200
        os.kill(supervisor, signal.SIGHUP)
        time.sleep(2)
        assert hub_pid(hub) == before and hub.process.poll() is None
        assert requests.get(hub_api, timeout=5).status_code == 200
        assert "Not restarting the hub yet" in hub_log(hub)
    finally:
        squatter.close()
    freed = time.monotonic()
    seconds_until_back(hub, pia, freed)
    # The restart asked while the port was taken happens once the proxy runs.
    while hub_pid(hub) in (0, before) or not pias_kernel_answers(hub, pia):
        assert hub.process.poll() is None, f"atelier start exited:\n{hub_log_tail(hub)}"
        assert time.monotonic() - freed < 90, f"the hub did not restart:\n{hub_log_tail(hub)}"
        time.sleep(0.2)
    assert_pias_work_is_intact(hub, pia)
