"""``atelier check [PATH...]``: the gate every workbook passes before a cohort meets it.

Rule: the exit status is the verdict (0 clean, 1 problems found, 2 usage error); the output is one
``path: cell N: problem — what to do`` line per problem, or a JSON report with ``--json``.
"""

from __future__ import annotations

import json
import sys

from traitlets import Bool, Enum, Float, Integer, Unicode

from atelier.app import AtelierApp, base_aliases, base_flags


class CheckApp(AtelierApp):
    """Validate workbooks: metadata, nbgrader, execution, student version, translations, apps."""

    name = "atelier check"
    description = (
        "Check workbooks (notebooks, workbook folders or the workbooks folder; "
        "default ./workbooks). "
        "Exits non-zero on any error."
    )
    aliases = {
        **base_aliases,
        "timeout": "CheckApp.cell_timeout",
        "workers": "CheckApp.workers",
        "json-file": "CheckApp.json_file",
        "content": "CheckApp.content",
    }
    flags = {
        **base_flags,
        "json": ({"CheckApp": {"json": True}}, "Print the report as JSON on standard output."),
        "no-execute": (
            {"CheckApp": {"execute": False}},
            "Only the static checks: run no notebook.",
        ),
        "no-voila": ({"CheckApp": {"voila": False}}, "Do not render app workbooks with Voila."),
    }

    cell_timeout = Float(
        0,
        help="Seconds one cell may run before the check stops it; 0 means workbooks.cell_timeout.",
    ).tag(config=True)
    workers = Integer(
        -1, help="Kernels run at once; 0 means two per core, -1 means workbooks.check_workers."
    ).tag(config=True)
    json = Bool(False, help="Print the report as JSON instead of lines.").tag(config=True)
    json_file = Unicode("", help="Also write the JSON report to this file.").tag(config=True)
    execute = Bool(True, help="Run the notebooks (source and student versions).").tag(config=True)
    voila = Bool(True, help="Render workbooks published as apps with Voila.").tag(config=True)
    content = Enum(
        ["", "error", "warn", "off"],
        "",
        help="The content rules (graded code, ICT CFT items, citations, minutes, French glossary "
        "and typography): 'error' as they say, 'warn' to report them as warnings while drafting, "
        "'off'; empty means workbooks.check_content.",
    ).tag(config=True)

    def options(self):
        """The check options: settings' ``workbooks`` section, overridden by command-line traits."""
        from atelier.authoring.check.options import CheckOptions

        section = self.settings.get("workbooks", {})
        return CheckOptions(
            cell_timeout=self.cell_timeout or section.get("cell_timeout", 30),
            workers=self.workers if self.workers >= 0 else section.get("check_workers", 0),
            max_notebook_bytes=section.get("max_notebook_kb", 1000) * 1000,
            max_file_bytes=section.get("max_file_kb", 5000) * 1000,
            max_folder_bytes=section.get("max_folder_kb", 20000) * 1000,
            execute=self.execute,
            voila=self.voila,
            content=self.content or section.get("check_content", "error"),
        )

    def run(self):
        """Check the paths given and exit with the verdict."""
        from atelier.authoring.check.pipeline import check

        report = check(self.extra_args or ["workbooks"], self.options())
        data = report.as_dict()
        if self.json_file:
            with open(self.json_file, "w", encoding="utf-8") as f:
                json.dump(data, f, indent=1, ensure_ascii=False)
        if self.json:
            json.dump(data, sys.stdout, indent=1, ensure_ascii=False)
            print()
        else:
            for line in report.lines():
                print(line)
        self.exit(1 if report.errors else 0)
