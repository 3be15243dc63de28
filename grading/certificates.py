"""Certificates of completion: a PDF per trainee who completed a cohort, with a verification code.

Rule: a trainee has completed a cohort when every workbook released to it (every workbook of the
cohort's gradebook) is graded for that trainee, in either language; the gradebook is read through
:func:`atelier.grading.export.gather`, the one reading of scores. The certificate is in the
trainee's language.

Verification: the code is an HMAC-SHA256, under a secret kept in the hub's state directory
(``certificates.secret``, mode 600), of the trainee, the cohort and the date of issue. Each issued
certificate is appended to a register (``certificates.jsonl`` next to the secret).
``atelier certificates verify CODE`` finds the code in the register and recomputes its HMAC: a code
nobody issued, or a register line edited without the secret, does not verify; a verified code
shows the name, cohort and date it was issued for, to compare with the paper.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from atelier import languages
from atelier.errors import AtelierError
from atelier.files import atomic_open

SECRET_FILE = "certificates.secret"
REGISTER_FILE = "certificates.jsonl"


class CertificateError(AtelierError):
    """A certificate cannot be issued or checked; the message says why and what to do."""


@dataclass(frozen=True)
class Certificate:
    """One issued certificate, as the register keeps it."""

    code: str
    cohort: str
    username: str
    full_name: str
    language: str
    issued: str
    workbooks: tuple[str, ...] = ()


# --- the secret and the code -------------------------------------------------------------------


def load_secret(state_dir: str | Path, create: bool = False) -> bytes:
    """The certificates' secret in ``state_dir``; with ``create``, made (mode 600) when missing."""
    path = Path(state_dir) / SECRET_FILE
    if not path.exists():
        if not create:
            raise CertificateError(
                f"{path}: no certificate secret here, so no certificate was issued on this hub "
                "(check --settings / hub.state_dir)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    if path.stat().st_mode & 0o077:
        raise CertificateError(f"{path}: must be readable by its owner only (chmod 600 {path})")
    return bytes.fromhex(path.read_text().strip())


def verification_code(secret: bytes, cohort: str, username: str, issued: str) -> str:
    """The code of a certificate: 80 bits of HMAC-SHA256, in base32 groups (XXXX-XXXX-...)."""
    message = "\n".join(["atelier-certificate-v1", cohort, username, issued]).encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()[:10]
    text = base64.b32encode(digest).decode()
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


def normal_code(code: str) -> str:
    """A code as typed (any case, spaces or dashes) in its printed form."""
    text = "".join(ch for ch in code.upper() if ch.isalnum())
    return "-".join(text[i : i + 4] for i in range(0, len(text), 4))


# --- the register ------------------------------------------------------------------------------


def read_register(state_dir: str | Path) -> list[Certificate]:
    """Every certificate issued on this hub, oldest first."""
    path = Path(state_dir) / REGISTER_FILE
    if not path.exists():
        return []
    issued = []
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            record["workbooks"] = tuple(record.get("workbooks", ()))
            issued.append(Certificate(**record))
        except (ValueError, TypeError) as exc:
            raise CertificateError(
                f"{path}: line {number} is not a certificate record ({exc})"
            ) from exc
    return issued


def append_register(state_dir: str | Path, certificate: Certificate) -> None:
    """Add ``certificate`` to the register (one JSON line, appended whole)."""
    path = Path(state_dir) / REGISTER_FILE
    line = json.dumps({**asdict(certificate), "workbooks": list(certificate.workbooks)})
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def verify(state_dir: str | Path, code: str) -> Certificate:
    """The certificate issued with ``code``, or :class:`CertificateError` if it does not verify."""
    secret = load_secret(state_dir)
    wanted = normal_code(code)
    for certificate in read_register(state_dir):
        if certificate.code != wanted:
            continue
        expected = verification_code(
            secret, certificate.cohort, certificate.username, certificate.issued
        )
        if hmac.compare_digest(expected, wanted):
            return certificate
        raise CertificateError(f"code {wanted}: the register entry was altered; not valid")
    raise CertificateError(f"code {wanted}: no certificate was issued with this code; not valid")


# --- who completed -----------------------------------------------------------------------------


def completed(course, trainees) -> tuple[list[str], list]:
    """The cohort's workbooks and the trainees who have every one of them graded."""
    from atelier.grading.export import gather

    workbooks, rows = gather(course, trainees)
    if not workbooks:
        raise CertificateError(
            f"cohort '{course.cohort}': no workbook was released, so nobody completed it"
        )
    done = [row.trainee for row in rows if all(row.grades[w].status == "graded" for w in workbooks)]
    return workbooks, done


# --- the PDF -----------------------------------------------------------------------------------


def _font() -> tuple[str, str]:
    """A regular and a bold font that cover the trainees' names (DejaVu if installed)."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    folder = Path("/usr/share/fonts/truetype/dejavu")
    regular, bold = folder / "DejaVuSans.ttf", folder / "DejaVuSans-Bold.ttf"
    if regular.exists() and bold.exists():
        if "DejaVuSans" not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont("DejaVuSans", str(regular)))
            pdfmetrics.registerFont(TTFont("DejaVuSans-Bold", str(bold)))
        return "DejaVuSans", "DejaVuSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def write_pdf(certificate: Certificate, path: str | Path, titles: dict | None = None) -> Path:
    """Write ``certificate`` as a one-page A4 landscape PDF at ``path`` (temporary file, rename)."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.pdfgen import canvas

    words = languages.words("atelier.grading", "certificate", certificate.language)
    titles = titles or {}
    path = Path(path)
    regular, bold = _font()
    width, height = landscape(A4)
    with atomic_open(path, mode=0o644, fsync=False) as handle:
        pdf = canvas.Canvas(handle, pagesize=(width, height), invariant=1)
        pdf.setTitle(f"{words['title']} — {certificate.full_name or certificate.username}")
        pdf.setAuthor("Atelier")
        pdf.setSubject(f"{words['code']} {certificate.code}")
        pdf.setLineWidth(2)
        pdf.rect(30, 30, width - 60, height - 60)
        y = height - 110
        pdf.setFont(bold, 30)
        pdf.drawCentredString(width / 2, y, words["title"])
        pdf.setFont(regular, 14)
        pdf.drawCentredString(width / 2, y - 45, words["intro"])
        pdf.setFont(bold, 24)
        pdf.drawCentredString(width / 2, y - 80, certificate.full_name or certificate.username)
        pdf.setFont(regular, 14)
        pdf.drawCentredString(width / 2, y - 112, f"{words['completed']} « {certificate.cohort} ».")
        pdf.setFont(bold, 12)
        pdf.drawString(90, y - 150, words["workbooks"])
        pdf.setFont(regular, 12)
        for i, workbook in enumerate(certificate.workbooks[:12]):
            pdf.drawString(110, y - 170 - 17 * i, f"• {titles.get(workbook, workbook)}")
        pdf.setFont(regular, 12)
        pdf.drawString(90, 95, f"{words['date']} {certificate.issued}")
        pdf.setFont(bold, 13)
        pdf.drawString(90, 75, f"{words['code']} {certificate.code}")
        pdf.setFont(regular, 10)
        pdf.drawString(90, 57, f"{words['verify']} {certificate.code}")
        pdf.showPage()
        pdf.save()
    return path


def workbook_titles(workbooks_dir: Path, language: str) -> dict[str, str]:
    """Titles of the workbooks in ``language``, by workbook id (from their metadata), if found."""
    from atelier.workbook import metadata, read_notebook

    titles: dict[str, str] = {}
    if not workbooks_dir.is_dir():
        return titles
    for notebook in sorted(workbooks_dir.glob(f"*/*.{language}.ipynb")):
        meta = metadata(read_notebook(notebook))
        if meta.get("id") and meta.get("title"):
            titles[meta["id"]] = meta["title"]
    return titles


def issue(
    course,
    trainees,
    state_dir: str | Path,
    out_dir: str | Path,
    today: str | None = None,
    workbooks_dir: Path | None = None,
) -> list[tuple[Certificate, Path]]:
    """Write a certificate for every trainee of ``course`` who completed it; register each one.

    A trainee who already has a certificate for the cohort gets the same one again (same code and
    date), so running this twice issues nothing new.
    """
    workbooks, done = completed(course, trainees)
    secret = load_secret(state_dir, create=True)
    today = today or date.today().isoformat()
    register = {(c.cohort, c.username): c for c in read_register(state_dir)}
    written = []
    titles_by_language: dict[str, dict] = {}
    for trainee in done:
        certificate = register.get((course.cohort, trainee.username))
        if certificate is None:
            certificate = Certificate(
                code=verification_code(secret, course.cohort, trainee.username, today),
                cohort=course.cohort,
                username=trainee.username,
                full_name=trainee.full_name,
                language=trainee.language
                if trainee.language in languages.LANGUAGES
                else languages.LANGUAGES[0],
                issued=today,
                workbooks=tuple(workbooks),
            )
            append_register(state_dir, certificate)
        if workbooks_dir is not None and certificate.language not in titles_by_language:
            titles_by_language[certificate.language] = workbook_titles(
                workbooks_dir, certificate.language
            )
        path = Path(out_dir) / f"{course.cohort}-{trainee.username}.pdf"
        write_pdf(certificate, path, titles_by_language.get(certificate.language))
        written.append((certificate, path))
    return written
