"""Dependencies as used: what the code imports is what pyproject.toml declares, and no more."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

import pytest
from harness import REPO

pytestmark = pytest.mark.unit

#: The folders installed as the ``atelier`` package (pyproject.toml's ``package-dir``).
PACKAGE_ROOMS = ("core", "widgets", "authoring", "public", "grading", "hub_config")
#: Run-time dependencies the package never imports, and what needs each.
USED_WITHOUT_IMPORT = {
    "notebook": "the Notebook 7 interface trainees may open beside JupyterLab (nbgrader needs it)",
    "jupyter-server-mathjax": "formgrader's local MathJax, a server extension",
    "jupyterhub-idle-culler": "the hub's idle-culler service, started as `python -m`",
    "jupyterhub-nativeauthenticator": "the `native` authenticator, named by a string in config",
    "jupyterlab-language-pack-fr-fr": "JupyterLab's French interface",
    "numpy": "preloaded in the grading sandbox; workbook tests use numpy.testing",
    "psycopg": "SQLAlchemy's driver for postgresql+psycopg:// database URLs",
}


def normal(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement(spec: str) -> tuple[str, list[str]]:
    """The (normalised name, extras) of a requirement such as ``dask[distributed]>=2024.1``."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", spec)
    extras = [e.strip() for e in (match.group(2) or "").split(",") if e.strip()]
    return normal(match.group(1)), extras


def declared(specs: list[str]) -> set[str]:
    """The distributions ``specs`` install directly, with those their named extras add."""
    names = set()
    for spec in specs:
        name, extras = requirement(spec)
        names.add(name)
        for extra in extras:
            for dependency in importlib.metadata.requires(name) or ():
                if re.search(rf"""extra\s*==\s*["']{re.escape(extra)}["']""", dependency):
                    names.add(requirement(dependency)[0])
    return names


def project() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]


def imported(folders, local=frozenset()) -> dict[str, set[str]]:
    """Third-party top-level modules imported in ``folders`` (lazily too): name -> files."""
    found: dict[str, set[str]] = {}
    for folder in folders:
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text("utf-8"), str(path))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.partition(".")[0]
                    if (
                        top in sys.stdlib_module_names
                        or top in local
                        or top in ("atelier", "__future__")
                    ):
                        continue
                    found.setdefault(top, set()).add(str(path.relative_to(REPO)))
    return found


def distributions(module: str) -> set[str]:
    """The installed distributions that provide the top-level ``module``."""
    return {normal(d) for d in importlib.metadata.packages_distributions().get(module, ())}


def undeclared(found: dict[str, set[str]], allowed: set[str]) -> list[str]:
    return [
        f"{module} (from {' or '.join(sorted(distributions(module))) or 'no installed package'}),"
        f" imported by {', '.join(sorted(files))}"
        for module, files in sorted(found.items())
        if not distributions(module) & allowed
    ]


def test_every_package_the_installed_code_imports_is_declared():
    """Does pyproject.toml declare (dependency or opt-in extra) every package the package imports?

    An import that works only because another package brings the module along breaks when that
    package changes its own dependencies.
    """
    meta = project()
    allowed = declared(meta["dependencies"])
    for extra, specs in meta["optional-dependencies"].items():
        if extra != "test":
            allowed |= declared(specs)
    missing = undeclared(imported(PACKAGE_ROOMS), allowed)
    assert not missing, "declare these in pyproject.toml's dependencies:\n" + "\n".join(missing)


def test_every_run_time_dependency_is_used():
    """Is every run-time dependency imported by the package, or needed for a reason written here?

    A package only the tests or benchmarks use (papermill) belongs in the test extra.
    """
    used = set()
    for module in imported(PACKAGE_ROOMS):
        used |= distributions(module)
    unused = [
        spec
        for spec in project()["dependencies"]
        if requirement(spec)[0] not in used and requirement(spec)[0] not in USED_WITHOUT_IMPORT
    ]
    assert not unused, f"not imported by the package: {unused} (move to an extra, or say why)"


def test_tests_and_benchmarks_import_only_declared_packages():
    """Do the tests and benchmarks import only what the dependencies and extras declare?"""
    meta = project()
    allowed = declared(meta["dependencies"])
    for specs in meta["optional-dependencies"].values():
        allowed |= declared(specs)
    folders = ("tests", "benchmarks")
    local = frozenset(p.stem for f in folders for p in (REPO / f).rglob("*.py"))
    missing = undeclared(imported(folders, local), allowed)
    assert not missing, "declare these in pyproject.toml's test extra:\n" + "\n".join(missing)


def test_dask_without_its_extra_says_how_to_install_it(monkeypatch, tmp_path):
    """Without the dask extra, does `atelier grade --dask` stop at once, saying what to install?"""
    from atelier.errors import AtelierError
    from atelier.grading.gradeapp import grade_assignments

    # None in sys.modules makes `import distributed` fail as it does when it is not installed.
    monkeypatch.setitem(sys.modules, "distributed", None)
    missing = tmp_path / "no-course"
    with pytest.raises(AtelierError, match=re.escape('pip install ".[dask]"')) as raised:
        grade_assignments(missing, ["w1"], dask_address="tcp://127.0.0.1:9")
    assert "--dask" in str(raised.value)
    assert not missing.exists()


def test_the_dask_extra_is_an_extra():
    """Is Dask an opt-in extra (`atelier[dask]`), not something every install carries?"""
    meta = project()
    assert "dask" not in {requirement(s)[0] for s in meta["dependencies"]}
    assert "distributed" in declared(meta["optional-dependencies"]["dask"])
    assert any(
        requirement(s) == ("atelier", ["dask"]) for s in meta["optional-dependencies"]["test"]
    )
