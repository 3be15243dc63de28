"""The stand-in command jupyter_client runs as a kernel when ``atelier check`` forks kernels.

Standard library only.

Rule: this process stands in for the kernel it asked :mod:`atelier.forkserver` to fork. It forwards
SIGINT (interrupt) and SIGTERM to the kernel and exits when the kernel exits; if it is killed, its
connection to the fork server closes and the server kills the kernel. Run as ``python -I -S
forkclient.py SOCKET CONNECTION_FILE`` so that it starts in a few milliseconds.
"""

import contextlib
import json
import os
import signal
import socket
import sys
import time


def main() -> None:
    """Ask for a kernel, stand in for it until it exits."""
    socket_path, connection_file = sys.argv[1], sys.argv[2]
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # The template may still be importing when the first kernel is asked for: wait for it a while.
    deadline = time.monotonic() + 60
    while True:
        try:
            conn.connect(socket_path)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    request = {
        "connection_file": os.path.abspath(connection_file),
        "cwd": os.getcwd(),
        "env": dict(os.environ),
        # No history database; plain tracebacks: the check reports an error's name and message,
        # and IPython's default colourful context costs ~0.1 s of CPU per error in a new kernel.
        "args": ["--HistoryManager.enabled=False", "--InteractiveShell.xmode=Plain"],
    }
    conn.sendall(json.dumps(request).encode() + b"\n")
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = conn.recv(64)
        if not chunk:
            sys.exit(1)
        reply += chunk
    pid = int(reply)

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
