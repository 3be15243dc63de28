"""``atelier check`` with real kernels and a real Voila server: execution, apps, the CLI."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from harness import run_apart

from atelier.authoring import newapp
from atelier.authoring.check import kernels, pipeline
from atelier.authoring.check.options import CheckOptions

pytestmark = pytest.mark.server

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures" / "workbooks"
EXECUTION_FIXTURES = {
    "00-crashing-cell": "crash",
    "00-cell-timeout": "timeout",
    "00-network-access": "network",
    "00-leaks-solution": "leaks-solution",
    "00-student-crash": "student-crash",
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """One check run (kernels in parallel) over the execution fixtures and a new workbook."""
    root = tmp_path_factory.mktemp("authoring") / "workbooks"
    scaffolded = newapp.new_workbook(root, "scaffolded", "en").parent
    paths = [FIXTURES / name for name in EXECUTION_FIXTURES] + [
        scaffolded,
        FIXTURES / "00-warning-cell",
        FIXTURES / "00-content-valid",
    ]
    # Template-made fixtures and a scaffolded draft (placeholder prose and minutes) meet the
    # content rules as warnings, as an author drafting does; test_check_content.py fails them.
    report = pipeline.check(paths, CheckOptions(cell_timeout=20, voila=False, content="warn"))
    by_folder: dict[str, set[str]] = {}
    for problem in report.errors:
        folder = Path(problem.path).parent.name
        by_folder.setdefault(folder, set()).add(problem.code)
    return report, by_folder, scaffolded


@pytest.mark.parametrize(("fixture", "code"), sorted(EXECUTION_FIXTURES.items()))
def test_execution_fixture_fails_with_its_own_problem(executed, fixture, code):
    """Does running each fixture report exactly the failure it was made for?"""
    report, by_folder, _ = executed
    assert by_folder.get(fixture) == {code}, [line for line in report.lines() if fixture in line]


def test_scaffolded_workbook_passes_check(executed):
    """Does `atelier new` produce a workbook that runs cleanly as source and as student version?

    A draft: checked with the content rules as warnings (``--content warn``).
    """
    report, by_folder, scaffolded = executed
    assert scaffolded.name not in by_folder, report.lines()


def test_content_valid_fixture_runs_cleanly(executed):
    """Does the fixture that passes the content rules also run, as source and student version?"""
    report, by_folder, _ = executed
    assert "00-content-valid" not in by_folder, report.lines()
    assert not [p for p in report.warnings if "00-content-valid" in p.path], report.lines()


def test_warnings_are_reported_without_failing(executed):
    """Is a warning a cell writes reported, naming its cell, without failing the check?"""
    report, by_folder, _ = executed
    assert "00-warning-cell" not in by_folder, report.lines()
    (warning,) = [p for p in report.warnings if p.code == "warning"]
    assert warning.cell == 3 and warning.message.startswith("writes a warning: DeprecationWarning")


def test_voila_render_error_is_reported():
    """Is a cell that fails only under Voila reported for an app workbook?"""
    report = pipeline.check(
        [FIXTURES / "00-voila-error"], CheckOptions(execute=False, content="off")
    )
    assert {p.code for p in report.errors} == {"voila"}, report.lines()


def test_voila_render_cannot_reach_the_network(monkeypatch):
    """Can an app workbook's code reach the network while Voila renders it for the check?

    The fixture's code connects, only under Voila, to a loopback port this test listens on: an
    isolated render fails with "Network is unreachable" (reported as ``network``); a render that
    gets through is caught by the listener.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.setblocking(False)
        monkeypatch.setenv("ATELIER_CHECK_PROBE_PORT", str(listener.getsockname()[1]))
        report = pipeline.check(
            [FIXTURES / "00-voila-network"], CheckOptions(execute=False, content="off")
        )
        reached = []
        while True:
            try:
                conn, _ = listener.accept()
            except BlockingIOError:
                break
            with conn:
                reached.append(conn)
    assert not reached, "the Voila render opened a connection"
    assert {p.code for p in report.errors} == {"network"}, report.lines()


def test_atelier_check_passes_on_the_real_workbooks(tmp_path):
    """Does `atelier check workbooks/` (as CI runs it) exit 0 with a JSON report and no error?"""
    out = tmp_path / "report.json"
    result = subprocess.run(
        [sys.executable, "-m", "atelier", "check", "workbooks", "--json-file", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads(out.read_text())
    assert data["ok"] and len(data["notebooks"]) >= 2
    assert not [p for p in data["problems"] if p["code"] == "warning"], data["problems"]


def test_atelier_check_exits_non_zero_on_errors():
    """Does the command exit 1 and print `path: cell N: problem — fix` lines on failure?"""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "atelier",
            "check",
            str(FIXTURES / "00-crashing-cell"),
            "--no-voila",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1
    assert (
        "crashing-cell.en.ipynb: cell 3: raises ZeroDivisionError: division by zero — fix"
        in result.stdout
    )


def test_check_kernels_are_forked_by_the_template_through_the_provisioner(monkeypatch):
    """Is each of the check's own kernels a child of the fork server, with no stand-in between?"""
    import tempfile

    import nbformat

    from atelier.authoring.forkserver import ForkServer

    provisioners = []
    make_manager = kernels._kernel_manager_class

    def recording_manager():
        class Recording(make_manager()):
            async def start_kernel(self, **kwargs):
                await super().start_kernel(**kwargs)
                provisioners.append(type(self.provisioner).__name__)

        return Recording

    monkeypatch.setattr(kernels, "_kernel_manager_class", recording_manager)
    nb = nbformat.v4.new_notebook()
    nb.cells.append(nbformat.v4.new_code_cell("import os\nprint(os.getppid())"))
    with tempfile.TemporaryDirectory(prefix="atelier-check-") as ipc_dir:
        path = Path(ipc_dir) / "probe.ipynb"
        nbformat.write(nb, path)
        run = kernels.Run(path, "source", nb)
        with ForkServer(ipc_dir, kernels.network_isolation()) as server:
            run_apart(kernels.execute_all([run], CheckOptions(cell_timeout=20), ipc_dir, server))
            template = server.process.pid
    outputs = nb.cells[0].get("outputs", [])
    assert run.failure is None and outputs, (run.failure, outputs)
    assert int(outputs[0]["text"]) == template, "the kernel was not forked by the template"
    # A stand-in process (forkclient.py) would be started by jupyter_client's LocalProvisioner.
    assert provisioners == ["ForkProvisioner"]


def test_a_widget_key_that_rejects_the_right_answers_fails_the_source_run(tmp_path):
    """Does the check run a widget-graded source with its right answers, and catch a wrong key?"""
    reference = REPO / "workbooks" / "02-low-bandwidth-planner"
    folder = tmp_path / reference.name
    shutil.copytree(reference, folder)
    right = folder / "answers" / "low-bandwidth-planner.en.right.json"
    data = json.loads(right.read_text("utf-8"))
    data["widgets"]["w2-plan"] = "a"  # what the hidden test's key rejects
    right.write_text(json.dumps(data), "utf-8")
    # The content rules have their own tests (tests/unit/test_check_content.py).
    report = pipeline.check([folder], CheckOptions(cell_timeout=20, voila=False, content="off"))
    errors = [(Path(p.path).name, p.code, p.message) for p in report.errors]
    assert len(errors) == 1, report.lines()
    name, code, message = errors[0]
    assert (name, code) == ("low-bandwidth-planner.en.ipynb", "crash")
    assert "AssertionError: This answer is not correct" in message
    assert not list(folder.rglob(".atelier-answers.json")), "a run wrote into the workbook"
