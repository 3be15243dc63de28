"""The home quota watchdog: a server whose home is over quota is stopped, and its trainee told why.

Rule: nothing of the trainee's is ever deleted, and root never follows a path the trainee can
change. The machine's root filesystem has no quota support, so a hub-managed service
(``atelier-quota``, run as root by the hub) measures the home of every running server every
``hub.limits.quota_every`` seconds: blocks actually used (a sparse file costs what it stores, a
file with many hard links counts once) and the number of entries (empty files cost inodes), read
with ``fstatat`` from folder descriptors opened with ``O_NOFOLLOW`` (:func:`measure`), never
opening a file and never leaving the home's filesystem. The trainee's submission folders in the
exchange (``inbound/<account>``, theirs to write) count towards the same quota.

When a home is over ``home_quota_mb`` or ``home_files``, the service writes a notice
(``<state_dir>/quota/<user>.json``: usage, limits, the largest folders) and stops the server
through the hub's API. Every hub page then shows the trainee, in their roster language, why their
server stopped, that nothing was deleted, and how to free space (:func:`announcement`, the hub's
``announcement`` template variable). The trainee may start the server again to clean up: for
``cleanup_minutes`` it runs as long as usage does not grow; if the home is still over quota after
that, the server is stopped again. A home back under quota clears the notice.

A watchdog is only as fast as its passes: between two of them a writer adds at most what the other
limits allow (``hub.limits.file_size_mb`` per file, the private ``/tmp`` is not on disk; see
:mod:`atelier.hub_config.servers.limits`), which is why those limits exist.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import stat
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from atelier import languages, pages
from atelier.files import atomic_write

log = logging.getLogger("atelier.quota")

#: The hub service (and role) of the watchdog.
SERVICE = "atelier-quota"
#: What the watchdog may do through the hub's API: see running servers and stop them.
SCOPES = ["list:users", "read:users", "read:servers", "delete:servers"]
#: Entries of the home (folders with all they hold, files) listed in a notice, largest first.
LARGEST = 5
MIB = 1 << 20
#: Growth a server started over quota may show before it is stopped again (bytes, entries): what
#: Lab itself writes while it starts and runs (settings, workspaces, checkpoints, runtime files).
CLEANUP_SLACK = 4 * MIB
CLEANUP_SLACK_FILES = 100


@dataclass
class Usage:
    """What a home holds: bytes of blocks used, entries, and the heaviest top-level entries."""

    bytes: int = 0
    files: int = 0
    largest: list[tuple[str, int]] = field(default_factory=list)
    complete: bool = True


def measure(home: str, max_files: int = 0) -> Usage:
    """Measure ``home`` as root without following any link; stop counting past ``max_files``.

    Each folder is opened with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor,
    so a folder swapped for a link while this runs is refused, not followed; entries are
    ``fstatat``-ed without following links; files are never opened. Other filesystems (a mount
    inside the home) are not entered.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    top = os.open(home, flags)
    usage = Usage()
    per_entry: dict[str, int] = {}
    seen: set[int] = set()
    stack: list[tuple[int, str | None]] = [(top, None)]
    try:
        device = os.fstat(top).st_dev
        usage.bytes = os.fstat(top).st_blocks * 512
        while stack and usage.complete:
            fd, owner = stack.pop()
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            info = entry.stat(follow_symlinks=False)
                        except OSError:
                            continue
                        usage.files += 1
                        if max_files and usage.files > max_files:
                            usage.complete = False  # over anyway: no need to read further
                            break
                        name = owner if owner is not None else entry.name
                        if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
                            if info.st_ino in seen:
                                continue
                            seen.add(info.st_ino)
                        size = info.st_blocks * 512
                        usage.bytes += size
                        per_entry[name] = per_entry.get(name, 0) + size
                        if stat.S_ISDIR(info.st_mode) and info.st_dev == device:
                            try:
                                child = os.open(entry.name, flags, dir_fd=fd)
                            except OSError:
                                continue
                            stack.append((child, name))
            finally:
                os.close(fd)
    finally:
        for fd, _ in stack:
            os.close(fd)
    usage.largest = sorted(per_entry.items(), key=lambda item: -item[1])[:LARGEST]
    return usage


