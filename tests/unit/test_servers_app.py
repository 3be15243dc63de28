"""``atelier servers``: the cohort and the hub are checked first; starts wait their turn on a 429.

The starts themselves, on a real hub, are tests/servers/test_servers_prestart.py's.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from atelier import accounts
from atelier.errors import AtelierError
from atelier.hub_config.people.runninghub import HubAPI
from atelier.hub_config.servers import serversapp
from atelier.roster import parse_roster
from atelier.settings import load_settings

pytestmark = pytest.mark.unit

ROSTER = """username,full name,email,institution,country,language,role,cohort
alice,Alice Martin,alice@example.org,U,Kenya,en,trainee,x
bob,Bob Okafor,bob@example.org,U,Nigeria,en,trainee,x
fiona,Fiona Mensah,fiona@example.org,U,Ghana,en,facilitator,x
gina,Gina Ba,gina@example.org,U,Ghana,en,facilitator,onlyfac
"""


@pytest.fixture
def settings(tmp_path):
    path = tmp_path / "settings.yaml"
    # Ports nobody listens on: no hub runs for these settings.
    path.write_text(f"hub:\n  state_dir: {tmp_path / 'state'}\n  hub_port: 9\n  port: 9\n")
    return load_settings(path)


@pytest.fixture
def roster(settings):
    people = parse_roster(ROSTER)
    accounts.save_people(settings["hub"]["state_dir"], {p.username: p for p in people})
    return settings


def test_the_cohorts_trainees_are_started_not_its_facilitators(roster):
    """Are only the cohort's trainees started (a facilitator's server is theirs to start)?"""
    assert serversapp.cohort_trainees(roster, "x") == ["alice", "bob"]


def test_an_unknown_cohort_is_refused_naming_the_known_ones(roster):
    """Does a misspelt cohort name the roster's cohorts, so the right one can be typed?"""
    with pytest.raises(AtelierError, match=r"unknown cohort 'X'.*onlyfac, x"):
        serversapp.cohort_trainees(roster, "X")


def test_no_cohort_given_says_how_to_give_one(roster):
    """Is a missing --cohort a sentence naming the option, not a start of nobody?"""
    with pytest.raises(AtelierError, match="--cohort"):
        serversapp.cohort_trainees(roster, "")


def test_a_cohort_of_facilitators_only_is_refused(roster):
    """Is a cohort with no trainee told as such rather than "0 started"?"""
    with pytest.raises(AtelierError, match="no trainees"):
        serversapp.cohort_trainees(roster, "onlyfac")


def test_before_any_roster_the_message_says_to_import_one(settings):
    """Before the first import, does the message say what to do?"""
    with pytest.raises(AtelierError, match="atelier roster import"):
        serversapp.cohort_trainees(settings, "x")


def test_a_hub_that_is_not_running_is_a_clear_error(roster):
    """With no hub running, is the admin told to start it (no traceback, no per-trainee noise)?"""
    with pytest.raises(AtelierError, match=r"hub is not running.*atelier start"):
        serversapp.running_hub_api(roster)


def test_the_command_line_reports_errors_as_one_sentence(roster, tmp_path):
    """Does the verb exit 2 (a usage error) with one sentence, for an unknown cohort, for no hub?"""
    settings_file = str(tmp_path / "settings.yaml")
    for cohort, expected in (("nope", "unknown cohort 'nope'"), ("x", "hub is not running")):
        result = subprocess.run(
            [sys.executable, "-m", "atelier", "servers", "start", "--settings", settings_file,
             f"--cohort={cohort}"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr


class FakeHub(http.server.BaseHTTPRequestHandler):
    """Answers POST /users/NAME/server like a busy hub: 429 ``busy`` times, then the script."""

    busy: dict[str, int] = {}
    final: dict[str, tuple[int, str]] = {}
    posts: list[str] = []

    def do_POST(self):
        name = self.path.split("/")[4]  # /hub/api/users/NAME/server
        self.posts.append(name)
        if self.busy.get(name, 0) > 0:
            self.busy[name] -= 1
            status, body, headers = 429, '{"message": "Too many users"}', {"Retry-After": "0"}
        else:
            status, body = self.final[name][:2]
            headers = {}
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def do_GET(self):
        """The progress stream of a start that failed, as the hub keeps it."""
        name = self.path.split("/")[4]
        event = {"progress": 100, "failed": True, "message": f"Spawn failed: {self.final[name][2]}"}
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeHub.posts.clear()

    # The command's own API client, pointed at the fake hub (no settings, no token file).
    api = HubAPI.__new__(HubAPI)
    api.url = f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    api.token = "t"
    api.timeout = 10
    yield api
    server.shutdown()


def test_a_busy_hub_is_waited_for_and_every_outcome_is_reported(fake_hub):
    """Is a 429 retried (not counted a failure), and are started, running, failed told apart?"""
    FakeHub.busy = {"alice": 2}
    FakeHub.final = {
        "alice": (201, ""),
        "bob": (400, '{"message": "bob is already running"}'),
        # The API's 500 says nothing; the reason is in the start's progress stream.
        "chloe": (500, '{"message": "Internal Server Error"}', "no Unix account tabc-chloe"),
    }
    outcomes = serversapp.start_cohort(serversapp.Starter(fake_hub), ["alice", "bob", "chloe"], 2)
    assert [(o.username, o.status) for o in outcomes] == [
        ("alice", "started"),
        ("bob", "already running"),
        ("chloe", "failed"),
    ]
    assert FakeHub.posts.count("alice") == 3
    text = serversapp.summary(outcomes)
    assert text.startswith("1 started, 1 already running, 1 failed.")
    assert "failed: chloe: Spawn failed: no Unix account tabc-chloe" in text


def test_a_hub_that_stays_busy_past_the_timeout_is_a_failure_with_its_reason(fake_hub):
    """Does a start that never gets a slot end, as a failure saying the hub was busy?"""
    FakeHub.busy = {"alice": 10**6}
    FakeHub.final = {}
    [outcome] = serversapp.start_cohort(serversapp.Starter(fake_hub, timeout=0.3), ["alice"], 1)
    assert outcome.status == "failed" and "429" in outcome.reason


def test_trainees_are_told_to_arrive_before_the_culler_can_stop_unused_servers(settings):
    """With the default 900 s, must trainees come within 11:15 (use reaches the hub late)?"""
    began = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)
    arrive, culled = serversapp.arrive_by(settings, began)
    late = timedelta(seconds=225)  # a quarter of the timeout (hub.config.activity_interval)
    assert (arrive, culled) == (began + timedelta(minutes=15) - late, began + timedelta(minutes=15))
    off = {"hub": {"culler": {**settings["hub"]["culler"], "enabled": False}}}
    assert serversapp.arrive_by(off, began) is None
