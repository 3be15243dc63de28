"""The load harness's pure parts: arrival profiles, percentiles, the rate that holds, the roster.

Rule: nothing here touches the network, a process or gevent, so that ``tests/unit`` can import it
without the monkey-patching Locust does at import; ``benchmarks/bench_load.py`` drives the real
protocols from these plans. Numbers of people and windows come from issue 20 ("The IIOE's 400"):
``--scale`` multiplies the people, a rate factor divides the window (2 = the same people arriving
twice as fast).
"""

from __future__ import annotations

import csv
import math
import random
import re
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Profile:
    """One arrival profile at full size (issue 20's figures).

    Attributes:
        name: ``day``, ``webinar`` or ``deadline``.
        trainees: trainees who arrive (log in, or submit for ``deadline``).
        visitors: anonymous visitors of a public app.
        window: seconds over which they all arrive.
        active: trainees who then work (widget events and saves) at once.
        lab_share: the share of trainees who also open JupyterLab.
        submit: whether trainees submit (the deadline: at their arrival moment).
    """

    name: str
    trainees: int
    visitors: int
    window: float
    active: int
    lab_share: float = 0.2
    submit: bool = False


PROFILES = {
    # 400 trainees log in over 10 minutes; 150 of them work at once.
    "day": Profile("day", trainees=400, visitors=0, window=600, active=150),
    # The webinar link: 200 trainees and 400 anonymous visitors click within 60 s.
    "webinar": Profile("webinar", trainees=200, visitors=400, window=60, active=0),
    # The deadline: 100 submissions within 60 s, instant feedback on.
    "deadline": Profile("deadline", trainees=100, visitors=0, window=60, active=0, submit=True),
}

#: The actions with a p95 target (their names in the harness's reports).
WIDGET_TARGET = "widget event (comm update → idle)"
USABLE_TARGET = "login → workbook usable"
RENDERED_TARGET = "visitor: click → app rendered"
#: The first page a visitor gets, the app or the apps' waiting page (its headers, as a browser
#: starts showing it).
FIRST_RESPONSE_TARGET = "visitor: click → first page (app or waiting page)"
HUB_TARGET = "hub API /hub/api/users"
#: p95 targets of issue 20, in milliseconds.
TARGETS_MS = {
    WIDGET_TARGET: 500,
    USABLE_TARGET: 5000,
    RENDERED_TARGET: 2000,
    FIRST_RESPONSE_TARGET: 2000,
    HUB_TARGET: 200,
}
#: Actions whose p95 target applies only in some profiles (login → usable: "during the webinar").
TARGET_PROFILES = {USABLE_TARGET: {"webinar"}}

#: Work of an active trainee (seconds between events, around these means).
WIDGET_EVERY = 10.0
SAVE_EVERY = 30.0


@dataclass
class Arrival:
    """One simulated person of a run: who, when (seconds after the run's start), what they do."""

    kind: str  # "trainee" or "visitor"
    at: float
    index: int = 0
    active: bool = False
    lab: bool = False
    submit: bool = False
    extra: dict = field(default_factory=dict)


def scaled(count: int, scale: float) -> int:
    """``count`` people at ``scale`` (at least one when the profile has any)."""
    return 0 if count == 0 else max(1, round(count * scale))


def schedule(profile: Profile, scale: float = 1.0, rate: float = 1.0, seed: int = 20):
    """The arrivals of ``profile`` at ``scale``, arriving ``rate`` times as fast as the issue's.

    Each person arrives at a uniformly random moment of the window (``window / rate`` seconds),
    as people clicking one link or logging in over a morning do; trainees and visitors are drawn
    independently. The ``active`` trainees (scaled) are a random choice among those who arrive,
    and so are the ``lab_share`` who also open JupyterLab. Deterministic for a ``seed``.

    Returns:
        the arrivals sorted by time; trainee ``index`` numbers are 0..n-1 in arrival order.
    """
    if scale <= 0 or rate <= 0:
        raise ValueError(f"scale and rate must be positive (scale={scale}, rate={rate})")
    rng = random.Random(f"{profile.name}-{seed}")
    window = profile.window / rate
    trainees = scaled(profile.trainees, scale)
    visitors = scaled(profile.visitors, scale)
    active = min(trainees, scaled(profile.active, scale))
    times = sorted(rng.uniform(0, window) for _ in range(trainees))
    working = set(rng.sample(range(trainees), active))
    in_lab = set(rng.sample(range(trainees), round(trainees * profile.lab_share)))
    people = [
        Arrival("trainee", t, i, i in working, i in in_lab, profile.submit)
        for i, t in enumerate(times)
    ]
    people += [
        Arrival("visitor", t, i)
        for i, t in enumerate(sorted(rng.uniform(0, window) for _ in range(visitors)))
    ]
    return sorted(people, key=lambda a: (a.at, a.kind, a.index))


def arrival_rate(profile: Profile, scale: float, rate: float) -> float:
    """Arrivals per second of ``profile`` at ``scale`` and rate factor ``rate``."""
    people = scaled(profile.trainees, scale) + scaled(profile.visitors, scale)
    return people / (profile.window / rate)


