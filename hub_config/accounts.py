"""Accounts: the roster store in the state directory, Unix accounts, and import passwords.

The rule: the state directory holds the truth about people (``roster.json``, mode 600) and the
hashes
of their passwords (``passwords.json``, mode 600); every write goes to a temporary file renamed into
place, so a crash never leaves half a file. Each person gets a Unix account named
``<prefix><username>`` with a private home (mode 700). An import checks every account it would
create before creating any, and removes the ones it created if a later step fails.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pwd
import secrets
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from atelier.errors import AtelierError
from atelier.hub_config.roster import Person

ROSTER_FILE = "roster.json"
PASSWORDS_FILE = "passwords.json"
#: Letters that cannot be misread when a facilitator reads a password aloud or copies it by hand.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


def write_private(path: Path, text: str, mode: int = 0o600) -> None:
    """Write ``text`` to ``path`` atomically (temporary file + rename), readable by its owner."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_json(path: Path, default):
    try:
        return json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as exc:
        raise AtelierError(f"{path}: unreadable ({exc}); restore it from a backup") from exc


# --- the roster store ---------------------------------------------------------------------------


def load_people(state_dir: str | Path) -> dict[str, Person]:
    """Everyone imported so far, by username (empty before the first import)."""
    data = _read_json(Path(state_dir) / ROSTER_FILE, {"people": {}})
    return {name: Person.from_json(entry) for name, entry in data.get("people", {}).items()}


def save_people(state_dir: str | Path, people: Mapping[str, Person]) -> None:
    """Replace the roster store with ``people``."""
    data = {"version": 1, "people": {name: people[name].to_json() for name in sorted(people)}}
    write_private(Path(state_dir) / ROSTER_FILE, json.dumps(data, indent=1, ensure_ascii=False))


# --- passwords ------------------------------------------------------------------------------------


def new_password() -> str:
    """A fresh password of 12 unambiguous letters and digits, grouped by four for reading aloud."""
    chars = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(12))
    return "-".join(chars[i : i + 4] for i in range(0, 12, 4))


def hash_password(password: str, salt: bytes | None = None) -> str:
    """A salted scrypt hash of ``password``, as ``scrypt$<salt hex>$<hash hex>``."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant-time compare)."""
    try:
        scheme, salt, _ = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    return hmac.compare_digest(hash_password(password, bytes.fromhex(salt)), stored)


def load_password_hashes(state_dir: str | Path) -> dict[str, str]:
    """Username -> password hash."""
    return _read_json(Path(state_dir) / PASSWORDS_FILE, {})


def save_password_hashes(state_dir: str | Path, hashes: Mapping[str, str]) -> None:
    """Replace the password hashes."""
    write_private(Path(state_dir) / PASSWORDS_FILE, json.dumps(dict(sorted(hashes.items()))))


# --- Unix accounts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AccountPolicy:
    """How Unix accounts are named and made (the ``accounts`` settings section)."""

    prefix: str = "at-"
    home_root: str = "/home"
    shell: str = "/bin/bash"

    @classmethod
    def from_settings(cls, settings: Mapping) -> AccountPolicy:
        """The policy of the ``accounts`` section of validated settings."""
        section = settings.get("accounts", {})
        return cls(
            prefix=section.get("prefix", cls.prefix),
            home_root=section.get("home_root", cls.home_root),
            shell=section.get("shell", cls.shell),
        )

    def account(self, username: str) -> str:
        """The Unix account of a roster username."""
        return f"{self.prefix}{username}"

    def home(self, username: str) -> Path:
        """The private home of a roster username."""
        return Path(self.home_root) / self.account(username)


def account_exists(name: str) -> bool:
    """Whether a Unix account called ``name`` exists."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AtelierError(f"{' '.join(cmd)} failed: {result.stderr.strip() or result.returncode}")


def create_account(policy: AccountPolicy, username: str) -> None:
    """Create the Unix account of ``username`` with a private home (mode 700) and no password."""
    account = policy.account(username)
    home = policy.home(username)
    home.parent.mkdir(parents=True, exist_ok=True)
    _run(
        [
            "useradd",
            "--create-home",
            "--home-dir",
            str(home),
            "--shell",
            policy.shell,
            "--user-group",
            "--comment",
            "Atelier",
            "--key",
            "HOME_MODE=0700",
            account,
        ]
    )
    # useradd's HOME_MODE only applies to new homes; make the rule hold whatever the distribution
    # does.
    os.chmod(home, 0o700)


def delete_account(policy: AccountPolicy, username: str) -> None:
    """Delete the Unix account of ``username`` and its home (undoes a failed import; tests)."""
    account = policy.account(username)
    if account_exists(account):
        subprocess.run(["userdel", "--remove", account], capture_output=True, check=False)


def ensure_accounts(
    policy: AccountPolicy, people: Iterable[Person], known: Mapping[str, Person]
) -> list[str]:
    """Create the missing accounts of ``people`` all or nothing; return the usernames created.

    An account that exists but that Atelier did not import (not in ``known``) is refused before any
    account is created: it could be a system account or someone else's.
    """
    people = list(people)
    clashes = [
        f"line {p.line}: Unix account {policy.account(p.username)} already exists and was not "
        "created by Atelier; choose another username or accounts.prefix"
        for p in people
        if p.username not in known and account_exists(policy.account(p.username))
    ]
    if clashes:
        raise AtelierError("nothing was changed:\n  " + "\n  ".join(clashes))
    created: list[str] = []
    try:
        for person in people:
            if not account_exists(policy.account(person.username)):
                create_account(policy, person.username)
                created.append(person.username)
            else:
                os.chmod(policy.home(person.username), 0o700)
    except BaseException:
        for username in created:
            delete_account(policy, username)
        raise
    return created
