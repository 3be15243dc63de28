"""Per-trainee variants: the numbers of an item drawn for each trainee, from a secret on the server.

Rule: a numeric or choice item may declare parameters (``variants={"minutes": [90, 60, 120]}``);
each trainee sees the values drawn for them, stable across sessions and servers, and nobody can
predict or choose them:

- **The secret** (``<hub.state_dir>/variants.secret``, root's, mode 600) is made once, by the first
  hub process that needs it (:func:`load_secret` with ``create``); it never leaves root's processes.
- **A cohort key** is ``HMAC-SHA256(secret, "atelier-variants" NUL cohort)``
  (:func:`cohort_key`): a grading process holds its own cohort's key only.
- **A trainee's seed** is ``HMAC-SHA256(cohort key, username)`` (:func:`trainee_seed`), in hex. The
  spawner puts it in the trainee's server's environment (:data:`SEED_VARIABLE`), so the trainee's
  kernels show their numbers; the grader computes it again from the cohort key and the nbgrader
  student id and gives it to the sandbox that runs the submission, which pins it (:func:`pin`)
  before any of the trainee's code runs and again before every test, so what the notebook writes
  in its environment changes nothing the grader computes. Knowing one's own seed tells nothing
  about another's (HMAC keyed by a secret the trainee never sees).
- **An item's parameters** are ``HMAC-SHA256(seed, item id)`` read as an index into the product
  of the declared value lists (:func:`draw`): one trainee's items vary independently, and every
  combination is equally likely (a 64-bit index modulo a small product: no visible bias).
- **No seed** (a public app, Binder, ``atelier check``, the library, grading a course directory
  without a cohort): every parameter takes its first value, the default variant the workbook's
  prose and answer sets are written for.

A parameter whose values are mappings draws its keys together (``"rate": [{"up": 1000, "down":
600}, {"up": 600, "down": 600}]`` gives ``up`` and ``down`` of one row), for numbers that only make
sense as a set (the up and down bit rates of one meeting type).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atelier.errors import AtelierError

#: The trainee's seed in their server's (and kernels') environment.
SEED_VARIABLE = "ATELIER_VARIANT_SEED"
#: The secret's file in the hub's state directory.
SECRET_FILE = "variants.secret"
#: What a cohort key is derived for (a distinct purpose from any other HMAC of the secret).
_PURPOSE = b"atelier-variants\x00"
#: A seed as the spawner and the grader write it: 64 hex digits.
_SEED = re.compile(r"[0-9a-f]{64}")
#: Parameter names: what ``{name}`` in a question may name.
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}")
#: More combinations than this is a mistake (the index is 64 bits; variants are a handful).
MAX_COMBINATIONS = 10_000

#: The seed the grading sandbox pinned: ``None`` means not pinned (then the environment says),
#: ``""`` means pinned to the default variant. Only the sandbox's harness sets it.
_pinned: str | None = None


class VariantError(AtelierError):
    """A variant declaration or a secret is not usable; the message says which and why."""


# -- the secret and the seeds ------------------------------------------------------------------
def load_secret(state_dir: str | Path, create: bool = False) -> bytes:
    """The variants' secret in ``state_dir``; with ``create``, made (mode 600) when missing.

    Made with ``O_EXCL``, so two hub processes starting at once keep the same secret; refused
    when others may read it or its group may change it (then every trainee's numbers could be
    computed or chosen). Its group may read it: the state directory (700) already keeps others
    out on one machine, and on Kubernetes the Secret is mounted for the hub's group only.
    """
    path = Path(state_dir) / SECRET_FILE
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except OSError:
            pass  # there already, or a read-only mount (Kubernetes): read below, or say missing
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise VariantError(
            f"{path}: no variants secret here (the hub makes it when a trainee's server first "
            "starts; check --settings / hub.state_dir)"
        ) from None
    except OSError as error:
        raise VariantError(f"{path}: cannot read the variants secret: {error}") from None
    with os.fdopen(fd, "r") as handle:
        if os.fstat(handle.fileno()).st_mode & 0o027:
            raise VariantError(f"{path}: must be readable by its owner only (chmod 600 {path})")
        text = handle.read(200).strip()
    try:
        secret = bytes.fromhex(text)
    except ValueError:
        secret = b""
    if len(secret) < 16:
        raise VariantError(f"{path}: not a variants secret (64 hex digits expected)")
    return secret


def cohort_key(secret: bytes, cohort: str) -> bytes:
    """The key of ``cohort``'s seeds: what a grading process of that cohort holds."""
    return hmac.new(secret, _PURPOSE + cohort.encode("utf-8"), hashlib.sha256).digest()