def percentile(values, fraction: float) -> float | None:
    """The nearest-rank percentile (``fraction`` 0.95 for p95); None for no values.

    The smallest value with at least that share of the values at or below it: a value that was
    measured, never one interpolated between two.
    """
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def meets_targets(profile: str, p95_ms: dict, failures: int, targets=None) -> tuple[bool, list]:
    """Whether one run holds: zero failures and every measured targeted action within its p95.

    Args:
        profile: the profile's name (some targets hold only in some profiles).
        p95_ms: action name -> p95 in milliseconds (None when the action had no sample).
        failures: failed requests of any action in the run.
        targets: action -> p95 limit (default :data:`TARGETS_MS`).

    Returns:
        (held, the reasons it did not, e.g. ``["widget event ...: p95 620 ms > 500 ms"]``).
    """
    targets = TARGETS_MS if targets is None else targets
    reasons = [f"{failures} failed requests"] if failures else []
    for action, limit in targets.items():
        if profile not in TARGET_PROFILES.get(action, {profile}):
            continue
        value = p95_ms.get(action)
        if value is not None and value > limit:
            reasons.append(f"{action}: p95 {value:.0f} ms > {limit} ms")
    return not reasons, reasons


def targets_held(profile: str, p95_ms: dict, failures: int, targets=None) -> dict[str, bool]:
    """Each target of one run on its own: held when within its p95 limit and nothing failed.

    A target with no sample has nothing against it. Which targets hold at which rate tells which
    part of the machine runs out first (:func:`meets_targets` asks for all of them at once).
    """
    targets = TARGETS_MS if targets is None else targets
    return {
        action: not failures and (p95_ms.get(action) is None or p95_ms[action] <= limit)
        for action, limit in targets.items()
        if profile in TARGET_PROFILES.get(action, {profile})
    }


#: A request line of JupyterHub's log: status, method, path, who asked, and the hub's own time.
HUB_LOG_REQUEST = re.compile(
    r"\] (\d{3}) (GET|POST|PUT|PATCH|DELETE) (\S+) \(([^)]*)\) ([\d.]+)ms$"
)


def hub_side_times(log_text: str, path: str = "/hub/api/users", who: str = "load@") -> list:
    """The hub's own handling times (ms) of ``path`` asked by ``who``, read from the hub's log."""
    times = []
    for line in log_text.splitlines():
        match = HUB_LOG_REQUEST.search(line)
        if match and match[3] == path and match[4].startswith(who):
            times.append(float(match[5]))
    return times


def highest_rate(runs: list[tuple[float, bool]]) -> float | None:
    """The highest rate factor up to which every run held (None if the lowest did not).

    ``runs`` are (rate, held) pairs in any order. A rate that held above one that did not is
    not counted: "holds up to r" must hold for every rate tried below r too.
    """
    best = None
    for rate, held in sorted(runs):
        if not held:
            break
        best = rate
    return best


class RosterError(ValueError):
    """A roster file the harness cannot use; the message names the file and line."""


#: The estimated wait on the apps' waiting page (``public/templates/apps-busy.html``), in minutes.
ESTIMATE = re.compile(r'class="estimate" data-minutes="(\d+)"')


def estimate_shown(page: str) -> int | None:
    """The estimated wait, in whole minutes, a waiting page shows; None when it shows none."""
    found = ESTIMATE.search(page or "")
    return int(found.group(1)) if found else None


def against_estimate(minutes: int, waited: float) -> str:
    """How a real wait (seconds from the first estimate shown until served) kept to it.

    The page rounds the estimate up to whole minutes ("about N minutes"): served within N
    minutes kept the promise; later did not.
    """
    return (
        "within the estimate shown" if waited <= 60 * minutes else "later than the estimate shown"
    )


def read_roster(path: Path) -> list[tuple[str, str]]:
    """(username, password) pairs from a CSV with ``username`` and ``password`` columns.

    What ``atelier roster import --passwords-file`` writes, or any hub's list of test accounts;
    other columns are ignored.

    Raises:
        RosterError: no such columns, an empty value, or a username twice (file and line named).
    """
    path = Path(path)
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as error:
        raise RosterError(f"{path}: cannot read the roster ({error.strerror})") from None
    with handle:
        reader = csv.DictReader(handle)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        missing = [c for c in ("username", "password") if c not in columns]
        if missing:
            raise RosterError(f"{path}, line 1: missing column(s) {', '.join(missing)}")
        reader.fieldnames = columns
        people, seen = [], set()
        for row in reader:
            line = reader.line_num
            username = (row.get("username") or "").strip()
            password = row.get("password") or ""
            if not username or not password:
                raise RosterError(f"{path}, line {line}: empty username or password")
            if username in seen:
                raise RosterError(f"{path}, line {line}: {username} is listed twice")
            seen.add(username)
            people.append((username, password))
    if not people:
        raise RosterError(f"{path}: no one in the roster")
    return people


#: Process kinds PSS is reported by.
KINDS = ("hub", "proxy", "trainee servers", "kernels", "apps service", "instant grading",
         "stock hub", "stock voila")  # fmt: skip


def process_kind(cmdline: str, uid: int, ancestry: set[str], context: dict) -> str | None:
    """Which kind a process is, for PSS per kind; None if it is not one of the run's.

    Args:
        cmdline: the process's command line, space-joined.
        uid: its owner.
        ancestry: the run's root processes it descends from (``"atelier"``, ``"stock"``,
            ``"voila"``, ``"proxy"``), itself included.
        context: ``trainee_uids`` (set), ``apps_uid`` (int or None).
    """
    kernel = "ipykernel" in cmdline
    if "stock" in ancestry:
        if "configurable-http-proxy" in cmdline:
            return "proxy"
        if uid in context.get("trainee_uids", ()):
            return "kernels" if kernel else "trainee servers"
        return "stock hub"
    if "voila" in ancestry:
        return "stock voila"
    if uid in context.get("trainee_uids", ()):
        return "kernels" if kernel else "trainee servers"
    if context.get("apps_uid") is not None and uid == context["apps_uid"]:
        return "apps service"
    if "proxy" in ancestry or ("configurable-http-proxy" in cmdline and "atelier" in ancestry):
        return "proxy"
    if "atelier" in ancestry:
        return "instant grading" if "instant" in cmdline else "hub"
    return None
