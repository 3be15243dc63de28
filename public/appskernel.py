"""Inside a public app's kernel: a visitor reads a short sentence in the app's language, no trace.

Rule: nothing a visitor sends (a widget value of the wrong type, a huge string, NaN, a nested
object) gets a library's traceback, a file path or an exception's text back. Every traceback an
IPython kernel shows goes through one method, ``_showtraceback`` (a cell that failed, ipywidgets'
handling of a comm message it could not apply, a callback's error, an ``Output`` widget's
``with`` block): :func:`hide_tracebacks` replaces it in this kernel, so the error message sent to
the browser holds :data:`MESSAGES` only, and the whole traceback is written to the kernel's own
standard error, which is the apps service's log. What code writes to standard error goes to that log
too (warnings name files).

:func:`atelier.public.apps.stage_apps` puts the call in a first, hidden cell of every app; the
dashboard's notebook calls it itself. Voila's own messages (a cell that failed while the page was
built, an error page) are set in :mod:`atelier.public.apps` and ``appsserver``.
"""

from __future__ import annotations

import os
import sys
import time
import traceback

from atelier import languages
from atelier.upstream import ipykernel as upstream_ipykernel
from atelier.upstream import ipython as upstream_ipython

#: What a visitor reads when something failed, in each language an app is written in (the words
#: are in ``public/locales/<language>.json``, key ``apps.error``).
MESSAGES = {
    language: languages.words("atelier.public", "apps", language)["error"]
    for language in languages.LANGUAGES
}
#: The exception name the browser is told (the real one is in the log).
PUBLIC_ENAME = "Error"
#: Marks the lines of this module in the service's log.
LOG_PREFIX = "atelier-app:"


def message(language: str) -> str:
    """The visitor's sentence in ``language`` (English when the app's language is not known)."""
    return MESSAGES.get(language, MESSAGES[languages.LANGUAGES[0]])


#: Tracebacks logged in full per kernel and minute; beyond, one short line each (a visitor
#: sending failing messages in a loop must not fill the disk with the log).
LOG_PER_MINUTE = 20
_logged: list[float] = []


def log_exception(etype, evalue, tb, stream=None) -> None:
    """Write an exception with its traceback to the service's log (the kernel's real stderr)."""
    stream = stream or sys.__stderr__
    now = time.monotonic()
    _logged[:] = [t for t in _logged if now - t < 60]
    _logged.append(now)
    if len(_logged) > LOG_PER_MINUTE:
        detail = str(evalue)[:300]
        text = f"{etype.__name__}: {detail} (over {LOG_PER_MINUTE} this minute: no traceback)\n"
    else:
        text = "".join(traceback.format_exception(etype, evalue, tb))
    try:
        stream.write(f"{LOG_PREFIX} a visitor's action failed:\n{text}")
        stream.flush()
    except (OSError, ValueError):
        pass  # no log to write to: the visitor still gets the short sentence


def hide_tracebacks(language: str = "en", shell=None) -> None:
    """Send visitors :func:`message` in place of every traceback of this kernel; log the detail.

    ``shell`` defaults to the running IPython kernel's shell; outside a kernel nothing happens.
    """
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    if shell is None or getattr(shell, "_atelier_hidden", False):
        return
    sentence = message(language)
    show = upstream_ipython.showtraceback(shell)

    def _showtraceback(etype, evalue, stb):
        # The structured traceback (stb) is ANSI text of the same exception: log the exception
        # itself, from sys.exc_info when it is still being handled, else from its value.
        info = sys.exc_info()
        if info[1] is not evalue and isinstance(evalue, BaseException):
            info = (type(evalue), evalue, evalue.__traceback__)
        if info[1] is not None:
            log_exception(*info)
        else:
            log_exception(etype, evalue, None)
        show(_PublicError, sentence, [sentence])

    upstream_ipython.set_showtraceback(shell, _showtraceback)
    shell._atelier_hidden = True
    stderr_to_log()


def stderr_to_log() -> None:
    """Send this kernel's standard error to the service's log again, not to the browser.

    ipykernel forwards both ``sys.stderr`` and file descriptor 2 (through a pipe, for C libraries)
    to every connected browser; a warning or a library's message there names files. The
    descriptor it saved (``_original_stdstream_copy``) is the log: put it back on 2.
    """
    copy = upstream_ipykernel.saved_stream_fd(sys.stderr)
    if copy is not None:
        os.dup2(copy, 2)
    sys.stderr = sys.__stderr__


class _PublicError(Exception):
    """The name a visitor's browser is told an error has (:data:`PUBLIC_ENAME`)."""


_PublicError.__name__ = PUBLIC_ENAME
