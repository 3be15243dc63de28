"""Rosters: read a cohort CSV, validate all of it, and say every problem with its line number.

The rule: a roster is checked as a whole before anything changes on the machine. :func:`read_roster`
either returns every person of the file or raises :class:`RosterError` listing every problem found
(missing column, a column header outside the safe character set, duplicate person, bad email,
unknown language or role, hostile, overlong or reserved names, a country, gender or consent
outside what ``docs/roster.md`` lists), each with its line number and column. Countries are stored
as ISO 3166-1 alpha-2 codes, so ``Sénégal``, ``Senegal`` and ``SN`` count as one country.
Usernames are normalised (Unicode NFKC, then lower case) and must then be plain ASCII, so two rows
can never map to the same Unix account without it being reported with both line numbers; an
already-imported person may be imported again (same username and email) to update them. A
username is never one of the names Atelier derives for its own accounts (grader, sandbox, apps,
services) nor a system account's.
"""

from __future__ import annotations

import csv
import functools
import io
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path

from atelier.errors import AtelierError
from atelier.languages import LANGUAGES

#: Columns every roster must have (header names match case-insensitively; a space counts as `_`).
REQUIRED_COLUMNS = (
    "username",
    "full_name",
    "email",
    "language",
    "role",
    "cohort",
)
#: Columns a roster may have, each with a meaning (``docs/roster.md``); a cell may be left empty.
#: What a programme reports (participation by institution, country, gender) reads them, and
#: ``consent`` says whether a person's institution, country and gender may be used at all.
OPTIONAL_COLUMNS = ("institution", "country", "gender", "consent")
ROLES = ("trainee", "facilitator")
#: Gender: the values a roster may give (English or French, any case), each read as one of three
#: stored words; "prefer not to say" (or an empty cell) is stored as ``""`` and never guessed.
GENDERS = {
    "woman": "woman", "female": "woman", "f": "woman", "femme": "woman",
    "man": "man", "male": "man", "m": "man", "homme": "man",
    "non-binary": "non-binary", "nonbinary": "non-binary", "non-binaire": "non-binary",
    "prefer not to say": "", "préfère ne pas répondre": "", "": "",
}  # fmt: skip
#: Consent to reports by personal attribute: yes or no (oui/non); an empty cell is no.
CONSENT = {"yes": "yes", "oui": "yes", "no": "no", "non": "no", "": "no"}

