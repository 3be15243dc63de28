"""The base of every ``atelier`` verb: settings loading, logging, and errors shown as messages.

Every verb is a traitlets ``Application``; options are traits with ``help=`` and
``.tag(config=True)``, so they can be given on the command line (``--Class.trait=value`` or an
alias) or in a config file.
"""

from __future__ import annotations

import logging
import sys

from traitlets import Unicode
from traitlets.config import Application, catch_config_error

from atelier import __version__
from atelier.errors import AtelierError
from atelier.settings import DEFAULT_SETTINGS_PATH, Settings, load_settings

base_aliases = {
    "settings": "AtelierApp.settings_file",
    "log-level": "Application.log_level",
}
base_flags: dict = {}


def subverbs(*apps: type[Application]) -> dict:
    """A verb's ``subcommands`` table, from its sub-verbs' classes.

    Each is named by the last word of its ``name`` (every verb is named as it is typed:
    ``atelier kube values`` -> ``values``) and described by the first line of its docstring, so a
    sub-verb says what it does in one place.
    """
    # Docstrings are reStructuredText; help is plain text.
    return {
        app.name.split()[-1]: (app, app.__doc__.strip().splitlines()[0].replace("``", "`"))
        for app in apps
    }


class AtelierApp(Application):
    """Common behaviour of every ``atelier`` verb."""

    version = __version__
    aliases = base_aliases
    flags = base_flags

    settings_file = Unicode(
        DEFAULT_SETTINGS_PATH,
        help="Path of the Atelier settings file (YAML), validated against "
        "core/settings.schema.json. A missing file means all defaults.",
    ).tag(config=True)

    _settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        """The validated settings, loaded on first use."""
        if self._settings is None:
            self._settings = load_settings(self.settings_file)
        return self._settings

    def _log_format_default(self):
        return "%(message)s"

    def _log_level_default(self):
        return logging.INFO

    @catch_config_error
    def initialize(self, argv=None):
        """Parse the command line; a verb with subcommands hands over to the chosen one."""
        super().initialize(argv)
        if self.subapp is not None:
            return

    def start(self):
        """Run the chosen subcommand, or the verb itself, turning user errors into messages."""
        if self.subapp is not None:
            return self.subapp.start()
        return self.run()

    def run(self):
        """Do the verb's work; verbs with subcommands only print their help."""
        self.print_subcommands()
        self.print_help()
        self.exit(1)

    @classmethod
    def launch_instance(cls, argv=None, **kwargs):
        """Start the application; an :class:`AtelierError` is printed as a message, no traceback."""
        try:
            super().launch_instance(argv=argv, **kwargs)
        except AtelierError as error:
            print(f"atelier: {error}", file=sys.stderr)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            print("atelier: interrupted", file=sys.stderr)
            sys.exit(130)


class OutputApp(AtelierApp):
    """A verb that writes one text (a CSV, values, manifests) to ``--output`` or standard output."""

    #: Mode of the file written with ``--output``; a verb whose text holds secrets sets 0o600.
    output_mode = 0o640

    output = Unicode(
        "", help="File to write, whole or not at all; empty means standard output."
    ).tag(config=True)

    def write_output(self, text: str) -> None:
        """``text`` to standard output, or atomically to ``output`` (mode :attr:`output_mode`)."""
        if not self.output:
            sys.stdout.write(text)
            return
        from pathlib import Path

        from atelier.files import atomic_write

        atomic_write(Path(self.output), text, self.output_mode)
        self.log.info("wrote %s", self.output)
