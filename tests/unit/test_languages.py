"""One list of languages, and every room's words in each of them."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from atelier import languages

#: Every (sub-)room with words: each holds a ``locales/`` folder.
ROOMS = (
    "atelier.authoring",
    "atelier.public",
    "atelier.grading",
    "atelier.grading.participation",
    "atelier.grading.peerreview",
    "atelier.hub_config.people",
    "atelier.hub_config.servers",
    "atelier.hub_config.view",
    "atelier.widgets",
)


def test_every_locales_folder_is_checked():
    """Is every room that keeps words (a locales/ folder in the package) checked below?"""
    from pathlib import Path

    import atelier

    root = Path(atelier.__file__).parent
    found = {
        ".".join(("atelier", *folder.parent.relative_to(root).parts))
        for folder in root.rglob("locales")
        if folder.is_dir()
    }
    assert found == set(ROOMS)


def test_the_workbook_schema_names_the_same_languages():
    """Does core/workbook.schema.json accept exactly the languages of atelier.languages?"""
    schema = json.loads(resources.files("atelier").joinpath("workbook.schema.json").read_text())
    assert schema["properties"]["language"]["enum"] == list(languages.LANGUAGES)


@pytest.mark.parametrize("room", ROOMS)
def test_every_room_has_the_same_keys_in_every_language(room):
    """Does each room's catalogue have one file per language, the same keys, no empty text?"""
    keys = {lang: set(languages.catalogue(room, lang)) for lang in languages.LANGUAGES}
    first = keys[languages.LANGUAGES[0]]
    assert first, f"{room}: no words"
    for lang, found in keys.items():
        assert found == first, f"{room}/locales/{lang}.json: {sorted(found ^ first)}"
        assert all(languages.catalogue(room, lang).values()), f"{room} {lang}: an empty text"


def test_a_part_s_words_come_without_their_prefix_and_fall_back_to_the_first_language():
    """Does words() give one part's words by name, in English for a language Atelier lacks?"""
    french = languages.words("atelier.public", "library", "fr")
    assert french["index"] == "Tous les cahiers"
    assert not any(name.startswith(("catalogue.", "library.")) for name in french)
    assert languages.words("atelier.public", "library", "xx") == languages.words(
        "atelier.public", "library", "en"
    )