def _size(nbytes: float, language: str) -> str:
    units = ("o", "Kio", "Mio", "Gio") if language == "fr" else ("B", "KiB", "MiB", "GiB")
    for unit in units:
        if nbytes < 1024 or unit == units[-1]:
            text = f"{nbytes:.0f} {unit}" if unit == units[0] else f"{nbytes:.1f} {unit}"
            return text.replace(".", ",") if language == "fr" else text
        nbytes /= 1024
    return str(nbytes)


def notice_html(notice: dict) -> str:
    """The message of a notice, in its trainee's language, every value escaped.

    The words are ``quota.stopped`` and ``quota.help`` of
    ``hub_config/servers/locales/<language>.json`` (Atelier's own text, kept as written); the values
    filled into them (sizes, the names of the trainee's largest files) are escaped, and
    ``templates/quota.html.j2`` sets the first in bold.
    """
    language = notice.get("language")
    language = language if language in languages.LANGUAGES else languages.LANGUAGES[0]
    words = languages.words("atelier.hub_config.servers", "quota", language)
    largest = ", ".join(f"{name} ({_size(size, language)})" for name, size in notice["largest"])
    values = {
        "used": _size(notice["bytes"], language),
        "quota": _size(notice["quota_mb"] * MIB, language),
        "files": notice["files"],
        "max_files": notice["max_files"] or "∞",
        "minutes": f"{notice['cleanup_minutes']:g}",
        "largest": largest or "—",
    }
    # Markup.format escapes each value it fills in, never the words around them.
    stopped = pages.trusted(words["stopped"]).format(**values)
    help_ = pages.trusted(words["help"]).format(**values)
    return str(pages.macro("atelier.hub_config.servers", "quota.html.j2", "notice", stopped, help_))


