"""``atelier servers``: start a cohort's servers ahead of a scheduled session, and see them.

Why: a webinar's burst (200 trainees clicking within a minute) is CPU-bound on a small machine:
each trainee's login, server start and view render compete for the same cores
(docs/benchmarks.md, "Load: the IIOE's 400"). Starting the servers a few minutes before the
session takes the server starts out of the burst.

How: the running hub is asked through its REST API, with the ``atelier-roster`` service's token
(:class:`~atelier.hub_config.people.runninghub.HubAPI`; its role holds ``start:servers`` and
``read:servers``), to start each trainee's server: the hub's own spawner starts it as the
trainee's Unix account, exactly as a login would. At most ``hub.concurrent_spawn_limit`` starts
are in flight; a 429 (trainees logging in meanwhile took the slots) waits ``Retry-After`` and
tries again. Servers already running are left alone, so the command can be run again at any time
(it then starts only the missing ones: those that failed, or were culled).

The idle culler: a server nobody used has the time it started as its last activity, so the
culler stops it ``hub.culler.timeout`` seconds (plus at most one pass) after the start, and a
trainee's use reaches the hub one activity report late: the command says by when trainees must
log in (:func:`arrive_by`: 11 minutes 15 s with the default 900 s). There is deliberately no
"hold": a trainee who does not come must not keep ~53 MiB for the rest of the day, and the
culler keeps one rule (docs/hub.md, "Servers started before a session").
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from traitlets import Bool, Float, Unicode

from atelier import accounts
from atelier.app import AtelierApp, subverbs
from atelier.errors import AtelierError
from atelier.hub_config.hub.config import activity_interval
from atelier.roster import cohorts_of

#: Outcomes of one trainee's start, in the order the summary lists them.
STARTED, RUNNING, FAILED = "started", "already running", "failed"


@dataclass
class Outcome:
    """What happened to one trainee's server."""

    username: str
    status: str
    reason: str = ""


def cohort_trainees(settings: Mapping, cohort: str) -> list[str]:
    """The usernames of a cohort's trainees, from the roster store; AtelierError if unknown."""
    if not cohort:
        raise AtelierError("which cohort? give --cohort C (`atelier roster list` shows them)")
    cohorts = cohorts_of(accounts.load_people(settings["hub"]["state_dir"]).values())
    if cohort not in cohorts:
        known = ", ".join(sorted(cohorts)) or "none, import one (`atelier roster import`)"
        raise AtelierError(f"unknown cohort {cohort!r}; the roster's cohorts: {known}")
    trainees = cohorts[cohort]["trainees"]
    if not trainees:
        raise AtelierError(f"cohort {cohort!r} has no trainees (only facilitators)")
    return trainees


def running_hub_api(settings: Mapping):
    """The running hub's API, or AtelierError saying how to start the hub."""
    from atelier.hub_config.people.runninghub import HubAPI, supervisor_pid

    api = HubAPI(settings)
    if supervisor_pid(settings) is None or not api.token or not api.answers():
        raise AtelierError(
            f"the hub is not running (nothing answers on {api.url}): start it with `atelier start`"
        )
    return api


class Starter:
    """Starts servers through the hub's API and waits for each to be ready or to fail.

    Args:
        api: the running hub's API (:class:`~atelier.hub_config.people.runninghub.HubAPI`).
        timeout: seconds one trainee's start may take, 429 waits included.
    """

    def __init__(self, api, timeout: float = 300):
        self.api = api
        self.timeout = timeout

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        """One API request, answers of every status returned (the caller decides)."""
        return self.api.request(method, path, **kwargs)

    def state(self, username: str) -> str:
        """``running``, ``starting``, ``stopped``; AtelierError if the token may not read it."""
        response = self.request("GET", f"/users/{username}")
        if response.status_code == 404:
            return "no hub user"
        refused(response)
        server = response.json().get("servers", {}).get("")
        if not server:
            return "stopped"
        return "running" if server.get("ready") else "starting"

    def start(self, username: str) -> Outcome:
        """Start one trainee's server unless it runs; returns how it went."""
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                response = self.request("POST", f"/users/{username}/server")
                if response.status_code == 429 and time.monotonic() < deadline:
                    # Trainees logging in meanwhile hold the spawn slots: they go first.
                    time.sleep(min(float(response.headers.get("Retry-After", 5)), 30))
                    continue
                break
            message = hub_message(response)
            if response.status_code == 201:
                return Outcome(username, STARTED)
            if response.status_code == 400 and "already running" in message:
                return Outcome(username, RUNNING)
            if response.status_code == 202 or "is pending spawn" in message:
                return self.wait(username, deadline)
            refused(response)
            if response.status_code >= 500:
                # The API says only "Internal Server Error" for a spawner's exception; the
                # progress stream keeps the failed start's own message.
                return self.wait(username, deadline)
            return Outcome(username, FAILED, f"the hub answered {response.status_code}: {message}")
        except requests.RequestException as error:
            return Outcome(username, FAILED, f"the hub did not answer: {error}")

    def wait(self, username: str, deadline: float) -> Outcome:
        """Follow a pending start on the hub's progress stream until ready or failed."""
        path = f"/users/{username}/server/progress"
        with self.request("GET", path, stream=True) as response:
            if response.status_code != 200:
                # Already over: a ready server no longer reports progress.
                state = self.state(username)
                if state == "running":
                    return Outcome(username, STARTED)
                return Outcome(username, FAILED, f"the server is {state}, the hub cannot say why")
            for line in response.iter_lines(decode_unicode=True):
                if time.monotonic() > deadline:
                    return Outcome(username, FAILED, f"not ready after {self.timeout:.0f} s")
                if not line or not line.startswith("data:"):
                    continue
                event = json.loads(line[len("data:") :])
                if event.get("ready"):
                    return Outcome(username, STARTED)
                if event.get("failed"):
                    return Outcome(username, FAILED, event.get("message", "spawn failed"))
        return Outcome(username, FAILED, "the hub closed the progress stream")


