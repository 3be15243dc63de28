"""The load harness's pure parts (benchmarks/loadplan.py): arrivals, p95, the rate that held.

The harness itself (benchmarks/bench_load.py) drives real hubs and is a benchmark, not a test:
what it reports rests on these.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import loadplan as lp

pytestmark = pytest.mark.unit

BENCHMARKS = Path(lp.__file__).parent


def test_a_day_at_a_twentieth_is_twenty_trainees_over_ten_minutes_eight_at_work():
    """Does the day profile scale to 20 trainees in 600 s, 8 of them active, 4 in Lab?"""
    plan = lp.schedule(lp.PROFILES["day"], scale=0.05)
    trainees = [a for a in plan if a.kind == "trainee"]
    assert len(plan) == len(trainees) == 20
    assert all(0 <= a.at <= 600 for a in plan)
    assert [a.at for a in plan] == sorted(a.at for a in plan)
    assert sorted(a.index for a in trainees) == list(range(20))
    assert sum(a.active for a in trainees) == 8  # 150 × 0.05 = 7.5, rounded to even
    assert sum(a.lab for a in trainees) == 4
    assert not any(a.submit for a in plan)


def test_the_webinar_link_brings_trainees_and_visitors_within_the_minute():
    """200 trainees and 400 visitors in 60 s, at a tenth: 20 and 40, none later than 60 s."""
    plan = lp.schedule(lp.PROFILES["webinar"], scale=0.1)
    assert sum(a.kind == "trainee" for a in plan) == 20
    assert sum(a.kind == "visitor" for a in plan) == 40
    assert max(a.at for a in plan) <= 60
    assert not any(a.active for a in plan)


def test_the_deadline_is_submissions_only():
    """100 submissions in 60 s: every trainee submits, nobody else comes."""
    plan = lp.schedule(lp.PROFILES["deadline"], scale=0.05)
    assert len(plan) == 5
    assert all(a.kind == "trainee" and a.submit for a in plan)


def test_a_higher_rate_is_the_same_people_sooner():
    """Rate 2: the same arrivals at half the moments, within half the window."""
    once = lp.schedule(lp.PROFILES["webinar"], scale=0.05, rate=1)
    twice = lp.schedule(lp.PROFILES["webinar"], scale=0.05, rate=2)
    assert [(a.kind, a.index) for a in once] == [(a.kind, a.index) for a in twice]
    assert [a.at / 2 for a in once] == pytest.approx([a.at for a in twice])
    assert max(a.at for a in twice) <= 30
    assert lp.arrival_rate(lp.PROFILES["webinar"], 1, 1) == 10  # 600 people in 60 s
    assert lp.arrival_rate(lp.PROFILES["webinar"], 0.05, 2) == 1  # 30 people in 30 s


def test_a_plan_is_the_same_for_a_seed_and_differs_for_another():
    """Two runs with one seed compare the same arrivals; another seed draws others."""
    day = lp.PROFILES["day"]
    assert lp.schedule(day, 0.1, seed=3) == lp.schedule(day, 0.1, seed=3)
    assert lp.schedule(day, 0.1, seed=3) != lp.schedule(day, 0.1, seed=4)


def test_a_tiny_scale_keeps_one_of_each():
    """A scale that rounds a group to zero keeps one person of it; an empty group stays empty."""
    plan = lp.schedule(lp.PROFILES["webinar"], scale=0.001)
    assert sum(a.kind == "trainee" for a in plan) == 1
    assert sum(a.kind == "visitor" for a in plan) == 1
    assert lp.scaled(0, 0.5) == 0
    with pytest.raises(ValueError, match="rate"):
        lp.schedule(lp.PROFILES["day"], rate=0)


def test_p95_is_a_measured_value_by_nearest_rank():
    """Hand-computed: the 19th of 20 values; one slow value in 20 stays out of p95, two do not."""
    assert lp.percentile(range(1, 21), 0.95) == 19
    assert lp.percentile([5, 1, 3], 0.5) == 3
    assert lp.percentile([100] * 19 + [900], 0.95) == 100
    assert lp.percentile([100] * 18 + [900, 900], 0.95) == 900
    assert lp.percentile([42], 0.95) == 42
    assert lp.percentile([], 0.95) is None


def test_a_run_holds_only_with_no_failure_and_every_p95_within_its_target():
    """Zero failures and each measured target met; login → usable counts in the webinar only."""
    good = {lp.WIDGET_TARGET: 480, lp.HUB_TARGET: 150}
    assert lp.meets_targets("day", good, 0) == (True, [])
    held, why = lp.meets_targets("day", good, 1)
    assert not held and why == ["1 failed requests"]
    held, why = lp.meets_targets("day", {**good, lp.WIDGET_TARGET: 501}, 0)
    assert not held and why == [f"{lp.WIDGET_TARGET}: p95 501 ms > 500 ms"]
    slow_login = {**good, "login → workbook usable": 5200}
    assert lp.meets_targets("day", slow_login, 0)[0]
    assert not lp.meets_targets("webinar", slow_login, 0)[0]
    assert lp.meets_targets("webinar", {"login → workbook usable": None}, 0)[0]


def test_each_target_is_judged_on_its_own_and_any_failure_fails_them_all():
    """Which targets held in a run: each p95 against its own limit, none with a failed request."""
    p95 = {lp.USABLE_TARGET: 2700, lp.HUB_TARGET: 210, lp.RENDERED_TARGET: 1500}
    held = lp.targets_held("webinar", p95, 0)
    assert held[lp.USABLE_TARGET] and held[lp.RENDERED_TARGET]
    assert not held[lp.HUB_TARGET]
    assert held[lp.WIDGET_TARGET]  # no sample: nothing against it
    assert not any(lp.targets_held("webinar", p95, 2).values())
    assert lp.USABLE_TARGET not in lp.targets_held("day", p95, 0)  # the webinar's target only


def test_the_hubs_own_time_is_read_from_its_log_for_the_probes_requests_only():
    """Are only the probe's ``GET /hub/api/users`` lines counted, with the hub's milliseconds?"""
    head = "[I 2026-12-05 02:02:45.505 JupyterHub log:192]"
    log = "\n".join([
        f"{head} 200 GET /hub/api/users (load@127.0.0.1) 25.24ms",
        f"{head} 200 GET /hub/api/users (admin@127.0.0.1) 9.00ms",
        f"{head} 200 GET /hub/api/users/l001 (load@127.0.0.1) 7.5ms",
        f"{head.replace('[I', '[W')} 503 GET /hub/api/users (load@127.0.0.1) 904.24ms",
        "[I 2026-12-05 02:02:48.000 JupyterHub app:1] took 25.24ms: GET /hub/api/users",
    ])  # fmt: skip
    assert lp.hub_side_times(log) == [25.24, 904.24]


def test_the_hub_probe_times_each_answer_and_names_a_failed_one(tmp_path):
    """Does hubprobe.py print milliseconds for an answer and ``error`` for a refusal?

    It sends the token it was given, and runs at the niceness asked.
    """
    import http.server
    import subprocess
    import threading

    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(200 if len(seen) == 1 else 500)
            self.end_headers()
            self.wfile.write(b"[]")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/hub/api/users"
    probe = subprocess.Popen(
        [sys.executable, str(BENCHMARKS / "hubprobe.py"), url, "--every", "0.1", "--nice", "5"],
        stdout=subprocess.PIPE, text=True, env={"HUBPROBE_TOKEN": "t0k"},
    )  # fmt: skip
    try:
        first, second = probe.stdout.readline(), probe.stdout.readline()
        stat = Path(f"/proc/{probe.pid}/stat").read_text()
        nice = int(stat.rsplit(")", 1)[1].split()[16])
    finally:
        probe.terminate()
        probe.wait(timeout=10)
        server.shutdown()
    assert 0 < float(first) < 5000
    assert second.startswith("error HTTPError: 500")
    assert seen[:2] == ["token t0k", "token t0k"]
    assert nice == 5


def test_the_highest_rate_that_held_needs_every_lower_rate_to_hold():
    """(1 ok, 2 ok, 4 failed) → 2; a rate that held above one that failed does not count."""
    assert lp.highest_rate([(4, False), (1, True), (2, True)]) == 2
    assert lp.highest_rate([(1, True), (2, False), (4, True)]) == 1
    assert lp.highest_rate([(0.5, False), (1, True)]) is None
    assert lp.highest_rate([]) is None


def write(tmp_path, text: str) -> Path:
    path = tmp_path / "roster.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_roster_is_what_roster_import_writes_or_any_list_with_those_columns(tmp_path):
    """``username,password`` (any case, a BOM, other columns) gives the pairs in order."""
    path = write(tmp_path, "\ufeffUsername,Cohort,Password\nann,x,s3cret\nbo,y,p,w\n")
    assert lp.read_roster(path) == [("ann", "s3cret"), ("bo", "p")]
    path = write(tmp_path, "username,password\nl000,abc\n")
    assert lp.read_roster(path) == [("l000", "abc")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("user,password\nann,x\n", "line 1: missing column(s) username"),
        ("username,password\nann,x\nbo,\n", "line 3: empty username or password"),
        ("username,password\nann,x\nann,y\n", "line 3: ann is listed twice"),
        ("username,password\n", "no one in the roster"),
    ],
)
def test_a_roster_the_harness_cannot_use_is_named_with_its_line(tmp_path, text, message):
    """Each fault names the file and the line, before any load is sent."""
    path = write(tmp_path, text)
    with pytest.raises(lp.RosterError) as raised:
        lp.read_roster(path)
    assert str(raised.value).startswith(str(path))
    assert message in str(raised.value)


def test_a_missing_roster_says_so(tmp_path):
    with pytest.raises(lp.RosterError, match="cannot read the roster"):
        lp.read_roster(tmp_path / "nowhere.csv")


def test_each_process_is_counted_under_its_kind():
    """Kernels and servers by their account, the proxy, the apps service, stock apart."""
    context = {"trainee_uids": {1001, 1002}, "apps_uid": 1500}
    kind = lp.process_kind
    assert kind("python -m ipykernel_launcher -f k.json", 1001, set(), context) == "kernels"
    assert kind("python -m atelier.hub_config.servers.singleuser", 1002, set(), context) == (
        "trainee servers"
    )
    assert kind("python -m atelier apps --port=1", 1500, {"atelier"}, context) == "apps service"
    assert kind("node configurable-http-proxy --ip", 0, {"proxy"}, context) == "proxy"
    assert kind("python -m atelier.grading.instant.service", 0, {"atelier"}, context) == (
        "instant grading"
    )
    assert kind("atelier start --settings s.yaml", 0, {"atelier"}, context) == "hub"
    assert kind("jupyterhub -f c.py", 0, {"stock"}, context) == "stock hub"
    assert kind("jupyterhub-singleuser", 1001, {"stock"}, context) == "trainee servers"
    assert kind("node configurable-http-proxy", 0, {"stock"}, context) == "proxy"
    assert kind("python -m ipykernel_launcher", 0, {"voila"}, context) == "stock voila"
    assert kind("sshd", 0, set(), context) is None


def test_the_harness_reads_the_estimate_the_waiting_page_shows():
    """The minutes on the real waiting page (both languages) are what the harness compares."""
    from atelier import pages
    from atelier.languages import words

    def page(minutes):
        return pages.render("atelier.public", "apps-busy.html", retry=5, place=12, minutes=minutes,
                            en=words("atelier.public", "wait", "en"),
                            fr=words("atelier.public", "wait", "fr"))  # fmt: skip

    assert lp.estimate_shown(page(3)) == 3
    assert lp.estimate_shown(page(None)) is None
    assert lp.estimate_shown("<p>an error page</p>") is None


def test_a_wait_keeps_to_its_estimate_up_to_the_whole_minutes_shown():
    """'About 2 minutes' is kept by a wait of 120 s, not by one of 121 s."""
    assert lp.against_estimate(2, 120.0) == "within the estimate shown"
    assert lp.against_estimate(2, 121.0) == "later than the estimate shown"
    assert lp.against_estimate(1, 3.0) == "within the estimate shown"
