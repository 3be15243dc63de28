"""``atelier certificates``: issue completion certificates for a cohort; verify one by its code."""

from __future__ import annotations

from pathlib import Path

from traitlets import Unicode

from atelier.app import AtelierApp, base_aliases, subverbs
from atelier.errors import AtelierError


def state_dir(settings) -> Path:
    """Where the certificates' secret and register live: the hub's state directory."""
    return Path(settings.get_path("hub.state_dir", "/var/lib/atelier"))


class VerifyApp(AtelierApp):
    """Check a certificate's verification code against this hub's register."""

    name = "atelier certificates verify"
    description = "Check a certificate: atelier certificates verify CODE (exit 0 only if valid)."

    def run(self):
        """Print who the code was issued to, or fail with a message."""
        from atelier.grading.certificates import verify

        if len(self.extra_args) != 1:
            raise AtelierError("give one code: atelier certificates verify XXXX-XXXX-XXXX-XXXX")
        certificate = verify(state_dir(self.settings), self.extra_args[0])
        print(
            f"valid: {certificate.code} was issued on {certificate.issued} to "
            f"{certificate.full_name or certificate.username} ({certificate.username}) "
            f"for completing cohort {certificate.cohort}"
        )


class CertificatesApp(AtelierApp):
    """Write a PDF certificate for every trainee who completed the cohort's workbooks."""

    name = "atelier certificates"
    description = (
        "Write a completion certificate (PDF, in the trainee's language, with a verification code) "
        "for every trainee of --cohort who has every released workbook graded."
    )
    aliases = {
        **base_aliases,
        "cohort": "CertificatesApp.cohort",
        "out": "CertificatesApp.out",
        "workbooks": "CertificatesApp.workbooks",
    }
    subcommands = subverbs(VerifyApp)

    cohort = Unicode("", help="The cohort whose certificates to write.").tag(config=True)
    out = Unicode("certificates", help="Folder to write the PDFs to.").tag(config=True)
    workbooks = Unicode(
        "", help="Folder of workbooks (for their titles); empty means workbooks/ of this checkout."
    ).tag(config=True)

    def run(self):
        """Issue the cohort's certificates and list them."""
        from atelier.grading.certificates import issue
        from atelier.grading.course import Course
        from atelier.grading.courses.people import cohort_people

        if not self.cohort:
            raise AtelierError("give the cohort: atelier certificates --cohort C")
        course = Course.from_settings(self.settings, self.cohort)
        trainees, _ = cohort_people(self.settings, self.cohort)
        workbooks = Path(self.workbooks or Path(__file__).resolve().parent.parent / "workbooks")
        written = issue(
            course, trainees, state_dir(self.settings), self.out, workbooks_dir=workbooks
        )
        for certificate, path in written:
            print(f"{path}  {certificate.code}  {certificate.username}")
        print(f"{len(written)} of {len(trainees)} trainees of {self.cohort} completed the cohort")