def hub_message(response: requests.Response) -> str:
    """The hub's sentence in an API answer (JSON ``message``), else the start of its text."""
    try:
        return str(response.json().get("message", ""))
    except ValueError:
        return response.text[:200]


def refused(response: requests.Response) -> None:
    """AtelierError if the token lacks the scopes: a hub started before this release."""
    if response.status_code == 403:
        raise AtelierError(
            "the running hub does not let `atelier servers` start or read servers (its "
            "configuration predates the command): restart it with `atelier start`"
        )


def start_cohort(
    starter: Starter,
    usernames: list[str],
    parallel: int,
    done: Callable[[Outcome], None] = lambda outcome: None,
) -> list[Outcome]:
    """Start every listed server, ``parallel`` at a time; ``done`` is called after each one."""
    outcomes = []
    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        for outcome in pool.map(starter.start, usernames):
            outcomes.append(outcome)
            done(outcome)
    return outcomes


def arrive_by(settings: Mapping, started: datetime) -> tuple[datetime, datetime] | None:
    """When trainees must arrive, and when the culler may stop the unused servers started then.

    A server nobody used has its start as its last activity: the culler may stop it
    ``hub.culler.timeout`` seconds later. A trainee who arrives just before that is not safe
    either, since their use reaches the hub one activity report late
    (:func:`~atelier.hub_config.hub.config.activity_interval`).
    """
    culler = settings["hub"]["culler"]
    if not culler["enabled"]:
        return None
    culled = started + timedelta(seconds=culler["timeout"])
    late = timedelta(seconds=activity_interval(culler))
    return max(started, culled - late), culled


def summary(outcomes: list[Outcome]) -> str:
    """Counts, then one line per failure with its reason."""
    counts = {status: sum(o.status == status for o in outcomes) for status in (STARTED, RUNNING)}
    failed = [o for o in outcomes if o.status == FAILED]
    lines = [f"{counts[STARTED]} started, {counts[RUNNING]} already running, {len(failed)} failed."]
    lines += [f"  failed: {o.username}: {o.reason}" for o in failed]
    return "\n".join(lines)


class ServersStartApp(AtelierApp):
    """Start the servers of a cohort's trainees ahead of a session (running ones are skipped)."""

    name = "atelier servers start"
    description = __doc__
    aliases = {**AtelierApp.aliases, "cohort": "ServersStartApp.cohort"}
    flags = {
        "no-progress": ({"ServersStartApp": {"progress": False}}, "No progress bar (for logs)."),
    }

    cohort = Unicode("", help="The cohort whose trainees' servers are started.").tag(config=True)
    progress = Bool(True, help="Show a progress bar on standard error.").tag(config=True)
    timeout = Float(
        300, help="Seconds one trainee's start may take, waits for a free spawn slot included."
    ).tag(config=True)

    def run(self):
        """Start the cohort's servers, paced by the hub's spawn limit; exit 1 if any failed."""
        usernames = cohort_trainees(self.settings, self.cohort)
        api = running_hub_api(self.settings)
        starter = Starter(api, self.timeout)
        # A token without the scopes is told at once, not once per trainee.
        starter.state(usernames[0])
        began = datetime.now().astimezone()
        bar = None
        if self.progress:
            from tqdm import tqdm

            bar = tqdm(total=len(usernames), unit="server", desc=f"starting {self.cohort}")

        def done(outcome: Outcome) -> None:
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{outcome.username}: {outcome.status}", refresh=False)

        try:
            # 0 is "no limit" to the hub; here that would be one thread per trainee.
            parallel = self.settings["hub"]["concurrent_spawn_limit"] or 10
            outcomes = start_cohort(starter, usernames, parallel, done)
        finally:
            if bar is not None:
                bar.close()
        print(summary(outcomes))
        deadline = arrive_by(self.settings, began)
        if deadline is not None:
            print(
                f"Trainees must log in by {deadline[0]:%H:%M}: servers nobody used are stopped "
                f"by the idle culler from {deadline[1]:%H:%M} (hub.culler.timeout "
                f"{self.settings['hub']['culler']['timeout']} s), and use reaches the hub up to "
                f"{activity_interval(self.settings['hub']['culler'])} s late. Running this again "
                "starts the missing ones."
            )
        if any(o.status == FAILED for o in outcomes):
            self.exit(1)


class ServersStatusApp(AtelierApp):
    """Show which of a cohort's trainees have a server running, starting or stopped."""

    name = "atelier servers status"
    description = __doc__
    aliases = {**AtelierApp.aliases, "cohort": "ServersStatusApp.cohort"}

    cohort = Unicode("", help="The cohort whose trainees' servers are shown.").tag(config=True)

    def run(self):
        """One line per trainee whose server is not running, then the counts."""
        usernames = cohort_trainees(self.settings, self.cohort)
        starter = Starter(running_hub_api(self.settings))
        states = {name: starter.state(name) for name in usernames}
        for name, state in states.items():
            if state != "running":
                print(f"{name}: {state}")
        counts = {s: sum(v == s for v in states.values()) for s in sorted(set(states.values()))}
        print(f"{self.cohort}: " + ", ".join(f"{n} {s}" for s, n in counts.items()))


class ServersApp(AtelierApp):
    """Trainees' servers of a cohort."""

    name = "atelier servers"
    description = "Start a cohort's servers ahead of a session, or see which run."
    subcommands = subverbs(ServersStartApp, ServersStatusApp)
