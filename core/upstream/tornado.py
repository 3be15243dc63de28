"""tornado: whether a handler has already sent its response headers.

Written against tornado 6.6.1.

Private thing relied on: ``RequestHandler._headers_written``, set to ``True`` by ``flush()`` when
the status line and headers go to the connection; tornado has no public way to ask.

Why: the public apps server (``public/appsserver.py``, ``AppPageHandler``) streams Voila's
page; when the kernel cap is reached mid-render it answers with the busy page (HTTP 503) only if
nothing of the page has been sent, and otherwise lets the error end the response.
"""

from __future__ import annotations


def headers_written(handler) -> bool:
    """Whether ``handler`` (a ``tornado.web.RequestHandler``) has sent its status and headers."""
    return handler._headers_written
