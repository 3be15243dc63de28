"""Accounts: the roster store in the state directory, Unix accounts, and import passwords.

The rule: the state directory holds the truth about people (``roster.json``, mode 600) and the
hashes of their passwords (``passwords.json``, mode 600); every write goes to a temporary file
renamed into place, so a crash never leaves half a file. Each person gets a Unix account named
``<prefix><username>`` with a private home (mode 700). An import checks every account it would
create before creating any, and removes the ones it created if a later step fails.

Atelier never adopts a Unix account it did not create for that purpose. Every account it creates
carries a marker in the full-name field of its comment (GECOS), one per purpose
(:data:`MARKERS`: trainee, grader, sandbox, apps); users cannot change that field (no password,
``chfn`` restricted). An existing account without the marker of the purpose it would serve is
refused with a message, never used (:func:`check_marked`). Roster usernames that would name one of
Atelier's own accounts or a system account are refused at import (:class:`ReservedNames`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from atelier.errors import AtelierError
from atelier.files import atomic_write
from atelier.roster import Person, show

ROSTER_FILE = "roster.json"
PASSWORDS_FILE = "passwords.json"
#: Letters that cannot be misread when a facilitator reads a password aloud or copies it by hand.
PASSWORD_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"


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
    text = json.dumps(data, indent=1, ensure_ascii=False)
    atomic_write(Path(state_dir) / ROSTER_FILE, text, 0o600)


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
    atomic_write(Path(state_dir) / PASSWORDS_FILE, json.dumps(dict(sorted(hashes.items()))), 0o600)


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


#: The comment (GECOS full name) of each kind of account Atelier creates: its mark as Atelier's.
MARKERS = {
    "trainee": "Atelier trainee",
    "grader": "Atelier grader",
    "sandbox": "Atelier grading sandbox",
    "apps": "Atelier public apps",
}
#: What trainee accounts were marked with before the markers had a purpose (still accepted for
#: people already in the roster store, and marked again).
LEGACY_TRAINEE_MARKER = "Atelier"
#: Default prefix of the sandbox accounts (``grading.sandbox.SandboxOptions.account_prefix``).
SANDBOX_PREFIX = "atelier-sbx"


def marker_of(entry: pwd.struct_passwd) -> str:
    """The full-name field of an account's comment (where Atelier puts its marker)."""
    return entry.pw_gecos.split(",", 1)[0].strip()


def check_marked(name: str, purpose: str, legacy=None) -> pwd.struct_passwd | None:
    """The account ``name`` if it exists and Atelier created it for ``purpose``; None if missing.

    An account that exists without the marker of ``purpose`` raises :class:`AtelierError`: it may
    be a system account, someone's own, or another kind of Atelier account (a trainee's account
    must never become a grader). ``legacy(entry)`` may accept an account made by an older Atelier
    before markers existed; it is then marked.
    """
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        return None
    if marker_of(entry) == MARKERS[purpose]:
        return entry
    if legacy is not None and legacy(entry):
        mark(name, purpose)
        return pwd.getpwnam(name)
    raise AtelierError(
        f"the Unix account {name} exists but Atelier did not create it as a {purpose} account "
        f"(its comment is {show(entry.pw_gecos)}, not {MARKERS[purpose]!r}); Atelier never "
        "adopts an existing account: remove or rename that account, or change accounts.prefix"
    )


def mark(name: str, purpose: str) -> None:
    """Write the marker of ``purpose`` in the comment of the account ``name``."""
    _run(["usermod", "--comment", MARKERS[purpose], name])


def create_system_account(
    name: str, purpose: str, home: str = "/nonexistent", create_home: bool = False
) -> pwd.struct_passwd:
    """Create a marked system account (no login shell, its own group); return its entry."""
    cmd = ["useradd", "--system", "--user-group", "--shell", "/usr/sbin/nologin"]
    cmd += ["--comment", MARKERS[purpose], "--home-dir", home]
    cmd += ["--create-home"] if create_home else ["--no-create-home"]
    _run([*cmd, name])
    return pwd.getpwnam(name)


