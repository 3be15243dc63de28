"""Errors a user can hit: each carries a message saying what went wrong, where, and what to do.

The command line prints these without a traceback and exits with status 2; anything else is a bug.
"""


class AtelierError(Exception):
    """A problem the user can fix, described in words the user understands."""

    exit_code = 2


class SettingsError(AtelierError):
    """The settings file is missing, unreadable, or does not match the schema."""
