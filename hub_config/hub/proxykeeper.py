"""configurable-http-proxy as ``atelier start`` runs it: detached, and started again if it dies.

Rule: the proxy outlives hub restarts (trainees' connections stay open), so ``atelier start`` keeps
it, not the hub: a proxy that dies is started again within a second, and its pid written to
``state_dir/proxy.pid`` only once it listens on both ports; the hub then puts every route back
(:class:`atelier.hub_config.hub.proxy.SupervisedProxy`). A proxy that cannot start (a port taken
by another program) is retried every few seconds with a message naming the port and the program.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from atelier.files import atomic_write
from atelier.hub_config.hub.processes import (
    alive,
    cmdline,
    listening_inodes,
    port_holders,
    socket_inodes,
)
from atelier.processes import priority

#: Seconds between two looks at the proxy while the hub runs (a waitpid: cheap).
PROXY_POLL = 0.5
#: Seconds between two attempts to start a proxy that could not start (its port taken, ...).
PROXY_RETRY = 5.0
#: Seconds a new proxy may take to listen on both its ports.
PROXY_START_TIMEOUT = 15.0
#: Seconds between two repeats of the same "the proxy cannot start" message.
PROXY_REPEAT = 60.0


def is_proxy(pid: int) -> bool:
    """Whether process ``pid`` is a configurable-http-proxy."""
    return "configurable-http-proxy" in " ".join(cmdline(pid))


class ProxyKeeper:
    """configurable-http-proxy as ``atelier start`` runs it: detached, and started again if it dies.

    ``ports`` maps each port the proxy listens on to the setting that chose it (for messages);
    ``nice`` is the proxy's niceness (``hub.nice``, processes/priority.py), an adopted one's too.
    """

    def __init__(
        self, args: list[str], env: dict, paths: dict, ports: dict[int, str], log, nice: int = 0
    ):
        self.args, self.env, self.paths, self.ports, self.log = args, env, paths, ports, log
        self.nice = nice
        self.proc: subprocess.Popen | None = None  # the proxy, when this process started it
        self.pid = 0
        self.next_try = 0.0
        self.reason = ""
        self.reported = 0.0

    def running(self) -> bool:
        """Whether the proxy runs (a child is reaped here, so a killed one is never a zombie)."""
        if self.proc is not None:
            return self.proc.poll() is None
        return bool(self.pid) and alive(self.pid) and is_proxy(self.pid)

    def adopt(self) -> bool:
        """Reuse the proxy of the pid file if it runs with these arguments (else stop it)."""
        pid_file = self.paths["proxy_pid"]
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return False
        if not (alive(pid) and is_proxy(pid)):
            return False
        if cmdline(pid)[-(len(self.args) - 1) :] == self.args[1:]:
            self.log.info("Reusing configurable-http-proxy (pid %s)", pid)
            self.pid = pid
            priority.set_niceness(self.nice, pid)
            return True
        self.log.info("Restarting configurable-http-proxy with new addresses")
        os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if not alive(pid):
                break
            time.sleep(0.1)
        return False

    def start(self) -> str:
        """Start a proxy and wait until it listens on its ports: '' once it does, else why not."""
        if not Path(self.args[0]).exists():
            return f"{self.args[0]} is missing: run `atelier install` first"
        with open(self.paths["proxy_log"], "ab") as log:
            proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.paths["state_dir"],
                preexec_fn=priority.at(self.nice),
            )
        deadline = time.monotonic() + PROXY_START_TIMEOUT
        while True:
            if proc.poll() is not None:
                return self.why_not(proc.returncode)
            mine = socket_inodes(proc.pid)
            listening = {port: listening_inodes(port) for port in self.ports}
            if all(inodes & mine for inodes in listening.values()):
                break
            # configurable-http-proxy logs a port it cannot bind and runs on without it: once it
            # listens on one port, another port held by someone else will stay so.
            taken = [port for port, inodes in listening.items() if inodes and not inodes & mine]
            if taken and any(inodes & mine for inodes in listening.values()):
                proc.kill()
                proc.wait()
                return self.why_not(proc.returncode)
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                return (
                    f"configurable-http-proxy did not listen on ports "
                    f"{', '.join(map(str, self.ports))} within {PROXY_START_TIMEOUT:.0f} s "
                    f"(see {self.paths['proxy_log']})"
                )
            time.sleep(0.05)
        self.proc, self.pid = proc, proc.pid
        # Written once the proxy listens: the hub restores the routes when it sees a new pid.
        atomic_write(self.paths["proxy_pid"], str(proc.pid), 0o600)
        return ""

    def why_not(self, status: int) -> str:
        """Why a proxy that stopped at once could not start, naming a port's other holder."""
        for port, setting in self.ports.items():
            holders = port_holders(port)
            if holders:
                program = " ".join(cmdline(holders[0])) or "another program"
                return (
                    f"configurable-http-proxy cannot listen on port {port} ({setting}): "
                    f"Address already in use, by pid {holders[0]} ({program[:120]}). Stop that "
                    f"program, or give the hub another port ({setting} in the settings)"
                )
        return (
            f"configurable-http-proxy exited at start (status {status}); "
            f"see {self.paths['proxy_log']}"
        )

    def keep(self) -> bool:
        """Start the proxy again if it died (at most every PROXY_RETRY s); whether it runs."""
        if self.running():
            return True
        now = time.monotonic()
        if now < self.next_try:
            return False
        if self.pid:
            how = ""
            if self.proc is not None and self.proc.returncode is not None:
                code = self.proc.returncode
                how = f" (killed by signal {-code})" if code < 0 else f" (status {code})"
            self.log.error("configurable-http-proxy (pid %s) stopped%s", self.pid, how)
            self.pid, self.proc = 0, None
        reason = self.start()
        if not reason:
            self.log.warning(
                "Started configurable-http-proxy again (pid %s); the hub restores its routes",
                self.pid,
            )
            self.next_try, self.reason = 0.0, ""
            return True
        self.next_try = now + PROXY_RETRY
        if reason != self.reason or now - self.reported > PROXY_REPEAT:
            self.log.error("%s. Trying again every %.0f s; the hub runs on", reason, PROXY_RETRY)
            self.reason, self.reported = reason, now
        return False
