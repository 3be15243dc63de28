"""Who is in a cohort, as grading sees them: its trainees and facilitators from the roster.

Rule: the roster store is owned by :mod:`atelier.accounts`; grading only reads it, and a
trainee's Unix account is their nbgrader student id.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Trainee:
    """A trainee of a cohort as grading sees them: the Unix account is the nbgrader student id."""

    username: str
    account: str
    language: str
    full_name: str = ""
    email: str = ""


def cohort_people(settings, cohort: str) -> tuple[list[Trainee], list[str]]:
    """The (trainees, facilitator usernames) of ``cohort`` from the roster the hub keeps.

    The roster store is owned by :mod:`atelier.accounts` (``atelier roster import``).
    """
    from atelier.accounts import AccountPolicy, load_people

    people = load_people(settings.get_path("hub.state_dir"))
    policy = AccountPolicy.from_settings(settings)
    trainees, facilitators = [], []
    for person in sorted(people.values(), key=lambda p: p.username):
        if cohort not in person.cohorts:
            continue
        if person.role == "facilitator":
            facilitators.append(person.username)
        else:
            trainees.append(
                Trainee(
                    username=person.username,
                    account=policy.account(person.username),
                    language=person.language,
                    full_name=person.full_name,
                    email=person.email,
                )
            )
    return trainees, facilitators
