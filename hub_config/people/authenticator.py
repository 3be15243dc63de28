"""Login without an external identity provider: the passwords issued by ``atelier roster import``.

The rule: a password is printed once, at import, for the facilitator to hand out, and only its
salted scrypt hash is kept (``passwords.json`` in the state directory, mode 600). The file is read
at each login, so people imported while the hub runs can log in at once. Usernames are normalised
exactly as the roster normalises them, and anything longer than a username can be is refused before
hashing. The hashing (scrypt, ~40 ms of CPU) runs in threads of its own at niceness 0, so that on
a full machine it waits behind the hub's event loop instead of taking turns with it
(:func:`atelier.processes.priority.normal_pool`).
"""

from __future__ import annotations

import asyncio
import os

from jupyterhub.auth import Authenticator
from traitlets import Unicode

from atelier.accounts import check_password, load_password_hashes
from atelier.processes import priority
from atelier.roster import USERNAME_MAX, normalise_username


class ImportPasswordAuthenticator(Authenticator):
    """Check the username and password against the hashes written by ``atelier roster import``."""

    state_dir = Unicode(
        "/var/lib/atelier", help="The hub's state directory, holding passwords.json."
    ).tag(config=True)

    _hashing = None

    def _hashing_pool(self):
        # One thread per core: scrypt releases the GIL, and more threads would only queue on CPU.
        if self._hashing is None:
            self._hashing = priority.normal_pool(os.cpu_count() or 2, "atelier-login")
        return self._hashing

    def normalize_username(self, username):
        """Normalise like the roster does (NFKC, trimmed, lower case)."""
        return normalise_username(username)

    def check_allowed(self, username, authentication=None):
        """Everyone with an issued password is allowed, plus the configured allowed users."""
        if username in self.allowed_users:
            return True
        return username in load_password_hashes(self.state_dir)

    async def authenticate(self, handler, data):
        """Return the username when the password matches its stored hash, else None."""
        raw = str(data.get("username", ""))[: 4 * USERNAME_MAX + 1]
        password = str(data.get("password", ""))
        username = self.normalize_username(raw)
        if not username or len(username) > USERNAME_MAX or not password or len(password) > 200:
            return None
        stored = load_password_hashes(self.state_dir).get(username)
        if stored is None:
            return None
        loop = asyncio.get_running_loop()
        if await loop.run_in_executor(self._hashing_pool(), check_password, password, stored):
            return username
        self.log.warning("atelier: failed login for %r", username)
        return None

    def get_handlers(self, app):
        """JupyterHub's login page, in the visitor's language (:mod:`.loginpage`)."""
        from atelier.hub_config.people.loginpage import LoginHandler

        return [("/login", LoginHandler)]
