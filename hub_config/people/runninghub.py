"""The running hub: bring it up to date after a roster import, without stopping anyone's work.

The rule: what the REST API can change is pushed through it; only what needs the hub's
configuration is applied by a restart, and that restart is a safe one.

- People and group memberships (``cohort-C``, ``facilitators-C``, and the grading room's
  ``nbgrader-C``, ``formgrade-C``) are pushed through the hub's REST API with the token of the
  ``atelier-roster`` service (``state_dir/atelier_api_token``, written by ``atelier start``).
  New people in a known cohort can then log in and are seen by their facilitators at once.
- A new cohort also needs roles (``facilitator-C``, ``formgrader-C``) and a formgrader service,
  which JupyterHub only reads from its configuration (it has no REST API for roles or services).
  Then the hub is restarted through ``atelier start`` (SIGHUP, see :mod:`startapp`): the proxy
  keeps running and trainees' servers survive (``cleanup_servers = False``).

The groups come from the same configuration layers the hub runs (:func:`desired_groups`), so the
pushed state is exactly what a restart would load.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Mapping

import requests
from traitlets.config import Config

from atelier.errors import AtelierError
from atelier.hub_config.hub import config as layers
from atelier.hub_config.hub.processes import alive, cmdline

#: Prefixes of the hub groups derived from the roster (others are left alone).
ROSTER_GROUP_PREFIXES = ("cohort-", "facilitators-", "nbgrader-", "formgrade-")


def roster_config(settings: Mapping) -> Config:
    """What the hub's configuration layers make of the roster: groups, roles, cohort services."""
    c = Config()
    c.JupyterHub.load_roles = []
    layers.apply_roster(c, settings)
    layers.apply_plugins(c, settings, plugins=(("atelier.grading.hubconfig", None),))
    return c


def desired_groups(settings: Mapping) -> dict[str, list[str]]:
    """Group name -> members, as the hub's configuration layers compute them from the roster."""
    groups = roster_config(settings).JupyterHub.load_groups
    return {name: sorted(spec.get("users", [])) for name, spec in groups.items()}


def routed_services(settings: Mapping) -> list[str]:
    """Names of the cohort services (formgrader) the hub puts behind the proxy at ``/services/``."""
    services = roster_config(settings).JupyterHub.get("services", [])
    return sorted(s["name"] for s in services if s.get("url"))


def proxy_routes(settings: Mapping) -> set[str]:
    """The paths the proxy routes now (empty if it cannot be asked), without trailing slashes."""
    paths = layers.state_paths(settings)
    try:
        token = paths["proxy_token"].read_text().strip()
        answer = requests.get(
            f"http://127.0.0.1:{settings['hub']['proxy_api_port']}/api/routes",
            headers={"Authorization": f"token {token}"},
            timeout=5,
        )
        answer.raise_for_status()
        return {route.rstrip("/") for route in answer.json()}
    except (OSError, ValueError, requests.RequestException):
        return set()


def supervisor_pid(settings: Mapping) -> int | None:
    """The pid of the ``atelier start`` running this hub, or None if the hub is not running."""
    pid_file = layers.state_paths(settings)["supervisor_pid"]
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    command = " ".join(cmdline(pid))
    if pid and alive(pid) and "atelier" in command and " start" in command:
        return pid
    return None


class HubAPI:
    """The hub's REST API on its own loopback port, with the roster service's token."""

    def __init__(self, settings: Mapping, timeout: float = 30):
        hub = settings["hub"]
        self.url = f"http://127.0.0.1:{hub['hub_port']}/hub/api"
        token_file = layers.state_paths(settings)["api_token"]
        self.token = token_file.read_text().strip() if token_file.exists() else ""
        self.timeout = timeout

    def request(self, method: str, path: str, headers=None, **kwargs) -> requests.Response:
        """One API request with the token; every answer returned (the caller decides)."""
        return requests.request(
            method,
            self.url + path,
            headers={"Authorization": f"token {self.token}", **(headers or {})},
            timeout=self.timeout,
            **kwargs,
        )

    def call(self, method: str, path: str, headers=None, **kwargs) -> requests.Response:
        """One API request; raises AtelierError on an answer other than 2xx or 409 (exists)."""
        response = self.request(method, path, headers, **kwargs)
        if response.status_code >= 400 and response.status_code != 409:
            raise AtelierError(
                f"the running hub refused {method} {path} ({response.status_code}): "
                f"{response.text[:200]}; restart it (`atelier start`) to apply the roster"
            )
        return response

    def listing(self, path: str) -> list:
        """Every item of a collection (``/users``, ``/groups``), page after page.

        The hub answers a collection a page at a time (at most ``api_page_max_limit``, 200 by
        default, even to a client that does not ask for pages): a programme's roster is larger.
        """
        items: list = []
        offset: int | None = 0
        while offset is not None:
            page = self.call(
                "GET",
                path,
                headers={"Accept": "application/jupyterhub-pagination+json"},
                params={"offset": offset},
            ).json()
            items.extend(page["items"])
            following = page["_pagination"].get("next")
            offset = following["offset"] if following else None
        return items

    def answers(self) -> bool:
        """Whether the hub answers on its API."""
        try:
            return requests.get(self.url, timeout=5).status_code == 200
        except requests.RequestException:
            return False


