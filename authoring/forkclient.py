"""Asking :mod:`.forkserver` for a kernel: the stand-in command, and the request itself.

Standard library only.

Rule: a forked kernel lives as long as the connection that asked for it; when that connection
closes, the fork server kills the kernel. Two ways to hold that connection:

* :func:`main`, the stand-in command a kernel manager runs as "the kernel" (Voila does: ``python
  -I -S forkclient.py SOCKET CONNECTION_FILE`` starts in a few milliseconds). It forwards SIGINT
  (interrupt) and SIGTERM to the kernel and exits when the kernel exits; if it is killed, its
  connection closes and the server kills the kernel.
* :class:`ForkedKernel`, for a caller in Python (``atelier check``'s own kernels): the connection
  and the kernel's pid, with what jupyter_client needs of a ``Popen`` (no stand-in process).
"""

import contextlib
import json
import os
import signal
import socket
import sys
import time

#: Options of every forked kernel: no history database; plain tracebacks (the check reports an
#: error's name and message, and IPython's default colourful context costs ~0.1 s of CPU per error
#: in a new kernel).
KERNEL_ARGS = ["--HistoryManager.enabled=False", "--InteractiveShell.xmode=Plain"]


def request_kernel(
    socket_path: str, connection_file: str, cwd: str, env: dict, wait: float = 60
) -> tuple[socket.socket, int]:
    """Ask the fork server for a kernel; return the open connection and the kernel's pid."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The template may still be importing when the first kernel is asked for: wait for it a while.
    deadline = time.monotonic() + wait
    while True:
        try:
            conn.connect(socket_path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                conn.close()
                raise
            time.sleep(0.05)
    request = {
        "connection_file": os.path.abspath(connection_file),
        "cwd": cwd,
        "env": dict(env),
        "args": KERNEL_ARGS,
    }
    conn.sendall(json.dumps(request).encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            conn.close()
            raise ConnectionError("the fork server closed the connection")
        reply += chunk
    return conn, int(reply)


class ForkedKernel:
    """A forked kernel seen as a ``subprocess.Popen`` (what jupyter_client's provisioner uses).

    The kernel is the template's child, not ours: it is alive while its pid exists (the template
    reaps it at once), and its exit status is not known (reported as -SIGKILL).
    """

    stdin = stdout = stderr = None

    def __init__(self, conn: socket.socket, pid: int):
        self.conn = conn
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """None while the kernel runs."""
        if self.returncode is None:
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                self.returncode = -signal.SIGKILL
                self.conn.close()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait until the kernel has ended."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                import subprocess

                raise subprocess.TimeoutExpired(str(self.pid), timeout)
            time.sleep(0.02)
        return self.returncode

    def send_signal(self, signum: int) -> None:
        """Signal the kernel (nothing if it has ended)."""
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def terminate(self) -> None:
        """SIGTERM."""
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """End the kernel and all it started: the server kills the group of a closed connection."""
        self.send_signal(signal.SIGKILL)
        self.conn.close()


def main() -> None:
    """Ask for a kernel, stand in for it until it exits."""
    socket_path, connection_file = sys.argv[1], sys.argv[2]
    try:
        # The connection must stay open (referenced) as long as the kernel should live.
        _conn, pid = request_kernel(socket_path, connection_file, os.getcwd(), os.environ)
    except ConnectionError:
        sys.exit(1)

    def forward(signum, frame):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        if signum == signal.SIGTERM:
            sys.exit(0)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


if __name__ == "__main__":
    main()
