"""The rooms' layout: the base's import contract covers all of it, and an upgrade keeps working.

``lint-imports`` (tests/run.sh) checks the contracts of ``pyproject.toml``; these tests check
what it cannot: that a module added to the base is held to the base's contract, that modules and
rooms stay small enough to find one's way in (docs/architecture.md), and that files an install made
before the rooms moved (issue 16) still load with today's code.
"""

import ast
import re
import tomllib
from pathlib import Path

import pytest
from harness import atelier_paths
from traitlets.utils.importstring import import_item

from atelier.grading.course import Course
from atelier.grading.exchange import trainee
from atelier.settings import load_settings

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
UPGRADE = REPO / "tests" / "fixtures" / "upgrade"
ROOMS = ("core", "widgets", "authoring", "public", "grading", "hub_config")
#: Past these, a module says why at its top, and a room splits into sub-rooms.
MODULE_LINES, ROOM_MODULES = 500, 15


def modules() -> list[Path]:
    """Every Python module of the installed package's rooms, sub-rooms included."""
    return sorted(p for room in ROOMS for p in (REPO / room).rglob("*.py"))


def contract(name_start: str) -> dict:
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    contracts = project["tool"]["importlinter"]["contracts"]
    return next(c for c in contracts if c["name"].startswith(name_start))


def test_every_base_module_is_held_to_the_base_contract():
    """Is every module of core/ a source of the contract that forbids the base to import a room?"""
    listed = set(contract("The base")["source_modules"])
    on_disk = {f"atelier.{path.stem}" for path in (REPO / "core").glob("*.py")} - {
        "atelier.__init__"
    }
    # Packages of the base (core/upstream/, core/processes/) are held as a whole.
    on_disk |= {f"atelier.{path.parent.name}" for path in (REPO / "core").glob("*/__init__.py")}
    assert on_disk == listed


def test_a_long_module_says_at_its_top_why_it_is_one_module():
    """Does every module over 500 lines explain, in its docstring, why it is not split?"""
    unexplained = []
    for path in modules():
        source = path.read_text("utf-8")
        if source.count("\n") <= MODULE_LINES:
            continue
        if "Why one module" not in (ast.get_docstring(ast.parse(source)) or ""):
            unexplained.append(str(path.relative_to(REPO)))
    assert not unexplained, f"over {MODULE_LINES} lines with no 'Why one module': {unexplained}"


def test_no_room_holds_more_than_fifteen_modules_at_one_level():
    """Does every room and sub-room hold at most 15 modules (``__init__``, ``__main__`` aside)?"""
    crowded = {}
    for folder in {path.parent for path in modules()}:
        count = sum(1 for p in folder.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
        if count > ROOM_MODULES:
            crowded[str(folder.relative_to(REPO))] = count
    assert not crowded, f"rooms over {ROOM_MODULES} modules, give them sub-rooms: {crowded}"


def test_no_two_test_modules_share_a_name():
    """Can pytest collect every tier at once? (test folders are not packages: names must differ)."""
    seen: dict[str, list[str]] = {}
    for path in sorted((REPO / "tests").rglob("test_*.py")):
        seen.setdefault(path.name, []).append(str(path.relative_to(REPO)))
    assert not {name: paths for name, paths in seen.items() if len(paths) > 1}


def test_a_trainee_config_written_before_the_move_loads_the_same_classes():
    """Do the exchange classes the trainees' config written by 0.1 names still import?"""
    paths = atelier_paths(UPGRADE / "trainee-nbgrader_config.py")
    assert len(paths) == 4
    for path in paths:
        name = path.rpartition(".")[2]
        assert import_item(path) is getattr(trainee, name), path
    with pytest.raises(ImportError):
        import_item("atelier.grading.exchange.NoSuchClass")


def test_the_course_config_is_written_again_with_the_new_paths(tmp_path):
    """Does the course config, written again by every verb and the hub's start, name new paths?"""
    settings = load_settings(
        None,
        {"grading": {"courses_root": str(tmp_path / "c"), "exchange_root": str(tmp_path / "x")}},
    )
    text = Course.from_settings(settings, "x").nbgrader_config_text()
    named = re.findall(r"'(atelier\.[\w.]+)'", text)
    assert "atelier.grading.exchange.course.AtelierCollect" in named
    assert not [path for path in named if "course_exchange" in path]
    for path in named:
        assert import_item(path) is not None, path


def test_the_trainee_config_of_0_1_is_written_again_by_the_hubs_start(tmp_path):
    """Does the hub's start (ensure_trainee_config) replace the trainees' 0.1 config file?"""
    from atelier.grading.hubconfig import ensure_trainee_config, trainee_config_files

    settings = load_settings(None, {"grading": {"exchange_root": str(tmp_path / "x")}})
    root = tmp_path / "jupyter"
    root.mkdir()
    old = (UPGRADE / "trainee-nbgrader_config.py").read_text("utf-8")
    (root / "nbgrader_config.py").write_text(old, "utf-8")
    ensure_trainee_config(settings, root)
    text = (root / "nbgrader_config.py").read_text("utf-8")
    assert text == trainee_config_files(settings)["nbgrader_config.py"]
    assert "atelier.grading.exchange.trainee.AtelierSubmit" in text