def push_groups(api: HubAPI, groups: Mapping[str, list[str]]) -> dict[str, int]:
    """Create missing users and groups and set the members of the roster's groups.

    Returns counts: users created, members added, members removed.
    """
    existing_users = {user["name"] for user in api.listing("/users")}
    wanted_users = sorted({name for members in groups.values() for name in members})
    missing = [name for name in wanted_users if name not in existing_users]
    if missing:
        api.call("POST", "/users", json={"usernames": missing})
    current = {group["name"]: set(group["users"]) for group in api.listing("/groups")}
    added = removed = 0
    for name, members in sorted(groups.items()):
        if name not in current:
            api.call("POST", f"/groups/{name}")
            current[name] = set()
        add = sorted(set(members) - current[name])
        drop = sorted(current[name] - set(members))
        if add:
            api.call("POST", f"/groups/{name}/users", json={"users": add})
        if drop:
            api.call("DELETE", f"/groups/{name}/users", json={"users": drop})
        added, removed = added + len(add), removed + len(drop)
    return {"users": len(missing), "added": added, "removed": removed}


def restart(settings: Mapping, pid: int, timeout: float = 90) -> None:
    """Ask ``atelier start`` (``pid``) to restart the hub; return once it is back, services too.

    Back means the new hub answers and the proxy routes every cohort's formgrader (the hub
    answers its API before its services are up; a facilitator told "restarted" would otherwise
    open a formgrader that is not there yet). Services get up to
    :data:`~atelier.hub_config.hub.config.SERVICE_START_TIMEOUT` more.
    """
    hub_pid = layers.state_paths(settings)["hub_pid"]
    before = hub_pid.read_text().strip() if hub_pid.exists() else ""
    os.kill(pid, signal.SIGHUP)
    api = HubAPI(settings)
    deadline = time.monotonic() + timeout
    expected: set[str] | None = None
    while time.monotonic() < deadline:
        if not alive(pid):
            raise AtelierError("the hub stopped while restarting: see its log; `atelier start`")
        now = hub_pid.read_text().strip() if hub_pid.exists() else ""
        if now and now != before and api.answers():
            if expected is None:
                expected = {f"/services/{name}" for name in routed_services(settings)}
                deadline = max(deadline, time.monotonic() + layers.SERVICE_START_TIMEOUT)
            missing = expected - proxy_routes(settings)
            if not missing:
                return
        time.sleep(0.2)
    if expected is None:
        raise AtelierError(f"the hub did not come back within {timeout:.0f} s: see its log")
    raise AtelierError(
        "the hub is back, but these services did not start: "
        + ", ".join(sorted(expected - proxy_routes(settings)))
        + ": see its log"
    )


def apply_roster_change(settings: Mapping, cohorts_before: set[str], cohorts_after: set[str]):
    """Bring the running hub up to date; returns a sentence for the admin (None: no hub)."""
    pid = supervisor_pid(settings)
    if pid is None:
        return None
    if cohorts_after != cohorts_before:
        new = ", ".join(sorted(cohorts_after - cohorts_before)) or "changed cohorts"
        restart(settings, pid)
        return (
            f"The hub was restarted to add cohort(s) {new} (roles, formgrader services); "
            "the proxy and everyone's servers kept running."
        )
    counts = push_groups(HubAPI(settings), desired_groups(settings))
    return (
        f"The running hub was updated: {counts['users']} new user(s), {counts['added']} group "
        f"membership(s) added, {counts['removed']} removed; no restart was needed."
    )
