"""Run a cohort's formgrader service; if it stops with an error, serve a notice at its address.

Rule: one broken course never stops the hub. JupyterHub exits when a service it manages exits
while it starts (or does not answer): one cohort with a broken course folder would keep every
cohort, and every trainee, off the site. So the hub starts each formgrader through this
launcher (:func:`atelier.grading.hubconfig.formgrader_command`): it runs the real server as its
child and, if that child exits with an error, logs why on the hub's log (the launcher's stderr)
and answers on the service's port itself: at the service's own address a page that says the
cohort's formgrader could not start (status 200, so the hub counts the service as up and serves
the other cohorts), and 503 with the same words everywhere else. Nothing of the course is read
or shown; the reason is in the hub's log only. Usage::

    python -m atelier.grading.formgrader.launch COHORT PORT -- COMMAND...
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def log(cohort: str, message: str) -> None:
    """One line on the hub's log, prefixed so an administrator can find it."""
    print(f"atelier: formgrader {cohort}: {message}", file=sys.stderr, flush=True)


def serve_notice(cohort: str, port: int, prefix: str) -> None:
    """Answer every request on ``port`` with the notice, until the hub stops this service."""
    from atelier import pages

    # The cohort id is the roster's: escaped by the template like anything people wrote.
    body = pages.render("atelier.grading.formgrader", "notice.html.j2", cohort=cohort).encode()

    class Notice(BaseHTTPRequestHandler):
        def _answer(self):
            path = self.path.split("?", 1)[0]
            self.send_response(200 if path.rstrip("/") == prefix.rstrip("/") else 503)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

        def log_message(self, format, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Notice)
    # The hub stops a service with SIGINT, then SIGTERM 10 s later: both end the notice at once
    # (the launcher's own handlers forward to a child that is gone).
    for stopping in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stopping, lambda *_: sys.exit(0))
    try:
        server.serve_forever()
    finally:
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """Run the formgrader command; on an error exit, serve the notice (see the module's rule)."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 4 or argv[2] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    cohort, port, command = argv[0], int(argv[1]), argv[3:]
    from atelier.processes.forking import stop_with_parent

    child = subprocess.Popen(command, preexec_fn=stop_with_parent)
    stopping = []

    def stop(signum, frame):
        stopping.append(signum)
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    status = child.wait()
    if stopping or status == 0:
        return 0 if status in (0, -signal.SIGTERM, -signal.SIGINT) else status
    log(
        cohort,
        f"the server exited with status {status} (see its messages above); this cohort's "
        "formgrader shows a notice instead, and the hub serves the other cohorts. Fix the course "
        "folder, then restart the hub.",
    )
    serve_notice(cohort, port, os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
