"""The rooms' layout: the base's import contract covers all of it, and an upgrade keeps working.

``lint-imports`` (tests/run.sh) checks the contracts of ``pyproject.toml``; these tests check
what it cannot: that a module added to the base is held to the base's contract, and that files
an install made before the rooms moved (issue 16) still load with today's code.
"""

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
