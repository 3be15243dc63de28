"""Binder: what repo2docker reads in binder/ is what Atelier needs, in step with the repository."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib

import pytest
import yaml
from harness import BIN, REPO

pytestmark = pytest.mark.unit


def pip_requirements(environment: dict) -> list[str]:
    for entry in environment["dependencies"]:
        if isinstance(entry, dict) and "pip" in entry:
            return entry["pip"]
    raise AssertionError("environment.yml has no pip: list")


def test_environment_files_are_generated_from_pyproject():
    """Are environment.yml and binder/environment.yml what `.ci/environment_yml.py` writes now?"""
    command = [sys.executable, str(REPO / ".ci" / "environment_yml.py"), "--check"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    # The script's message names each stale file and the command that regenerates it.
    assert done.returncode == 0, done.stderr


def test_binder_environment_is_the_root_one():
    """Is binder/environment.yml (what Binder reads) identical to the root environment.yml?"""
    root = (REPO / "environment.yml").read_text("utf-8")
    assert (REPO / "binder" / "environment.yml").read_text("utf-8") == root


def test_environment_pins_python_and_lists_pyproject_dependencies():
    """Do we pin Python 3.11 and pip, and install just pyproject's dependencies?"""
    environment = yaml.safe_load((REPO / "environment.yml").read_text("utf-8"))
    assert "python=3.11" in environment["dependencies"]
    assert "pip" in environment["dependencies"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]

    def normal(spec: str) -> str:
        return re.sub(r"\s+", "", spec).lower()

    assert sorted(map(normal, pip_requirements(environment))) == sorted(
        map(normal, project["dependencies"])
    )


def test_postbuild_is_strict_and_installs_atelier():
    """Is postBuild a strict bash script (`set -euo pipefail`) installing Atelier and settings?"""
    post_build = REPO / "binder" / "postBuild"
    text = post_build.read_text("utf-8")
    assert text.startswith("#!/bin/bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(post_build, os.X_OK)
    assert "pip install --no-deps" in text
    assert "overrides.json" in text and "LAB_OVERRIDES" in text
    assert '"template": "atelier"' in text
    subprocess.run(["bash", "-n", str(post_build)], check=True)


def test_repo2docker_would_build_the_binder_environment(tmp_path):
    """What would repo2docker build from this repository: binder/environment.yml, then postBuild?"""
    result = subprocess.run(
        [str(BIN / "jupyter-repo2docker"), "--no-build", "--debug", str(REPO)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    dockerfile = result.stdout + result.stderr
    assert 'env update -p ${NB_PYTHON_PREFIX} --file "binder/environment.yml"' in dockerfile
    assert "RUN ./binder/postBuild" in dockerfile
    # The root environment.yml is not what Binder reads once binder/ exists.
    assert '--file "environment.yml"' not in dockerfile
    assert "Building conda environment for python=3.11" in dockerfile
