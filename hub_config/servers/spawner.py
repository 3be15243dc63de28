"""The trainee spawner: servers run as the trainee's own account and are noticed once listening.

The rule: a hub user ``alice`` runs as the Unix account ``<prefix>alice`` (created by ``atelier
roster import``), never as root and never as anyone else. The server starts through
``atelier.hub_config.servers.singleuser``, which delivers the workbooks and sets the interface
language as the trainee. Readiness: the stock hub discovers a started server by polling it over
HTTP with a growing back-off (0.2 s, 0.4 s, 0.8 s, ...), which wastes up to a few seconds per start;
this spawner instead watches the port every few milliseconds and returns as soon as it accepts
connections, so the hub's first check succeeds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import sys
import time
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner, set_user_setuid
from traitlets import Bool, Dict, Float, List, Unicode, default

from atelier.processes import priority
from atelier.processes.ports import server_port


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
    use_server_template = Bool(
        True,
        help="Fork trainees' servers from a template that has imported the Jupyter server once "
        "(servertemplate.py). Off, or while the template fails, each server is a new process.",
    ).tag(config=True)

    limits = Dict(
        {},
        help="Limits of every trainee's server and what it starts (the hub.limits settings: "
        "memory, processes, CPU, file size, private /tmp and /dev/shm; see "
        "hub_config/servers/limits.py). "
        "Empty: no limits (the single-account demo only).",
    ).tag(config=True)

    shared_paths = List(
        Unicode(),
        [],
        help="Folders every server reads besides its home, the workbook repository and its "
        "Jupyter paths (the exchange): kept visible if they are under /tmp, which a server sees "
        "as a private tmpfs.",
    ).tag(config=True)

    #: The hub's one template process, shared by every trainee's spawner.
    _template = None
    #: Whether the hub has said once that this machine has no cgroup v1 controllers.
    _warned_cgroups = False

    @property
    def unix_name(self) -> str:
        """The Unix account this user's server runs as."""
        if self.insecure_demo:
            return pwd.getpwuid(os.getuid()).pw_name
        return f"{self.account_prefix}{self.user.name}"

    def _person(self) -> dict:
        from atelier.accounts import load_people

        person = load_people(self.state_dir).get(self.user.name)
        return person.to_json() if person else {}

    def make_preexec_fn(self, name):
        """Confine, then switch to the trainee's account (``name``: the hub username)."""
        if self.insecure_demo:
            home = self._demo_home()

            def preexec():
                os.chdir(home)

            return preexec
        become = set_user_setuid(self.unix_name)
        confinement = self.confinement()
        from atelier.hub_config.servers.limits import confine

        def preexec():
            # At niceness 0, not the hub's (processes/priority.py).
            priority.normal()
            if confinement is not None:
                confine(confinement)
            become()

        return preexec

    def confinement(self) -> dict | None:
        """The limits the server's process applies as root before it becomes the trainee.

        Makes or updates the trainee's control groups now (the hub is root); None when this hub
        sets no limits (the single-account demo, or a hub that is not root).
        """
        if self.insecure_demo or not self.limits or os.geteuid() != 0:
            return None
        from atelier.hub_config.servers.limits import ServerLimits, prepare_cgroups

        limits = ServerLimits.from_settings(self.limits)
        try:
            cgroups = prepare_cgroups(self.unix_name, limits)
        except OSError as error:
            # Refused rather than started without its memory and process caps.
            raise RuntimeError(
                f"the control groups of {self.unix_name} could not be set up: {error}"
            ) from error
        if not cgroups and not AtelierSpawner._warned_cgroups:
            AtelierSpawner._warned_cgroups = True
            self.log.warning(
                "atelier: no cgroup v1 memory/pids/cpu controllers under /sys/fs/cgroup: trainees' "
                "servers get only file-size and process rlimits and a private /tmp"
            )
        env = self.get_env()
        keep = [env["HOME"], self.workbooks_repo, *self.shared_paths]
        for name in ("JUPYTER_CONFIG_PATH", "JUPYTER_PATH"):
            keep += env.get(name, "").split(os.pathsep)
        keep = [path for path in keep if path]
        return {"limits": limits.to_json(), "cgroups": cgroups, "keep": keep}

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
        """The stock environment plus what delivery needs (language, repository) and the seed."""
        env = super().get_env()
        person = self._person()
        env["ATELIER_LANGUAGE"] = person.get("language", "en")
        env["ATELIER_WORKBOOKS_REPO"] = self.workbooks_repo
        seed = self.variant_seed(person)
        if seed:
            from atelier.variants import SEED_VARIABLE

            env[SEED_VARIABLE] = seed
        return env

    def variant_seed(self, person: dict) -> str:
        """The trainee's variant seed (``atelier.variants``): their numbers in variant items.

        Computed here, as root, from the hub's secret (made on first use), the trainee's one
        cohort and their username; only the seed reaches the server, never the secret, so a
        trainee can compute no one else's numbers. A facilitator gets none (the default
        variant). The grader computes the same seed again from the same three.
        """
        cohorts = person.get("cohorts") or []
        if person.get("role", "trainee") != "trainee" or len(cohorts) != 1:
            return ""
        from atelier.variants import VariantError, cohort_key, load_secret, trainee_seed

        try:
            secret = load_secret(self.state_dir, create=True)
        except (VariantError, OSError) as error:
            # Started without it, the trainee would answer the default numbers and be graded
            # against their own: refused, with the reason in the hub's log.
            raise RuntimeError(f"{self.user.name}'s server cannot start: {error}") from error
        return trainee_seed(cohort_key(secret, cohorts[0]), self.user.name)

    @default("cmd")
    def _cmd_default(self):
        return [sys.executable, "-m", "atelier.hub_config.servers.singleuser"]

    def _template_request(self) -> dict:
        """What the template needs to fork this trainee's server."""
        env = self.get_env()
        request = {"env": env, "argv": self.get_args(), "home": env["HOME"], "uid": None}
        if not self.insecure_demo:
            # HOME is already the account's (user_env); the ids come from the same entry.
            entry = pwd.getpwnam(self.unix_name)
            groups = os.getgrouplist(self.unix_name, entry.pw_gid)
            request.update(uid=entry.pw_uid, gid=entry.pw_gid, groups=groups)
            request["confine"] = self.confinement()
        return request

    @classmethod
    def start_template(cls, log=None):
        """Start the hub's server template now (it imports while the hub finishes starting)."""
        from atelier.hub_config.servers.servertemplate import ServerTemplate

        if cls._template is None:
            cls._template = ServerTemplate(log or logging.getLogger("JupyterHub"))
        cls._template.start()
        return cls._template

    async def _start_from_template(self):
        """Fork the server from the hub's template; None when the template cannot."""
        from atelier.hub_config.servers.servertemplate import (
            START_UP_VARIABLES,
            TemplateUnavailable,
        )

        if not self.use_server_template or self.cmd != self._cmd_default() or self.shell_cmd:
            return None  # a site that set its own command gets exactly that command
        # The port is chosen (start()): the server's address is in its arguments and environment.
        request = self._template_request()
        honoured_at_start = [name for name in START_UP_VARIABLES if request["env"].get(name)]
        if honoured_at_start:
            self.log.info(
                "atelier: %s set for %s: the server starts as a new process",
                ", ".join(honoured_at_start),
                self.user.name,
            )
            return None
        template = AtelierSpawner._template or AtelierSpawner.start_template(self.log)
        self.log.info("Forking %s's server from the server template", self.user.name)
        try:
            self.pid = await template.fork(request)
        except TemplateUnavailable as error:
            self.log.warning(
                "atelier: %s; starting %s's server as a new process", error, self.user.name
            )
            return None
        self.proc = None
        return (self.ip or "127.0.0.1", self.port)

    async def _running(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return bool(self.pid) and await self._signal(0)

    async def _signal(self, sig):
        """Signal the server; a process that has ended but was not yet reaped counts as gone.

        A server outlives the process that started it (hub restarts, the template); if whatever
        it was handed to does not reap it, it stays a zombie, which ``kill(pid, 0)`` still finds.
        """
        if sig == 0 and self.pid and _is_zombie(self.pid):
            return False
        return await super()._signal(sig)

    async def stop(self, now=False):
        """Stop the server, then end whatever it left in the trainee's control groups."""
        await super().stop(now=now)
        if self.limits and not self.insecure_demo and os.geteuid() == 0:
            from atelier.hub_config.servers.limits import end_processes

            await asyncio.to_thread(end_processes, self.unix_name)

    async def start(self):
        """Start the server, then return as soon as its port accepts connections."""
        if self.port == 0:
            # Below the ephemeral range: in a burst of starts, no kernel, service or outgoing
            # connection takes it between now and the server binding it (processes/ports.py).
            self.port = server_port(self.ip or "127.0.0.1")
        started = await self._start_from_template()
        ip, port = started if started else await super().start()
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline and await self._running():
            try:
                _, writer = await asyncio.open_connection(ip, port)
            except OSError:
                await asyncio.sleep(self.ready_poll_interval)
                continue
            writer.close()
            break
        else:
            if not await self._running():
                # Said now rather than after the hub's HTTP wait runs out.
                raise RuntimeError(
                    f"{self.user.name}'s server exited while starting (its log is in the hub's log)"
                )
        return ip, port


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state follows the command name, which is in parentheses and may contain anything.
    return stat[stat.rfind(")") + 2 :].startswith("Z")
