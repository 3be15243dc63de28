"""The hub's view of configurable-http-proxy: a proxy that ``atelier start`` keeps running.

The rule: the routing table lives in the proxy's memory, and only the hub knows what it should
hold; so whenever the proxy is replaced (it died and ``atelier start`` started a new one), the hub
puts every route back at once, instead of at its next activity check (``last_activity_interval``,
5 minutes), during which every trainee would get the hub's error page.

``atelier start`` writes the new proxy's pid to ``state_dir/proxy.pid`` only once the new proxy
answers. :class:`SupervisedProxy` reads that file every ``watch_interval`` seconds (a local file,
no request) and, when the pid is not the one whose routes it last checked, runs JupyterHub's own
:meth:`~jupyterhub.proxy.Proxy.check_routes` (the hub's route, every ready server, every service).
"""

from __future__ import annotations

from jupyterhub.proxy import ConfigurableHTTPProxy
from tornado.ioloop import PeriodicCallback
from traitlets import Float, Unicode


class SupervisedProxy(ConfigurableHTTPProxy):
    """configurable-http-proxy started by ``atelier start``; routes restored when it is replaced."""

    watched_pid_file = Unicode(
        "",
        help="The pid file ``atelier start`` writes for the proxy it runs (state_dir/proxy.pid); "
        "a new pid there means a new proxy, whose routes the hub then restores. Empty: no watch.",
    ).tag(config=True)
    watch_interval = Float(
        1.0,
        help="Seconds between two reads of watched_pid_file: the longest a replaced proxy waits "
        "for its routes (plus the time to add them).",
    ).tag(config=True)

    _routed_pid: str | None = None
    _watch: PeriodicCallback | None = None

    def _read_pid(self) -> str | None:
        try:
            with open(self.watched_pid_file, encoding="ascii") as handle:
                return handle.read().strip() or None
        except (OSError, UnicodeDecodeError):
            return None

    async def check_routes(self, user_dict, service_dict, routes=None):
        """JupyterHub's route check; the first one (as the hub starts) also starts the watch."""
        if self._watch is None and self.watched_pid_file:
            # The pid the routes are about to be checked against: the proxy running now.
            self._routed_pid = self._read_pid()
            self._watch = PeriodicCallback(self._restore_if_replaced, 1e3 * self.watch_interval)
            self._watch.start()
        return await super().check_routes(user_dict, service_dict, routes)

    async def _restore_if_replaced(self) -> None:
        pid = self._read_pid()
        if pid is None or pid == self._routed_pid:
            return
        self.log.warning(
            "configurable-http-proxy was replaced (pid %s, was %s): restoring every route",
            pid,
            self._routed_pid,
        )
        try:
            await self.check_routes(self.app.users, self.app._service_map)
        except Exception as error:  # the next tick tries again: nothing is lost by waiting
            self.log.warning("Could not restore the proxy's routes yet: %s", error)
            return
        self._routed_pid = pid

    def stop(self):
        """Stop watching (the proxy itself belongs to ``atelier start`` and keeps running)."""
        if self._watch is not None:
            self._watch.stop()