class Notices:
    """The watchdog's notices, one JSON file per user in ``<state_dir>/quota`` (root only)."""

    def __init__(self, state_dir: str | Path):
        self.folder = Path(state_dir) / "quota"

    def _path(self, username: str) -> Path:
        return self.folder / f"{username}.json"

    def read(self, username: str) -> dict | None:
        """``username``'s notice, or None."""
        try:
            return json.loads(self._path(username).read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def write(self, username: str, notice: dict) -> None:
        """Replace ``username``'s notice at once (a page never reads half of one)."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        atomic_write(self._path(username), json.dumps(notice), fsync=False)

    def clear(self, username: str) -> None:
        """Remove ``username``'s notice (their home is under quota again)."""
        self._path(username).unlink(missing_ok=True)


class Announcement:
    """The hub's ``announcement`` template variable: a user's quota notice, on every hub page."""

    def __init__(self, state_dir: str | Path):
        self.notices = Notices(state_dir)

    def __call__(self, user) -> str:
        """The notice of ``user`` (None on the login page) as HTML, or an empty string."""
        name = getattr(user, "name", None)
        notice = self.notices.read(name) if name else None
        return notice_html(notice) if notice else ""


@dataclass
class Watchdog:
    """One pass over the running servers (:meth:`check`), given the hub's API and the limits."""

    api_url: str
    token: str
    state_dir: str
    prefix: str
    quota_mb: int
    max_files: int
    cleanup_minutes: float
    exchange_root: str = ""
    languages: dict = field(default_factory=dict)

    def __post_init__(self):
        import requests

        self.notices = Notices(self.state_dir)
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"

    def running(self) -> list[tuple[str, float]]:
        """``(username, started)`` of every running default server (started: epoch seconds)."""
        answer = self.session.get(f"{self.api_url}/users", params={"state": "active"}, timeout=30)
        answer.raise_for_status()
        found = []
        for user in answer.json():
            server = (user.get("servers") or {}).get("")
            if server and server.get("ready"):
                started = server.get("started") or ""
                when = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
                found.append((user["name"], when))
        return found

    def measure_account(self, account: str) -> Usage:
        """The account's home plus its submission folders (``inbound/<account>`` of each course).

        A trainee owns their inbound folders and can write there what they like: disk space as
        much as their home is, so it counts towards the same quota.
        """
        usage = measure(pwd.getpwnam(account).pw_dir, self.max_files)
        exchange = Path(self.exchange_root) if self.exchange_root else None
        for course in sorted(exchange.iterdir()) if exchange and exchange.is_dir() else ():
            inbound = course / "inbound" / account
            try:
                if not stat.S_ISDIR(os.lstat(inbound).st_mode):
                    continue
                more = measure(str(inbound), self.max_files)
            except OSError:
                continue
            usage.bytes += more.bytes
            usage.files += more.files
            usage.complete = usage.complete and more.complete
            label = f"submissions ({course.name})"
            usage.largest = sorted(
                [*usage.largest, (label, more.bytes)], key=lambda item: -item[1]
            )[:LARGEST]
        return usage

    def over(self, usage: Usage) -> bool:
        """Whether ``usage`` is past the quota or the entry count."""
        too_big = self.quota_mb and usage.bytes > self.quota_mb * MIB
        return bool(too_big or (self.max_files and usage.files > self.max_files))

    def check(self, username: str, started: float) -> str:
        """Check one running server; what was done: ``ok``, ``cleaning``, ``stopped``."""
        try:
            usage = self.measure_account(f"{self.prefix}{username}")
        except (KeyError, OSError) as error:
            log.warning("atelier-quota: %s's home not measured: %s", username, error)
            return "ok"
        notice = self.notices.read(username)
        if not self.over(usage):
            if notice:
                self.notices.clear(username)
            return "ok"
        if notice and started > notice["at"]:
            # Started again after a stop: a cleanup window, as long as usage does not grow.
            in_window = time.time() < started + self.cleanup_minutes * 60
            grew = (
                usage.bytes > notice["bytes"] + CLEANUP_SLACK
                or usage.files > notice["files"] + CLEANUP_SLACK_FILES
            )
            if in_window and not grew:
                return "cleaning"
        self.notices.write(
            username,
            {
                "at": time.time(),
                "bytes": usage.bytes,
                "files": usage.files,
                "complete": usage.complete,
                "largest": usage.largest,
                "quota_mb": self.quota_mb,
                "max_files": self.max_files,
                "cleanup_minutes": self.cleanup_minutes,
                "language": self.languages.get(username, "en"),
            },
        )
        log.warning(
            "atelier-quota: stopping %s's server: home %.1f MiB, %d entries (quota %d MiB, %d)",
            username,
            usage.bytes / MIB,
            usage.files,
            self.quota_mb,
            self.max_files,
        )
        answer = self.session.delete(f"{self.api_url}/users/{username}/server", timeout=60)
        if answer.status_code not in (202, 204):
            log.error("atelier-quota: could not stop %s's server: %s", username, answer.text)
        return "stopped"

    def run(self, every: float) -> None:
        """Check every running server, every ``every`` seconds, until killed."""
        from atelier.accounts import load_people

        while True:
            started = time.monotonic()
            try:
                people = load_people(self.state_dir)
                self.languages = {name: p.language for name, p in people.items()}
                for username, since in self.running():
                    self.check(username, since)
            except Exception as error:  # the watchdog outlives a hub restart or a bad answer
                log.warning("atelier-quota: pass failed: %s", error)
            time.sleep(max(0.0, every - (time.monotonic() - started)))


def service_spec(settings, command_prefix: list[str]) -> tuple[dict, dict] | None:
    """The hub service and role of the watchdog, or None when no quota is set."""
    limits = settings["hub"]["limits"]
    if not limits["enabled"] or not (limits["home_quota_mb"] or limits["home_files"]):
        return None
    config = {
        "state_dir": str(settings["hub"]["state_dir"]),
        "prefix": settings["accounts"]["prefix"],
        "quota_mb": limits["home_quota_mb"],
        "max_files": limits["home_files"],
        "cleanup_minutes": limits["cleanup_minutes"],
        "exchange_root": str(settings["grading"]["exchange_root"]),
        "every": limits["quota_every"],
    }
    service = {
        "name": SERVICE,
        "command": [*command_prefix, "-m", "atelier.hub_config.servers.quota", json.dumps(config)],
    }
    role = {
        "name": SERVICE,
        "description": "Stop servers whose home is over quota (nothing is deleted).",
        "scopes": SCOPES,
        "services": [SERVICE],
    }
    return service, role


def main(argv=None) -> None:
    """``python -m atelier.hub_config.servers.quota CONFIG_JSON``: the service the hub starts."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="JSON: state_dir, prefix, quota_mb, max_files, ...")
    config = json.loads(parser.parse_args(argv).config)
    logging.basicConfig(level=logging.INFO, format="[atelier-quota %(levelname)s] %(message)s")
    every = config.pop("every")
    Watchdog(
        api_url=os.environ["JUPYTERHUB_API_URL"].rstrip("/"),
        token=os.environ["JUPYTERHUB_API_TOKEN"],
        **config,
    ).run(every)


if __name__ == "__main__":
    main()
