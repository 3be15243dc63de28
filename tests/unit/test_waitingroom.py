"""The public apps' waiting room: first come, first served, places kept, memory bounded."""

from __future__ import annotations

import pytest

from atelier.public.waitingroom import RETRY_MAX, WaitingRoom, minutes

pytestmark = pytest.mark.unit


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def room(**kwargs) -> tuple[WaitingRoom, Clock]:
    clock = Clock()
    return WaitingRoom(clock=clock, **kwargs), clock


def test_visitors_go_straight_in_while_there_is_room():
    """With room and nobody waiting, is a visitor let in without a ticket?"""
    line, _ = room()
    verdict = line.arrive(None, free=2)
    assert verdict.admitted and verdict.ticket == ""
    assert len(line) == 0


def test_first_come_first_served():
    """When one kernel frees, does it go to the first who waited, not the latest or a newcomer?"""
    line, clock = room()
    first = line.arrive(None, free=0)
    second = line.arrive(None, free=0)
    assert not first.admitted and (first.position, second.position) == (0, 1)
    clock.now += 2
    # One kernel is free: the second visitor asks first, and must not take it.
    assert not line.arrive(second.ticket, free=1).admitted
    # Nor a newcomer, who goes behind both.
    newcomer = line.arrive(None, free=1)
    assert not newcomer.admitted and newcomer.position == 2
    assert line.arrive(first.ticket, free=1).admitted
    # The second is now at the front.
    again = line.arrive(second.ticket, free=1)
    assert again.admitted
    assert line.arrive(newcomer.ticket, free=0).position == 0


def test_a_visitor_keeps_their_place_across_polls():
    """Does asking again keep a visitor's position (not a new ticket at the back)?"""
    line, clock = room()
    tickets = [line.arrive(None, free=0).ticket for _ in range(5)]
    clock.now += 3
    verdict = line.arrive(tickets[2], free=0)
    assert verdict.position == 2 and verdict.ticket == tickets[2]
    assert len(line) == 5


def test_forged_or_foreign_tickets_get_a_place_at_the_back():
    """Can a visitor jump the line with a made-up ticket (a lower number, another run's)?"""
    line, _ = room()
    for _ in range(3):
        line.arrive(None, free=0)
    other_run = WaitingRoom().sign(1)
    for forged in ("1.deadbeef", "1", "0.x", other_run, "x" * 5000, "-1.abc", "1." + "0" * 20):
        verdict = line.arrive(forged, free=1)
        assert not verdict.admitted, forged
        assert verdict.position >= 3, forged


def test_a_visitor_who_stops_asking_leaves_the_line():
    """Does a closed tab's ticket expire, so that the visitors behind move up?"""
    line, clock = room(retry=3)
    gone = line.arrive(None, free=0)
    staying = line.arrive(None, free=0)
    for _ in range(10):
        clock.now += staying.retry
        staying = line.arrive(staying.ticket, free=0)
    assert staying.position == 0
    assert line.arrive(gone.ticket, free=0).position == 1  # came back: a new place at the back


def test_the_line_is_bounded():
    """Past ``capacity`` waiting, is a visitor still answered politely, without a place?"""
    line, _ = room(capacity=3)
    for _ in range(3):
        line.arrive(None, free=0)
    verdict = line.arrive(None, free=0)
    assert not verdict.admitted and verdict.position is None and verdict.ticket == ""
    assert verdict.retry == RETRY_MAX
    assert len(line) == 3


def test_the_wait_is_estimated_from_how_fast_the_line_moves():
    """Once visitors leave the line at a steady pace, is the wait position / pace?"""
    line, clock = room()
    tickets = [line.arrive(None, free=0).ticket for _ in range(40)]
    assert line.arrive(tickets[-1], free=0).wait is None  # nobody served yet: no guess
    for served, ticket in enumerate(tickets[:20]):  # one served every 3 s
        clock.now += 3
        for other in tickets[served + 1 :]:
            line.arrive(other, free=0)  # everyone keeps asking
        assert line.arrive(ticket, free=1).admitted
    verdict = line.arrive(tickets[-1], free=0)
    assert verdict.position == 19
    assert verdict.wait == pytest.approx(20 * 3, rel=0.1)
    assert minutes(verdict.wait) == 1


def test_pages_far_back_ask_less_often():
    """Do visitors at the back poll less often than the front, within [retry, RETRY_MAX]?"""
    line, _ = room(retry=3)
    verdicts = [line.arrive(None, free=0) for _ in range(400)]
    assert verdicts[0].retry == 3
    assert 3 < verdicts[-1].retry <= RETRY_MAX


def test_a_visitor_whose_kernel_went_elsewhere_gets_their_place_back():
    """If the kernel a waiting visitor was let in for is taken first, do they keep the front?"""
    line, _ = room()
    first = line.arrive(None, free=0)
    second = line.arrive(None, free=0)
    admitted = line.arrive(first.ticket, free=1)
    assert admitted.admitted and admitted.ticket == first.ticket
    line.give_back(admitted.ticket)
    assert line.arrive(first.ticket, free=0).position == 0
    assert line.arrive(second.ticket, free=0).position == 1
    # A newcomer let in at once has no place to go back to: the back of the line.
    newcomer = line.arrive(None, free=5)
    assert newcomer.admitted and newcomer.ticket == ""
