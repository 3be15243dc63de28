"""Submissions collected after a peer review opened, brought into it while it is open.

Rule: as Moodle's workshop lets the facilitator allocate submissions that came after the
allocation, ``atelier peer add`` gives each one the same treatment as at the opening
(:mod:`atelier.grading.peerreview.assign`): reviewers among the submitters, nobody their own,
loads kept within one review of each other. Pure: a record in, the record changed; no file.
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Mapping
from datetime import datetime

from atelier.grading.course import GradingError
from atelier.grading.peerreview import assign, state


def add_submissions(
    record: dict, late: Mapping[str, tuple[str, str]], at: datetime
) -> list[tuple[str, list[str], list[str]]]:
    """Bring submissions collected after the opening into the open review.

    Moodle's workshop lets the facilitator allocate those too. Each new submission gets
    ``min(k, n - 1)`` reviewers and its author as many submissions to review, with the
    rules: only submitters, nobody their own, the least loaded first (reviewers who missed
    nothing before those who did), ties broken by the seed; the due date stays.
    ``late`` maps an account to (assignment, text); accounts already in are skipped.

    Returns ``(account, its reviewers, the authors it reviews)`` per submission added.
    """
    if state.is_closed(record):
        raise GradingError(
            f"the peer review of {record['workbook']} in cohort {record['cohort']} is closed: "
            "a submission cannot join it any more"
        )
    reviews = record["reviews"]
    added = []
    for account, (assignment, text) in sorted(late.items()):
        if state.submission_of(record, account) is not None:
            continue
        if assignment not in record["rubrics"]:
            raise GradingError(
                f"{account}'s submission is of {assignment}, which this peer review has no "
                "rubric for (it was not released when the review opened)"
            )
        others = {s["author"] for s in record["submissions"].values()}
        sid = secrets.token_hex(8)
        record["submissions"][sid] = {
            "author": account,
            "assignment": assignment,
            "text": text,
            "added": state.stamp(at),
        }
        per = min(record["k"], len(others))
        missed = {m["reviewer"] for m in record["missed"]}
        load = {a: 0 for a in others}
        for review in reviews.values():
            if review["state"] != "missed" and review["reviewer"] in load:
                load[review["reviewer"]] += 1
        reviewers = []
        for _ in range(per):
            chosen = assign.pick_reviewer(
                account, others, set(reviewers), load, others - missed, f"{record['seed']}/{sid}"
            )
            if chosen is None:
                break
            reviewers.append(chosen)
            load[chosen] += 1
            reviews[secrets.token_hex(8)] = state.new_review(sid, chosen, record["round"])
        # The late author reviews the submissions with the fewest live reviews.
        live = {s: 0 for s, each in record["submissions"].items() if each["author"] != account}
        for review in reviews.values():
            if review["state"] != "missed" and review["submission"] in live:
                live[review["submission"]] += 1
        rank = random.Random(f"{record['seed']}/{sid}/to-review")
        ties = {s: rank.random() for s in sorted(live)}
        chosen_sids = sorted(live, key=lambda s: (live[s], ties[s]))[:per]
        for each in chosen_sids:
            reviews[secrets.token_hex(8)] = state.new_review(each, account, record["round"])
        authors = [record["submissions"][each]["author"] for each in chosen_sids]
        added.append((account, reviewers, authors))
    return added