#: A normalised username: ASCII letter first, then letters, digits, `-` or `_`. Unix accounts are
#: at most 32 characters; the account prefix takes up to 8 of them.
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,23}$")
USERNAME_MAX = 24
COHORT_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")
EMAIL_RE = re.compile(r"^[^@\s<>\"'`,;()\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
EMAIL_MAX = 254
TEXT_MAX = 100
#: Characters never accepted in a name: markup and quoting a later page or shell could trip on.
HOSTILE_CHARS = set('<>"`\\{}')
#: Names a person can never take, even with the prefix: they read as system or hub roles, or
#: name accounts and services Atelier makes itself. Names that depend on the settings (the grader
#: accounts ``<prefix>grader-C``, the apps account, the sandbox accounts) and every existing Unix
#: account are checked by :class:`atelier.accounts.ReservedNames`, which
#: ``atelier roster import`` passes as ``reserved``.
RESERVED_USERNAMES = {
    "root", "admin", "administrator", "hub", "jupyterhub", "nobody", "nogroup", "daemon",
    "service", "api", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "gnats", "operator", "sshd", "messagebus", "postgres",
    "grader", "formgrader", "nbgrader", "dashboard", "apps", "idle-culler", "sandbox",
}  # fmt: skip
#: Prefixes of names a person can never take: ``grader-C`` would be the course owner of cohort C
#: (its grader account ``<prefix>grader-C``); ``atelier...`` is the namespace of Atelier's own
#: accounts and services (``atelier-sbxN``, ``atelier-apps``, ``atelier-roster``); ``systemd-``
#: names system accounts.
RESERVED_PREFIXES = ("grader-", "grader_", "atelier", "systemd-")
#: A column header: what a spreadsheet's column name plausibly is, and nothing a page could
#: mistake for markup. Extra columns are shown on the facilitators' dashboard.
HEADER_RE = re.compile(r"^[A-Za-z][A-Za-z0-9 _.-]{0,39}$")
#: A roster larger than this is not a cohort; reading it would only hurt.
MAX_FILE_BYTES = 5 * 1024 * 1024


class RosterError(AtelierError):
    """A roster file has problems; ``problems`` holds one message per problem, with its line."""

    def __init__(self, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        shown = "\n".join(f"  {problem}" for problem in problems)
        super().__init__(
            f"{path}: {len(problems)} problem(s), nothing was changed:\n{shown}\n"
            "Fix the file and import it again."
        )


@dataclass(frozen=True)
class Person:
    """One row of a roster, normalised and validated."""

    username: str
    full_name: str
    email: str
    institution: str
    country: str
    language: str
    role: str
    cohorts: tuple[str, ...]
    extra: dict = field(default_factory=dict)
    line: int = 0
    #: ``woman``, ``man``, ``non-binary`` or ``""`` (not said, or no gender column).
    gender: str = ""
    #: ``yes``, ``no``, or ``""`` when the roster has no consent column (see :attr:`consents`).
    consent: str = ""

    @property
    def consents(self) -> bool:
        """Whether institution, country and gender may be counted in reports (docs/roster.md).

        A roster without a consent column asks nobody, and its people are counted as before.
        """
        return self.consent != "no"

    def to_json(self) -> dict:
        """A JSON-ready mapping (the roster store's format)."""
        data = asdict(self)
        data["cohorts"] = list(self.cohorts)
        data.pop("line")
        return data

    @classmethod
    def from_json(cls, data: Mapping) -> Person:
        """The inverse of :meth:`to_json`."""
        values = dict(data)
        values["cohorts"] = tuple(values.get("cohorts", ()))
        values["extra"] = dict(values.get("extra") or {})
        # Stored before these columns had a meaning, a gender or consent column was an extra one:
        # read it as the import reads it now, so a "no" given then is respected without waiting
        # for the roster to be imported again (an unreadable value counts as no consent).
        for name, table, fallback in (("gender", GENDERS, ""), ("consent", CONSENT, "no")):
            if name not in values and name in values["extra"]:
                raw = str(values["extra"].pop(name))
                values[name] = table.get(" ".join(raw.lower().split()), fallback)
        return cls(**values)


def show(value: str, limit: int = 40) -> str:
    """A value quoted for an error message: escaped and cut short, so hostile input is harmless."""
    text = value if len(value) <= limit else value[:limit] + "…"
    return ascii(text) if not text.isascii() or not text.isprintable() else repr(text)


def normalise_username(raw: str) -> str:
    """The account name a roster username maps to: NFKC, trimmed, lower case (maybe invalid)."""
    return unicodedata.normalize("NFKC", raw).strip().lower()


def username_problem(raw: str) -> str | None:
    """Why ``raw`` cannot be a username, or None when its normalised form is acceptable."""
    name = normalise_username(raw)
    if not name:
        return "username is empty"
    if len(raw) > 4 * USERNAME_MAX or len(name) > USERNAME_MAX:
        return f"username {show(raw)} is longer than {USERNAME_MAX} characters"
    if not name.isascii():
        return (
            f"username {show(raw)} has non-ASCII characters; use ASCII letters, digits, '-' or '_' "
            "(look-alikes from other alphabets are refused so two people never share an account)"
        )
    if not USERNAME_RE.match(name):
        return f"username {show(raw)} must start with a letter, then letters, digits, '-' or '_'"
    if name in RESERVED_USERNAMES or name.startswith(RESERVED_PREFIXES):
        return (
            f"username {show(raw)} is reserved (system, grader, sandbox and service accounts "
            "are Atelier's own); choose another"
        )
    return None


def header_problem(raw: str) -> str | None:
    """Why a column header is refused, or None (an empty header names an ignored column)."""
    name = raw.strip()
    if not name or HEADER_RE.match(name):
        return None
    return (
        f"column header {show(raw)} is not allowed: a header is 1-40 ASCII letters, digits, "
        "spaces, '_', '-' or '.', starting with a letter"
    )


def text_problem(column: str, value: str) -> str | None:
    """Why a free-text value (full name, institution, ...) is refused, or None."""
    if len(value) > TEXT_MAX:
        return f"{column} is longer than {TEXT_MAX} characters"
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        return f"{column} {show(value)} contains control characters"
    if HOSTILE_CHARS & set(value):
        bad = "".join(sorted(HOSTILE_CHARS & set(value)))
        return f"{column} {show(value)} contains characters that are not allowed ({bad})"
    return None


def _header_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).strip().lower().replace(" ", "_").replace("-", "_")


def _decode(path: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise RosterError(
            path, [f"line {line}: the file is not UTF-8 text; save it as 'CSV UTF-8' and retry"]
        ) from exc


def parse_roster(
    text: str,
    path: str = "roster.csv",
    known: Mapping[str, Person] | None = None,
    reserved: Callable[[str], str | None] | None = None,
) -> list[Person]:
    """Validate a roster's text; return its people or raise :class:`RosterError` with every problem.

    Args:
        text: the CSV text, header first.
        path: the file name used in messages.
        known: people already imported, by username: a row for one of them must carry the same email
            (it updates that person); a different email means a different person and is refused.
        reserved: why a (normalised) username is reserved on this machine, or None; the settings-
            and machine-dependent names (:class:`atelier.accounts.ReservedNames`).
    """
    known = known or {}
    problems: list[str] = []
    people: list[Person] = []
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise RosterError(path, ["line 1: the file is empty; it needs a header row"]) from None
    except csv.Error as exc:
        raise RosterError(path, [f"line 1: unreadable header ({exc})"]) from None
    bad_headers = [problem for name in header if (problem := header_problem(name))]
    if bad_headers:
        raise RosterError(path, [f"line 1: {problem}" for problem in bad_headers])
    columns = [_header_key(name) for name in header]
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    has_consent = "consent" in columns
    if missing:
        raise RosterError(
            path,
            [
                f"line 1: missing column(s) {', '.join(missing)}; the header must name "
                + ", ".join(REQUIRED_COLUMNS)
            ],
        )
    duplicated = sorted({name for name in columns if columns.count(name) > 1 and name})
    if duplicated:
        raise RosterError(path, [f"line 1: column(s) named twice: {', '.join(duplicated)}"])

    seen_usernames: dict[str, int] = {}
    seen_emails: dict[str, int] = {}
    rows = iter(reader)
    while True:
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            reason = "a field is far too long" if "field limit" in str(exc) else str(exc)
            problems.append(f"line {reader.line_num}: unreadable row ({reason})")
            break
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue  # blank lines are allowed
        if len(row) != len(columns):
            problems.append(
                f"line {line}: {len(row)} fields but the header has {len(columns)} columns"
            )
            continue
        values = {name: cell.strip() for name, cell in zip(columns, row, strict=True) if name}
        for name in OPTIONAL_COLUMNS:
            values.setdefault(name, "")
        row_problems = []
        for name in REQUIRED_COLUMNS:
            if not values[name]:
                row_problems.append(f"{name} is empty")

        raw_username = values["username"]
        username = normalise_username(raw_username)
        if raw_username:
            problem = username_problem(raw_username)
            if not problem and reserved is not None:
                problem = reserved(username)
            if problem:
                row_problems.append(problem)
            elif username in seen_usernames:
                row_problems.append(
                    f"username {show(raw_username)} is the same account as line "
                    f"{seen_usernames[username]} ({show(username)}); give each person their own"
                )
            else:
                seen_usernames[username] = line

        for name in ("full_name", "institution", "country"):
            problem = text_problem(name, values[name])
            if problem:
                row_problems.append(problem)
        country = ""
        if values["country"] and not text_problem("country", values["country"]):
            country = country_code(values["country"]) or ""
            if not country:
                row_problems.append(
                    f"column country: {show(values['country'])} is not a country; give its ISO "
                    "3166 two-letter code (SN, KE, FR) or its English or French name"
                )
        gender = GENDERS.get(" ".join(values["gender"].lower().split()))
        if gender is None:
            row_problems.append(
                f"column gender: {show(values['gender'])} is not one of woman, man, non-binary, "
                "prefer not to say (or femme, homme, non-binaire, préfère ne pas répondre), "
                "or empty"
            )
        consent = CONSENT.get(values["consent"].lower())
        if consent is None:
            row_problems.append(
                f"column consent: {show(values['consent'])} is not yes or no (oui, non); "
                "an empty cell means no"
            )

        email = values["email"]
        if email:
            if len(email) > EMAIL_MAX or not EMAIL_RE.match(email):
                row_problems.append(f"email {show(email)} is not a valid address")
            elif email.lower() in seen_emails:
                row_problems.append(
                    f"email {show(email)} is already used on line {seen_emails[email.lower()]}"
                )
            else:
                seen_emails[email.lower()] = line

        language = values["language"].lower()
        if language and language not in LANGUAGES:
            row_problems.append(
                f"language {show(values['language'])} is unknown; use one of {', '.join(LANGUAGES)}"
            )
        role = values["role"].lower()
        if role and role not in ROLES:
            row_problems.append(
                f"role {show(values['role'])} is unknown; use one of {', '.join(ROLES)}"
            )
        cohorts = tuple(c.strip().lower() for c in values["cohort"].split(";") if c.strip())
        for cohort in cohorts:
            if not COHORT_RE.match(cohort):
                row_problems.append(
                    f"cohort {show(cohort)} must be 1-30 lower-case letters, digits or '-'"
                )
        if role == "trainee" and len(cohorts) > 1:
            row_problems.append("a trainee belongs to exactly one cohort")

        before = known.get(username)
        if before and email and before.email.lower() != email.lower():
            row_problems.append(
                f"username {show(raw_username)} was already imported for another person "
                f"({show(before.email)}); choose another username"
            )

        known_columns = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        extra = {name: values[name] for name in columns if name and name not in known_columns}
        for name, value in extra.items():
            problem = text_problem(f"column {name}", value)
            if problem:
                row_problems.append(problem)

        if row_problems:
            problems.extend(f"line {line}: {problem}" for problem in row_problems)
            continue
        people.append(
            Person(
                username=username,
                full_name=values["full_name"],
                email=email,
                institution=values["institution"],
                country=country,
                language=language,
                role=role,
                cohorts=cohorts,
                extra=extra,
                line=line,
                gender=gender or "",
                consent=(consent or "no") if has_consent else "",
            )
        )
    if problems:
        raise RosterError(path, problems)
    if not people:
        raise RosterError(path, ["line 2: the roster has a header but no people"])
    return people


def read_roster(
    path: str | Path,
    known: Mapping[str, Person] | None = None,
    reserved: Callable[[str], str | None] | None = None,
) -> list[Person]:
    """Read and validate the roster CSV at ``path`` (see :func:`parse_roster`)."""
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            raise RosterError(
                str(p), [f"line 1: the file is {size} bytes; a roster is at most 5 MB"]
            )
        data = p.read_bytes()
    except OSError as exc:
        raise AtelierError(f"{p}: cannot read the roster ({exc.strerror})") from exc
    return parse_roster(_decode(str(p), data), str(p), known, reserved)


def _folded(text: str) -> str:
    """``text`` without accents, case, punctuation or extra spaces: how country names compare."""
    plain = unicodedata.normalize("NFKD", text.replace("’", "'"))
    plain = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


@functools.cache
def _countries() -> dict[str, str]:
    """Folded English and French country names, and codes, to ISO 3166-1 alpha-2 codes.

    The names are CLDR's (through Babel, which JupyterLab's server already brings): every
    territory with a two-letter code, which is what ISO 3166-1 alpha-2 assigns.
    """
    from babel import Locale

    table: dict[str, str] = {}
    for language in ("en", "fr"):
        for code, name in Locale(language).territories.items():
            if len(code) == 2 and code.isalpha() and code not in ("ZZ", "EU", "EZ", "UN", "QO"):
                table[_folded(name)] = code
                table[code.lower()] = code
    return table


def country_code(value: str) -> str | None:
    """The ISO 3166-1 alpha-2 code of a country given by code or English or French name, or None.

    ``SN``, ``sn``, ``Senegal``, ``Sénégal`` and ``senegal`` are all ``SN``.
    """
    return _countries().get(_folded(value)) if value.strip() else None


def country_name(code: str, language: str = "en") -> str:
    """A country's name in ``language`` (``en`` or ``fr``) from its code; else the value itself."""
    from babel import Locale

    try:
        return Locale(language if language in LANGUAGES else LANGUAGES[0]).territories.get(
            code, code
        )
    except ValueError:
        return code


def cohorts_of(people: Iterable[Person]) -> dict[str, dict[str, list[str]]]:
    """Map each cohort id to its ``trainees`` and ``facilitators`` (usernames, sorted)."""
    result: dict[str, dict[str, list[str]]] = {}
    for person in people:
        for cohort in person.cohorts:
            entry = result.setdefault(cohort, {"trainees": [], "facilitators": []})
            entry[f"{person.role}s"].append(person.username)
    for entry in result.values():
        entry["trainees"].sort()
        entry["facilitators"].sort()
    return result
