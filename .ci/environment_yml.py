"""Write environment.yml and binder/environment.yml from pyproject.toml, their one source.

    python3 .ci/environment_yml.py            write both files
    python3 .ci/environment_yml.py --check    exit 1, naming the stale files, if either differs

The Python version is the lower bound of ``requires-python``; the pip list is the project's
``dependencies`` in their order (the extras are not part of either environment). Standard library
only, so it runs before anything is installed.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: The files written, relative to the repository (repo2docker reads only binder/ once it exists).
TARGETS = ("environment.yml", "binder/environment.yml")
COMMAND = "python3 .ci/environment_yml.py"

HEADER = f"""\
# Atelier's environment for conda users and for Binder. Generated from pyproject.toml by
# `{COMMAND}`: edit pyproject.toml's dependencies, then run it
# (tests/unit/test_binder.py checks that both copies are up to date).
# Conda users then run `pip install --no-deps -e .`.
"""


def render(pyproject: Path = REPO / "pyproject.toml") -> str:
    """The text of both environment files for the project described by ``pyproject``."""
    project = tomllib.loads(pyproject.read_text("utf-8"))["project"]
    python = re.fullmatch(r">=\s*(\d+\.\d+)", project["requires-python"].strip())
    if python is None:
        raise SystemExit(
            f"{pyproject}: requires-python must be '>=X.Y' to name the environment's Python,"
            f" not {project['requires-python']!r}"
        )
    lines = [
        HEADER.rstrip("\n"),
        "name: atelier",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        f"  - python={python.group(1)}",
        "  - pip",
        "  - pip:",
        *(f"      - {spec}" for spec in project["dependencies"]),
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Write the files, or with ``--check`` report the ones that differ; return the exit status."""
    text = render()
    if argv == ["--check"]:
        stale = [
            t for t in TARGETS if not (REPO / t).exists() or (REPO / t).read_text("utf-8") != text
        ]
        for target in stale:
            print(f"{target} is not what pyproject.toml gives: run `{COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    for target in TARGETS:
        (REPO / target).write_text(text, "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