def trainee_seed(key: bytes, username: str) -> str:
    """The seed of trainee ``username`` (hub username) under a cohort key, as 64 hex digits."""
    return hmac.new(key, username.encode("utf-8"), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class CohortVariants:
    """What grading needs to give each submission its trainee's seed.

    Args:
        key: the cohort's key (:func:`cohort_key`).
        account_prefix: the accounts' prefix: an nbgrader student id is ``<prefix><username>``.
    """

    key: bytes
    account_prefix: str = ""

    @classmethod
    def load(cls, state_dir: str | Path, cohort: str, account_prefix: str) -> CohortVariants:
        """The cohort's key from the secret in ``state_dir`` (made if missing; root only)."""
        return cls(cohort_key(load_secret(state_dir, create=True), cohort), account_prefix)

    def seed_of_student(self, student_id: str) -> str:
        """The seed of the trainee whose nbgrader student id (Unix account) is ``student_id``."""
        username = student_id
        if self.account_prefix and student_id.startswith(self.account_prefix):
            username = student_id[len(self.account_prefix) :]
        return trainee_seed(self.key, username)

    def __repr__(self) -> str:  # never print the key
        return f"CohortVariants(account_prefix={self.account_prefix!r})"


def pin(seed: str | None) -> None:
    """Pin the seed this process draws with (the grading sandbox's harness; ``""``: default)."""
    global _pinned
    _pinned = seed


def current_seed() -> str:
    """The seed this process draws with: the pinned one, else the environment's, else ``""``."""
    seed = _pinned if _pinned is not None else os.environ.get(SEED_VARIABLE, "")
    return seed if _SEED.fullmatch(seed or "") else ""


# -- declarations and the draw -----------------------------------------------------------------
Declaration = Mapping[str, Sequence[Any]]


def _is_value(value: Any) -> bool:
    return isinstance(value, int | float | str) and not isinstance(value, bool)


def check_declaration(variants: Declaration, where: str = "variants") -> list[tuple[str, list]]:
    """The declaration as ``[(name, values)]``, or a :class:`VariantError` naming what is wrong."""
    if not isinstance(variants, Mapping) or not variants:
        raise VariantError(f"{where}: give a mapping of parameter name -> list of values")
    groups: list[tuple[str, list]] = []
    names: set[str] = set()
    combinations = 1
    for name, values in variants.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise VariantError(f"{where}: parameter name {name!r} must be a Python identifier")
        if isinstance(values, str | bytes | Mapping) or not isinstance(values, Sequence):
            raise VariantError(f"{where}: {name}: give a list of values")
        values = list(values)
        if not values:
            raise VariantError(f"{where}: {name}: give at least one value")
        for value in values:
            keys = [name]
            if isinstance(value, Mapping):
                keys = list(value)
                if set(keys) != set(values[0]) or not keys:
                    raise VariantError(f"{where}: {name}: every row must have the same keys")
                bad = [k for k in keys if not isinstance(k, str) or not _NAME.fullmatch(k)]
                bad += [k for k, v in value.items() if not _is_value(v)]
                if bad:
                    raise VariantError(f"{where}: {name}: bad key or value for {bad[0]!r}")
            elif not _is_value(value):
                raise VariantError(f"{where}: {name}: {value!r} is not a number or a text")
        shown = list(values[0]) if isinstance(values[0], Mapping) else [name]
        if names & set(shown):
            raise VariantError(f"{where}: parameter {sorted(names & set(shown))[0]} given twice")
        names |= set(shown)
        combinations *= len(values)
        groups.append((name, values))
    if combinations > MAX_COMBINATIONS:
        raise VariantError(f"{where}: {combinations} combinations; at most {MAX_COMBINATIONS}")
    return groups


def _flatten(groups: list[tuple[str, list]], indexes: list[int]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for (name, values), index in zip(groups, indexes, strict=True):
        value = values[index]
        params.update(dict(value) if isinstance(value, Mapping) else {name: value})
    return params


def draw(item_id: str, variants: Declaration, seed: str | None = None) -> dict[str, Any]:
    """The parameters of item ``item_id`` for ``seed`` (default: :func:`current_seed`).

    Without a seed, every parameter's first value (the default variant).
    """
    groups = check_declaration(variants, f"item {item_id}")
    seed = current_seed() if seed is None else seed
    if not seed:
        return _flatten(groups, [0] * len(groups))
    digest = hmac.new(bytes.fromhex(seed), item_id.encode("utf-8"), hashlib.sha256).digest()
    number = int.from_bytes(digest[:8], "big")
    sizes = [len(values) for _, values in groups]
    total = 1
    for size in sizes:
        total *= size
    number %= total
    indexes = []
    for size in sizes:
        number, index = divmod(number, size)
        indexes.append(index)
    return _flatten(groups, indexes)


def every_variant(variants: Declaration) -> list[dict[str, Any]]:
    """Every combination of the declared values, the default first (answer sets, tests)."""
    groups = check_declaration(variants)
    combos: list[list[int]] = [[]]
    for _, values in groups:
        combos = [[*combo, index] for combo in combos for index in range(len(values))]
    return [_flatten(groups, combo) for combo in combos]


def format_value(value: Any, language: str = "en") -> str:
    """A parameter as a trainee reads it: ``1,000`` / ``1 000``, ``2.5`` / ``2,5``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer():
        text = f"{int(value):,}"
    else:
        text = f"{value:,.6f}".rstrip("0").rstrip(".")
    if language == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def fill(text: str, params: Mapping[str, Any], language: str = "en") -> str:
    r"""``text`` with each ``{name}`` of a parameter replaced by its value; other braces kept.

    Only declared names are replaced, so LaTeX (``\frac{a}{b}``) and other braces stay as written.
    """
    if not params or not text:
        return text
    names = "|".join(re.escape(name) for name in params)
    return re.sub(
        r"\{(" + names + r")\}", lambda m: format_value(params[m.group(1)], language), str(text)
    )
