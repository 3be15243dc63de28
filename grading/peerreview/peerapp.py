"""``atelier peer``: open a reflection for peer review, follow it, add late ones, reassign, close.

Rule: the verbs read their options and call :mod:`atelier.grading.peerreview.review`; reviewing,
the authors' results and the facilitator's accept/override are pages of the ``atelier-peer``
service (:mod:`atelier.grading.peerreview.service`).
"""

from __future__ import annotations

from datetime import timedelta

from traitlets import Integer, Unicode

from atelier.app import AtelierApp, subverbs
from atelier.grading.cohort import CohortApp, cohort_aliases


class PeerVerb(CohortApp):
    """A peer review verb on one workbook of one cohort."""

    def workbook_id(self) -> str:
        """The WORKBOOK argument as a workbook id (a folder ``NN-id`` or the id)."""
        spec = self.workbook_arg().rstrip("/").rsplit("/", 1)[-1]
        return spec.split("-", 1)[1] if spec[:2].isdigit() and "-" in spec else spec

    def print_status(self, record) -> None:
        """The review's phase and each reviewer's reviews."""
        from atelier.grading.peerreview import state

        print("\n".join(state.status_lines(record)))


class PeerOpenApp(PeerVerb):
    """``atelier peer open --cohort C WORKBOOK``: give each submission to k other trainees."""

    name = "atelier peer open"
    description = (
        "Open a workbook's reflection for peer review: every collected submission goes to "
        "--reviewers other trainees of the cohort who submitted (balanced, no self-review, "
        "anonymous), who review it until --due in the atelier-peer service."
    )
    aliases = {
        **cohort_aliases,
        "reviewers": "PeerOpenApp.reviewers",
        "due": "PeerOpenApp.due",
        "seed": "PeerOpenApp.seed",
    }

    reviewers = Integer(
        0, help="Reviews per submission (default: grading.peer_review.reviewers)."
    ).tag(config=True)
    due = Unicode(
        "",
        help="Due date, YYYY-MM-DD or YYYY-MM-DDTHH:MM in UTC (default: "
        "grading.peer_review.due_days from now).",
    ).tag(config=True)
    seed = Unicode(
        "", help="Seed of the assignment (the same seed gives the same pairs); default: random."
    ).tag(config=True)

    def run(self):
        """Open the review and print who reviews how many."""
        import secrets

        from atelier.grading.peerreview import review, state

        course = self.course()
        trainees, _ = self.people()
        assignments = self.released_assignments(course)
        k = self.reviewers or review.options(self.settings)["reviewers"]
        due = state.parse_time(self.due) if self.due else None
        record = review.open_review(
            self.settings,
            course,
            trainees,
            self.workbook_id(),
            assignments,
            k=k,
            due=due,
            seed=self.seed or secrets.token_hex(4),
        )
        self.print_status(record)


class PeerStatusApp(PeerVerb):
    """``atelier peer status --cohort C WORKBOOK``: who reviewed, who is late, who missed."""

    name = "atelier peer status"
    description = "Where a peer review stands: each reviewer's reviews and who missed the due date."

    def run(self):
        """Print the status (the clock applied first: a passed due date reassigns or closes)."""
        from atelier.grading.peerreview import review

        self.course()
        with review.changing(self.settings, self.cohort, self.workbook_id()) as record:
            self.print_status(record)


class PeerReassignApp(PeerVerb):
    """``atelier peer reassign --cohort C WORKBOOK``: hand the reviews not written to others now."""

    name = "atelier peer reassign"
    description = (
        "Mark every review not written yet as missed (reported) and give it to another trainee "
        "who submitted, with a new due date (--due, default grading.peer_review.grace_days from "
        "now); what the due date does by itself, done now."
    )
    aliases = {**cohort_aliases, "due": "PeerReassignApp.due"}

    due = Unicode("", help="The new due date (YYYY-MM-DD[THH:MM], UTC).").tag(config=True)

    def run(self):
        """Reassign and print who took over what."""
        from atelier.grading.peerreview import review, state

        self.course()
        at = state.now()
        days = max(1, review.options(self.settings)["grace_days"])
        due = state.parse_time(self.due) if self.due else at + timedelta(days=days)
        with review.changing(self.settings, self.cohort, self.workbook_id(), at) as record:
            for missed, taken in state.reassign(record, at, due):
                print(f"{missed}'s review -> {taken or 'nobody left to take it'}")
            self.print_status(record)


class PeerAddApp(PeerVerb):
    """``atelier peer add --cohort C WORKBOOK``: bring late submissions into the open review."""

    name = "atelier peer add"
    description = (
        "Bring the submissions collected since the peer review opened (run atelier collect "
        "first) into it while it is open: each gets --reviewers reviewers among the submitters "
        "and its author as many submissions to review (the least loaded first, nobody their "
        "own), due at the review's due date."
    )

    def run(self):
        """Add what was collected late and print who reviews whom."""
        from atelier.grading.peerreview import review

        course = self.course()
        trainees, _ = self.people()
        record, added = review.add_late(
            self.settings,
            course,
            trainees,
            self.workbook_id(),
            self.released_assignments(course),
        )
        if not added:
            print("no submission collected since the review opened")
        for account, reviewers, authors in added:
            print(
                f"{account}: reviewed by {', '.join(reviewers) or 'nobody'}; "
                f"reviews {', '.join(authors) or 'nobody'}"
            )
        self.print_status(record)


class PeerCloseApp(PeerVerb):
    """``atelier peer close --cohort C WORKBOOK``: end the review; authors see their reviews."""

    name = "atelier peer close"
    description = (
        "Close a peer review now: reviews not written are reported as missed, and each author "
        "sees the reviews of their reflection (anonymous) in the atelier-peer service."
    )

    def run(self):
        """Close and print the status."""
        from atelier.grading.peerreview import review, state

        self.course()
        with review.changing(self.settings, self.cohort, self.workbook_id()) as record:
            state.close(record, state.now())
            self.print_status(record)


class PeerApp(AtelierApp):
    """``atelier peer``: peer review of reflections (open, status, add, reassign, close)."""

    name = "atelier peer"
    description = "Peer review of a workbook's reflection: `atelier peer open --cohort C W`."
    subcommands = subverbs(PeerOpenApp, PeerStatusApp, PeerAddApp, PeerReassignApp, PeerCloseApp)
