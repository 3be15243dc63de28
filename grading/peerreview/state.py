"""One peer review of a workbook in a cohort: its record, its phases, and what each person sees.

Rule: a peer review is one JSON file, ``<hub.state_dir>/peerreview/<cohort>/<workbook>.json``
(the hub's state directory is root's: folders 0700, the file 0600; ``grading.peer_review
.state_dir`` moves it, as a cluster does to the courses volume), written whole
(:func:`atelier.files.atomic_write`) under a lock shared by the ``atelier peer`` verbs and the
``atelier-peer`` service. No trainee's account can read or change it. The reflections are copied
into it when the review opens (root reads them from the collected submissions through
:mod:`atelier.grading.safefs`), so the service never opens a trainee's file afterwards: what is
reviewed is the submission collected when the review opened (or, for one collected later, when
``atelier peer add`` brought it in: :mod:`atelier.grading.peerreview.late`).

Phases, from the clock at each read (:func:`advance`):

1. *open* until ``due``: reviewers score and comment, and may change their review;
2. at ``due``, every review not done is *missed* (reported) and handed to another submitter
   (:func:`atelier.grading.peerreview.assign.pick_reviewer`) with a new due date,
   ``grace_days`` later (``atelier peer reassign`` does it at once); with ``grace_days`` 0 there
   is no second round;
3. *closed* at the last due date or by ``atelier peer close``: no more reviews; each author sees
   the reviews of their submission, anonymous; the facilitator accepts or overrides the peer score.

Ids of submissions and reviews are random (``secrets``), but the service never relies on that:
every request is checked against who the hub says is asking.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

from atelier.files import atomic_write
from atelier.grading.course import GradingError
from atelier.grading.peerreview import assign

FORMAT = "atelier-peer-review"
VERSION = 1
#: The longest comment a reviewer may leave (characters).
MAX_COMMENT = 5000


def now() -> datetime:
    """The server's time, aware (UTC)."""
    return datetime.now(UTC)


