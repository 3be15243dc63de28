"""The trainee spawner: servers run as the trainee's own account and are noticed once listening.

The rule: a hub user ``alice`` runs as the Unix account ``<prefix>alice`` (created by ``atelier
roster import``), never as root and never as anyone else. The server starts through
``atelier.hub_config.singleuser``, which delivers the workbooks and sets the interface language as
the
trainee. Readiness: the stock hub discovers a started server by polling it over HTTP with a growing
back-off (0.2 s, 0.4 s, 0.8 s, ...), which wastes up to a few seconds per start; this spawner
instead
watches the port every few milliseconds and returns as soon as it accepts connections, so the hub's
first check succeeds.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import sys
import time
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Bool, Float, Unicode, default


class AtelierSpawner(LocalProcessSpawner):
    """LocalProcessSpawner for Atelier's prefixed trainee accounts, with prompt readiness."""

    account_prefix = Unicode(
        "at-", help="Prefix of the Unix accounts of hub users (the accounts.prefix setting)."
    ).tag(config=True)
    state_dir = Unicode(
        "/var/lib/atelier",
        help="The hub's state directory, holding the roster store (roster.json).",
    ).tag(config=True)
    workbooks_repo = Unicode(
        "", help="The published workbook repository trainees pull from (one branch per language)."
    ).tag(config=True)
    ready_poll_interval = Float(
        0.02, help="Seconds between two checks that a starting server accepts connections."
    ).tag(config=True)
    insecure_demo = Bool(
        False,
        help="Run every server as the hub's own account (single-account demo only: no isolation).",
    ).tag(config=True)

    @property
    def unix_name(self) -> str:
        """The Unix account this user's server runs as."""
        if self.insecure_demo:
            return pwd.getpwuid(os.getuid()).pw_name
        return f"{self.account_prefix}{self.user.name}"

    def _person(self) -> dict:
        from atelier.hub_config.accounts import load_people

        person = load_people(self.state_dir).get(self.user.name)
        return person.to_json() if person else {}

    def make_preexec_fn(self, name):
        """Switch to the trainee's account (``name`` is the hub username, without the prefix)."""
        if self.insecure_demo:
            home = self._demo_home()

            def preexec():
                os.chdir(home)

            return preexec
        return set_user_setuid(self.unix_name)

    def _demo_home(self) -> str:
        home = Path(self.state_dir) / "demo-homes" / self.user.name
        home.mkdir(parents=True, exist_ok=True)
        return str(home)

    def user_env(self, env):
        """USER, HOME and SHELL of the trainee's account."""
        if self.insecure_demo:
            env["USER"] = self.unix_name
            env["HOME"] = self._demo_home()
            return env
        entry = pwd.getpwnam(self.unix_name)
        env["USER"] = self.unix_name
        env["HOME"] = entry.pw_dir
        env["SHELL"] = entry.pw_shell or "/bin/sh"
        return env

    def get_env(self):
        """The stock environment plus what delivery needs: language and repository."""
        env = super().get_env()
        env["ATELIER_LANGUAGE"] = self._person().get("language", "en")
        env["ATELIER_WORKBOOKS_REPO"] = self.workbooks_repo
        return env

    @default("cmd")
    def _cmd_default(self):
        return [sys.executable, "-m", "atelier.hub_config.singleuser"]

    async def start(self):
        """Start the server, then return as soon as its port accepts connections."""
        ip, port = await super().start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and self.proc and self.proc.poll() is None:
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(self.ready_poll_interval)
                continue
            writer.close()
            break
        return ip, port
