"""Every label, message and feedback text the widgets show, in one JSON catalogue per language.

Rule: no user-visible word is written in code. Code names a key (``"choice.correct"``); the
catalogue of the current language (``locales/<code>.json``) gives the words, with ``{name}``
placeholders filled by :func:`translate`. Every catalogue has the same keys and no empty value (a
unit test checks it).

The language follows the workbook, in this order: a widget's own ``language=`` argument, then
:func:`set_language` (what a workbook's first cell calls), then the ``ATELIER_LANGUAGE`` environment
variable, then ``metadata.atelier.language`` of the notebook the kernel runs
(:func:`kernel_notebook`), then English.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from functools import lru_cache
from pathlib import Path, PurePosixPath
from urllib.parse import unquote

from atelier import languages
from atelier.errors import AtelierError

_chosen: str | None = None


def catalogue(language: str) -> dict[str, str]:
    """The catalogue of ``language`` (key -> text), read once from ``locales/<language>.json``.

    Read by :func:`atelier.languages.catalogue`, as every room's words are.
    """
    return languages.catalogue("atelier.widgets", language)


def normalise(code: str | None) -> str | None:
    """``"fr_FR"``, ``"fr-CA"`` or ``"FR"`` -> ``"fr"``; unsupported or ``None`` -> ``None``."""
    if not code or not isinstance(code, str):
        return None
    short = code.replace("_", "-").split("-", 1)[0].strip().lower()
    return short if short in languages.LANGUAGES else None


def set_language(code: str | None) -> None:
    """Make ``code`` the language of every widget created from now on (``None`` forgets the choice).

    Raises:
        AtelierError: the language has no catalogue.
    """
    global _chosen
    if code is None:
        _chosen = None
        return
    language = normalise(code)
    if language is None:
        raise AtelierError(
            f"widgets: no catalogue for language {code!r}; choose one of "
            f"{', '.join(languages.LANGUAGES)}"
        )
    _chosen = language


def kernel_notebook() -> Path | None:
    """The notebook this kernel runs, if the server said so.

    JupyterLab and Notebook (Jupyter Server) give the kernel ``JPY_SESSION_NAME``, the notebook's
    path; Voila gives ``SCRIPT_NAME``, the page's address (``/voila/render/dir/name.ipynb``), and
    starts the kernel in the notebook's folder. papermill and nbgrader give neither.
    """
    session = os.environ.get("JPY_SESSION_NAME", "")
    if session.endswith(".ipynb"):
        return Path(session)
    script = unquote(os.environ.get("SCRIPT_NAME", ""))
    if script.endswith(".ipynb"):
        return Path.cwd() / PurePosixPath(script).name
    return None


def notebook_language(path: str | os.PathLike | None = None) -> str | None:
    """``metadata.atelier.language`` of the notebook at ``path`` (default: the kernel's)."""
    path = path or kernel_notebook()
    if not path or not str(path).endswith(".ipynb"):
        return None
    try:
        stamp = os.stat(path).st_mtime_ns
    except OSError:
        # The notebook may be unsaved, renamed since the kernel started, or not ours to read.
        return None
    return _metadata_language(str(path), stamp)


@lru_cache(maxsize=16)
def _metadata_language(path: str, _mtime_ns: int) -> str | None:
    """Read a notebook's language once per version of the file (a workbook may be megabytes)."""
    try:
        with open(path, encoding="utf-8") as handle:
            metadata = json.load(handle).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return None
    atelier = metadata.get("atelier") if isinstance(metadata, dict) else None
    return normalise(atelier.get("language")) if isinstance(atelier, dict) else None


def folder_language(folder: str | os.PathLike | None = None) -> str | None:
    """The language of the notebook run in ``folder`` (default: here), when nothing else says it.

    nbgrader runs a submission in its folder without telling the kernel which notebook it is, and
    Atelier's grading sandbox holds the submission's other files only and forgets a language
    chosen by an earlier cell. The folder's only notebook says it; else the answers saved there,
    each saved with its widget's language, when they all agree.
    """
    folder = os.path.abspath(folder or os.curdir)
    try:
        stamp = os.stat(folder).st_mtime_ns
    except OSError:
        return None
    return _folder_language(folder, stamp)


@lru_cache(maxsize=16)
def _folder_language(folder: str, _mtime_ns: int) -> str | None:
    """Read a folder's language once per version of the folder (a file added, replaced)."""
    from atelier.widgets.store import ANSWERS_FILENAME, MAX_BYTES

    try:
        notebooks = [name for name in os.listdir(folder) if name.endswith(".ipynb")]
    except OSError:
        return None
    if len(notebooks) == 1:
        return notebook_language(os.path.join(folder, notebooks[0]))
    try:
        with open(os.path.join(folder, ANSWERS_FILENAME), encoding="utf-8") as handle:
            answers = json.loads(handle.read(MAX_BYTES)).get("answers", {})
        found = {normalise(entry.get("language")) for entry in answers.values()}
    except (OSError, ValueError, AttributeError):
        return None
    return found.pop() if len(found) == 1 else None


def get_language(language: str | None = None) -> str:
    """The language to speak: ``language`` if supported, else the workbook's (module rule)."""
    return (
        normalise(language)
        or _chosen
        or normalise(os.environ.get("ATELIER_LANGUAGE"))
        or notebook_language()
        or folder_language()
        or languages.LANGUAGES[0]
    )


def translate(key: str, language: str | None = None, /, **fields) -> str:
    """The text of ``key`` in ``language``, placeholders filled from ``fields``.

    A key missing from a catalogue falls back to English, then to the key itself, so that a gap in a
    catalogue shows up as a visible key rather than a crash in a trainee's notebook.
    """
    language = get_language(language)
    text = catalogue(language).get(key) or catalogue(languages.LANGUAGES[0]).get(key) or key
    return text.format(**fields) if fields else text


def format_number(number: float, language: str | None = None, digits: int = 1) -> str:
    """``1234.5`` -> ``"1,234.5"`` in English, ``"1 234,5"`` in French (narrow no-break space)."""
    text = f"{number:,.{digits}f}"
    if get_language(language) == "fr":
        text = text.replace(",", "\u202f").replace(".", ",")
    return text


def parse_number(text: str) -> float | None:
    """Read a typed number: ``"2.5"``, ``"2,5"``, ``"1 200"``, ``"1,200.5"``; else ``None``."""
    cleaned = (text or "").strip().replace("\u202f", "").replace("\u00a0", "").replace(" ", "")
    if not cleaned:
        return None
    if "," in cleaned and "." in cleaned:
        # Whichever separator comes last is the decimal one: "1,200.5" or "1.200,5".
        if cleaned.rfind(",") > cleaned.rfind("."):
            cleaned = cleaned.replace(".", "").replace(",", ".")
        else:
            cleaned = cleaned.replace(",", "")
    else:
        cleaned = cleaned.replace(",", ".")
    try:
        number = float(cleaned)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def normalise_text(text: str) -> str:
    """Compare typed answers kindly: case, accents, spacing and final punctuation do not count."""
    decomposed = unicodedata.normalize("NFKD", str(text))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.sub(r"\s+", " ", plain).strip().strip(".!?;:").strip().casefold()
