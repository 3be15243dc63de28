"""Who reviews whom, and what the reviews add up to: pure functions, no file, no clock.

Rule: only trainees who submitted review and are reviewed; nobody reviews their own submission;
with ``n`` submitters and ``k`` reviews wanted, each reviewer gets ``min(k, n - 1)`` submissions
and each submission gets as many reviewers (a circulant: the submitters in an order shuffled by
the seed, each reviewing the next ``k`` in that circle), so the same seed gives the same
assignment. A review a reviewer missed goes to another submitter who is not its author, was never
given that submission, and holds the fewest reviews, those who did all theirs first (Moodle's
workshop and CoCalc's peer grading hand out the same way: every submission reviewed as often, no
self-review).

The peer score of a submission is the median (or mean) of its reviews' totals, each total the sum
of the rubric's criteria as that reviewer scored them.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Iterable, Mapping


def assign(authors: Iterable[str], k: int, seed: int | str) -> list[tuple[str, str]]:
    """``(reviewer, author)`` pairs: balanced, no self-review, deterministic for ``seed``.

    Args:
        authors: the accounts that submitted (each is also a reviewer).
        k: reviews wanted per submission; fewer when the cohort is smaller than ``k + 1``.
        seed: the same seed and authors give the same pairs.
    """
    order = sorted(set(authors))
    random.Random(str(seed)).shuffle(order)
    n = len(order)
    per = max(0, min(k, n - 1))
    return [(order[i], order[(i + step) % n]) for i in range(n) for step in range(1, per + 1)]


def pick_reviewer(
    author: str,
    candidates: Iterable[str],
    excluded: set[str],
    load: Mapping[str, int],
    reliable: set[str],
    seed: int | str,
) -> str | None:
    """The reviewer who takes over a missed review of ``author``'s submission, or ``None``.

    Args:
        author: whose submission it is (never its own reviewer).
        candidates: every submitter.
        excluded: who was already given this submission (in any round) or missed it.
        load: reviews each candidate holds now.
        reliable: who has done every review they were given (preferred).
        seed: breaks ties the same way every time.
    """
    pool = [c for c in sorted(set(candidates)) if c != author and c not in excluded]
    if not pool:
        return None
    rank = random.Random(f"{seed}/{author}")
    ties = {c: rank.random() for c in pool}
    return min(pool, key=lambda c: (c not in reliable, load.get(c, 0), ties[c]))


def total(scores: Iterable[float | None]) -> float | None:
    """A review's total: the sum of its criteria, ``None`` if a criterion is unscored."""
    values = list(scores)
    if not values or any(v is None for v in values):
        return None
    return round(sum(values), 2)


def aggregate(totals: Iterable[float | None], how: str = "median") -> float | None:
    """The peer score of a submission from its reviews' totals (``median`` or ``mean``)."""
    values = [v for v in totals if v is not None]
    if not values:
        return None
    value = statistics.median(values) if how == "median" else statistics.fmean(values)
    return round(value, 2)


def per_criterion(reviews: Iterable[list[float | None]], how: str = "median") -> list[float | None]:
    """Each criterion's peer score over reviews (lists of scores in the rubric's order)."""
    columns = list(zip(*reviews, strict=True))
    return [aggregate(column, how) for column in columns]
