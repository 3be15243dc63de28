"""ipykernel: the file descriptor its standard error stream saved before capturing descriptor 2.

Written against ipykernel 7.4.0.

Private thing relied on: ``OutStream._original_stdstream_copy``: when an ``OutStream`` captures
its file descriptor (``_setup_stream_redirects``, for output written by C libraries and
subprocesses), it first keeps a duplicate of the original descriptor there, and points descriptor
2 at a pipe it forwards to every connected browser.

Why: in a public app's kernel (``public/appskernel.py``, ``stderr_to_log``) nothing written to
standard error may reach a visitor (warnings name files): the saved descriptor is the apps
service's log, so it is put back on 2.
"""

from __future__ import annotations


def saved_stream_fd(stream) -> int | None:
    """The descriptor ``stream`` (an ipykernel ``OutStream``) saved before capturing, or None."""
    return getattr(stream, "_original_stdstream_copy", None)
