"""The public apps' waiting room: visitors beyond the kernel bound keep their place in a queue.

Rule: first come, first served. A visitor who finds every kernel taken gets a ticket (a number,
in a signed cookie) and a page that asks again by itself; a free kernel goes to the lowest ticket
still waiting, never to someone who arrived later or has no ticket. A ticket whose holder stops
asking (the tab was closed) expires after a few missed polls, so a departed visitor does not hold
up the line. Memory is bounded: at most ``capacity`` tickets (a number and a deadline each); a
visitor beyond that is still asked politely to wait, without a place, and asks again later.

Nothing here knows about Voila or Tornado: :class:`WaitingRoom` is told how many visitors can be
served now and answers who may go in (``appsserver.AppPageHandler`` does the HTTP side).
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import math
import os
import time
from dataclasses import dataclass

#: Seconds of admissions the estimated wait is computed from.
RATE_WINDOW = 300.0
#: The shortest span a rate is measured over: the first admissions after a burst come in a
#: bunch, and a rate from a few seconds of them would promise a far shorter wait than the truth.
RATE_MIN_SPAN = 30.0
#: Longest time between two polls of a waiting page, in seconds.
RETRY_MAX = 30
#: Admissions kept to measure the rate (bounded memory).
RATE_SAMPLES = 200


@dataclass
class Verdict:
    """What to tell one visitor.

    Attributes:
        admitted: the visitor may be served now (a kernel is theirs to take).
        ticket: the visitor's signed ticket: their place (to keep in a cookie) while they wait,
            the place they left when let in from the line (see :meth:`WaitingRoom.give_back`);
            "" for a newcomer let in at once, or when the line is full.
        position: visitors before this one (0: next), None when the queue is full.
        wait: estimated seconds until served, None while nobody has been served recently.
        retry: seconds after which the visitor's page should ask again.
    """

    admitted: bool
    ticket: str = ""
    position: int | None = None
    wait: float | None = None
    retry: int = 0


class WaitingRoom:
    """A bounded first-come-first-served queue of visitors waiting for a kernel."""

    def __init__(self, capacity: int = 2000, retry: int = 3, clock=time.monotonic):
        """A waiting room holding at most ``capacity`` tickets; the front asks every ``retry`` s.

        Visitors far back in the line are asked to come back less often (up to
        :data:`RETRY_MAX`): a long line must not cost the server more requests than the kernels
        it waits for, and a free kernel waits for the front of the line only a few seconds.
        """
        self.capacity = capacity
        self.retry = retry
        self.clock = clock
        self._secret = os.urandom(32)  # tickets from a previous run are unknown: a new place
        self._next = 1
        self._waiting: dict[int, float] = {}  # ticket number -> deadline to ask again by
        self._admissions: collections.deque[float] = collections.deque(maxlen=RATE_SAMPLES)

    # -- tickets
    def sign(self, number: int) -> str:
        """The ticket for ``number``: the number and its MAC (a visitor cannot pick a lower one)."""
        mac = hmac.new(self._secret, str(number).encode(), hashlib.sha256).hexdigest()[:20]
        return f"{number}.{mac}"

    def number(self, ticket: str | None) -> int | None:
        """The number of a genuine ticket, or None (missing, forged, from another run)."""
        if not ticket or "." not in ticket:
            return None
        text = ticket.partition(".")[0]
        if not text.isdigit() or len(text) > 18:
            return None
        return int(text) if hmac.compare_digest(self.sign(int(text)), ticket) else None

    # -- the line
    def __len__(self) -> int:
        """Visitors waiting (expired tickets dropped)."""
        self._expire()
        return len(self._waiting)

    def _expire(self) -> None:
        now = self.clock()
        for number in [n for n, deadline in self._waiting.items() if deadline < now]:
            del self._waiting[number]

    def _position(self, number: int) -> int:
        return sum(1 for other in self._waiting if other < number)

    def _retry_for(self, position: int, wait: float | None) -> int:
        """Seconds before asking again: soon near the front, less often far back."""
        # A quarter of the expected wait, or (before any rate is known) a second more every 20
        # places: 400 waiting visitors then ask ~40 times a second, not 130.
        seconds = self.retry + position / 20 if wait is None else max(self.retry, wait / 4)
        return int(min(seconds, RETRY_MAX))

    def _keep(self, number: int, retry: int) -> None:
        # A visitor who misses two polls (and some slack for a slow link) has left.
        self._waiting[number] = self.clock() + 2 * retry + 10

    def rate(self) -> float | None:
        """Visitors admitted per second over the last :data:`RATE_WINDOW`, None if too few."""
        now = self.clock()
        recent = [t for t in self._admissions if t >= now - RATE_WINDOW]
        if len(recent) < 2:
            return None
        return len(recent) / max(now - recent[0], RATE_MIN_SPAN)

    def estimate(self, position: int) -> float | None:
        """Seconds until the visitor at ``position`` is likely served, None when unknown."""
        rate = self.rate()
        return None if rate is None else (position + 1) / rate

    def arrive(self, ticket: str | None, free: int) -> Verdict:
        """Decide for a visitor holding ``ticket`` (None: none yet) when ``free`` can be served.

        Admits the visitor when fewer than ``free`` visitors wait ahead of them (a newcomer is
        behind everyone waiting); otherwise gives them a ticket, or keeps theirs, with their place
        in the line.
        """
        self._expire()
        number = self.number(ticket)
        if number is not None and number not in self._waiting:
            number = None  # expired or already served: a new place at the back
        if number is None:
            position = len(self._waiting)
            if position < free:
                return Verdict(True)  # nobody is kept waiting by this one
            if position >= self.capacity:
                return Verdict(False, position=None, retry=RETRY_MAX)
            number = self._next
            self._next += 1
            self._waiting[number] = 0.0
        else:
            position = self._position(number)
            if position < free:
                return self._admit(number)
        wait = self.estimate(position)
        retry = self._retry_for(position, wait)
        self._keep(number, retry)
        return Verdict(False, self.sign(number), position, wait, retry)

    def _admit(self, number: int) -> Verdict:
        # Only admissions from the line measure how fast it moves.
        del self._waiting[number]
        self._admissions.append(self.clock())
        return Verdict(True, self.sign(number))

    def give_back(self, ticket: str) -> None:
        """Put a visitor let in from the line back at their place (their kernel went elsewhere).

        ``ticket`` is the one of their admission's :class:`Verdict` (a newcomer has none).
        """
        number = self.number(ticket)
        if number is not None:
            self._keep(number, self.retry)


def minutes(seconds: float | None) -> int | None:
    """``seconds`` as whole minutes, rounded up, at least 1 (None stays None)."""
    return None if seconds is None else max(1, math.ceil(seconds / 60))
