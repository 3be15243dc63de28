"""A released workbook's policy: practice or assessed, attempts, instant feedback, closing at due.

Rule: the facilitator chooses the policy when releasing (``atelier release --mode --attempts
--instant-feedback/--no-instant-feedback --close-at-due``); it is written as ``policy.json`` in the
assignment's outbound folder, beside the student version, in the same staged folder that is
renamed into place (so the policy and the files it governs change together), owned by the grader
account and readable by everyone. Trainees' servers (home, view, submit) read it for what they
show; the facilitators' side enforces it: collect counts attempts and closes at the due date
(:func:`limits_for`), the instant grading service and ``atelier feedback`` release only what it
allows (:meth:`Policy.shows_diagnostics`). A missing file is the default policy (assessed, one
attempt, instant feedback), so a workbook released before policies existed behaves as one
released today with no option.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from atelier.grading.course import GradingError

POLICY_FILE = "policy.json"
MODES = ("practice", "assessed")
FORMAT = "atelier-policy"


@dataclass(frozen=True)
class Policy:
    """How trainees may submit one released workbook and what feedback they get, and when."""

    mode: str = "assessed"
    #: Submissions that count; 0 means unlimited (practice), within ``grading.max_submissions``.
    attempts: int = 1
    instant_feedback: bool = True
    close_at_due: bool = False
    #: ISO 8601 with a time zone, or empty: no due date.
    due: str = ""

    @classmethod
    def make(cls, mode: str = "assessed", attempts: int | None = None, instant_feedback=True,
             close_at_due=False, due: datetime | None = None) -> Policy:  # fmt: skip
        """A checked policy from the release options (``attempts`` None: the mode's default)."""
        if mode not in MODES:
            raise GradingError(f"--mode {mode!r}: choose one of {', '.join(MODES)}")
        if attempts is None:
            attempts = 0 if mode == "practice" else 1
        if attempts < 0:
            raise GradingError(f"--attempts {attempts}: give 1 or more (0: unlimited)")
        if close_at_due and due is None:
            raise GradingError("--close-at-due needs a due date: give --due too")
        return cls(mode, attempts, bool(instant_feedback), bool(close_at_due),
                   due.isoformat() if due is not None else "")  # fmt: skip

    @classmethod
    def parse(cls, text: str | bytes, source: str = POLICY_FILE) -> Policy:
        """The policy in a ``policy.json`` text; a wrong file is an error naming the key."""
        try:
            data = json.loads(text)
        except ValueError as error:
            raise GradingError(f"{source}: not JSON ({error})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise GradingError(f"{source}: not an Atelier policy (format {FORMAT!r} expected)")
        fields = {}
        for key, kind in (("mode", str), ("attempts", int), ("instant_feedback", bool),
                          ("close_at_due", bool), ("due", str)):  # fmt: skip
            value = data.get(key, getattr(cls, key))
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise GradingError(f"{source}: key {key!r} must be a {kind.__name__}")
            fields[key] = value
        if fields["mode"] not in MODES:
            raise GradingError(f"{source}: key 'mode' must be one of {', '.join(MODES)}")
        if fields["due"]:
            try:
                due = datetime.fromisoformat(fields["due"])
            except ValueError:
                raise GradingError(f"{source}: key 'due' is not an ISO 8601 date") from None
            if due.tzinfo is None:
                raise GradingError(f"{source}: key 'due' needs a time zone")
        return cls(**fields)

    def text(self, assignment: str) -> str:
        """The ``policy.json`` content for ``assignment``."""
        data = {"format": FORMAT, "version": 1, "assignment": assignment, **asdict(self)}
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @property
    def due_time(self) -> float | None:
        """The due date in seconds since the epoch, or None."""
        return datetime.fromisoformat(self.due).timestamp() if self.due else None

    def past_due(self, now: float | None = None) -> bool:
        """Whether the due date has passed (never, without one)."""
        due = self.due_time
        return due is not None and (now if now is not None else _now()) > due

    def closed(self, now: float | None = None) -> bool:
        """Whether submission is closed now (closing at the due date, and it has passed)."""
        return self.close_at_due and self.past_due(now)

    def attempts_left(self, used: int) -> int | None:
        """Attempts left after ``used`` counted submissions; None: unlimited."""
        if self.attempts == 0:
            return None
        return max(0, self.attempts - used)

    def shows_diagnostics(self, used: int, now: float | None = None) -> bool:
        """Whether feedback may show diagnostics, not only which items are right.

        Practice: always. Assessed: after the last attempt, or once the due date has passed.
        """
        if self.mode == "practice":
            return True
        left = self.attempts_left(used)
        return left == 0 or self.past_due(now)


def _now() -> float:
    return datetime.now(UTC).timestamp()


def read_policy(course, assignment: str) -> Policy:
    """The policy of ``assignment`` in ``course``'s outbound folder (default when there is none).

    ``outbound/`` is root's and the grader account's; the file is read without following a link.
    """
    from atelier.grading import safefs

    try:
        with safefs.opened_dir(course.exchange, ["outbound", assignment]) as folder:
            text = safefs.read_at(folder, POLICY_FILE, course.outbound / assignment / POLICY_FILE,
                                  1 << 16)  # fmt: skip
    except FileNotFoundError:
        return Policy()
    return Policy.parse(text, str(course.outbound / assignment / POLICY_FILE))


def read_policy_file(path: str | os.PathLike) -> Policy:
    """The policy in a ``policy.json`` file a trainee's server reads (default when missing)."""
    try:
        text = Path(path).read_bytes()
    except FileNotFoundError:
        return Policy()
    return Policy.parse(text, str(path))


def limits_for(policy: Policy, limits):
    """Collect's limits for an assignment under ``policy``: attempts counted, closed at due.

    Attempts are the submissions collect may take (the newest valid one of the first N counts);
    ``grading.max_submissions`` stays the ceiling.
    """
    most = limits.max_submissions
    if policy.attempts:
        most = min(most, policy.attempts)
    closes = policy.due_time if policy.close_at_due else None
    return replace(limits, max_submissions=most, closes_at=closes)
