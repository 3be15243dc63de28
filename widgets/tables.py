"""The dated data tables of the tools (``widgets/data/*.json``), each with source, date, licence.

Rule: no figure lives in code. A table is a JSON file whose top level names where it comes from
(``source``, ``address``, ``date``, ``licence``); widgets cite it under their results with
:func:`citation`.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from atelier.errors import AtelierError

#: Fields every table must have (a unit test checks each shipped table).
PROVENANCE = ("title", "source", "address", "date", "licence")


@cache
def load(name: str) -> dict:
    """The table ``widgets/data/<name>.json`` (``ictcft``: the core's matrix first).

    Raises:
        AtelierError: no such table, or a table without its provenance fields.
    """
    path = resources.files("atelier.widgets").joinpath("data", f"{name}.json")
    if name == "ictcft":
        # One matrix for the whole project: the core's (used by `atelier check`) wins when present.
        shared = resources.files("atelier").joinpath("ictcft.json")
        if shared.is_file():
            return _matrix_from_core(
                json.loads(shared.read_text("utf-8")), json.loads(path.read_text("utf-8"))
            )
    try:
        table = json.loads(path.read_text("utf-8"))
    except FileNotFoundError as exc:
        raise AtelierError(f"widgets: no data table named {name!r} in widgets/data/") from exc
    missing = [field for field in PROVENANCE if not table.get(field)]
    if missing:
        raise AtelierError(
            f"{path}: data table lacks {', '.join(missing)}; every figure must be cited"
        )
    return table


def citation(table: dict, vintage: dict | None = None) -> str:
    """A one-line HTML citation of ``table`` (or of one dated ``vintage`` inside it)."""
    part = vintage or table
    source = part.get("source", table["source"])
    address = part.get("address", table["address"])
    date = part.get("date", table["date"])
    return (
        f'<small>{source}, {date}. <a href="{address}" target="_blank" rel="noopener">{address}</a>'
        f" ({table['licence']}).</small>"
    )


def _matrix_from_core(core: dict, ours: dict) -> dict:
    """Reshape the core's ``core/ictcft.json`` (a list of cells) into this room's table shape.

    Level codes follow the order of the core's ``levels`` (KA, KD, KC); names come from the core, so
    a correction made there reaches the self-assessment too.
    """
    codes = dict(zip(core["levels"], ours["levels"], strict=True))
    cells: dict[str, dict[str, str]] = {}
    for cell in core["cells"]:
        cells.setdefault(str(cell["aspect"]), {})[codes[cell["level"]]] = cell["competency"]
    source = core.get("source", {})
    english = {
        "source": {
            "source": ours["source"],
            "title": source.get("title", ours["title"]),
            "address": source.get("address", ours["address"]),
            "date": source.get("date", ours["date"]),
            "licence": source.get("licence", ours["licence"]),
        },
        "levels": {codes[level]: level for level in core["levels"]},
        "aspects": {str(a["aspect"]): a["name"] for a in core["aspects"]},
        "cells": cells,
    }
    # Each official edition's names, in this room's shape (level codes, aspect numbers as text);
    # a name an edition lacks stays English.
    names = {"en": english}
    for lang, edition in core.get("names", {}).items():
        competencies = edition.get("competencies", {})
        names[lang] = {
            "source": {
                **english["source"],
                **edition.get("source", {}),
                "source": f"UNESCO, {edition.get('source', {}).get('title', ours['title'])}",
            },
            "levels": {
                codes[level]: edition.get("levels", {}).get(level, level)
                for level in core["levels"]
            },
            "aspects": {
                a: edition.get("aspects", {}).get(a, n) for a, n in english["aspects"].items()
            },
            "cells": {
                a: {code: competencies.get(name, name) for code, name in row.items()}
                for a, row in cells.items()
            },
        }
    return {
        **ours,
        **{key: english["source"][key] for key in ("title", "address", "date", "licence")},
        "aspects": [str(a["aspect"]) for a in core["aspects"]],
        "cells": cells,
        "names": names,
    }


def ictcft_names(matrix: dict, language: str) -> dict:
    """The names of ``matrix`` (``load("ictcft")``) in ``language``: its official edition's.

    ``{"source", "levels", "aspects", "cells"}`` keyed by level code and aspect number (text); the
    English names for a language UNESCO publishes no edition in.
    """
    names = matrix.get("names") or {
        "en": {
            "source": {key: matrix[key] for key in (*PROVENANCE,)},
            "levels": {code: code for code in matrix["levels"]},
            "aspects": {a: a for a in matrix["aspects"]},
            "cells": matrix["cells"],
        }
    }
    return names.get(language) or names["en"]