def stamp(moment: datetime) -> str:
    """A time as stored: ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_time(text: str) -> datetime:
    """A stored time, or a ``--due`` given as ``YYYY-MM-DD[THH:MM]`` (UTC when no zone is said).

    A bare date means the end of that day, 23:59 UTC.
    """
    try:
        if len(text) == 10:
            return datetime.fromisoformat(text).replace(hour=23, minute=59, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise GradingError(
            f"due date {text!r} is not a date: write YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# --- the file ----------------------------------------------------------------------------------


def folder(state_dir: str | os.PathLike, cohort: str) -> Path:
    """``<state_dir>/peerreview/<cohort>``."""
    return Path(state_dir) / "peerreview" / cohort


def path(state_dir: str | os.PathLike, cohort: str, workbook: str) -> Path:
    """The record of the peer review of ``workbook`` in ``cohort``."""
    return folder(state_dir, cohort) / f"{workbook}.json"


def _ensure_folder(state_dir: str | os.PathLike, cohort: str) -> Path:
    top = Path(state_dir) / "peerreview"
    # The records' own folder too (grading.peer_review.state_dir, which a cluster puts on the
    # courses volume); hub.state_dir exists already, and its mode is left alone.
    Path(state_dir).mkdir(mode=0o700, exist_ok=True)
    for each in (top, top / cohort):
        each.mkdir(mode=0o700, exist_ok=True)
        os.chmod(each, 0o700)
    return top / cohort


@contextlib.contextmanager
def locked(state_dir: str | os.PathLike, cohort: str):
    """An exclusive lock on a cohort's peer reviews (the verbs and the service take turns)."""
    where = _ensure_folder(state_dir, cohort)
    fd = os.open(where / ".lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def load(state_dir: str | os.PathLike, cohort: str, workbook: str) -> dict | None:
    """The record, or ``None`` when that workbook was never opened for peer review."""
    file = path(state_dir, cohort, workbook)
    try:
        data = json.loads(file.read_text("utf-8"))
    except FileNotFoundError:
        return None
    except ValueError as error:
        raise GradingError(f"{file} is not a peer review record: {error}") from None
    if data.get("format") != FORMAT:
        raise GradingError(f"{file} is not a peer review record (format {data.get('format')!r})")
    return data


def save(state_dir: str | os.PathLike, record: dict) -> None:
    """Write the record whole (0600, in root's 0700 folders)."""
    _ensure_folder(state_dir, record["cohort"])
    text = json.dumps(record, indent=1, ensure_ascii=False, sort_keys=True) + "\n"
    atomic_write(path(state_dir, record["cohort"], record["workbook"]), text, 0o600)


def reviews_of_cohort(state_dir: str | os.PathLike, cohort: str) -> list[str]:
    """The workbooks of ``cohort`` opened for peer review."""
    where = folder(state_dir, cohort)
    if not where.is_dir():
        return []
    return sorted(p.stem for p in where.glob("*.json"))


# --- opening and the phases --------------------------------------------------------------------


def create(
    cohort: str,
    workbook: str,
    submissions: Mapping[str, tuple[str, str]],
    rubrics: Mapping[str, dict],
    *,
    k: int,
    due: datetime,
    grace_days: int,
    seed: str,
    anonymous: bool,
    how: str,
    at: datetime,
) -> dict:
    """A new record: ``submissions`` maps each submitter's account to (assignment, text)."""
    if len(submissions) < 2:
        raise GradingError(
            f"peer review of {workbook} in cohort {cohort} needs at least two collected "
            f"submissions, found {len(submissions)}: run atelier collect first"
        )
    if due <= at:
        raise GradingError(f"the due date {stamp(due)} is already past")
    ids = {account: secrets.token_hex(8) for account in sorted(submissions)}
    record = {
        "format": FORMAT,
        "version": VERSION,
        "cohort": cohort,
        "workbook": workbook,
        "k": k,
        "seed": seed,
        "anonymous": anonymous,
        "aggregate": how,
        "grace_days": grace_days,
        "opened": stamp(at),
        "due": stamp(due),
        "round": 1,
        "closed": None,
        "rubrics": dict(rubrics),
        "submissions": {
            ids[account]: {"author": account, "assignment": assignment, "text": text}
            for account, (assignment, text) in sorted(submissions.items())
        },
        "reviews": {},
        "missed": [],
        "decisions": {},
        "marks": {},
    }
    for reviewer, author in assign.assign(submissions, k, seed):
        record["reviews"][secrets.token_hex(8)] = new_review(ids[author], reviewer, 1)
    return record


def new_review(submission: str, reviewer: str, round_: int) -> dict:
    """A review given to ``reviewer``, not written yet."""
    return {
        "submission": submission,
        "reviewer": reviewer,
        "round": round_,
        "state": "pending",
        "scores": [],
        "comment": "",
        "saved": None,
    }


def is_closed(record: Mapping) -> bool:
    """Whether the review is closed (the authors see their reviews)."""
    return bool(record.get("closed"))


def advance(record: dict, at: datetime) -> bool:
    """Move the record to the phase the clock says (module's rule); ``True`` if it changed."""
    if is_closed(record) or at < parse_time(record["due"]):
        return False
    if record["round"] == 1 and record["grace_days"] > 0:
        reassign(record, at, parse_time(record["due"]) + timedelta(days=record["grace_days"]))
        if at < parse_time(record["due"]):
            return True
    close(record, at)
    return True


def reassign(record: dict, at: datetime, new_due: datetime) -> list[tuple[str, str | None]]:
    """Mark every pending review missed and hand it to another submitter; a new due date.

    Returns ``(missed reviewer, new reviewer or None)`` per review handed on.
    """
    if is_closed(record):
        raise GradingError("this peer review is closed: nothing to reassign")
    reviews = record["reviews"]
    authors = {s["author"] for s in record["submissions"].values()}
    pending = [(rid, r) for rid, r in sorted(reviews.items()) if r["state"] == "pending"]
    late = {r["reviewer"] for _, r in pending}
    reliable = authors - late
    moves = []
    for rid, review in pending:
        review["state"] = "missed"
        record["missed"].append(
            {
                "reviewer": review["reviewer"],
                "review": rid,
                "round": review["round"],
                "at": stamp(at),
            }
        )
    load = {a: 0 for a in authors}
    for review in reviews.values():
        if review["state"] != "missed":
            load[review["reviewer"]] += 1
    for rid, review in pending:
        submission = review["submission"]
        author = record["submissions"][submission]["author"]
        given = {r["reviewer"] for r in reviews.values() if r["submission"] == submission}
        chosen = assign.pick_reviewer(
            author, authors, given | late, load, reliable, f"{record['seed']}/{rid}"
        )
        moves.append((review["reviewer"], chosen))
        if chosen is not None:
            reviews[secrets.token_hex(8)] = new_review(submission, chosen, record["round"] + 1)
            load[chosen] += 1
    record["round"] += 1
    record["due"] = stamp(new_due)
    return moves


def close(record: dict, at: datetime) -> None:
    """Close the review: pending reviews are missed; the authors see what they received."""
    if is_closed(record):
        return
    for rid, review in sorted(record["reviews"].items()):
        if review["state"] == "pending":
            review["state"] = "missed"
            record["missed"].append(
                {
                    "reviewer": review["reviewer"],
                    "review": rid,
                    "round": review["round"],
                    "at": stamp(at),
                }
            )
    record["closed"] = stamp(at)


# --- reviewing ---------------------------------------------------------------------------------


def rubric_of(record: Mapping, submission: str) -> dict:
    """The rubric of a submission (its assignment's language)."""
    return record["rubrics"][record["submissions"][submission]["assignment"]]


def record_review(
    record: dict, rid: str, reviewer: str, scores: list, comment: str, at: datetime
) -> dict:
    """Save ``reviewer``'s review ``rid``; raises :class:`GradingError` saying what is wrong."""
    review = record["reviews"].get(rid)
    if review is None or review["reviewer"] != reviewer:
        raise PermissionError("not your review")
    if is_closed(record) or review["state"] == "missed":
        raise GradingError("closed")
    criteria = rubric_of(record, review["submission"])["criteria"]
    if len(scores) != len(criteria):
        raise GradingError("incomplete")
    clean = []
    for score, criterion in zip(scores, criteria, strict=True):
        try:
            value = float(score)
        except (TypeError, ValueError):
            raise GradingError("incomplete") from None
        if not 0 <= value <= criterion["points"] or (value * 2) != int(value * 2):
            raise GradingError("incomplete")
        clean.append(int(value) if value == int(value) else value)
    comment = (comment or "").strip()
    if len(comment) > MAX_COMMENT:
        raise GradingError("too_long")
    review.update(scores=clean, comment=comment, state="done", saved=stamp(at))
    return review


def choices(points: float) -> list[float]:
    """The scores a reviewer may give a criterion: 0 to its points.

    By whole points, or by halves when the criterion is worth a fraction.
    """
    step = 0.5 if points != int(points) else 1
    values, value = [], 0.0
    while value <= points + 1e-9:
        values.append(int(value) if value == int(value) else value)
        value += step
    return values


# --- what each person sees ---------------------------------------------------------------------


def to_do(record: Mapping, account: str) -> list[tuple[str, dict]]:
    """The reviews ``account`` was given and may still write or change, by id."""
    if is_closed(record):
        return []
    return [
        (rid, r)
        for rid, r in sorted(record["reviews"].items())
        if r["reviewer"] == account and r["state"] in ("pending", "done")
    ]


def submission_of(record: Mapping, account: str) -> str | None:
    """The id of ``account``'s own submission in this review, if they submitted."""
    for sid, submission in record["submissions"].items():
        if submission["author"] == account:
            return sid
    return None


def received(record: Mapping, account: str) -> dict | None:
    """What the author ``account`` sees once the review is closed, else ``None``.

    Done reviews only, numbered in a fixed order (reviewer names are never in it), with their
    scores per criterion, totals, comments and the peer score.
    """
    sid = submission_of(record, account)
    if sid is None or not is_closed(record):
        return None
    done = [
        r
        for _, r in sorted(record["reviews"].items())
        if r["submission"] == sid and r["state"] == "done"
    ]
    totals = [assign.total(r["scores"]) for r in done]
    return {
        "submission": sid,
        "rubric": rubric_of(record, sid),
        "reviews": [
            {"scores": r["scores"], "total": t, "comment": r["comment"], "reviewer": r["reviewer"]}
            for r, t in zip(done, totals, strict=True)
        ],
        "peer_score": assign.aggregate(totals, record["aggregate"]),
        "decision": record["decisions"].get(sid),
    }


def rows(record: Mapping) -> list[dict]:
    """The facilitator's view: one row per submission with its reviews and peer score."""
    out = []
    for sid, submission in sorted(record["submissions"].items(), key=lambda i: i[1]["author"]):
        reviews = [r for _, r in sorted(record["reviews"].items()) if r["submission"] == sid]
        done = [r for r in reviews if r["state"] == "done"]
        totals = [assign.total(r["scores"]) for r in done]
        out.append(
            {
                "submission": sid,
                "author": submission["author"],
                "assignment": submission["assignment"],
                "reviews": reviews,
                "totals": totals,
                "peer_score": assign.aggregate(totals, record["aggregate"]),
                "criteria": assign.per_criterion([r["scores"] for r in done], record["aggregate"])
                if done
                else [],
                "decision": record["decisions"].get(sid),
            }
        )
    return out


def reviewer_counts(record: Mapping) -> dict[str, dict[str, int]]:
    """Per reviewer: reviews given, done, pending and missed."""
    counts: dict[str, dict[str, int]] = {}
    for review in record["reviews"].values():
        each = counts.setdefault(
            review["reviewer"], {"given": 0, "done": 0, "pending": 0, "missed": 0}
        )
        each["given"] += 1
        each[review["state"]] += 1
    return counts


def status_lines(record: Mapping) -> list[str]:
    """``atelier peer status``: the phase, each reviewer's reviews, who missed the due date."""
    phase = f"closed {record['closed']}" if is_closed(record) else f"open until {record['due']}"
    lines = [
        f"{record['workbook']} in cohort {record['cohort']}: {phase} "
        f"(round {record['round']}, {len(record['submissions'])} submissions, "
        f"{record['k']} reviews each)"
    ]
    for reviewer, c in sorted(reviewer_counts(record).items()):
        lines.append(
            f"  {reviewer}: {c['done']} done, {c['pending']} pending, {c['missed']} missed"
        )
    for each in record["submissions"].values():
        if each.get("added"):
            lines.append(f"  added late: {each['author']}'s submission ({each['added']})")
    for miss in record["missed"]:
        lines.append(
            f"  missed: {miss['reviewer']} did not review in round {miss['round']} "
            f"(due date passed, recorded {miss['at']})"
        )
    return lines
