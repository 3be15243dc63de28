"""Certificates: who completed a seeded cohort gets a PDF in their language; forgeries fail."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from harness import BIN
from seeds import COHORT_PLAN, seed_dashboard_cohort, seed_gradebook

from atelier.grading.certificates import (
    REGISTER_FILE,
    CertificateError,
    issue,
    normal_code,
    verify,
)
from atelier.grading.course import Course
from atelier.grading.courses.people import Trainee

pytestmark = pytest.mark.unit

TRAINEES = [
    Trainee("amina", "at-amina", "en", "Amina Diallo", "amina@example.org"),
    Trainee("benoit", "at-benoit", "fr", "Benoît Kaboré", "benoit@example.org"),
    Trainee("chen", "at-chen", "en", "Chen Wei", "chen@example.org"),
    Trainee("dara", "at-dara", "en", "Dara Sok", "dara@example.org"),
]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    root = tmp_path_factory.mktemp("cert")
    course = Course(cohort="c1", courses_root=root / "courses", exchange_root=root / "exchange")
    seed_gradebook(course, COHORT_PLAN)
    state = root / "state"
    written = issue(course, TRAINEES, state, root / "out", today="2026-11-28")
    return course, state, root, written


def test_only_trainees_who_completed_get_a_certificate(cohort):
    """Who gets a certificate: only those with every workbook graded (not missing, not pending)?"""
    _, _, root, written = cohort
    assert sorted(c.username for c, _ in written) == ["amina", "benoit"]
    for certificate, path in written:
        assert path == root / "out" / f"c1-{certificate.username}.pdf"
        assert path.read_bytes().startswith(b"%PDF-")
        assert certificate.workbooks == ("alpha", "beta")


def test_certificate_is_in_the_trainees_language(cohort):
    """Is Benoît's certificate in French and Amina's in English, each carrying its code?"""
    from pypdf import PdfReader

    _, _, _, written = cohort
    by_name = {c.username: (c, p) for c, p in written}
    for username, title in [("amina", "Certificate of completion"), ("benoit", "Attestation")]:
        certificate, path = by_name[username]
        text = PdfReader(path).pages[0].extract_text()
        assert title in text
        assert certificate.code in text
        assert certificate.full_name in text


def test_a_certificate_verifies(cohort):
    """Does a printed code verify (typed in any case, without dashes) and name whom it was for?"""
    _, state, _, written = cohort
    certificate = written[0][0]
    found = verify(state, certificate.code.lower().replace("-", ""))
    assert found == certificate
    result = subprocess.run(
        [str(BIN / "atelier"), "certificates", "verify", certificate.code],
        capture_output=True,
        text=True,
        env={"ATELIER_SETTINGS": str(write_settings(state)), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout and certificate.full_name in result.stdout


def test_forged_certificates_do_not_verify(cohort):
    """Does a made-up code, or a register line edited to another name or date, verify?"""
    _, state, _, _ = cohort
    with pytest.raises(CertificateError, match="no certificate was issued"):
        verify(state, "AAAA-BBBB-CCCC-DDDD")
    # A forger with write access to the register but not the secret re-dates a certificate.
    register = state / REGISTER_FILE
    saved = register.read_text("utf-8")
    try:
        lines = [json.loads(line) for line in saved.splitlines()]
        lines[0]["username"] = "chen"
        register.write_text("".join(json.dumps(r) + "\n" for r in lines), "utf-8")
        with pytest.raises(CertificateError, match="altered"):
            verify(state, lines[0]["code"])
    finally:
        register.write_text(saved, "utf-8")
    result = subprocess.run(
        [str(BIN / "atelier"), "certificates", "verify", "AAAA-BBBB-CCCC-DDDD"],
        capture_output=True,
        text=True,
        env={"ATELIER_SETTINGS": str(write_settings(state)), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode != 0
    assert "not valid" in result.stderr


def test_issuing_again_keeps_codes(cohort):
    """Does running the command again issue the same certificates, not new codes?"""
    course, state, root, written = cohort
    again = issue(course, TRAINEES, state, root / "again", today="2026-12-01")
    assert [c for c, _ in again] == [c for c, _ in written]
    assert len((state / REGISTER_FILE).read_text().splitlines()) == 2
    assert normal_code(written[0][0].code) == written[0][0].code


def write_settings(state):
    path = state / "settings.yaml"
    path.write_text(yaml.safe_dump({"hub": {"state_dir": str(state)}}))
    return path


def test_command_issues_for_a_roster_cohort(tmp_path):
    """Does `atelier certificates --cohort c1` read the roster and gradebook and write the PDFs?"""
    seed_dashboard_cohort(tmp_path)
    settings = tmp_path / "settings.yaml"
    out = tmp_path / "pdf"
    atelier = [str(BIN / "atelier"), "certificates"]
    result = subprocess.run(
        [
            *atelier,
            f"--settings={settings}",
            "--cohort=c1",
            f"--out={out}",
            f"--workbooks={tmp_path}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["c1-amina.pdf", "c1-benoit.pdf"]
    assert "2 of 4 trainees of c1 completed the cohort" in result.stdout
    code = result.stdout.split()[1]
    check = subprocess.run(
        [*atelier, "verify", code, f"--settings={settings}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
    assert "Amina Diallo" in check.stdout