class ReservedNames:
    """Why a roster username may not be used on this machine (the settings' and the system's names).

    Static names are in :mod:`atelier.roster`; this adds what depends on the settings
    and the machine: the username must not start with the account prefix (``at-at-x`` is never
    meant), its account ``<prefix><username>`` must not be a sandbox account or the apps account,
    and neither the username nor the account may name an existing Unix account that is not an
    Atelier trainee account (a system account, someone's own, a grader's).
    """

    def __init__(self, policy: AccountPolicy, apps_account: str = "atelier-apps"):
        self.policy = policy
        self.apps_account = apps_account
        self.sandbox = re.compile(rf"^{re.escape(SANDBOX_PREFIX)}[0-9]+$")

    @classmethod
    def from_settings(cls, settings: Mapping) -> ReservedNames:
        """The reserved names under validated settings."""
        apps = settings.get("apps", {}).get("service_user") or "atelier-apps"
        return cls(AccountPolicy.from_settings(settings), apps)

    def __call__(self, username: str) -> str | None:
        """The problem with ``username`` (normalised), or None."""
        account = self.policy.account(username)
        prefix = self.policy.prefix
        # Only a prefix that reads as one ("at-", not "at") makes "at-x" look like an account name.
        if prefix[-1:] in ("-", "_") and username.startswith(prefix):
            return (
                f"username {show(username)} starts with the account prefix "
                f"{self.policy.prefix!r}; give the username without it"
            )
        if self.sandbox.match(account) or account in (self.apps_account, "root"):
            return f"username {show(username)} would be Atelier's account {account}; choose another"
        for name in dict.fromkeys((username, account)):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            if name == account and marker_of(entry) in (MARKERS["trainee"], LEGACY_TRAINEE_MARKER):
                continue  # a trainee or facilitator account made by an earlier import
            return (
                f"username {show(username)} is taken: the Unix account {name} exists and is not "
                "an account Atelier created for a person; choose another username"
            )
        return None


def account_exists(name: str) -> bool:
    """Whether a Unix account called ``name`` exists."""
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


#: Where Debian keeps the account tools (useradd, usermod, userdel): a caller's PATH may lack
#: them (the grading sandbox sets its own PATH when it adds a slot account).
ADMIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _run(cmd: list[str]) -> None:
    import shutil

    tool = shutil.which(cmd[0], path=ADMIN_PATH) or cmd[0]
    result = subprocess.run([tool, *cmd[1:]], capture_output=True, text=True, check=False)
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
            MARKERS["trainee"],
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

    An account that exists is used only if Atelier created it for a person (its trainee marker,
    :data:`MARKERS`) and that person was imported before (in ``known``); any other is refused
    before any account is created: it could be a system account, someone else's, or a grader's.
    """
    people = list(people)
    clashes = []
    for p in people:
        account = policy.account(p.username)
        try:
            entry = pwd.getpwnam(account)
        except KeyError:
            continue
        marker = marker_of(entry)
        ours = p.username in known and marker in (MARKERS["trainee"], LEGACY_TRAINEE_MARKER)
        if not ours:
            clashes.append(
                f"line {p.line}: Unix account {account} already exists and was not created by "
                "Atelier for a person; choose another username or accounts.prefix"
            )
    if clashes:
        raise AtelierError("nothing was changed:\n  " + "\n  ".join(clashes))
    created: list[str] = []
    try:
        for person in people:
            if not account_exists(policy.account(person.username)):
                create_account(policy, person.username)
                created.append(person.username)
            else:
                if marker_of(pwd.getpwnam(policy.account(person.username))) != MARKERS["trainee"]:
                    mark(policy.account(person.username), "trainee")
                os.chmod(policy.home(person.username), 0o700)
    except BaseException:
        for username in created:
            delete_account(policy, username)
        raise
    return created
