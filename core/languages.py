"""The languages Atelier speaks, and where each room keeps the words it shows in them.

Rule: :data:`LANGUAGES` is the one list (workbook file names, roster languages, assignment names,
delivery branches, widget catalogues all follow it; ``core/workbook.schema.json`` names the same
ones, and a unit test keeps the two equal). No visible word is written in code: each room keeps its
words in ``locales/<language>.json`` beside its modules, one flat catalogue per language with the
same keys (``"library.intro"``, ``"certificate.title"``), read once by :func:`catalogue`. Code names
a key; :func:`words` gives a room's words of one part in one language.
"""

from __future__ import annotations

import functools
import json
from importlib import resources

#: The languages of workbooks, trainees and pages; the first is the fallback.
LANGUAGES: tuple[str, ...] = ("en", "fr")


@functools.cache
def catalogue(package: str, language: str) -> dict[str, str]:
    """The catalogue of the room ``package`` in ``language`` (key -> text), read once.

    Raises:
        FileNotFoundError: the room has no ``locales/<language>.json``.
    """
    text = resources.files(package).joinpath("locales", f"{language}.json").read_text("utf-8")
    return json.loads(text)


def words(package: str, part: str, language: str | None) -> dict[str, str]:
    """The words of ``part`` (keys ``"<part>.<name>"``) of a room, by name, in ``language``.

    A language Atelier does not speak gets the first of :data:`LANGUAGES`.
    """
    language = language if language in LANGUAGES else LANGUAGES[0]
    prefix = f"{part}."
    return {
        key[len(prefix) :]: text
        for key, text in catalogue(package, language).items()
        if key.startswith(prefix)
    }
