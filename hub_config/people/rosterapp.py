"""``atelier roster``: import the people of a cohort from a CSV file, list who is on the hub.

The rule of ``import``: all or nothing. The whole file is validated first (every problem reported
with its line number); then every Unix account is checked, then created; only then are the roster
store and the password hashes replaced. If any step fails, the accounts this run created are removed
again. New people get a password printed once here, for the facilitator to hand out; only its hash
is kept. A running hub is then brought up to date (:mod:`atelier.hub_config.people.runninghub`):
people and groups through its REST API, or a safe restart when a cohort is new.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

from traitlets import Bool, Unicode

from atelier import accounts, csvcells
from atelier.app import AtelierApp, subverbs
from atelier.errors import AtelierError
from atelier.files import atomic_write
from atelier.roster import cohorts_of, read_roster


class RosterImportApp(AtelierApp):
    """Import (or update) the people of a roster CSV: accounts, cohorts, passwords."""

    name = "atelier roster import"
    description = __doc__
    aliases = {**AtelierApp.aliases, "passwords-file": "RosterImportApp.passwords_file"}
    flags = {
        "reset-passwords": (
            {"RosterImportApp": {"reset_passwords": True}},
            "Issue new passwords to everyone in the file, not only to new people.",
        ),
    }

    passwords_file = Unicode(
        "", help="Also write the new passwords to this CSV file (mode 600) for the facilitator."
    ).tag(config=True)
    reset_passwords = Bool(
        False, help="Issue new passwords to everyone in the file, not only to new people."
    ).tag(config=True)

    def run(self):
        """Validate the file, then create accounts and store people and password hashes."""
        if len(self.extra_args) != 1:
            raise AtelierError("usage: atelier roster import FILE.csv")
        if os.geteuid() != 0:
            raise AtelierError("roster import needs root: it creates a Unix account per person")
        state = Path(self.settings["hub"]["state_dir"])
        policy = accounts.AccountPolicy.from_settings(self.settings)
        known = accounts.load_people(state)
        # Names Atelier derives for its own accounts, and existing Unix accounts, are refused with
        # their line numbers before anything is created.
        reserved = accounts.ReservedNames.from_settings(self.settings)
        people = read_roster(self.extra_args[0], known, reserved)

        hashes = accounts.load_password_hashes(state)
        issued: dict[str, str] = {}
        for person in people:
            if self.reset_passwords or person.username not in hashes:
                issued[person.username] = accounts.new_password()
        new_hashes = {**hashes, **{u: accounts.hash_password(p) for u, p in issued.items()}}

        state.mkdir(parents=True, exist_ok=True)
        os.chmod(state, 0o700)
        created = accounts.ensure_accounts(policy, people, known)
        try:
            merged = {**known, **{person.username: person for person in people}}
            accounts.save_people(state, merged)
            accounts.save_password_hashes(state, new_hashes)
        except BaseException:
            for username in created:
                accounts.delete_account(policy, username)
            raise
        self.report(people, created, issued, policy)
        self.update_running_hub(set(cohorts_of(known.values())), set(cohorts_of(merged.values())))

    def update_running_hub(self, cohorts_before: set[str], cohorts_after: set[str]) -> None:
        """Push the new people and groups to a running hub, or restart it for a new cohort."""
        from atelier.hub_config.people.runninghub import apply_roster_change

        try:
            done = apply_roster_change(self.settings, cohorts_before, cohorts_after)
        except (AtelierError, OSError) as error:
            print(f"The people were imported, but the running hub was not updated: {error}")
            return
        print(done or "The hub is not running: `atelier start` applies the roster.")

    def report(self, people, created, issued, policy) -> None:
        """Print what changed, and the new passwords (shown once)."""
        rows = [
            [p.username, policy.account(p.username), p.role, ";".join(p.cohorts),
            issued.get(p.username, "")] for p in people
        ]  # fmt: skip
        print(f"{len(people)} people imported ({len(created)} new accounts).")
        print(_table(["username", "unix account", "role", "cohort", "new password"], rows))
        refused = sum(p.consent == "no" for p in people)
        if refused:
            # The facilitator should know before a report looks short of people.
            print(
                f"{refused} people did not consent (consent column): they count in totals only, "
                "never by institution, country or gender (docs/roster.md)."
            )
        if issued:
            print("Passwords are shown only now: hand each person theirs.")
        if self.passwords_file and issued:
            out = io.StringIO()
            writer = csvcells.writer(out)
            writer.writerow(["username", "password"])
            writer.writerows(sorted(issued.items()))
            atomic_write(Path(self.passwords_file), out.getvalue(), 0o600)
            print(f"Passwords also written to {self.passwords_file} (readable by root only).")


class RosterListApp(AtelierApp):
    """List the people imported so far."""

    name = "atelier roster list"
    description = __doc__
    aliases = {**AtelierApp.aliases, "cohort": "RosterListApp.cohort"}

    cohort = Unicode("", help="Only list this cohort.").tag(config=True)

    def run(self):
        """Print one row per person."""
        people = accounts.load_people(self.settings["hub"]["state_dir"]).values()
        rows = [
            [p.username, p.full_name, p.role, ";".join(p.cohorts), p.language, p.email]
            for p in sorted(people, key=lambda p: (p.cohorts, p.role, p.username))
            if not self.cohort or self.cohort in p.cohorts
        ]
        print(_table(["username", "full name", "role", "cohort", "language", "email"], rows))


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


class RosterApp(AtelierApp):
    """Manage trainees and facilitators."""

    name = "atelier roster"
    description = "Manage trainees and facilitators: import a roster CSV, list people."
    subcommands = subverbs(RosterImportApp, RosterListApp)
